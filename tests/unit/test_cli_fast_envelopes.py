"""The short ways through unwrapping and detection answer exactly as the long ways do.

`envelopes.single` (one bare document or one EventBridge event, no generators), the plain-UTC
reading of wrapper times, and detection's candidates by key sequence are held to `unwrap`,
`ocsf.optional_timestamp_ms` and asking every cued module, on every fixture and on generated input.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core import DELIVERIES, JSON

from corral import envelopes, ocsf, sources
from corral.errors import MalformedEventError
from corral.records import Item

EVENTS = Path(__file__).resolve().parents[1] / "events"
SAMPLES = EVENTS.parents[2] / "shared" / "samples"  # published samples, when next to the checkout


def _fixtures() -> Iterator[object]:
    for root in (EVENTS, SAMPLES):
        for path in sorted(root.rglob("*.json")):
            try:
                yield orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                continue


FIXTURES = list(_fixtures())


def _same(one: Item | None, doc: object, **where: Any) -> None:
    if one is None:
        return
    found = list(envelopes.unwrap(doc, **where))
    assert found == [one]
    assert found[0].doc is one.doc
    if one.envelope is not None:
        assert found[0].envelope is not None and found[0].envelope.event is one.envelope.event


def test_single_is_what_unwrap_yields_for_every_fixture() -> None:
    answered = 0
    for doc in FIXTURES:
        for element in doc if isinstance(doc, list) else [doc]:
            one = envelopes.single(element, "here", "delivery", body=b"{}", received_time=7, sequence=3)
            _same(one, element, where="here", delivery_id="delivery", body=b"{}", received_time=7, sequence=3)
            answered += one is not None
    assert answered > len(FIXTURES) // 2  # the common shapes do take the short way


def _eventbridge(detail: object, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": "e", "detail-type": "T", "source": "aws.x", "time": "2025-05-01T10:00:00Z", "detail": detail, **extra}


EXTRA_KEYS = st.sampled_from(["Records", "Type", "region", "account", "message", "data", "x"])
EVENTS_AROUND = st.builds(
    _eventbridge, JSON | st.dictionaries(st.text(max_size=3), JSON), st.dictionaries(EXTRA_KEYS, JSON)
)


@settings(max_examples=400, deadline=None)
@given(DELIVERIES | JSON.map(lambda v: {"detail": v}) | EVENTS_AROUND)
def test_single_is_what_unwrap_yields_for_generated_deliveries(doc: object) -> None:
    _same(envelopes.single(doc), doc)
    _same(envelopes.single(doc, "w", "d", received_time=5), doc, where="w", delivery_id="d", received_time=5)


def _reference_time(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    try:
        return ocsf.optional_timestamp_ms(value, "time")
    except (MalformedEventError, ValueError, OverflowError, TypeError):
        return None


PLAIN_TIMES = st.builds(
    lambda day, fraction, tail: day + fraction + tail,
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    st.sampled_from(["", "."]) | st.text("0123456789", min_size=1, max_size=12).map(lambda d: "." + d),
    st.sampled_from(["Z", "z", "+00:00", " Z", "Z "]),
)


@settings(max_examples=600, deadline=None)
@given(PLAIN_TIMES | PLAIN_TIMES.map(lambda t: t.replace("-", "/", 1)) | st.text(max_size=30) | JSON)
def test_wrapper_times_read_as_ocsf_reads_them(value: object) -> None:
    assert envelopes._time(value, "time") == _reference_time(value)


@pytest.mark.parametrize("value", ["²", "١٢٣", "𝟙𝟚"])
def test_digits_int_refuses_are_no_time(value: str) -> None:
    """Characters isdigit() accepts and int() refuses (superscripts, other scripts' digits) are no time, not a crash."""
    assert envelopes._time(value, "time") is None


def _asking_every_cued_module(doc: dict[str, Any]) -> object:
    keys = {k.lower() for k in doc if isinstance(k, str)}
    for module in sources.SOURCES.values():
        cues = sources._CUES.get(getattr(module, "__name__", ""))
        if (cues is None or not cues.isdisjoint(keys)) and module.recognizes(doc):
            return module
    return None


def test_detection_by_key_sequence_answers_as_asking_every_cued_module() -> None:
    objects = [d for doc in FIXTURES for d in (doc if isinstance(doc, list) else [doc]) if isinstance(d, dict)]
    objects += [d["detail"] for d in objects if isinstance(d.get("detail"), dict)]
    for doc in objects * 2:  # the second time from the table
        assert sources.detect(doc) is _asking_every_cued_module(doc)


def test_a_changed_registry_is_seen_by_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"fake": 1, "name": "x"}
    assert sources.detect(doc) is None
    fake = types.ModuleType("fake")
    fake.recognizes = lambda d: "fake" in d  # type: ignore[attr-defined]
    monkeypatch.setitem(sources.SOURCES, "test.fake", fake)
    assert sources.detect(doc) is fake
    monkeypatch.undo()
    assert sources.detect(doc) is None
