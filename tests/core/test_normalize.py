"""Normalizing deliveries: unknown documents, skips, health signals, findings and their source."""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import ocsf, sources
from corral.errors import MalformedEventError
from corral.normalize import normalize
from corral.records import HealthSignal, Outcome, Skip
from tests.core import DELIVERIES, JSON
from tests.stores.factory import make_finding

EVENTS = Path(__file__).resolve().parents[1] / "events"
FIXTURES = sorted(EVENTS.rglob("*.json"))


def event(relative: str) -> Any:
    """Return a stored sample event."""
    return orjson.loads((EVENTS / relative).read_bytes())


@pytest.mark.parametrize("doc", [{"hello": "world"}, {f"k{n}": n for n in range(12)}, {}])
def test_unknown_document_is_an_error_naming_its_keys(doc: dict[str, Any]) -> None:
    """A document no source recognizes is an error listing (at most 8 of) its keys, sorted."""
    [outcome] = list(normalize(doc))
    keys = ", ".join(sorted(doc)[:8]) or "none"
    assert outcome.failed
    assert outcome.error == f"no source recognizes this document (keys: {keys})"
    assert outcome.raw == doc
    assert outcome.finding is None


def test_skipped_document() -> None:
    """A recognized document that is not a finding (a CloudTrail event) is a skip with a reason."""
    [outcome] = list(normalize(event("aws/guardduty/cloudtrail-api-call-negative.json")))
    assert outcome.skipped
    assert outcome.source == "aws.guardduty"
    assert not outcome.failed
    assert outcome.finding is None


def test_health_signal() -> None:
    """A Runtime Protection health event is a health signal for its source."""
    [outcome] = list(normalize(event("aws/guardduty/runtime-protection-unhealthy-eks.json")))
    assert isinstance(outcome.signal, HealthSignal)
    assert outcome.signal.healthy is False
    assert outcome.source == "aws.guardduty"


@pytest.mark.parametrize(
    "relative",
    [
        "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json",
        "azure/defender/alert-k8s-privileged-container-aks.json",
        "gcp/scc/ctd-added-binary-executed.notification.json",
    ],
)
def test_finding_source_is_set_from_its_product(relative: str) -> None:
    """A finding's Outcome carries the source derived from its product uid."""
    [outcome] = list(normalize(event(relative)))
    assert outcome.finding is not None
    assert outcome.source == sources.source_of(outcome.finding)
    assert outcome.source == relative.split("/", maxsplit=1)[0] + "." + relative.split("/")[1]


@pytest.mark.parametrize(
    ("product", "expected"), [*sources.PRODUCT_SOURCES.items(), ("example.scanner", "example.scanner")]
)
def test_relayed_finding_counts_for_its_first_source(product: str, expected: str) -> None:
    """A relayed OCSF finding is attributed to the source of its product, not to the relay."""
    finding = make_finding()
    finding["metadata"]["product"]["uid"] = product
    [outcome] = list(normalize(finding))
    assert outcome.finding == finding
    assert outcome.source == expected


def test_each_item_of_a_delivery_gives_one_outcome() -> None:
    """Items of one delivery are normalized independently: a bad one does not stop the others."""
    good = make_finding("a")
    delivery = [good, {"unknown": 1}, "text", make_finding("b")]
    outcomes = list(normalize(delivery))
    assert [o.where for o in outcomes] == [f"[{n}]" for n in range(len(delivery))]
    assert [o.failed for o in outcomes] == [False, True, True, False]


class Recorder:
    """A fake source module that records its calls and answers or raises what it is told."""

    def __init__(self, answer: object) -> None:
        self.calls: list[tuple[str | None, int | None]] = []
        self.answer = answer

    def module(self) -> types.ModuleType:
        """Return a module-like object with SOURCE, recognizes and normalize."""
        module = types.ModuleType("fake")
        module.SOURCE = "test.fake"  # type: ignore[attr-defined]
        module.recognizes = lambda doc: "fake" in doc  # type: ignore[attr-defined]
        module.normalize = self.normalize  # type: ignore[attr-defined]
        return module

    def normalize(self, doc: Mapping[str, Any], delivery_id: str | None, *, received_time: int | None) -> object:
        """Record the call; raise the answer if it is an exception, else return it."""
        self.calls.append((delivery_id, received_time))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Register a fake source recognizing documents with a `fake` key."""
    recorder = Recorder(Skip("test"))
    monkeypatch.setitem(sources.SOURCES, "test.fake", recorder.module())
    return recorder


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (MalformedEventError("time is missing"), "time is missing"),
        (KeyError("x"), "unexpected test.fake shape (KeyError)"),
        (TypeError("x"), "unexpected test.fake shape (TypeError)"),
        (ValueError("x"), "unexpected test.fake shape (ValueError)"),
        (AttributeError("x"), "unexpected test.fake shape (AttributeError)"),
        (IndexError("x"), "unexpected test.fake shape (IndexError)"),
    ],
)
def test_source_errors_become_error_outcomes(fake: Recorder, answer: Exception, error: str) -> None:
    """A source's permanent error, or a shape error, is an error Outcome naming the source."""
    fake.answer = answer
    doc = {"fake": 1}
    [outcome] = list(normalize(doc))
    assert (outcome.error, outcome.source, outcome.raw) == (error, "test.fake", doc)


def test_delivery_id_and_received_time_reach_the_source(fake: Recorder) -> None:
    """The delivery id and the caller's received time are handed to the source."""
    list(normalize({"fake": 1}, "here", "delivery-9", 1_700_000_000_000))
    assert fake.calls == [("delivery-9", 1_700_000_000_000)]


def test_publish_time_wins_over_the_received_time(fake: Recorder) -> None:
    """A Pub/Sub publish time is the received time handed to the source, over the caller's."""
    published = "2025-05-01T10:00:00Z"
    push = {"message": {"data": {"fake": 1}, "messageId": "m-1", "publishTime": published}}
    list(normalize(push, received_time=1))
    assert fake.calls == [("m-1", ocsf.timestamp_ms(published))]


def _mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace the node reached by following `path` (indexes modulo each container's size) with `value`."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    if isinstance(doc, dict):
        keys = list(doc)
        key = keys[path[0] % len(keys)]
        return {**doc, key: _mutate(doc[key], path[1:], value)}
    index = path[0] % len(doc)
    return [*doc[:index], _mutate(doc[index], path[1:], value), *doc[index + 1 :]]


MUTATED = st.builds(
    _mutate,
    st.sampled_from(FIXTURES).map(lambda p: orjson.loads(p.read_bytes())),
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8),
    JSON,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DELIVERIES | MUTATED)
def test_normalize_never_raises(doc: object) -> None:
    """For any JSON value (or a sample event with one node replaced), `normalize` yields only Outcomes."""
    for outcome in normalize(doc, received_time=1_700_000_000_000):
        assert isinstance(outcome, Outcome)
        assert sum(x is not None for x in (outcome.finding, outcome.skipped, outcome.signal, outcome.error)) == 1
