"""Corral's limits: the encoder that checks them while serializing agrees with the exact walk."""

from __future__ import annotations

import orjson
import pytest

from corral import limits


def nested(levels: int, *, objects: bool = False) -> object:
    """A scalar inside `levels` arrays (or objects)."""
    value: object = 1
    for _ in range(levels):
        value = {"k": value} if objects else [value]
    return value


@pytest.mark.parametrize("objects", [False, True])
@pytest.mark.parametrize("levels", [1, 95, 96, 97, 158, 254, 255, 400])
def test_the_encoder_refuses_exactly_what_is_nested_too_deeply(levels: int, objects: bool) -> None:
    """At the limit the value is serialized as orjson would; one level more is refused with the walk's reason."""
    value = {"unmapped": nested(levels - 1, objects=objects)}
    document, reason = limits.Encoder().encode(value)
    assert reason == limits.violation(value)
    if levels <= limits.MAX_FINDING_DEPTH:
        assert (document, reason) == (orjson.dumps(value), None)
    else:
        assert document is None
        assert reason is not None
        assert f"nested more than {limits.MAX_FINDING_DEPTH} levels deep at unmapped" in reason


@pytest.mark.parametrize("value", [2**53 - 1, 2**53, 2**63 - 1, -(2**63), -(2**53), 0, True, 1e300])
def test_integers_within_64_bits_are_serialized(value: object) -> None:
    """Integers between 53 and 64 bits, which orjson's strict check refuses, are within Corral's limits."""
    assert limits.Encoder().encode({"a": [value]}) == (orjson.dumps({"a": [value]}), None)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_refused_naming_the_place(value: int) -> None:
    """Even those orjson would write (up to 2**64 - 1): the stores keep signed 64-bit integers."""
    document, reason = limits.Encoder().encode({"a": {"b": [0, value]}})
    assert document is None
    assert reason is not None
    assert reason.endswith("at a.b[1] is outside the 64-bit range")


def test_what_orjson_cannot_serialize_otherwise_is_left_to_the_store() -> None:
    """Not a limit: no document and no reason, so the store meets (and reports) the error itself."""
    assert limits.Encoder().encode({"a": object()}) == (None, None)


def test_one_encoder_serves_many_values() -> None:
    """The padding is reused: a refused value leaves nothing behind for the next."""
    encoder = limits.Encoder(max_depth=3)
    assert encoder.encode(nested(4))[0] is None
    assert encoder.encode({"x": [1]}) == (b'{"x":[1]}', None)
