"""Read deliveries from files, folders and stdin, streaming, one JSON document at a time.

An input holds one JSON document, a JSON array (each element a document), JSON lines, or JSON
documents one after another (`cat *.json | corral ingest -`), pretty-printed or not, with any
whitespace between a value's tokens; gzip compression is recognized by its magic bytes. The format
is read document by document, never decided from the first one; valid JSON under 8 MiB is never
an error.

A bad document is one error, and the reader picks up again after it:
- a line that does not parse, followed by a line that is an object or array by itself (and not by
  a `,`, `]` or `}`, which would make that line part of a value begun before it), is a bad JSON
  line, and costs that line alone;
- a value over several lines whose brackets balance but which does not parse is one bad document;
- a value still open at the end of the input (a pretty-printed file cut short) runs up to the first
  later line that begins at column 0, with `{` or `[`, a value that parses and ends on that line
  (the next file of `cat broken.json good.json`), or else to the end of the input. An element of an
  array cut short, followed by its comma, is no such value; two documents cut short one after the
  other are one error.
Any single line or document over 8 MiB is rejected without being held in memory (skipped to where
its brackets balance), so a large JSON-lines file streams in constant memory. An array over 8 MiB
is the exception: it is read element by element in bounded memory, each element a document, and
only an element over 8 MiB is an error. Exports of every finding come that way (`gcloud scc
findings list --format=json`, `az security alert list`), pretty-printed or on one line. Documents
are counted from 1 (`PATH#N`).

Which files a folder gives is `inputs` (re-exported here).
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, cast

import orjson

from corral import spans
from corral.inputs import SUFFIXES, expand, readable
from corral.records import NamedTuple

__all__ = ["MAX_DOCUMENT", "SUFFIXES", "Document", "expand", "read", "read_stream", "readable"]

MAX_DOCUMENT: Final = 8 * 1024 * 1024
_CHUNK: Final = 1024 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_OPEN: Final = frozenset(b"[{")
_WHITESPACE: Final = b" \t\r\n"
_OPENERS: Final = (b"{", b"[")
_CLOSERS: Final = frozenset(b",]}")
_ARRAY_OPEN, _ARRAY_CLOSE, _COMMA = b"[],"
_CLOSING: Final = {ord("["): ord("]"), ord("{"): ord("}")}
_NO_VALUE: Final = frozenset(b",:]}")
"""Bytes no JSON value starts with: where one is, an array's element is missing."""
# A line that starts with an opening bracket at column 0: where a document after a broken one may start.
_LINE_OPENER: Final = re.compile(rb"\n[\[{]")


class Document(NamedTuple):
    """One document read from an input: parsed, or the reason it could not be.

    `raw` is its own bytes in the input; for an element of an array they are cut out of the
    array's bytes only when asked for (a dead letter), not for every element read. A named tuple:
    one is made for every document read, and building one must stay cheap.
    """

    ref: str
    content: bytes | _Element
    parsed: object = None
    error: str | None = None
    received_time: int | None = None
    """When the input was written (a file's mtime, epoch ms): stands in for records without a time."""

    @property
    def raw(self) -> bytes:
        content = self.content
        return content if isinstance(content, bytes) else content.raw()


class _Elements:
    """The bytes of a JSON array, cut into its elements' own slices on first request."""

    __slots__ = ("parsed", "pieces", "text")

    def __init__(self, text: bytes, parsed: list[object]) -> None:
        self.text = text
        self.parsed = parsed
        self.pieces: list[bytes] | None = None

    def piece(self, index: int) -> bytes:
        if self.pieces is None:
            found = spans.elements(self.text)
            self.pieces = found if found is not None and len(found) == len(self.parsed) else []
        if self.pieces:
            return self.pieces[index]
        piece = spans.locate(self.text, (index,))
        return piece if piece is not None else orjson.dumps(self.parsed[index])


@dataclass(frozen=True, slots=True)
class _Element:
    """Where an array element's bytes are: the array, and its index in it."""

    array: _Elements
    index: int

    def raw(self) -> bytes:
        return self.array.piece(self.index)


