"""The reader decides document by document: a bad or oversized line costs that line alone."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from corral import reader
from corral.reader import MAX_DOCUMENT, Document
from tests.intake.helpers import event

MIB = 1024 * 1024
DOCS = [{"n": n, "name": f"doc-{n}"} for n in range(4)]
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]
EVENTBRIDGE = event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
# The export cut short: the first 60 lines of the pretty-printed event, nested objects open.
TRUNCATED = "".join(json.dumps(EVENTBRIDGE, indent=2).splitlines(keepends=True)[:60]).encode()


class Pipe(io.BytesIO):
    """Bytes that cannot seek, as stdin in `cat *.json | corral ingest -`: the reader streams them."""

    def seekable(self) -> bool:
        return False


def read_bytes(tmp_path: Path, data: bytes, name: str = "input.jsonl") -> list[Document]:
    """Write `data` to a file and return every document read from it."""
    path = tmp_path / name
    path.write_bytes(data)
    return list(reader.read(str(path)))


def parsed(found: list[Document]) -> list[object]:
    """The parsed value of each document (None for errors)."""
    return [d.parsed for d in found]


@pytest.mark.parametrize(
    "bad",
    [b"{not json", b'{"a": 1', b"[", b"{", b"]", b'{"a": tru}', b"\xff\xfe", b'"unterminated', b"{" * 3000],
)
def test_a_bad_first_line_costs_that_line_alone(tmp_path: Path, bad: bytes) -> None:
    """Whatever the first line is, the lines after it are read as JSON lines."""
    data = bad + b"\n" + b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n"
    found = read_bytes(tmp_path, data)
    assert parsed(found) == [None, *DOCS]
    assert found[0].raw == bad
    assert found[0].error
    assert [d.ref.rpartition("#")[2] for d in found] == ["1", "2", "3", "4", "5"]


def test_a_first_line_over_8_mib_costs_that_line_alone(tmp_path: Path) -> None:
    """A first line over the limit is one error; every later line is read."""
    big = b'{"big": "' + b"x" * (MAX_DOCUMENT + MIB) + b'"}'
    data = big + b"\n" + b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n"
    found = read_bytes(tmp_path, data)
    assert parsed(found) == [None, *DOCS]
    assert found[0].error == "line is over 8 MiB"


@pytest.mark.parametrize("position", [0, 1, 3])
def test_bad_lines_anywhere_cost_themselves_only(tmp_path: Path, position: int) -> None:
    """A truncated line in the middle of JSON lines: that line is the error, at its own number."""
    lines = [orjson.dumps(d) for d in DOCS]
    lines.insert(position, b'{"cut": ')
    found = read_bytes(tmp_path, b"\n".join(lines) + b"\n")
    expected: list[object] = list(DOCS)
    expected.insert(position, None)
    assert parsed(found) == expected
    assert found[position].ref.endswith(f"#{position + 1}")


@pytest.mark.parametrize("separator", [b"", b"\n", b" ", b"\n\n"])
@pytest.mark.parametrize("indent", [True, False])
def test_concatenated_documents(tmp_path: Path, separator: bytes, indent: bool) -> None:
    """`cat *.json`: documents one after another, pretty-printed or not, with or without newlines between."""
    option = orjson.OPT_INDENT_2 if indent else 0
    pieces = [orjson.dumps(d, option=option) for d in DOCS]
    found = read_bytes(tmp_path, separator.join(pieces), "all.json")
    assert parsed(found) == DOCS
    assert [d.raw for d in found] == pieces


def test_concatenated_documents_with_one_broken(tmp_path: Path) -> None:
    """A broken pretty-printed document among good ones: the reader resynchronizes on the next document."""
    pieces = [orjson.dumps(d, option=orjson.OPT_INDENT_2) for d in DOCS]
    broken = b'{\n  "a": 1,\n  "b": \n}'
    data = b"\n".join([pieces[0], broken, *pieces[1:]]) + b"\n"
    found = read_bytes(tmp_path, data, "all.json")
    good = [d.parsed for d in found if d.error is None]
    assert good == DOCS
    assert any(d.error for d in found)


@pytest.mark.parametrize("stream", [io.BytesIO, Pipe])
@pytest.mark.parametrize(
    "after",
    [[], [json.dumps(DOCS[0], indent=2).encode()], [orjson.dumps(d) for d in DOCS]],
    ids=["alone", "pretty", "lines"],
)
def test_a_truncated_pretty_printed_document_is_one_error(stream: type[io.BytesIO], after: list[bytes]) -> None:
    """A document that never closes is one error holding its own bytes; the documents after it are read.

    It runs to the next line that starts a whole document at column 0, not one line at a time
    (which made each of its lines and inner objects a document or an error of its own).
    """
    data = TRUNCATED + b"".join(piece + b"\n" for piece in after)
    [broken, *rest] = list(reader.read_stream(stream(data), "-"))
    assert broken.ref == "-#1"
    assert (broken.error or "").startswith("invalid JSON: unexpected end of data")
    assert broken.raw == TRUNCATED.rstrip(b"\n")
    assert [(d.ref, d.parsed, d.error) for d in rest] == [
        (f"-#{n}", orjson.loads(piece), None) for n, piece in enumerate(after, start=2)
    ]


@pytest.mark.parametrize("stream", [io.BytesIO, Pipe])
def test_documents_cut_short_one_after_another_are_one_error(stream: type[io.BytesIO]) -> None:
    """Two documents cut short in a row: no complete document starts between them, so they are one error."""
    data = TRUNCATED + b"\n" + TRUNCATED + orjson.dumps(DOCS[0]) + b"\n"
    found = list(reader.read_stream(stream(data), "-"))
    assert [(d.raw, d.error is None) for d in found] == [
        (TRUNCATED + b"\n" + TRUNCATED.rstrip(b"\n"), False),
        (orjson.dumps(DOCS[0]), True),
    ]


@pytest.mark.parametrize("stream", [io.BytesIO, Pipe])
def test_a_truncated_array_is_one_error_not_its_elements(stream: type[io.BytesIO]) -> None:
    """An array cut short whose elements start at column 0 is one error: an element and its comma are no document."""
    data = b'[\n{"a": 1},\n{"b": [2,\n3]},\n{"c": 3},\n'
    [found] = list(reader.read_stream(stream(data), "-"))
    assert found.raw == data.rstrip(b"\n")
    assert (found.error or "").startswith("invalid JSON")


ONE = orjson.dumps(EVENTBRIDGE)
TWO = orjson.dumps({**EVENTBRIDGE, "id": "second"})


@pytest.mark.parametrize("stream", [io.BytesIO, Pipe])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[\n" + ONE + b"\n]\n", [EVENTBRIDGE]),
        (b"[\n" + ONE + b"\n,\n" + TWO + b"\n]\n", [EVENTBRIDGE, orjson.loads(TWO)]),
        (b"[" + ONE + b",\n" + TWO + b"\n]", [EVENTBRIDGE, orjson.loads(TWO)]),
        (b"[\r\n\r\n" + ONE + b"\r\n  ,  " + TWO + b"\r\n\r\n]", [EVENTBRIDGE, orjson.loads(TWO)]),
        (b'{"Records": [\n' + ONE + b"\n]}\n", [{"Records": [EVENTBRIDGE]}]),
        (b'{"outer":\n{"a": 1}\n}\n[\n' + ONE + b"\n]\n" + TWO, [{"outer": {"a": 1}}, EVENTBRIDGE, orjson.loads(TWO)]),
    ],
    ids=["one", "comma-line", "first-line", "crlf", "records", "concatenated"],
)
def test_an_array_whose_elements_are_lines_of_their_own_is_read(
    stream: type[io.BytesIO], data: bytes, expected: list[object]
) -> None:
    """Valid JSON whatever its newlines: an element on a line by itself does not make the array's lines JSON lines."""
    found = list(reader.read_stream(stream(data), "-"))
    assert [(d.parsed, d.error) for d in found] == [(doc, None) for doc in expected]


