"""Reading deliveries from files, folders and stdin: documents, arrays, JSON lines and limits."""

from __future__ import annotations

import io
import json
import re
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from corral import reader, spans
from corral.reader import MAX_DOCUMENT, Document
from corral.spans import TOKEN

MIB = 1024 * 1024


def read_bytes(tmp_path: Path, data: bytes, name: str = "input.json") -> list[Document]:
    """Write `data` to a file and return every document read from it."""
    path = tmp_path / name
    path.write_bytes(data)
    return list(reader.read(str(path)))


def over_long_line(size: int = MAX_DOCUMENT + MIB) -> bytes:
    """Return one JSON string line longer than `size` bytes (without its newline)."""
    return b'"' + b"x" * size + b'"'


def test_one_document(tmp_path: Path) -> None:
    """A file holding one JSON object is one document, #1, parsed, with its raw bytes."""
    doc = {"a": 1, "b": [1, 2]}
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    [found] = read_bytes(tmp_path, data)
    assert found.ref == f"{tmp_path / 'input.json'}#1"
    assert (found.parsed, found.raw, found.error) == (doc, data, None)


@pytest.mark.parametrize("count", [1, 3, 7])
def test_array_gives_one_document_per_element(tmp_path: Path, count: int) -> None:
    """A JSON array yields each element as its own document, numbered from 1."""
    elements = [{"n": n} for n in range(count)]
    found = read_bytes(tmp_path, orjson.dumps(elements))
    assert [d.parsed for d in found] == elements
    assert [d.ref.rpartition("#")[2] for d in found] == [str(n) for n in range(1, count + 1)]
    assert [orjson.loads(d.raw) for d in found] == elements


