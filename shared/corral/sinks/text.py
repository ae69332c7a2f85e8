"""Cutting text to a platform's limit without breaking a character, and telling the reader so; times as text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

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


def finding_link(public_url: str | None, finding: Mapping[str, Any]) -> str | None:
    """Return the finding's page on Corral's dashboard under `public_url`, or None without one.

    The id is Corral's own (hex digits of a hash), so the link carries no text from the finding.

    Example:
        >>> f = {"metadata": {"product": {"uid": "aws.guardduty"}}, "cloud": {"account": {"uid": "1"}},
        ...      "finding_info": {"uid": "f1"}}
        >>> finding_link("https://corral.example/", f)
        'https://corral.example/findings/3f524cdc07a14ae6cf28'
    """
    if not public_url:
        return None
    # Imported here: the store contract is loaded by the sinks that link, not by every text helper.
    from corral import ocsf  # noqa: PLC0415
    from corral.stores.base import finding_id  # noqa: PLC0415

    return f"{public_url.rstrip('/')}/findings/{finding_id(ocsf.identity(finding))}"
