"""Find a value's own bytes inside a JSON text, without parsing it into Python objects.

Dead letters keep the exact input bytes of what failed: an element of an array keeps its slice
of the delivery (duplicate keys, `1.50` and `\\u00e9` as sent), not a re-serialization of what the
parser made of it. The scans are linear and run only when those bytes are asked for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import orjson

# A string or one structural character. A string's body is runs of plain bytes between escapes
# (`[^"\\]*+(?:\\.[^"\\]*+)*+`), not one alternation per byte: the same strings, about 4x faster.
# The quantifiers are possessive: a body can be read only one way, so there is nothing to backtrack
# into, and without them the regex engine keeps about 120 bytes for every escape in case it must
# (half a gigabyte for a string of 8 MiB of `\"`). A string that reaches the end of the text may be
# cut off there, even if its last byte is a quote (an escaped one) or a backslash; the scans take it
# as unfinished, and a complete value is always followed by something (or padded with a space, as
# `locate` does).
TOKEN: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
# The rest of a string's body from inside it, as TOKEN reads it: what follows is its closing quote,
# a backslash the text ends on (an escape cut in two), or the end of the text.
STRING_BODY: Final = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
_SPACE: Final = re.compile(rb"[ \t\r\n]*")
_SCALAR: Final = re.compile(rb"[^ \t\r\n,:\]}\[{\"]*")
_OPEN: Final = frozenset(b"[{")
# A complete string or one structural character, commas included: they end an array's elements.
_STRUCTURE: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{},]', re.DOTALL)
_WHITESPACE: Final = b" \t\r\n"


def skip_space(text: bytes | bytearray, pos: int) -> int:
    """Return the position of the first byte at or after `pos` that is not JSON whitespace."""
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def value_end(text: bytes | bytearray, start: int) -> int | None:
    """Return the end of the JSON value starting at `start`, or None when `text` stops inside it.

    Brackets are counted, not matched: a `[` closed by `}` is found by the parser afterwards.

    Example:
        >>> value_end(b'{"a": [1, "]"]} tail', 0)
        15
    """
    if start >= len(text):
        return None
    first = text[start]
    if first == 0x22:  # a string
        match = TOKEN.match(text, start)
        return match.end() if match and match.end() < len(text) else None
    if first not in _OPEN:
        end = _SCALAR.match(text, start)
        stop = end.end() if end else start
        return stop if stop > start and stop < len(text) else None
    depth = 0
    for match in TOKEN.finditer(text, start):
        byte = text[match.start()]  # not `match.group()`, which would copy every string
        if byte == 0x22:
            if match.end() >= len(text):
                return None  # a string that may be cut off
            continue
        depth += 1 if byte in _OPEN else -1
        if depth == 0:
            return match.end()
    return None


def locate(text: bytes, path: Sequence[str | int]) -> bytes | None:
    """Return the bytes of the value at `path` in the JSON `text`, or None when it is not there.

    For a key given twice the last one counts, as it does for the parser.

    Example:
        >>> locate(b'{"Records": [{"a": 1.50}, {"b": "\\\\u00e9"}]}', ("Records", 1))
        b'{"b": "\\\\u00e9"}'
    """
    start = skip_space(text, 0)
    if text.startswith(b"\xef\xbb\xbf", start):
        start = skip_space(text, start + 3)
    for step in path:
        found = _member(text, start, step)
        if found is None:
            return None
        start = found
    end = value_end(text + b" ", start)
    return text[start:end] if end is not None else None


def elements(text: bytes) -> list[bytes] | None:
    """Return the bytes of each element of the JSON array `text` in one pass, or None if it is not one.

    Meant for a text the parser accepted: the same slices as `locate(text, (i,))` for every `i`,
    without scanning the array again for each of them.

    Example:
        >>> elements(b'[{"a": [1, ","]}, 1.50 ,"x"]')
        [b'{"a": [1, ","]}', b'1.50', b'"x"']
    """
    start = skip_space(text, 0)
    if start >= len(text) or text[start] != 0x5B:
        return None
    pieces: list[bytes] = []
    depth, begin = 0, start + 1
    for match in _STRUCTURE.finditer(text, start):
        token = text[match.start()]
        if token == 0x22:
            continue
        if token in _OPEN:
            depth += 1
        elif token == 0x2C:
            if depth == 1:
                pieces.append(text[begin : match.start()].strip(_WHITESPACE))
                begin = match.end()
        else:
            depth -= 1
            if depth == 0:
                last = text[begin : match.start()].strip(_WHITESPACE)
                return [*pieces, last] if last or pieces else pieces
    return None


def _member(text: bytes, start: int, step: str | int) -> int | None:
    """Return where the member `step` of the container at `start` begins, or None."""
    opener = 0x7B if isinstance(step, str) else 0x5B
    if start >= len(text) or text[start] != opener:
        return None
    pos = skip_space(text, start + 1)
    index, found = 0, None
    while pos < len(text) and text[pos] not in b"]}":
        if isinstance(step, str):
            key_end = value_end(text, pos)
            if key_end is None:
                return None
            colon = skip_space(text, key_end)
            if colon >= len(text) or text[colon] != 0x3A:
                return None
            value = skip_space(text, colon + 1)
            if _key(text[pos:key_end]) == step:
                found = value  # keep looking: the last of duplicate keys wins
        else:
            value = pos
            if index == step:
                return value
            index += 1
        end = value_end(text + b" ", value)
        if end is None:
            return None
        pos = skip_space(text, end)
        if pos < len(text) and text[pos] == 0x2C:
            pos = skip_space(text, pos + 1)
    return found


def _key(token: bytes) -> str | None:
    try:
        key = orjson.loads(token)
    except orjson.JSONDecodeError:
        return None
    return key if isinstance(key, str) else None