@pytest.mark.parametrize("layout", [{"indent": 2}, {"indent": "\t"}, {}])
@pytest.mark.parametrize("doc", [{"a": [1, "]"], "b": {"c": None}}, [{"x": 1.5}, ["y"], "z"], []])
def test_a_whole_input_that_is_one_document_is_parsed_without_a_scan(
    monkeypatch: pytest.MonkeyPatch, doc: object, layout: dict[str, object]
) -> None:
    """A pretty-printed file (the usual export) is parsed as a whole, not scanned beyond its first line.

    No element's bytes are cut out of an array until they are asked for.
    """
    text = json.dumps(doc, **layout).encode()  # type: ignore[arg-type]
    value_end = spans.value_end

    def first_line_only(scanned: bytes, start: int) -> int | None:
        assert len(scanned) <= len(b"{\n"), scanned
        return value_end(scanned, start)

    def no_scan(*_: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(spans, "value_end", first_line_only)
    monkeypatch.setattr(spans, "locate", no_scan)
    monkeypatch.setattr(spans, "elements", no_scan)
    found = list(reader.read_stream(io.BytesIO(text + b"\n \r\n"), "-"))
    assert [d.parsed for d in found] == (doc if isinstance(doc, list) else [doc])
    monkeypatch.undo()
    expected = [text] if not isinstance(doc, list) else [spans.locate(text, (i,)) for i in range(len(doc))]
    assert [d.raw for d in found] == expected


def test_an_array_is_cut_into_its_elements_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking every element for its bytes scans the array once, not once per element."""
    text = orjson.dumps([{"n": n, "s": "],{"} for n in range(50)], option=orjson.OPT_INDENT_2)
    calls: list[bytes] = []
    elements = spans.elements

    def counted(array: bytes) -> list[bytes] | None:
        calls.append(array)
        return elements(array)

    monkeypatch.setattr(spans, "elements", counted)
    found = list(reader.read_stream(io.BytesIO(text), "-"))
    assert [orjson.loads(d.raw) for d in found] == [d.parsed for d in found]
    assert calls == [text]


@pytest.mark.parametrize("blank_after", [(), (0,), (0, 2), (1, 1, 1)])
def test_json_lines_skip_blank_lines_and_count_documents(tmp_path: Path, blank_after: tuple[int, ...]) -> None:
    """JSON lines are one document each; blank lines are skipped and do not advance N."""
    docs = [{"n": n} for n in range(4)]
    lines: list[bytes] = []
    for n, doc in enumerate(docs):
        lines.append(orjson.dumps(doc))
        lines.extend(b"   " for _ in range(blank_after.count(n)))
    found = read_bytes(tmp_path, b"\n".join(lines) + b"\n", "input.jsonl")
    assert [d.parsed for d in found] == docs
    assert [d.ref.rpartition("#")[2] for d in found] == [str(n) for n in range(1, len(docs) + 1)]


@pytest.mark.parametrize("data", [b'{"a": 1, "b": ', b"[1, 2", b'{"a": "unterminated'])
def test_truncated_document_is_one_error(tmp_path: Path, data: bytes) -> None:
    """A truncated single document is reported once, as invalid JSON, with its raw bytes."""
    [found] = read_bytes(tmp_path, data)
    assert found.parsed is None
    assert (found.error or "").startswith("invalid JSON")
    assert found.raw == data


def test_truncated_json_line_fails_alone(tmp_path: Path) -> None:
    """In JSON lines, a truncated line is an error at its own number; the others are read."""
    data = b'{"a": 1}\n{"b": \n{"c": 3}\n'
    found = read_bytes(tmp_path, data, "input.jsonl")
    assert [d.parsed for d in found] == [{"a": 1}, None, {"c": 3}]
    assert found[1].ref.endswith("#2")
    assert (found[1].error or "").startswith("invalid JSON")


@pytest.mark.parametrize("prefix", [b"", b'{"ok": true}\n'])
def test_invalid_utf8_names_the_byte(tmp_path: Path, prefix: bytes) -> None:
    """Invalid UTF-8 is reported as such, with the offset of the bad byte within the document."""
    bad = b'{"name": "caf\xe9 \xff"}'
    found = read_bytes(tmp_path, prefix + bad + b"\n")
    error = found[-1]
    offset = bad.index(b"\xe9")
    assert error.error == f"not valid UTF-8 (byte {offset})"
    assert error.ref.endswith(f"#{len(found)}")


def test_deeply_nested_json_is_reported(tmp_path: Path) -> None:
    """JSON nested beyond the parser's limit is an error naming the nesting, not a crash."""
    [found] = read_bytes(tmp_path, b"[" * 5000 + b"]" * 5000)
    assert found.error == "JSON nested too deeply"


def test_line_over_limit_is_reported_and_the_next_lines_read(tmp_path: Path) -> None:
    """A JSON line over 8 MiB is an error (its start kept, at most 1 MiB); the lines after it are read."""
    data = b'{"first": 1}\n' + over_long_line() + b'\n{"last": 2}\n'
    found = read_bytes(tmp_path, data, "input.jsonl")
    assert [d.parsed for d in found] == [{"first": 1}, None, {"last": 2}]
    assert found[1].error == "line is over 8 MiB"
    assert 0 < len(found[1].raw) <= MIB
    assert over_long_line().startswith(found[1].raw)


def test_over_long_lines_are_read_in_bounded_memory(tmp_path: Path) -> None:
    """Reading a 30 MB file of several over-long lines never holds much more than one 8 MiB window."""
    lines = [b'{"first": 1}', *(over_long_line(10 * MIB) for _ in range(3)), b'{"last": 2}']
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for line in lines:
            out.write(line + b"\n")
    assert path.stat().st_size > 30 * 10**6
    del lines
    tracemalloc.start()
    try:
        found = [(d.parsed, d.error) for d in reader.read(str(path))]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == [({"first": 1}, None), *[(None, "line is over 8 MiB")] * 3, ({"last": 2}, None)]
    assert peak < 20 * 10**6, f"peak {peak / 10**6:.1f} MB while reading"


def test_single_document_over_limit_is_one_error(tmp_path: Path) -> None:
    """One document over 8 MiB (no JSON first line) is one error, holding at most 1 MiB of it."""
    data = b'{"big": "' + b"y" * (MAX_DOCUMENT + MIB) + b'"}'
    [found] = read_bytes(tmp_path, data)
    assert found.ref.endswith("#1")
    assert "over 8 MiB" in (found.error or "")
    assert 0 < len(found.raw) <= MIB
    assert data.startswith(found.raw)


def test_a_pretty_printed_document_over_limit_is_one_error_and_the_next_is_read(tmp_path: Path) -> None:
    """A document over several lines and over 8 MiB is skipped to its end; the document after it is read."""
    big = orjson.dumps({"big": ["y" * 1000] * 9000, "n": 1}, option=orjson.OPT_INDENT_2)
    assert len(big) > MAX_DOCUMENT
    found = read_bytes(tmp_path, big + b'\n{"after": 1}\n')
    assert [(d.parsed, d.error) for d in found] == [
        (None, "document is over 8 MiB (use JSON lines for large inputs)"),
        ({"after": 1}, None),
    ]
    assert big.startswith(found[0].raw)


def export(count: int = 3_000) -> list[dict[str, object]]:
    """An export of every finding as one array, over 8 MiB in all, as `gcloud scc findings list` writes it."""
    note = 'y\\"]' * 1000  # escaped quotes and brackets inside strings, across every chunk boundary
    return [{"finding": {"name": f"organizations/1/sources/2/findings/{n:06x}", "note": note}} for n in range(count)]


@pytest.mark.parametrize("option", [orjson.OPT_INDENT_2, 0], ids=["pretty", "one-line"])
def test_an_array_over_the_limit_is_read_element_by_element(tmp_path: Path, option: int) -> None:
    """Each element of an array over 8 MiB is a document with its own bytes; the document after it is read."""
    elements = export()
    data = orjson.dumps(elements, option=option)
    assert len(data) > MAX_DOCUMENT
    found = read_bytes(tmp_path, data + b'\n{"after": 1}\n')
    assert [d.error for d in found if d.error] == []
    assert [d.parsed for d in found] == [*elements, {"after": 1}]
    assert [d.ref.rpartition("#")[2] for d in found] == [str(n) for n in range(1, len(elements) + 2)]
    assert [orjson.loads(d.raw) for d in found[:-1]] == elements
    assert found[0].raw == orjson.dumps(elements[0], option=option).replace(b"\n", b"\n  ")


def test_an_array_over_the_limit_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """A 30 MB array on one line is read holding far less than itself."""
    elements = export(10_000)
    path = tmp_path / "export.json"
    path.write_bytes(orjson.dumps(elements))
    assert path.stat().st_size > 30 * 10**6
    del elements
    tracemalloc.start()
    try:
        count = sum(1 for d in reader.read(str(path)) if d.error is None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 20 * 10**6, f"peak {peak / 10**6:.1f} MB while reading"


def big_array(*middle: bytes, end: bytes = b"\n]") -> bytes:
    """A pretty-printed array over 8 MiB: the export's elements, then `middle`, then `end`."""
    return orjson.dumps(export(), option=orjson.OPT_INDENT_2)[: -len(b"\n]")] + b"".join(middle) + end


@pytest.mark.parametrize(
    ("data", "errors", "read"),
    [
        pytest.param(
            big_array(b',\n  {"big": "' + b"z" * (MAX_DOCUMENT + MIB) + b'"},\n  {"n": 1}'),
            [(3001, "array element 3001 is over 8 MiB")],
            [{"n": 1}, {"after": 1}],
            id="an element over the limit",
        ),
        pytest.param(
            big_array(b',\n  "' + b"z" * (MAX_DOCUMENT + MIB) + b'",\n  {"n": 1}'),
            [(3001, "array element 3001 is over 8 MiB")],
            [{"after": 1}],
            id="a string element over the limit skips the rest of the array",
        ),
        pytest.param(
            big_array(b',\n  {"n": 1},'),
            [(3002, "array element 3002 is missing; the rest of the array is skipped")],
            [{"n": 1}, {"after": 1}],
            id="a trailing comma",
        ),
        pytest.param(
            big_array(b'\n  {"n": 1}, {"n": 2}'),
            [(3001, "array element 3000 is followed by neither `,` nor `]`; the rest of the array is skipped")],
            [{"after": 1}],
            id="a missing comma",
        ),
        pytest.param(
            big_array(b',\n  {"n": 1},\n', end=b""),
            # The document after it reads as the array's next element, and the array never ends.
            [(3003, "array cut short: the input ends after 3002 elements, before `]`")],
            [{"n": 1}, {"after": 1}],
            id="cut short after a comma",
        ),
        pytest.param(
            big_array(b',\n  {"cut": "sho', end=b""),
            [(3001, "invalid JSON: unexpected end of data: line 1 column 13 (char 12)")],
            [{"after": 1}],
            id="cut short inside an element",
        ),
    ],
)
def test_a_broken_array_over_the_limit_keeps_every_element_read(
    tmp_path: Path, data: bytes, errors: list[tuple[int, str]], read: list[object]
) -> None:
    """What is wrong is one error, with its bytes (at most 1 MiB); every element before it stands."""
    found = read_bytes(tmp_path, data + b'\n{"after": 1}\n')
    assert [(int(d.ref.rpartition("#")[2]), d.error) for d in found if d.error] == errors
    assert [d.parsed for d in found[:3000]] == export()
    assert [d.parsed for d in found[3000:] if d.error is None] == read
    assert all(len(d.raw) <= MIB and d.raw in data for d in found if d.error)


def small_limits(monkeypatch: pytest.MonkeyPatch, limit: int = 64 * 1024, chunk: int = 4 * 1024) -> None:
    """Read with a limit of `limit` bytes and chunks of `chunk`: over-limit inputs in a few MB, not tens."""
    monkeypatch.setattr(reader, "MAX_DOCUMENT", limit)
    monkeypatch.setattr(reader, "_CHUNK", chunk)


def small_elements() -> bytes:
    """`[` and 128 elements of 1 KiB, each followed by its comma: 128 KiB on one line."""
    return b"[" + b"".join(b'{"n": %d, "pad": "%s"}, ' % (n, b"p" * 1000) for n in range(128))


@pytest.mark.parametrize(
    ("data", "errors", "read"),
    [
        pytest.param(
            small_elements() + b'"' + b"z" * 4 * MIB + b'", {"n": -1}]\n{"after": 1}\n',
            ["array element 129 is over 8 MiB"],
            [{"after": 1}],
            id="a string element",
        ),
        pytest.param(
            small_elements() + b'{"big": "' + b"\\n" * 2 * MIB + b'"}, {"n": -1}]\n{"after": 1}\n',
            ["array element 129 is over 8 MiB"],
            [{"n": -1}, {"after": 1}],
            id="an object element",
        ),
        pytest.param(
            b'{\n  "big": "' + b"z" * 4 * MIB + b'"\n}\n{"after": 1}\n',
            ["document is over 8 MiB (use JSON lines for large inputs)"],
            [{"after": 1}],
            id="a pretty-printed document",
        ),
    ],
)
def test_a_long_string_in_what_is_skipped_is_not_held(
    monkeypatch: pytest.MonkeyPatch, data: bytes, errors: list[str], read: list[object]
) -> None:
    """What is skipped past the limit is dropped as it is read, a string in it too: the buffer does not
    grow to hold the string (4 MiB), nor is the string scanned again from its start with every chunk.

    The peak allowed is a small multiple of the limit (64 KiB): the parser's try at a prefix of a
    pretty-printed document takes about 13 times its size."""
    small_limits(monkeypatch)
    tracemalloc.start()
    try:
        found = list(reader.read_stream(io.BytesIO(data), "-"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d.error for d in found if d.error] == errors
    before = [{"n": n, "pad": "p" * 1000} for n in range(128)] if data.startswith(b"[") else []
    assert [d.parsed for d in found if d.error is None] == [*before, *read]
    assert peak < 2 * MIB, f"peak {peak / MIB:.1f} MiB"


JSON_VALUES = st.recursive(
    st.none() | st.text(st.sampled_from('a"\\[]{},\n\u00e9')) | st.integers(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


@given(value=JSON_VALUES.filter(lambda v: isinstance(v, list | dict | str)), cuts=st.lists(st.integers(0, 200)))
def test_a_scan_fed_in_pieces_ends_a_value_where_a_scan_of_the_whole_does(value: object, cuts: list[int]) -> None:
    """Cut anywhere (inside an escape, right after a backslash or an escaped quote) and scanned on
    from where it stopped, a value ends where it does, and not before."""
    text = json.dumps(value, ensure_ascii=False).encode() + b' ]"'
    expected = spans.value_end(text, 0)
    assert expected is not None
    string = isinstance(value, str)
    for cut in range(len(text)):
        scan = reader._Scan(0, string=string)
        if cut < expected:
            assert scan.end(bytearray(text[:cut])) is None
            assert scan.end(bytearray(text)) == expected
        else:
            assert scan.end(bytearray(text[:cut])) == expected
    data, scan, end = bytearray(), reader._Scan(0, string=string), None
    for cut in sorted({min(cut, len(text)) for cut in cuts} | {len(text)}):
        data += text[len(data) : cut]
        end = scan.end(data)
        if end is not None:
            break
        assert scan.pos <= len(data)
    assert end == expected


CUT_SHORT = "array cut short: another document begins after {} elements, before `]`"
END_OF_DATA = "invalid JSON: unexpected end of data: line 1 column {} (char {})"


@pytest.mark.parametrize(
    ("cut", "errors", "last"),
    [
        pytest.param(b"", [CUT_SHORT.format(128)], [], id="after an element"),
        pytest.param(b",\n  12", [CUT_SHORT.format(129)], [12], id="inside a number"),
        pytest.param(b",\n  nu", [END_OF_DATA.format(3, 2), CUT_SHORT.format(129)], [], id="inside a literal"),
        pytest.param(b",\n  {", [END_OF_DATA.format(2, 1)], [], id="inside an element"),
    ],
)
@pytest.mark.parametrize("limit", [64 * 1024, MAX_DOCUMENT], ids=["streamed", "whole"])
def test_the_documents_after_an_array_cut_short_are_read(
    monkeypatch: pytest.MonkeyPatch, cut: bytes, errors: list[str], last: list[object], limit: int
) -> None:
    """An array cut short (a download that stopped, an exporter killed after it wrote an element) and
    then the next file of `cat broken.json more.jsonl`: what follows is read, whether the array is
    read element by element or whole, as for any value still open at the end of the input.

    Streamed, an element followed by neither `,` nor `]` skipped everything after it to where the
    array's brackets balance, which they never do: all of more.jsonl was lost.
    """
    small_limits(monkeypatch, limit=limit)
    elements = [{"n": n, "pad": "p" * 1000} for n in range(128)]
    array = orjson.dumps(elements, option=orjson.OPT_INDENT_2)[: -len(b"\n]")]
    found = list(reader.read_stream(io.BytesIO(array + cut + b'\n{"after": 1}\n{"after": 2}\n'), "-"))
    if limit == MAX_DOCUMENT:  # the array is one error, and the lines after it stand
        assert [d.parsed for d in found] == [None, {"after": 1}, {"after": 2}]
        return
    assert [d.error for d in found if d.error] == errors
    assert [d.parsed for d in found if d.error is None] == [*elements, *last, {"after": 1}, {"after": 2}]
    assert [d.ref for d in found] == [f"-#{n}" for n in range(1, len(found) + 1)]


class _Pipe(io.RawIOBase):
    """A pipe: not seekable, and each read hands over at most `piece` bytes (64 KiB from a real one)."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data = io.BytesIO(data)
        self.piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.data.read(min(len(buffer), self.piece))
        buffer[: len(chunk)] = chunk
        return len(chunk)


ELEMENTS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.sampled_from('a"\\[]{},: \n\u00e9\U0001f600')),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)
LAYOUTS = st.sampled_from(
    [
        orjson.dumps,
        lambda v: json.dumps(v, indent=2).encode(),
        lambda v: json.dumps(v, indent="\t", ensure_ascii=False).encode(),
        lambda v: json.dumps(v, indent=2).replace("\n", "\r\n").encode(),
        lambda v: json.dumps(v, separators=(" , ", " : ")).encode(),
        lambda v: json.dumps(v, indent=0).encode(),
    ]
)
AFTER = st.sampled_from([b"", b"\n", b'\n{"after": 1}\n', b'\r\n[1]\n{"after": 2}', b" \n"])


@settings(max_examples=150, deadline=None)
@given(
    elements=st.lists(ELEMENTS, min_size=3, max_size=30),
    layout=LAYOUTS,
    after=AFTER,
    piece=st.integers(1, 64),
)
def test_an_array_over_the_limit_reads_as_the_same_array_read_whole(
    elements: list[object], layout: Callable[[object], bytes], after: bytes, piece: int
) -> None:
    """However it is laid out and whatever its elements, an array over the limit gives the documents
    it gives read whole under it: the same refs, values and bytes, and what follows it."""
    text = layout(elements)
    limit = max(map(len, spans.elements(text) or [b""])) + 16
    assume(len(text) > limit + 2)
    data = text + after
    with pytest.MonkeyPatch.context() as patch:
        small_limits(patch, limit=limit, chunk=piece)
        streamed = list(reader.read_stream(io.BufferedReader(_Pipe(data, piece)), "-"))
    whole = list(reader.read_stream(io.BufferedReader(_Pipe(data, piece)), "-"))
    assert [(d.ref, d.parsed, d.error, d.raw) for d in streamed] == [(d.ref, d.parsed, d.error, d.raw) for d in whole]
    assert [d.parsed for d in whole[: len(elements)]] == orjson.loads(text)


def test_a_document_read_in_small_pieces_is_scanned_and_parsed_in_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a pipe, a document comes 64 KiB at a time; what was read of it is not parsed and scanned
    again from its start after every piece (128 times up to 8 MiB before an array over the limit was
    read element by element: 20 s for a 30 MB export on stdin, 5 s from a file).

    Here: a limit of 64 KiB, pieces of 512 bytes, and a pretty-printed array with an element of
    48 KiB. Counted: the bytes given to the parser, and the bytes scanned for a value's end.
    """
    small_limits(monkeypatch)
    elements: list[object] = [{"n": n, "note": 'a\\"]}' * 300} for n in range(200)]
    elements[100] = {"big": ["x" * 100] * 480}
    data = orjson.dumps(elements, option=orjson.OPT_INDENT_2) + b'\n{"after": 1}\n'
    work = 0
    parse, value_end = reader._parse, spans.value_end

    def counted_parse(text: bytes | memoryview) -> tuple[object, bool]:
        nonlocal work
        work += len(text)
        return parse(text)

    def counted_value_end(text: bytes | bytearray, start: int) -> int | None:
        nonlocal work
        end = value_end(text, start)
        work += (len(text) if end is None else end) - start
        return end

    class CountedScan(reader._Scan):
        def end(self, data: bytearray) -> int | None:
            nonlocal work
            pos = self.pos
            end = super().end(data)
            work += self.pos - pos
            return end

    monkeypatch.setattr(reader, "_parse", counted_parse)
    monkeypatch.setattr(spans, "value_end", counted_value_end)
    monkeypatch.setattr(reader, "_Scan", CountedScan)
    found = list(reader.read_stream(io.BufferedReader(_Pipe(data, 512)), "-"))
    assert [d.error for d in found if d.error] == []
    assert [d.parsed for d in found] == [*elements, {"after": 1}]
    assert work <= 4 * len(data), f"{work / len(data):.1f} times the input"


@pytest.mark.parametrize("data", [b"", b"  \n\n \t"])
def test_empty_input_has_no_documents(tmp_path: Path, data: bytes) -> None:
    """An empty or all-whitespace file yields nothing (and no error)."""
    assert read_bytes(tmp_path, data) == []


def test_stdin_is_read_for_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """`-` reads standard input, with refs `-#N`."""
    docs = [{"n": n} for n in range(3)]
    data = b"\n".join(orjson.dumps(d) for d in docs)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    found = list(reader.read("-"))
    assert [d.parsed for d in found] == docs
    assert [d.ref for d in found] == [f"-#{n}" for n in range(1, len(docs) + 1)]


def test_missing_file_is_one_error(tmp_path: Path) -> None:
    """A file that cannot be opened gives one error document `PATH#0`."""
    missing = str(tmp_path / "nowhere.json")
    [found] = list(reader.read(missing))
    assert found.ref == f"{missing}#0"
    assert (found.error or "").startswith("cannot read")


def test_folders_are_expanded_recursively_and_sorted(tmp_path: Path) -> None:
    """A folder expands to its files, recursively, sorted, without hidden files; other names pass through."""
    names = ["b.json", "a.json", "sub/z.json", "sub/deeper/c.json", "sub/a.jsonl"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / ".hidden.json").write_text("{}")
    expanded = list(reader.expand([str(tmp_path), "-", "not-there.json"]))
    expected = sorted(tmp_path / name for name in names)
    assert expanded == [*map(str, expected), "-", "not-there.json"]


def _next_document_by_each_scan(text: bytes) -> int:
    """`reader._next_document` as specified: each candidate line scanned on its own."""
    for match in re.finditer(rb"\n[\[{]", text):
        start = match.start() + 1
        end = spans.value_end(text, start)
        if end is None:
            continue
        line_end = text.find(b"\n", end)
        rest = text[end : len(text) if line_end < 0 else line_end]
        if not rest.strip(b" \t\r\n") and reader._parse(text[start:end])[1]:
            return start
    return len(text)


LINES = st.lists(
    st.sampled_from([b"{", b"[", b"}", b"]", b"],", b"},", b'"', b'{"a": "', b'\\"', b"1,", b'{"b": 1}', b"[2]", b""]),
    min_size=1,
    max_size=24,
)


@given(lines=LINES)
def test_the_one_scan_search_finds_what_a_scan_per_line_finds(lines: list[bytes]) -> None:
    text = b"{\n" + b"\n".join(lines)
    assert reader._next_document(text) == _next_document_by_each_scan(text)


class _CountingTokens:
    """spans.TOKEN, counting the tokens every scan reads."""

    def __init__(self) -> None:
        self.read = 0

    def finditer(self, text: bytes, pos: int = 0) -> Iterator[re.Match[bytes]]:
        for match in TOKEN.finditer(text, pos):
            self.read += 1
            yield match

    def match(self, text: bytes, pos: int = 0) -> re.Match[bytes] | None:
        self.read += 1
        return TOKEN.match(text, pos)


@pytest.mark.parametrize("line", [b"{", b'{"a": [', b'{"a": "', b"[1,"])
def test_unclosed_lines_are_searched_in_linear_work(monkeypatch: pytest.MonkeyPatch, line: bytes) -> None:
    """An input of 2,000 unclosed lines is one error, found scanning each token a few times at most
    (a scan from each line was quadratic: 2 million tokens here, hours on a file of a few MiB)."""
    counting = _CountingTokens()
    monkeypatch.setattr(spans, "TOKEN", counting)
    text = (line + b"\n") * 2_000
    found = list(reader.read_stream(io.BytesIO(text), "-"))
    assert [d.error is not None for d in found] == [True]
    assert found[0].raw == text.rstrip(b"\n")
    tokens = sum(1 for _ in TOKEN.finditer(text))
    assert counting.read <= 4 * tokens, (counting.read, tokens)
