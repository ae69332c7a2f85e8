"""The lean ledger on every backend: rows without document copies, expiry, and cheap aggregates."""

from __future__ import annotations

from pathlib import Path

from corral import config
from corral.pipeline import DAY_MS, LEDGER_RETENTION_DAYS, Inbound, Pipeline
from corral.sinks.base import Delivery, Result
from corral.stores import _sql, open_store
from corral.stores.base import Claim, DeadLetter, LedgerEntry, SourceSeen, Store
from corral.stores.sqlite import SqliteStore
from tests.stores.factory import BASE_TIME, make_finding

T = BASE_TIME
HOOK, CHAT = "webhook:soar", "slack:soc"


def entry(n: int, sink: str = HOOK, **fields: object) -> LedgerEntry:
    """A ledger row of a finding that is not stored (so only the ledger can give its document)."""
    finding = make_finding(f"l-{n}")
    values: dict[str, object] = {"key": ("p", "a", f"l-{n}"), "change": "new", "document": finding, "created": T + n}
    values.update(fields)
    return LedgerEntry(version=f"v{n}", sink=sink, **values)  # type: ignore[arg-type]


def test_expiry_deletes_settled_rows_past_retention_and_keeps_pending_ones(store: Store) -> None:
    """Delivered and dead rows settled before the cutoff go; later ones and every pending row stay."""
    store.ledger_add(
        [
            entry(1, state="delivered", attempts=1, next_attempt=T + 10, delivered_at=T + 10),
            entry(2, state="dead", attempts=25, next_attempt=T + 20),
            entry(3, state="delivered", attempts=1, next_attempt=T + 500, delivered_at=T + 500),
            entry(4, next_attempt=T + 5),
            entry(5, CHAT, next_attempt=T + 1),
        ]
    )
    # A retried row keeps its version's document; expiry must not take it.
    store.ledger_update([entry(4, attempts=1, next_attempt=T + 5, last_error="HTTP 503")])
    assert store.ledger_expire(T + 100) == 2
    assert store.ledger_expire(T + 100) == 0
    assert store.ledger_summary().counts == {(HOOK, "delivered"): 1, (HOOK, "pending"): 1, (CHAT, "pending"): 1}
    due = {row.version: row for row in store.ledger_due(now=T + 1_000)}
    assert due["v4"].document == entry(4).document
    # v5 never had an attempt and its finding is not stored: nothing can give its document.
    assert due["v5"].document is None
    assert store.ledger_expire(T + 1_000) == 1
    assert store.ledger_summary().counts == {(HOOK, "pending"): 1, (CHAT, "pending"): 1}


def test_health_inputs_are_the_three_reads_at_once(store: Store) -> None:
    """What a health report reads together is what the sources, dead letters and oldest pending rows read apart say."""
    store.touch_sources(
        [SourceSeen("aws.guardduty", "111", at=T + 100, finding_time=T + 90), SourceSeen("gcp.scc", "proj", at=T + 5)]
    )
    store.add_dead_letters([DeadLetter.of(b"{}", at=T + 3, reason="not a finding", ref="0", source="gcp.scc")])
    store.ledger_add([entry(1, next_attempt=T + 900), entry(2, sink=CHAT)])
    inputs = store.health_inputs()
    assert inputs == (store.sources(), store.count_dead_letters(), store.ledger_oldest_pending())
    assert [(s.source, s.account_uid, s.last_delivery) for s in inputs.sources] == [
        ("aws.guardduty", "111", T + 100),
        ("gcp.scc", "proj", T + 5),
    ]
    assert inputs.dead_letters == {"gcp.scc": 1}
    assert inputs.oldest_pending == {HOOK: T + 1, CHAT: T + 2}


def test_oldest_pending_and_backlog_read_pending_rows_only(store: Store) -> None:
    """The hourly check's oldest pending row per sink, and the redrive's backlog, ignore settled rows."""
    store.ledger_add(
        [
            entry(1, state="delivered", attempts=1, next_attempt=T + 1, delivered_at=T + 1),
            entry(2, next_attempt=T + 900),
            entry(3, next_attempt=T + 50),
            entry(4, CHAT, next_attempt=T + 40),
            entry(5, state="dead", next_attempt=T + 5),
        ]
    )
    held = Claim.new(T + 60)
    [row] = store.ledger_claim(held, sinks=[HOOK])
    assert row.version == "v3"
    assert store.ledger_oldest_pending() == {HOOK: T + 2, CHAT: T + 4}
    backlog = {b.sink: b for b in store.ledger_backlog(T + 60)}
    assert (backlog[HOOK].pending, backlog[HOOK].due, backlog[HOOK].held) == (2, 0, 1)
    assert (backlog[HOOK].next_attempt, backlog[HOOK].oldest_created) == (T + 900, T + 2)
    assert (backlog[CHAT].pending, backlog[CHAT].due, backlog[CHAT].held) == (1, 1, 0)


def test_the_hourly_check_probes_an_index_per_sink_and_never_scans_the_ledger(tmp_path: Path) -> None:
    """SQLite answers the oldest pending row per sink from the partial index, not from the table."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        plan = store._fetch(f"EXPLAIN QUERY PLAN {_sql.LEDGER_OLDEST_PENDING}")
        details = [str(row[-1]) for row in plan]
        assert any("ledger_pending_by_sink" in d for d in details), details
        assert not any(d.startswith("SCAN l") or d == "SCAN ledger" for d in details), details
        expiry = store._fetch("EXPLAIN QUERY PLAN DELETE FROM ledger WHERE state <> 'pending' AND next_attempt < 1")
        assert any("ledger_settled" in str(row[-1]) for row in expiry), expiry
    finally:
        store.close()


class Accepting:
    """A sink that accepts everything and counts what it got."""

    family = "siem"

    def __init__(self, sink_id: str) -> None:
        self.id = sink_id
        self.sent: list[Delivery] = []

    def send(self, deliveries: list[Delivery]) -> list[Result]:
        """Accept every delivery."""
        self.sent += deliveries
        return [Result.success(d.version) for d in deliveries]

    def close(self) -> None:
        """Nothing to release."""


def test_the_pipeline_expires_delivered_rows_and_a_later_re_export_is_not_sent_again(tmp_path: Path) -> None:
    """After the retention, delivered rows are gone, and the same unchanged finding is still not re-sent."""
    clock = [T]
    archive = "file:archive"
    settings = config.parse(
        {
            "store": f"sqlite:///{tmp_path / 'corral.db'}",
            "sinks": {archive: {"kind": "file", "path": str(tmp_path / "out.jsonl")}},
            "routes": [{"name": "all", "to": [archive]}],
        },
        "expiry.toml",
    )
    sink = Accepting(archive)
    store = open_store(settings.store)
    pipe = Pipeline(store, settings.router, {archive: sink}, clock=lambda: clock[0], settings=settings)
    try:
        finding = make_finding("exported")
        pipe.ingest([Inbound(finding, ref="first")])
        assert pipe.store.ledger_summary().counts == {(archive, "delivered"): 1}
        clock[0] += LEDGER_RETENTION_DAYS * DAY_MS - 1
        assert pipe.expire() == 0
        assert pipe.store.ledger_summary().counts == {(archive, "delivered"): 1}
        clock[0] += 2
        pipe.expire()
        assert pipe.store.ledger_summary().counts == {}
        # GuardDuty re-exports every finding every six hours: the unchanged version is not routed again.
        assert pipe.ingest([Inbound(finding, ref="re-export")]).counts["unchanged"] == 1
        assert len(sink.sent) == 1
        assert pipe.store.ledger_summary().counts == {}
    finally:
        pipe.close()
