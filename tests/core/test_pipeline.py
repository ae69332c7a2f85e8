"""The pipeline: counts per change kind, dead letters, idempotent redelivery, wiring and recovery."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import config, ocsf
from corral.errors import ConfigError, StoreUnavailableError
from corral.pipeline import CLOUD_PLATFORMS, Inbound, Pipeline
from corral.sinks.base import Delivery, Result
from corral.stores import open_store
from corral.stores.base import Claim, Store
from tests.stores.factory import BASE_TIME, make_finding

NOW = BASE_TIME + 86_400_000


class RecordingSink:
    """A sink that accepts everything and records what it was sent."""

    def __init__(self, sink_id: str, family: Any) -> None:
        self.id = sink_id
        self.family = family
        self.sent: list[Delivery] = []

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Record and accept every delivery."""
        self.sent.extend(deliveries)
        return [Result.success(d.version, message_ref="ts-1") for d in deliveries]

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    opened = open_store(f"sqlite:///{tmp_path}/x.db")
    yield opened
    opened.close()


@pytest.fixture
def siem() -> RecordingSink:
    """A SIEM sink every finding is routed to."""
    return RecordingSink("splunk_hec:main", "siem")


def pipeline(store: Store, *sinks: RecordingSink, suppress: list[dict[str, Any]] | None = None) -> Pipeline:
    """A pipeline routing every change (family defaults) to every given sink."""
    table: dict[str, Any] = {
        "sinks": {s.id: {} for s in sinks},
        "routes": [{"to": [s.id for s in sinks]}] if sinks else [],
        "suppress": suppress or [],
    }
    settings = config.parse(table)
    return Pipeline(store, settings.router, {s.id: s for s in sinks}, clock=lambda: NOW)


def inbound(*findings: ocsf.Finding | bytes | object, ref: str = "test") -> list[Inbound]:
    """Wrap each finding (or raw bytes) as one delivery."""
    return [
        Inbound(f if isinstance(f, bytes) else orjson.dumps(f), f"{ref}#{n}") for n, f in enumerate(findings, start=1)
    ]


def test_ingest_counts_each_change_kind(store: Store, siem: RecordingSink) -> None:
    """The result counts every change kind the store decided, and the sink gets the sendable ones."""
    run = pipeline(store, siem)
    first = run.ingest(inbound(*(make_finding(uid, modified=BASE_TIME) for uid in "abcdef")))
    assert first.counts == Counter(new=6)
    versions = {
        "a": ("unchanged", make_finding("a", modified=BASE_TIME)),
        "b": ("updated", make_finding("b", modified=BASE_TIME + 1, title="New title")),
        "c": ("escalated", make_finding("c", modified=BASE_TIME + 1, severity_id=5)),
        "d": ("deescalated", make_finding("d", modified=BASE_TIME + 1, severity_id=1)),
        "e": ("closed", make_finding("e", modified=BASE_TIME + 1, status_id=ocsf.STATUS_RESOLVED)),
        "f": ("stale", make_finding("f", modified=BASE_TIME - 1, title="Older")),
        "g": ("new", make_finding("g")),
    }
    second = run.ingest(inbound(*(f for _, f in versions.values())))
    assert second.counts == Counter(kind for kind, _ in versions.values())
    assert second.summary()["failed"] == 0
    sent = Counter(d.change for d in siem.sent)
    expected = Counter(kind for kind, _ in versions.values() if kind not in ("unchanged", "stale"))
    assert sent == expected + Counter(new=6)


