"""The one time parser of every source: vendor times in, OCSF epoch milliseconds out.

Vendors send epoch numbers in seconds, milliseconds, microseconds or nanoseconds (sometimes
within one product: GuardDuty's Runtime Protection health events use microseconds), and ISO 8601
text with `Z` or any offset and up to nine fraction digits. Numbers are told apart by magnitude,
which is unambiguous inside the plausible range: 1e11 s is the year 5138, 1e14 ms is 5138 too.

One plausibility range, one behaviour outside it: a time before 2001-09-09 (1e12 ms, which also
rejects counts and epoch 0) or from 2286 on (1e13 ms) raises `MalformedEventError`, as does
anything that is not a time. A source decides per field whether that fails the document (its
own time) or leaves the field in `unmapped` as sent (`optional_ms`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from corral.errors import MalformedEventError

MIN_MS: Final = 10**12
"""2001-09-09: earlier "times" are counts, zeros or a unit mistaken."""
MAX_MS: Final = 10**13
"""2286-11-20."""

# Upper bounds of each unit's magnitude, checked in order; nanoseconds above.
_SECONDS_BELOW: Final = 1e11
_MILLIS_BELOW: Final = 1e14
_MICROS_BELOW: Final = 1e17

_FRACTION: Final = re.compile(r"\.(\d+)")

# Naive times are read as UTC. `timestamp()` of an aware time is its exact microseconds since the
# epoch divided by 10**6 as one correctly rounded float; dividing a naive difference to the epoch
# by one second is that same division, without building an aware copy first.
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_SECOND: Final = timedelta(seconds=1)


def epoch_ms(value: object, field: str = "time") -> int:
    """Return epoch milliseconds for an epoch number of any unit or an ISO 8601 string.

    Raises:
        MalformedEventError: not a time, or outside the plausible range.

    Example:
        >>> [epoch_ms(v) for v in (1717147358, 1717147358760, 1717147358760000, "2024-05-31T09:22:38.76+00:00")]
        [1717147358000, 1717147358760, 1717147358760, 1717147358760]
    """
    # Exact types first: `isinstance` against a union costs more than the parse of a number.
    kind = type(value)
    if kind is str or kind is int or kind is float:
        millis = _iso_ms(value, field) if kind is str else _number_ms(value, field)  # type: ignore[arg-type]
    elif isinstance(value, str):
        millis = _iso_ms(value, field)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        millis = _number_ms(value, field)
    elif value is None or value == "":
        raise MalformedEventError(f"{field} is missing or not a time")
    else:
        raise MalformedEventError(f"{field} is not a time: {repr(value)[:64]}")
    if not MIN_MS <= millis < MAX_MS:
        raise MalformedEventError(f"{field} is out of range: {repr(value)[:64]}")
    return millis


def optional_ms(value: object, field: str = "time") -> int | None:
    """Like `epoch_ms`, but None for a missing, empty, malformed or implausible value."""
    if value is None or value == "":
        return None
    try:
        return epoch_ms(value, field)
    except MalformedEventError:
        return None


def _number_ms(value: float, field: str) -> int:
    if not math.isfinite(value) or value < 0:
        raise MalformedEventError(f"{field} is not a time: {value!r}")
    if value < _SECONDS_BELOW:
        return int(value * 1000)
    if value < _MILLIS_BELOW:
        return int(value)
    if value < _MICROS_BELOW:
        return int(value // 1000)
    return int(value // 1_000_000)


def _iso_ms(value: str, field: str) -> int:
    try:
        # Python 3.11 reads `Z`, any offset and any number of fraction digits (keeping six).
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _lenient_iso(value, field)
    try:
        if parsed.tzinfo is None:
            return int((parsed - _NAIVE_EPOCH) / _SECOND * 1000)
        return int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError):
        raise MalformedEventError(f"{field} is out of range: {value[:64]!r}") from None


# Text times some vendors send instead of ISO 8601, all in UTC. Amazon Inspector's EventBridge
# findings have carried both: "Mar 20, 2023, 6:08:05 PM", then "Thu Jun 20 01:47:55.779 UTC 2024".
_TEXT_FORMATS: Final = ("%b %d, %Y, %I:%M:%S %p", "%a %b %d %H:%M:%S.%f UTC %Y", "%a %b %d %H:%M:%S UTC %Y")


def _lenient_iso(value: str, field: str) -> datetime:
    """What `fromisoformat` refuses as sent: surrounding blanks, a lower-case `z`, and `_TEXT_FORMATS` (UTC)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for form in _TEXT_FORMATS:
        try:
            return datetime.strptime(value.strip(), form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise MalformedEventError(f"{field} is not an ISO 8601 time: {value[:64]!r}") from None
