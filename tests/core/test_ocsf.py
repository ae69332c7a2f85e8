"""OCSF helpers: timestamps in every shape the clouds send, pruning, and the finding envelope."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral import ocsf
from corral.errors import MalformedEventError

MOMENT = dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)
MS = int(MOMENT.timestamp() * 1000)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02T03:04:05.123Z",
        "2024-01-02T03:04:05.123z",
        "2024-01-02T03:04:05.123+00:00",
        "2024-01-02T03:04:05.123+0000",
        "2024-01-02T05:04:05.123+02:00",
        "2024-01-02T05:04:05.123+0200",
        "2024-01-01T22:04:05.123-0500",
        "2024-01-02T03:04:05.123456789Z",
        "2024-01-02T03:04:05.1239Z",
        "2024-01-02T03:04:05.123",
        " 2024-01-02T03:04:05.123Z ",
        MS,
        MS / 1000,
        float(MS),
    ],
)
def test_timestamp_shapes(value: object) -> None:
    """ISO 8601 (Z, offsets with or without colon, nanoseconds, naive as UTC) and epoch s or ms agree."""
    assert ocsf.timestamp_ms(value) == MS


@given(st.integers(min_value=0, max_value=10**13 - 1))
def test_epoch_seconds_and_milliseconds_are_told_apart(millis: int) -> None:
    """A number below 1e11 is seconds, otherwise milliseconds."""
    expected = millis * 1000 if millis < 1e11 else millis
    if expected >= 1e13:
        with pytest.raises(MalformedEventError, match="out of range"):
            ocsf.timestamp_ms(millis)
    else:
        assert ocsf.timestamp_ms(millis) == expected


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)))
def test_iso_round_trip(moment: dt.datetime) -> None:
    """Any UTC moment written in ISO 8601 reads back as its epoch milliseconds."""
    expected = int(moment.timestamp() * 1000)
    assert ocsf.timestamp_ms(moment.isoformat()) == expected
    assert ocsf.timestamp_ms(moment.isoformat().replace("+00:00", "Z")) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "not a time"),
        (-1, "not a time"),
        (float("nan"), "not a time"),
        (float("inf"), "not a time"),
        (10**13, "out of range"),
        ("yesterday", "not an ISO 8601 time"),
        ("2024-13-01T00:00:00Z", "not an ISO 8601 time"),
        ("", "missing"),
        (None, "missing"),
        ([2024], "missing"),
        ({"seconds": 1}, "missing"),
    ],
)
def test_timestamp_errors(value: object, words: str) -> None:
    """Anything else is a MalformedEventError naming the field."""
    with pytest.raises(MalformedEventError, match=words) as raised:
        ocsf.timestamp_ms(value, "finding.createdAt")
    assert "finding.createdAt" in str(raised.value)


@pytest.mark.parametrize("value", [None, ""])
def test_optional_timestamp(value: object) -> None:
    """A missing or empty optional time is None; a present one is converted."""
    assert ocsf.optional_timestamp_ms(value) is None
    assert ocsf.optional_timestamp_ms(MS) == MS


def test_prune_example() -> None:
    """Nulls, empty strings and empty containers go, recursively; zero and False stay."""
    doc = {"a": None, "b": "", "c": [{}], "d": {"e": 0, "f": False}, "g": [None, "", [], "x", {"h": {}}]}
    assert ocsf.prune(doc) == {"d": {"e": 0, "f": False}, "g": ["x"]}


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, dict | list) and not value)


def _no_empties(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not _empty(v) and _no_empties(v) for v in value.values())
    if isinstance(value, list):
        return all(not _empty(v) and _no_empties(v) for v in value)
    return True


def _reference_prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _reference_prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if not _empty(v)}
    if isinstance(value, list):
        pruned_items = [_reference_prune(v) for v in value]
        return [v for v in pruned_items if not _empty(v)]
    return value


JSONISH = st.recursive(
    st.none() | st.just("") | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=4),
    max_leaves=25,
)


@given(JSONISH)
def test_prune_property(doc: Any) -> None:
    """Pruning leaves no empty value anywhere, equals the obvious recursive definition, and is idempotent."""
    pruned = ocsf.prune(doc)
    assert pruned == _reference_prune(doc)
    assert _no_empties(pruned)
    assert ocsf.prune(pruned) == pruned


@pytest.mark.parametrize("class_uid", sorted(ocsf.CLASS_NAMES))
@pytest.mark.parametrize("activity_id", [ocsf.CREATE, ocsf.UPDATE, ocsf.CLOSE])
def test_envelope_captions_and_type_uid(class_uid: int, activity_id: int) -> None:
    """The envelope carries the class, activity and type captions and type_uid = class_uid * 100 + activity."""
    doc = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity_id,
        time=MS,
        severity_id=4,
        status_id=ocsf.STATUS_NEW,
        product={"uid": "aws.guardduty", "name": "GuardDuty"},
        delivery_id="evt-1",
        log_name="findings",
    )
    class_name, activity_name = ocsf.CLASS_NAMES[class_uid], ocsf.ACTIVITY_NAMES[activity_id]
    assert (doc["category_uid"], doc["category_name"]) == (2, "Findings")
    assert (doc["class_uid"], doc["class_name"]) == (class_uid, class_name)
    assert (doc["activity_id"], doc["activity_name"]) == (activity_id, activity_name)
    assert doc["type_uid"] == class_uid * 100 + activity_id
    assert doc["type_name"] == f"{class_name}: {activity_name}"
    assert (doc["severity_id"], doc["severity"]) == (4, ocsf.SEVERITY_NAMES[4])
    assert (doc["status_id"], doc["status"]) == (ocsf.STATUS_NEW, ocsf.STATUS_NAMES[ocsf.STATUS_NEW])
    assert doc["time"] == MS
    assert doc["metadata"] == {
        "version": ocsf.VERSION,
        "profiles": list(ocsf.PROFILES),
        "product": {"uid": "aws.guardduty", "name": "GuardDuty"},
        "uid": "evt-1",
        "log_name": "findings",
    }


def test_envelope_without_delivery_id_or_log_name() -> None:
    """Without a delivery id or log name, metadata has neither key."""
    doc = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=ocsf.CREATE,
        time=MS,
        severity_id=99,
        vendor_severity="Sev-A",
        status_id=ocsf.STATUS_NEW,
        product={"uid": "p"},
        delivery_id=None,
    )
    assert "uid" not in doc["metadata"]
    assert "log_name" not in doc["metadata"]
    assert (doc["severity_id"], doc["severity"]) == (99, "Sev-A")


@given(JSONISH)
def test_shared_prune_equals_prune_and_shares_what_needs_no_pruning(doc: Any) -> None:
    """`shared_prune` gives what `prune` gives; a container with nothing to drop comes back as itself."""
    shared = ocsf.shared_prune(doc)
    assert shared == ocsf.prune(doc)
    clean = isinstance(doc, dict | list) and ocsf.prune(doc) == doc and bool(doc)
    assert ocsf.is_pruned(doc) is clean if isinstance(doc, dict | list) else True
    assert (shared is doc) is (clean or not isinstance(doc, dict | list))


def test_shared_prune_copies_only_what_changes() -> None:
    """The clean parts of a pruned copy are the very objects of the input; the input is not changed."""
    clean = {"x": [1, {"y": "z"}]}
    doc = {"clean": clean, "dirty": {"a": None, "b": [""], "c": 1}}
    pruned = ocsf.shared_prune(doc)
    assert pruned == {"clean": clean, "dirty": {"c": 1}}
    assert pruned["clean"] is clean
    assert doc["dirty"] == {"a": None, "b": [""], "c": 1}


def test_cloud_account_without_extra_fields_or_uid() -> None:
    """The account object leaves out an empty uid, and extra account fields are pruned as before."""
    assert ocsf.cloud("AWS", "123", "us-east-1") == {
        "provider": "AWS",
        "account": {"uid": "123", "type_id": 10, "type": "AWS Account"},
        "region": "us-east-1",
    }
    assert ocsf.cloud("GCP", "")["account"] == {"type_id": 11, "type": "GCP Project"}
    assert ocsf.cloud("Azure", "s", name=None)["account"] == {"uid": "s", "type_id": 13, "type": "Azure Subscription"}
    assert ocsf.cloud("Azure", "s", name="n")["account"]["name"] == "n"