def test_bad_input_goes_to_the_dead_letter_and_the_batch_continues(store: Store, siem: RecordingSink) -> None:
    """Unparseable or unrecognized deliveries are dead-lettered; the good ones around them are stored."""
    run = pipeline(store, siem)
    deliveries = [
        *inbound(make_finding("a"), ref="good"),
        Inbound(b"{not json", "broken#1"),
        Inbound({"unknown": 1}, "unknown#1"),
        Inbound(b"", "unreadable#1", error="document is over 8 MiB"),
        *inbound(make_finding("b"), ref="good2"),
    ]
    result = run.ingest(deliveries)
    assert result.counts == Counter(new=2, failed=3)
    assert result.failed == 3
    assert [e.split(":")[0] for e in result.errors] == ["broken#1", "unknown#1", "unreadable#1"]
    letters = store.dead_letters()
    assert sorted(letter.ref for letter in letters) == ["broken#1", "unknown#1", "unreadable#1"]
    assert {letter.ref: letter.raw for letter in letters}["broken#1"] == b"{not json"
    assert len(siem.sent) == 2


def test_same_input_twice_is_unchanged_and_not_resent(store: Store, siem: RecordingSink) -> None:
    """Redelivering the same batch gives only `unchanged` and sends nothing again."""
    run = pipeline(store, siem)
    batch = inbound(*(make_finding(uid) for uid in ("a", "b", "c")))
    assert run.ingest(batch).counts == Counter(new=len(batch))
    sent = list(siem.sent)
    again = run.ingest(batch)
    assert again.counts == Counter(unchanged=len(batch))
    assert siem.sent == sent


def test_suppressed_findings_are_stored_but_not_sent(store: Store, siem: RecordingSink) -> None:
    """A finding matching a suppression is counted and marked, never sent."""
    run = pipeline(store, siem, suppress=[{"name": "sandbox", "when": {"cluster": "sandbox"}, "reason": "test"}])
    result = run.ingest(inbound(make_finding("a", cluster="sandbox"), make_finding("b")))
    assert result.counts == Counter(new=2, suppressed=1)
    assert [d.finding["finding_info"]["uid"] for d in siem.sent] == ["b"]
    stored = store.get(("aws.guardduty", "111122223333", "a"))
    assert stored is not None
    assert stored.suppression is not None
    assert stored.suppression.by == "suppress:sandbox"


def test_a_finding_whose_suppression_ended_is_sent_once_and_its_mark_cleared(store: Store, siem: RecordingSink) -> None:
    """Past its `until`, a suppressed finding's next delivery is sent once, and it no longer shows as suppressed."""
    settings = config.parse(
        {
            "sinks": {siem.id: {}},
            "routes": [{"to": [siem.id]}],
            "suppress": [
                {
                    "name": "window",
                    "when": {"cluster": "sandbox"},
                    "reason": "maintenance",
                    "until": dt.date(2099, 1, 1),
                }
            ],
        }
    )
    until = settings.router.suppressions[0].until
    assert until is not None
    clock = [until - 2]
    run = Pipeline(store, settings.router, {siem.id: siem}, clock=lambda: clock[0])
    finding = make_finding("a", cluster="sandbox")
    key = ocsf.identity(finding)
    assert run.ingest(inbound(finding)).counts == Counter(new=1, suppressed=1)
    clock[0] = until - 1
    assert run.ingest(inbound(finding)).counts == Counter(unchanged=1, suppressed=1)
    stored = store.get(key)
    assert siem.sent == []
    assert stored is not None and stored.suppression is not None
    clock[0] = until
    assert run.ingest(inbound(finding)).counts == Counter(unchanged=1)
    assert [(d.change, d.finding["finding_info"]["uid"]) for d in siem.sent] == [("new", "a")]
    stored = store.get(key)
    assert stored is not None and stored.suppression is None
    run.ingest(inbound(finding))
    assert len(siem.sent) == 1


def test_crash_between_upsert_and_ledger_is_recovered_on_redelivery(store: Store, siem: RecordingSink) -> None:
    """A change stored without ledger rows is routed again, as the kind in its history, when redelivered."""
    finding = make_finding("a")
    [change] = store.upsert([finding], now=NOW)  # the crash: stored, history written, no ledger rows
    assert change.kind == "new"
    run = pipeline(store, siem)
    result = run.ingest(inbound(finding))
    assert result.counts == Counter(unchanged=1)
    assert [(d.change, d.version) for d in siem.sent] == [("new", change.version)]
    run.ingest(inbound(finding))
    assert len(siem.sent) == 1


