"""Valid input in any layout reads back as its documents, and a file read whole as the streaming scanner reads it."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import reader

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab{[\n" ', max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=12,
)
BLANKS = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\n\n", " \n "])
# Values that survive a round trip through the parser (integers within 64 bits, finite floats).
PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet='ab{[\n" ,]', max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=12,
)
RECORDS = st.dictionaries(st.sampled_from("abc"), PLAIN, max_size=3)


class _Pipe(io.RawIOBase):
    """The same bytes as a stream that cannot seek, so the reader streams them."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _documents(stream: Any) -> list[tuple[object, ...]]:
    return [(d.ref, d.raw, d.parsed, d.error) for d in reader.read_stream(stream, "f")]


@st.composite
def written(draw: st.DrawFn, value: object) -> str:
    """`value` as JSON in one of the layouts deliveries come in."""
    if isinstance(value, list) and draw(st.booleans()):
        # Any whitespace between an array's tokens: elements and commas on lines of their own, or not.
        parts = ["["]
        for i, element in enumerate(value):
            parts += [draw(BLANKS), "," if i else "", draw(BLANKS), draw(written(element))]
        return "".join([*parts, draw(BLANKS), "]"])
    indent = draw(st.sampled_from([None, 0, 1, 2, "\t"]))
    text = json.dumps(value, indent=indent)
    if draw(st.booleans()):
        text = text.replace("{\n ", "{ ", 1)  # a value that starts on its first member's line
    return text


@st.composite
def inputs(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(BLANKS) + draw(written(draw(VALUES))) + draw(BLANKS))
    data = "".join(parts).encode()
    return data[: draw(st.integers(0, len(data)))] if draw(st.integers(0, 9)) == 0 else data


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_a_file_read_whole_reads_as_the_stream_does(data: bytes) -> None:
    """Whatever the input: one value, several, cut short or pretty-printed, the documents are the same."""
    assert _documents(io.BytesIO(data)) == _documents(io.BufferedReader(_Pipe(data)))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    """Documents (objects) and an input holding them: JSON lines, pretty-printed, arrays, one after another."""
    text, documents = [], []
    for _ in range(draw(st.integers(1, 4))):
        value = draw(st.lists(RECORDS, max_size=3) | RECORDS)
        text += [draw(written(value)), draw(BLANKS)]
        documents += value if isinstance(value, list) else [value]
    return "".join(text).encode(), documents


@settings(max_examples=400, deadline=None)
@given(deliveries())
def test_valid_input_in_any_layout_reads_back_as_its_documents(delivery: tuple[bytes, list[object]]) -> None:
    """No valid JSON is an error: every document is read back, each with bytes of its own that parse to it."""
    data, documents = delivery
    for stream in (io.BytesIO(data), io.BufferedReader(_Pipe(data))):
        found = list(reader.read_stream(stream, "f"))
        assert [(d.parsed, d.error) for d in found] == [(doc, None) for doc in documents]
        assert [orjson.loads(d.raw) for d in found] == documents


def test_shapes_the_scanner_once_read_as_json_lines() -> None:
    """A pretty-printed value whose second line is a record by itself is one value, read whole or streamed."""
    for data in (b'[\n{"a": 1}\n]\n', b'{"outer":\n{"a": 1}\n}', b'{"a": 1}  \r\n\n', b"  [1, 2]"):
        assert _documents(io.BytesIO(data)) == _documents(io.BufferedReader(_Pipe(data)))
        value = orjson.loads(data)
        assert [d.parsed for d in reader.read_stream(io.BytesIO(data), "f")] == (
            value if isinstance(value, list) else [value]
        )
    assert [d.parsed for d in reader.read_stream(io.BytesIO(b'{"a": 1}  \r\n'), "f")] == [{"a": 1}]
    assert [d.raw for d in reader.read_stream(io.BytesIO(b'\n{\n "a": 1\n}\n\n'), "f")] == [b'{\n "a": 1\n}']
