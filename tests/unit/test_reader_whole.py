"""A file read whole gives exactly the documents that the streaming scanner gives for it."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral import reader

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab{[\n" ', max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=12,
)
BLANKS = st.sampled_from(["", " ", "\n", "\r\n", "\t", "\n\n", " \n "])


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
def inputs(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        indent = draw(st.sampled_from([None, 1, 2]))
        text = json.dumps(draw(VALUES), indent=indent)
        if draw(st.booleans()):
            text = text.replace("{\n ", "{ ", 1)  # a value that starts on its first member's line
        parts.append(draw(BLANKS) + text + draw(BLANKS))
    data = "".join(parts).encode()
    return data[: draw(st.integers(0, len(data)))] if draw(st.integers(0, 9)) == 0 else data


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_a_file_read_whole_reads_as_the_stream_does(data: bytes) -> None:
    """Whatever the input: one value, several, cut short or pretty-printed, the documents are the same."""
    assert _documents(io.BytesIO(data)) == _documents(io.BufferedReader(_Pipe(data)))


def test_shapes_the_whole_read_leaves_to_the_scanner() -> None:
    """A pretty-printed value whose second line is a record by itself reads as the scanner reads it."""
    for data in (b'[\n{"a": 1}\n]\n', b'{"outer":\n{"a": 1}\n}', b'{"a": 1}  \r\n\n', b"  [1, 2]"):
        assert _documents(io.BytesIO(data)) == _documents(io.BufferedReader(_Pipe(data)))
    assert [d.parsed for d in reader.read_stream(io.BytesIO(b'{"a": 1}  \r\n'), "f")] == [{"a": 1}]
    assert [d.raw for d in reader.read_stream(io.BytesIO(b'\n{\n "a": 1\n}\n\n'), "f")] == [b'{\n "a": 1\n}']
