"""`epoch_ms` reads the common ISO 8601 shape by arithmetic: it must agree with `datetime` exactly."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.errors import MalformedEventError
from corral.sources._core.times import epoch_ms

_MIN_MS = 10**12
_MAX_MS = 10**13
_FRACTION = re.compile(r"\.(\d+)")


def _reference(value: object, field: str = "time") -> int:
    """`epoch_ms` as it was before the arithmetic path: every string through `datetime`."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            text = value.strip()
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise MalformedEventError("not ISO") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            millis = int(parsed.timestamp() * 1000)
        except (OverflowError, ValueError):
            raise MalformedEventError("range") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise MalformedEventError("not a time")
        if value < 1e11:
            millis = int(value * 1000)
        elif value < 1e14:
            millis = int(value)
        elif value < 1e17:
            millis = int(value // 1000)
        else:
            millis = int(value // 1_000_000)
    else:
        raise MalformedEventError("not a time")
    if not _MIN_MS <= millis < _MAX_MS:
        raise MalformedEventError("range")
    return millis


def _outcome(value: object) -> object:
    try:
        return _reference(value)
    except MalformedEventError:
        return MalformedEventError


def _actual(value: object) -> object:
    try:
        return epoch_ms(value)
    except MalformedEventError:
        return MalformedEventError


def _digits(width: int, top: int) -> st.SearchStrategy[str]:
    return st.integers(0, top).map(lambda n: str(n).zfill(width))


_FRACTIONS = st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=12).map(lambda d: "." + d))
_ZONES = st.one_of(
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+0000", "+02", " "]),
    st.tuples(st.sampled_from("+-"), _digits(2, 30), _digits(2, 70)).map(lambda t: f"{t[0]}{t[1]}:{t[2]}"),
)
_ISO = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.one_of(_digits(4, 9999), st.sampled_from(["2000", "2001", "2024", "2100", "2286", "1900", "0001"])),
    _digits(2, 13),
    _digits(2, 32),
    st.sampled_from("T T"),
    _digits(2, 25),
    _digits(2, 61),
    _digits(2, 61),
    _FRACTIONS,
    _ZONES,
)


@settings(max_examples=3000, deadline=None)
@given(_ISO)
@example("2024-02-29T23:59:59.999999999Z")
@example("2023-02-29T00:00:00Z")
@example("2001-09-09T01:46:40Z")
@example("2001-09-09T01:46:39.999Z")
@example("2286-11-20T17:46:40Z")
@example("2286-11-20T17:46:39.999999+00:00")
@example("2286-11-21T17:46:39+23:59")
@example("0001-01-01T00:00:00+23:59")
@example("9999-12-31T23:59:59.999999-23:59")
@example("2024-05-31T09:22:38.123Z")
@example("2024-05-31T24:00:00Z")
@example("2024-05-31T23:59:60Z")
def test_iso_agrees_with_datetime(value: str) -> None:
    assert _actual(value) == _outcome(value)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789-T:.Z+ z,٣²"), max_size=40))
def test_any_text_agrees_with_datetime(value: str) -> None:
    assert _actual(value) == _outcome(value)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(1e12, 1e13),
        st.floats(1e9, 1e10),
    )
)
def test_numbers_agree(value: float) -> None:
    assert _actual(value) == _outcome(value)


@pytest.mark.parametrize("value", [True, False, None, "", [], {}, b"2024"])
def test_non_times_raise(value: object) -> None:
    with pytest.raises(MalformedEventError):
        epoch_ms(value)


def test_str_subclass_still_reads() -> None:
    class Text(str):
        pass

    assert epoch_ms(Text("2024-05-31T09:22:38.76+00:00")) == 1717147358760