def test_stdin_takes_concatenated_documents(tmp_path: Path) -> None:
    """`cat *.json | corral ingest -` reads each document, not one dead letter."""
    data = b"".join(orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n" for d in DOCS)
    found = list(reader.read_stream(io.BytesIO(data), "-"))
    assert parsed(found) == DOCS
    assert [d.ref for d in found] == [f"-#{n}" for n in range(1, 5)]


def test_an_array_of_documents_over_several_lines_gives_each_element_its_own_bytes(tmp_path: Path) -> None:
    """A pretty-printed array keeps each element's exact bytes (here `1.50` and an escaped é)."""
    data = b'[\n  {"price": 1.50},\n  {"name": "caf\\u00e9"},\n  {"a": 1, "a": 2}\n]\n'
    found = read_bytes(tmp_path, data, "array.json")
    assert [d.raw for d in found] == [b'{"price": 1.50}', b'{"name": "caf\\u00e9"}', b'{"a": 1, "a": 2}']


@pytest.mark.parametrize("suffix", [".json.gz", ".jsonl.gz", ".anything"])
def test_gzip_is_recognized_by_its_magic_bytes(tmp_path: Path, suffix: str) -> None:
    """Compressed JSON lines (GuardDuty's S3 export) are read like plain ones."""
    data = gzip.compress(b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n")
    assert parsed(read_bytes(tmp_path, data, f"export{suffix}")) == DOCS


def test_a_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    """A compressed file cut short: the documents before the cut, then one error."""
    data = gzip.compress(b"\n".join(orjson.dumps(d) for d in DOCS * 2000) + b"\n")
    found = read_bytes(tmp_path, data[: len(data) // 2], "cut.jsonl.gz")
    assert found[-1].error is not None
    assert found[-1].error.startswith("cannot read")
    assert all(d.error is None for d in found[:-1])
    assert len(found) > 1


def test_a_folder_walk_reads_json_files_and_reports_the_rest(tmp_path: Path) -> None:
    """.json, .jsonl, .ndjson and their .gz forms are read; README and PROVENANCE are skipped, and said so."""
    names = ["a.json", "b.jsonl", "c.ndjson", "d.json.gz", "e.JSONL.GZ", "sub/f.json"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}")
    for other in ("README.md", "PROVENANCE", "notes.txt", "sub/data.csv"):
        (tmp_path / other).write_text("not json")
    skipped: list[str] = []
    expanded = list(reader.expand([str(tmp_path)], on_skip=skipped.append))
    assert expanded == [str(p) for p in sorted(tmp_path / n for n in names)]
    assert sorted(skipped) == sorted(
        str(tmp_path / n) for n in ("README.md", "PROVENANCE", "notes.txt", "sub/data.csv")
    )


def test_the_cli_says_what_it_skipped_and_dead_letters_none_of_it(tmp_path: Path) -> None:
    """`corral ingest FOLDER` with a README: one line saying it was skipped, no failure."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "README.md").write_text("# samples\n")
    (folder / "PROVENANCE").write_text("from the docs\n")
    (folder / "empty.json").write_text("[]")
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{tmp_path}/c.db", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["failed"] == 0
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("corral: skipped")]
    assert len(skipped) == 2
    assert any("README.md" in line for line in skipped)