@pytest.mark.parametrize("variable", sorted(CLOUD_PLATFORMS))
def test_from_env_refuses_sqlite_inside_a_cloud_function(tmp_path: Path, variable: str) -> None:
    """Inside a cloud function a SQLite store is refused, naming the platform and CORRAL_STORE."""
    env = {variable: "fn", "CORRAL_STORE": f"sqlite:///{tmp_path}/x.db"}
    with pytest.raises(ConfigError, match="CORRAL_STORE") as raised:
        Pipeline.from_env(env)
    assert CLOUD_PLATFORMS[variable] in str(raised.value)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("variable", [None, *sorted(CLOUD_PLATFORMS)])
def test_from_env_allows_sqlite_locally_or_when_allowed(tmp_path: Path, variable: str | None) -> None:
    """SQLite is fine outside cloud functions, and inside one with CORRAL_ALLOW_LOCAL_STORE=1."""
    env = {"CORRAL_STORE": f"sqlite:///{tmp_path}/x.db"}
    if variable:
        env |= {variable: "fn", "CORRAL_ALLOW_LOCAL_STORE": "1"}
    run = Pipeline.from_env(env)
    try:
        assert run.store.url == env["CORRAL_STORE"]
    finally:
        run.close()


def test_store_down_is_store_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that cannot be reached raises StoreUnavailableError (retryable), not a driver error."""
    for name in ("PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGCONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StoreUnavailableError) as raised:
        run = Pipeline.from_env({"CORRAL_STORE": "postgresql://corral@127.0.0.1:1/x"})
        run.ingest(inbound(make_finding("a")))
    assert "127.0.0.1" in str(raised.value)


def test_sinks_get_each_finding_as_the_store_wrote_it(store: Store, siem: RecordingSink) -> None:
    """Each delivery carries the finding's JSON, made once at ingest: the stored document, byte for byte."""
    run = pipeline(store, siem)
    findings = [make_finding(uid, title=f"title {uid} \u202e\n") for uid in "abc"]
    # The same version twice in one batch is one delivery, with the JSON of the document it sends.
    run.ingest(inbound(*findings, findings[0]))
    assert len(siem.sent) == len(findings)
    for delivery in siem.sent:
        assert delivery.finding_json == orjson.dumps(delivery.finding)
        stored = store.get(ocsf.identity(delivery.finding))
        assert stored is not None
        assert orjson.loads(delivery.finding_json) == stored.document


def test_json_of_another_document_is_never_sent(store: Store, siem: RecordingSink) -> None:
    """A row is sent with given JSON only when it is that very document (a new priority makes another)."""
    [change] = store.upsert([make_finding("a")], now=NOW)
    run = pipeline(store, siem)
    rows = run._ledger_entries(change, NOW)
    held = store.ledger_add(rows, claim=(claim := Claim.new(NOW)))
    copy = dict(change.finding)
    run.deliverer.deliver(held, claim, {change.version: (copy, b'{"stale":true}')})
    assert [d.finding_json for d in siem.sent] == [None]
    assert siem.sent[0].finding == change.finding


def test_text_that_is_not_unicode_is_dead_lettered_as_sent(store: Store, siem: RecordingSink) -> None:
    """A lone surrogate (what json.loads makes of "\\ud800", as Lambda's runtime parses events) fails alone."""
    unknown = {"note": "\ud800", "source": "x.app"}
    finding = make_finding("bad", title="half \ud800 a pair")
    result = pipeline(store, siem).ingest(
        [Inbound(unknown, "bus#1"), Inbound(finding, "bus#2"), *inbound(make_finding("good"), ref="bus#3")]
    )
    assert result.counts == Counter(new=1, failed=2)
    letters = {letter.ref: letter for letter in store.dead_letters()}
    assert sorted(letters) == ["bus#1", "bus#2"]
    assert b'"\\ud800"' in letters["bus#1"].raw
    assert b"half \\ud800 a pair" in letters["bus#2"].raw
    assert [d.finding["finding_info"]["uid"] for d in siem.sent] == ["good"]
