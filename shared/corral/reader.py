"""Read deliveries from files, folders and stdin, streaming, one JSON document at a time.

A file holds one JSON document, a JSON array (each element a document), or JSON lines. Any single
document or line over 8 MiB is rejected without being held in memory, so a large JSON-lines file
streams in constant memory. Documents are counted from 1 for messages (`PATH#N`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Final

import orjson

MAX_DOCUMENT: Final = 8 * 1024 * 1024
_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    """One document read from an input: parsed, or the reason it could not be."""

    ref: str
    raw: bytes
    parsed: object = None
    error: str | None = None
    received_time: int | None = None
    """When the input was written (a file's mtime, epoch ms): stands in for records without a time."""


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Yield files to read: folders searched recursively (sorted), `-` for stdin."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            yield from (str(p) for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
        else:
            yield name


def read(name: str) -> Iterator[Document]:
    """Yield the documents of one input (`-` is stdin); an unreadable file gives one error."""
    if name == "-":
        yield from read_stream(sys.stdin.buffer, "-")
        return
    try:
        with Path(name).open("rb") as stream:
            written = os.fstat(stream.fileno()).st_mtime_ns // 1_000_000
            for document in read_stream(stream, name):
                yield replace(document, received_time=written)
    except OSError as exc:
        yield Document(f"{name}#0", b"", error=f"cannot read: {exc.strerror or exc}")


def read_stream(stream: IO[bytes], name: str) -> Iterator[Document]:
    """Yield the documents of an open binary stream."""
    head = stream.read(MAX_DOCUMENT + 1)
    if len(head) <= MAX_DOCUMENT and head.strip():
        try:
            whole = orjson.loads(head)
        except orjson.JSONDecodeError as exc:
            if not _first_line_is_json(head):
                yield _failure(f"{name}#1", head, exc)
                return
        else:
            yield from _whole(whole, head, name)
            return
    elif not head.strip():
        return
    elif not _first_line_is_json(head):
        yield Document(f"{name}#1", head[:_CHUNK], error="document is over 8 MiB (use JSON lines for large inputs)")
        return
    yield from _lines(head, stream, name)


def _whole(whole: object, raw: bytes, name: str) -> Iterator[Document]:
    if isinstance(whole, list):
        for n, element in enumerate(whole, start=1):
            yield Document(f"{name}#{n}", orjson.dumps(element), parsed=element)
    else:
        yield Document(f"{name}#1", raw, parsed=whole)


def _first_line_is_json(head: bytes) -> bool:
    end = head.find(b"\n")
    if end < 0:
        return False
    try:
        orjson.loads(head[:end])
    except orjson.JSONDecodeError:
        return False
    return True


def _lines(head: bytes, stream: IO[bytes], name: str) -> Iterator[Document]:
    n = 0
    for line, too_long in _split_lines(head, stream):
        if not line.strip() and not too_long:
            continue
        n += 1
        ref = f"{name}#{n}"
        if too_long:
            yield Document(ref, line[:_CHUNK], error="line is over 8 MiB")
            continue
        try:
            yield Document(ref, line, parsed=orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield _failure(ref, line, exc)


def _split_lines(head: bytes, stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Yield (line, too_long); a too-long line is reported with its start only, never held whole.

    Chunks are scanned in place through memoryviews and each line is copied once, so the cost is
    linear in the input and memory stays within one 8 MiB window plus one line.
    """
    pieces: list[memoryview | bytes] = []
    size = 0
    chunk = head
    while chunk:
        view = memoryview(chunk)
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            piece = view[start:newline]
            start = newline + 1
            if size > MAX_DOCUMENT:
                yield bytes(pieces[0]), True
            else:
                line = b"".join((*pieces, piece))
                yield line, len(line) > MAX_DOCUMENT
            pieces, size = [], 0
        rest = view[start:]
        if size <= MAX_DOCUMENT:
            pieces.append(rest)
            size += len(rest)
            if size > MAX_DOCUMENT:
                pieces = [bytes(pieces[0][:_CHUNK])]  # keep only the start, for the dead letter
        else:
            size += len(rest)
        chunk = stream.read(_CHUNK)
    if size > MAX_DOCUMENT:
        yield bytes(pieces[0]), True
    elif size:
        yield b"".join(pieces), False


def _failure(ref: str, raw: bytes, exc: orjson.JSONDecodeError) -> Document:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Document(ref, raw, error=f"not valid UTF-8 (byte {bad.start})")
    message = str(exc)
    if "recursion" in message.lower() or "depth limit" in message.lower():
        return Document(ref, raw, error="JSON nested too deeply")
    return Document(ref, raw, error=f"invalid JSON: {message}")
