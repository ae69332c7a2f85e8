"""Cutting text to a platform's limit without breaking a character, and telling the reader so; times as text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MARKER: Final = "…[truncated]"


def cut_chars(text: str, limit: int, marker: str = MARKER) -> str:
    """Return `text` within `limit` characters; a cut text ends with `marker`.

    Example:
        >>> cut_chars("abcdef", 4, "~")
        'abc~'
    """
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(marker))
    return text[:keep] + marker[: max(0, limit - keep)]


def cut_bytes(text: str, limit: int, marker: str = MARKER, encoding: str = "utf-8") -> str:
    """Return `text` whose encoding fits `limit` bytes, cut on a character boundary.

    Example:
        >>> cut_bytes("ééé", 5, "~")
        'éé~'
    """
    raw = text.encode(encoding)
    if len(raw) <= limit:
        return text
    room = max(0, limit - len(marker.encode(encoding)))
    # errors="ignore" drops the partial character left by a cut in the middle of a sequence.
    return raw[:room].decode(encoding, errors="ignore") + marker


def iso_ms(millis: int) -> str:
    """Return epoch milliseconds as an ISO 8601 UTC time with milliseconds.

    Example:
        >>> iso_ms(1704164645123)
        '2024-01-02T03:04:05.123Z'
    """
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