def read(name: str) -> Iterator[Document]:
    """Yield the documents of one input (`-` is stdin); an unreadable file gives one error."""
    n = 0
    try:
        if name == "-":
            for document in read_stream(sys.stdin.buffer, "-"):
                n += 1
                yield document
            return
        with Path(name).open("rb") as stream:
            written = os.fstat(stream.fileno()).st_mtime_ns // 1_000_000
            for document in read_stream(stream, name):
                n += 1
                yield Document(document.ref, document.content, document.parsed, document.error, written)
    except (OSError, EOFError, zlib.error) as exc:
        # A file that cannot be opened, or a compressed one cut short: what was read stands.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        yield Document(f"{name}#{n + 1 if n else 0}", b"", error=f"cannot read: {reason}")


def read_stream(stream: IO[bytes], name: str) -> Iterator[Document]:
    """Yield the documents of an open binary stream (gzip-compressed or not)."""
    head = stream.read(2)
    if head == _GZIP_MAGIC:
        stream = cast("IO[bytes]", gzip.GzipFile(fileobj=cast("IO[bytes]", _Prefixed(head, stream)), mode="rb"))
        head = b""
    elif _seekable(stream):
        # A file (not a pipe, which must stream): most are one document, read here in one go.
        head += stream.read(_CHUNK)
        scanner = _Scanner(_Buffer(stream, head), name)
        # All of it (read stops short only at the end of a file), and most often one document.
        whole = scanner.whole(head) if len(head) <= _CHUNK + 1 else None
        yield from scanner.documents() if whole is None else whole
        return
    yield from _Scanner(_Buffer(stream, head), name).documents()


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class _Prefixed:
    """A stream with bytes already read put back in front (for gzip's magic-number check)."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out + (self.stream.read(size - len(out)) if size < 0 or size > len(out) else b"")
        return self.stream.read(size)


class _Buffer:
    """The unread part of a stream, refilled in chunks; consumed bytes are dropped as it goes."""

    def __init__(self, stream: IO[bytes], head: bytes) -> None:
        self.stream = stream
        self.data = bytearray(head)
        self.at_end = False

    def more(self) -> bool:
        """Read one more chunk; False at the end of the stream."""
        if self.at_end:
            return False
        # read1 hands over what is there: a compressed file cut short keeps every line before the cut.
        read = getattr(self.stream, "read1", self.stream.read)
        chunk = read(_CHUNK)
        if not chunk:
            self.at_end = True
            return False
        self.data += chunk
        return True

    def drop(self, count: int) -> None:
        del self.data[:count]

    def find_newline(self, start: int, limit: int) -> int | None:
        """The index of the first newline at or after `start`, reading on; None past `limit` bytes."""
        searched = start
        while True:
            found = self.data.find(b"\n", searched, start + limit + 1)
            if found >= 0:
                return found
            searched = max(start, len(self.data))
            if searched - start > limit or not self.more():
                return len(self.data) if len(self.data) - start <= limit else None


class _Scanner:
    """Documents one after another: JSON lines, concatenated documents, pretty-printed or not."""

    def __init__(self, buffer: _Buffer, name: str) -> None:
        self.buffer = buffer
        self.name = name
        self.n = 0

    def _doc(self, raw: bytes | _Element, parsed: object = None, error: str | None = None) -> Document:
        self.n += 1
        return Document(f"{self.name}#{self.n}", raw, parsed, error)

    def parsed(self, raw: bytes, parsed: object) -> Iterator[Document]:
        """One document, or each element of an array with its own slice of the input."""
        if not isinstance(parsed, list):
            yield self._doc(raw, parsed)
            return
        array = _Elements(raw, parsed)
        for i, element in enumerate(parsed):
            yield self._doc(_Element(array, i), element)

    def whole(self, data: bytes) -> Iterator[Document] | None:
        """The documents of an input read whole that is one JSON value, as `documents` reads them; else None.

        One parse instead of the line-by-line search, for the common case.
        """
        parsed, ok = _parse(data)
        if not ok:
            return None
        start = 0 if data[0] in _OPEN else spans.skip_space(data, 0)
        newline = data.find(b"\n", start)
        if newline >= 0 and spans.skip_space(data, newline) < len(data):
            return self.parsed(data[start:].rstrip(_WHITESPACE), parsed)  # over several lines, as `_multi_line` cuts it
        # A value on one line keeps that line's trailing blanks, as a JSON line does.
        return self.parsed(data[start:] if newline < 0 else data[start:newline], parsed)

    def documents(self) -> Iterator[Document]:
        buf = self.buffer
        while True:
            start = self._next_start()
            if start is None:
                return
            line_end = buf.find_newline(start, MAX_DOCUMENT)
            if line_end is None and buf.data[start] == _ARRAY_OPEN:
                yield from self._array_elements(start)
                continue
            if line_end is None:
                yield self._doc(bytes(buf.data[start : start + _CHUNK]), error="line is over 8 MiB")
                self._skip_line(start)
                continue
            line = bytes(buf.data[start:line_end])
            if line.rstrip(_WHITESPACE) in _OPENERS:
                # A lone `{` or `[` (the first line of a pretty-printed file) is no document by itself.
                yield from self._not_a_line(start, line_end, line, opened=True)
                continue
            parsed, ok = _parse(line)
            if ok:
                yield from self.parsed(line, parsed)
                buf.drop(line_end + 1)
                continue
            yield from self._not_a_line(start, line_end, line)

    def _next_start(self) -> int | None:
        """Drop leading whitespace; the start of the next document, or None at the end."""
        buf = self.buffer
        while True:
            start = spans.skip_space(buf.data, 0)
            if start < len(buf.data):
                buf.drop(start)
                return 0
            buf.drop(len(buf.data))
            if not buf.more():
                return None

    def _not_a_line(self, start: int, line_end: int, line: bytes, *, opened: bool = False) -> Iterator[Document]:
        """A line that is not one document: several on one line, the start of a longer one, or bad.

        `opened`: the line is only an opening bracket, so no value ends on it.
        """
        buf = self.buffer
        end = None if opened else spans.value_end(bytes(buf.data[start : line_end + 1]), 0)
        if end is not None and start + end <= line_end:
            # A whole value ends on this line: documents written one after another, `}{`.
            value = bytes(buf.data[start : start + end])
            parsed, ok = _parse(value)
            if ok:
                yield from self.parsed(value, parsed)
                buf.drop(start + end)
            else:
                yield self._failure(line)
                buf.drop(line_end + 1)
            return
        if end is None and self._next_line_is_a_record(line_end):
            # JSON lines with one bad line: the next line stands on its own, so this one alone is lost.
            yield self._failure(line)
            buf.drop(line_end + 1)
            return
        yield from self._multi_line(start)

    def _next_line_is_a_record(self, line_end: int) -> bool:
        """Whether the next line is an object or array by itself, not followed by `,`, `]` or `}`.

        Then the line before it is a bad JSON line, not the start of a longer value: inside a value,
        a value on a line of its own (an array's element) is always followed by one of those.
        """
        buf = self.buffer
        following = line_end + 1
        if following >= len(buf.data) and not buf.more():
            return False
        next_end = buf.find_newline(following, MAX_DOCUMENT)
        if next_end is None:
            return False
        text = bytes(buf.data[following:next_end])
        if text.lstrip(_WHITESPACE)[:1] not in _OPENERS:
            return False  # not an object or an array, whatever it parses to: no need to ask the parser
        parsed, ok = _parse(text)
        if not (ok and isinstance(parsed, dict | list)):
            return False
        after = spans.skip_space(buf.data, next_end)
        while after >= len(buf.data) and after - next_end <= MAX_DOCUMENT and buf.more():
            after = spans.skip_space(buf.data, after)
        return after >= len(buf.data) or buf.data[after] not in _CLOSERS

    def _multi_line(self, start: int) -> Iterator[Document]:
        """A document over several lines (pretty-printed): read to its end, at most 8 MiB of it.

        It is scanned as it is read, each byte once: from a pipe it comes 64 KiB at a time, and a
        scan and a parse from its start after every piece were 128 of up to 8 MiB each.
        """
        buf = self.buffer
        opener = buf.data[start]
        if opener in _OPEN and _last_byte(buf.data) == _CLOSING[opener]:
            # Commonly the rest of the input is this one document, read already: the parser says so
            # natively, and only text that is more (or less) than one value is scanned for its end.
            # Not tried where it cannot be, nor again as more is read: the parser builds what it
            # read of a prefix before it fails (about 13 times its size), and the scan goes on.
            rest = bytes(buf.data[start:])
            parsed, ok = _parse(rest)
            if ok:
                yield from self.parsed(rest.rstrip(_WHITESPACE), parsed)
                buf.drop(len(buf.data))
                return
        scan = _Scan(start) if opener in _OPEN else None
        while True:
            end = spans.value_end(buf.data, start) if scan is None else scan.end(buf.data)
            if end is not None:
                value = bytes(buf.data[start:end])
                parsed, ok = _parse(value)
                if ok:
                    yield from self.parsed(value, parsed)
                else:
                    # Balanced but not JSON: one broken document, and reading resumes after it.
                    yield self._failure(value)
                buf.drop(end)
                return
            if len(buf.data) - start > MAX_DOCUMENT and opener == _ARRAY_OPEN:
                yield from self._array_elements(start)
                return
            if len(buf.data) - start > MAX_DOCUMENT:
                yield self._doc(
                    bytes(buf.data[start : start + _CHUNK]),
                    error="document is over 8 MiB (use JSON lines for large inputs)",
                )
                self._skip_value(start)
                return
            if not buf.more():
                yield self._cut_short(start)
                return

    def _array_elements(self, start: int) -> Iterator[Document]:
        """An array over 8 MiB, one element at a time: only the element being read is held.

        Elements read stand whatever follows them. An element over 8 MiB is one error and is
        skipped; a broken separator, or an input that ends inside the array, is one error for
        the rest of it. Where a separator is missing and a document starts a line instead (as
        `_next_document` finds one), the array was cut short: what follows it is read.
        """
        buf = self.buffer
        buf.drop(start + 1)  # the `[`
        elements, after_comma = 0, False
        while (at := self._skip_space()) is not None:
            byte = buf.data[at]
            if byte == _ARRAY_CLOSE and not after_comma:
                buf.drop(at + 1)
                return
            if elements and not after_comma:
                if byte != _COMMA and self._document_starts(at):
                    # The array was cut short and the next file of `cat` follows: it is read, as after
                    # any value still open at the end of the input (`_next_document`).
                    yield self._doc(
                        b"", error=f"array cut short: another document begins after {elements} elements, before `]`"
                    )
                    return
                if byte != _COMMA:
                    yield self._broken_array(at, f"array element {elements} is followed by neither `,` nor `]`")
                    return
                buf.drop(at + 1)
                after_comma = True
                continue
            if byte in _NO_VALUE:
                yield self._broken_array(at, f"array element {elements + 1} is missing")
                return
            elements += 1
            after_comma = False
            if (yield from self._array_element(at, elements)):
                return  # the element's error says so
        yield self._doc(b"", error=f"array cut short: the input ends after {elements} elements, before `]`")

    def _broken_array(self, at: int, reason: str) -> Document:
        """One error for the rest of an array that is not JSON from `at` on, which is skipped."""
        return self._doc(self._skip_value(at, depth=1), error=f"{reason}; the rest of the array is skipped")

    def _array_element(self, at: int, number: int) -> Generator[Document, None, bool]:
        """The array element starting at `at`, read to its end (at most 8 MiB of it) and dropped.

        Returns whether the rest of the array went with it (the input ended inside it, or it was
        skipped to the array's end). An object, array or string is scanned as it is read, each byte
        once, as `_multi_line` scans a document.
        """
        buf = self.buffer
        first = buf.data[at]
        scan = _Scan(at, string=first == 0x22) if first in _OPEN or first == 0x22 else None
        while (end := spans.value_end(buf.data, at) if scan is None else scan.end(buf.data)) is None:
            if len(buf.data) - at > MAX_DOCUMENT:
                yield self._doc(bytes(buf.data[at : at + _CHUNK]), error=f"array element {number} is over 8 MiB")
                # An object or array is skipped to its end; anything else, with the rest of the array.
                whole = first in _OPEN
                self._skip_value(at, depth=0 if whole else 1)
                return not whole
            if not buf.more():
                yield self._cut_short(at)
                return True
        value = bytes(buf.data[at:end])
        parsed, ok = _parse(value)
        yield self._doc(value, parsed) if ok else self._failure(value)
        buf.drop(end)
        return False

    def _cut_short(self, start: int) -> Document:
        """A value from `start` still open at the end of the input: broken up to the next document
        that follows it, if one does (`_next_document`), from where reading goes on."""
        buf = self.buffer
        rest = bytes(buf.data[start:])
        cut = _next_document(rest)
        buf.drop(start + cut)
        return self._failure(_lines(rest[:cut]))

    def _document_starts(self, at: int) -> bool:
        """Whether a document starts at `at` as one does after a value cut short (`_next_document`):
        at column 0, with `{` or `[`, a value that parses and ends on its line."""
        buf = self.buffer
        if at == 0 or buf.data[at - 1] != 0x0A or buf.data[at] not in _OPEN:
            return False
        scan = _Scan(at)
        while (end := scan.end(buf.data)) is None:
            if len(buf.data) - at > MAX_DOCUMENT or not buf.more():
                return False
        line_end = buf.find_newline(end, MAX_DOCUMENT)
        if line_end is None or buf.data[end:line_end].strip(_WHITESPACE):
            return False
        return _parse(bytes(buf.data[at:end]))[1]

    def _skip_space(self) -> int | None:
        """The position of the next byte that is not whitespace, reading on; None at the end of the input.

        The byte before it is kept: whether it is a newline says whether a line starts there.
        """
        buf = self.buffer
        at = spans.skip_space(buf.data, 0)
        while at >= len(buf.data):
            buf.drop(max(0, len(buf.data) - 1))
            if not buf.more():
                return None
            at = spans.skip_space(buf.data, 0)
        return at

    def _skip_line(self, start: int) -> None:
        buf = self.buffer
        buf.drop(start)
        while True:
            found = buf.data.find(b"\n")
            if found >= 0:
                buf.drop(found + 1)
                return
            buf.drop(len(buf.data))
            if not buf.more():
                return

    def _skip_value(self, start: int, depth: int = 0) -> bytes:
        """Read past an over-long document without holding it: count brackets outside strings.

        `depth`: how many brackets are open at `start` already (1: skip to the end of the array
        `start` is in). Returns the first MiB of what was skipped.
        """
        buf = self.buffer
        buf.drop(start)
        skipped = bytearray()

        def drop(count: int) -> None:
            skipped.extend(buf.data[: max(0, min(count, _CHUNK - len(skipped)))])
            buf.drop(count)

        scan = _Scan(0, depth)
        while True:
            end = scan.end(buf.data)
            if end is not None:
                drop(end)
                return bytes(skipped)
            # All that was scanned goes, a string's start too: the scan goes on inside the string.
            drop(scan.pos)
            scan.pos = 0
            if not buf.more():
                drop(len(buf.data))
                return bytes(skipped)

    def _failure(self, raw: bytes) -> Document:
        self.n += 1
        return _failure(f"{self.name}#{self.n}", raw)


def _last_byte(data: bytearray) -> int | None:
    """The last byte of `data` that is not whitespace, or None."""
    end = len(data)
    while end and data[end - 1] in _WHITESPACE:
        end -= 1
    return data[end - 1] if end else None


_STRUCTURAL: Final = re.compile(rb'["\[\]{}]')


class _Scan:
    """Brackets counted outside strings in a buffer read in chunks, each byte scanned once.

    The scan stops where the buffer does, inside a string too, and goes on from there once more is
    read. Going back to the start of a string the buffer ended in held all of a long string (the
    100 MB one of an over-long document) and scanned it again with every chunk.
    """

    __slots__ = ("depth", "in_string", "pos", "string")

    def __init__(self, pos: int, depth: int = 0, *, string: bool = False) -> None:
        """`pos`: where to scan from; `depth`: how many brackets are open there already; `string`:
        the value is the string at `pos` (else the scan ends only where brackets balance)."""
        self.pos = pos
        self.depth = depth
        self.string = string
        self.in_string = False

    def end(self, data: bytearray) -> int | None:
        """Where the value being scanned ends (its brackets balance, or its string closes), or None
        if `data` ends first.

        Then `pos` is where `data` ended (before a backslash it ends on: the escape is cut in two),
        and the scan goes on from there when called again with more data.
        """
        pos, depth, end = self.pos, self.depth, None
        while True:
            if self.in_string:
                body = spans.STRING_BODY.match(data, pos)
                pos = body.end() if body else pos
                if pos >= len(data) or data[pos] != 0x22:
                    break
                pos += 1
                self.in_string = False
                if self.string:
                    end = pos
                    break
            found = _STRUCTURAL.search(data, pos)
            if found is None:
                pos = len(data)
                break
            pos = found.end()
            byte = data[found.start()]
            if byte == 0x22:
                self.in_string = True
                continue
            depth += 1 if byte in _OPEN else -1
            if depth <= 0:
                end = pos
                break
        self.pos, self.depth = pos, depth
        return end


def _parse(text: bytes | memoryview) -> tuple[object, bool]:
    try:
        return orjson.loads(text), True
    except orjson.JSONDecodeError:
        return None, False


def _next_document(text: bytes) -> int:
    """Where the first document after the first line of `text` starts, or its length if none does.

    A document starts a line, at column 0, with `{` or `[`, parses, and ends on a line's end (an
    element of an array cut short, followed by its comma, is not one).

    Every candidate's end comes from one scan of the text where it can (`_value_ends`), not a scan
    per candidate: that was quadratic in the lines of an input of unclosed brackets. An input built
    to need more than `_SEARCH_WORK` times its length in scanning and parsing is left as one broken
    document to its end (kept whole in the dead letter).
    """
    starts = [match.start() + 1 for match in _LINE_OPENER.finditer(text)]
    view = memoryview(text)
    ends: dict[int, int | None] = {}
    budget = _SEARCH_WORK * len(text)
    for n, start in enumerate(starts):
        if start not in ends:
            if budget < len(text) - start:
                return len(text)
            budget -= len(text) - start
            ends.update(_value_ends(text, starts, n))
        end = ends[start]
        if end is None:
            continue
        line_end = text.find(b"\n", end)
        if text[end : len(text) if line_end < 0 else line_end].strip(_WHITESPACE):
            continue
        budget -= end - start
        if budget < 0:
            return len(text)
        if _parse(view[start:end])[1]:
            return start
    return len(text)


_SEARCH_WORK: Final = 32
"""How many times its length `_next_document` may scan and parse of a text before giving up."""


def _value_ends(text: bytes, starts: list[int], first: int) -> dict[int, int | None]:
    """`spans.value_end(text, s)` for `starts[first]` and each later start the same scan reaches.

    A scan from one start tokenizes the text as a scan from any later start would, from each token
    it begins there on: so one pass over the tokens, pairing each closing bracket with the latest
    opening one (brackets are counted, as `value_end` counts them), ends every candidate that opens
    a token. A start inside a string of this scan (a string broken across lines) is left out: its
    own scan reads the text differently.
    """
    wanted = set(starts[first:])
    ends: dict[int, int | None] = {}
    opened: list[int] = []  # the start of each open bracket's value, -1 where no candidate opens it
    for match in spans.TOKEN.finditer(text, starts[first]):
        at = match.start()
        byte = text[at]
        if byte == 0x22:
            if match.end() >= len(text):
                break  # a string open to the end: no value open here ever ends
        elif byte in _OPEN:
            opened.append(at if at in wanted else -1)
        elif opened:
            start = opened.pop()
            if start >= 0:
                ends[start] = match.end()
    for start in opened:
        if start >= 0:
            ends[start] = None
    return ends


def _lines(text: bytes) -> bytes:
    """`text` without the blank lines and the newline it ends with (as a bad JSON line is kept)."""
    content = len(text.rstrip(_WHITESPACE))
    newline = text.find(b"\n", content)
    return text if newline < 0 else text[:newline]


def _failure(ref: str, raw: bytes) -> Document:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Document(ref, raw, error=f"not valid UTF-8 (byte {bad.start})")
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
    else:
        message = "not one JSON document"
    if "recursion" in message.lower() or "depth limit" in message.lower():
        return Document(ref, raw, error="JSON nested too deeply")
    return Document(ref, raw, error=f"invalid JSON: {message}")
