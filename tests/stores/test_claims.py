"""Delivery claims under concurrency: each ledger row is sent once, whatever workers run at once.

Three workers, each with its own store connection and its own pipeline, run redrive and ingest
at the same time over thousands of pending rows, against a real loopback webhook receiver, on
every backend. The receiver counts each version's POSTs by their idempotency key. A fault run
kills workers between the receiver's acceptance and the ledger write, and shows that these
kills are the only source of duplicates. moto serializes DynamoDB requests, so the concurrency
run there cannot show that a lost race is not sent; a separate test makes the race happen.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.config import Config

from corral import config, ocsf
from corral.delivery import Deliverer
from corral.pipeline import Inbound, Pipeline, now_ms
from corral.sinks.base import Delivery, Result
from corral.stores import open_store
from corral.stores.base import LEASE_MS, Claim, LedgerEntry, Store, ThreadClaim, fingerprint, version_key
from corral.stores.dynamodb import DynamoDBStore, encode_document
from corral.stores.dynamodb import delivery as dynamodb_delivery
from corral.stores.dynamodb import table as dynamodb_table
from tests.stores.factory import make_finding
from tests.support.fake_http import FakeHTTPServer, Recorded, Reply

HOOK = "webhook:soar"
HOOK_SECRET = "claims-signing-secret-0123456789"
ROWS = 5_000
DYNAMODB_ROWS = int(os.environ.get("CORRAL_CLAIMS_DYNAMODB_ROWS", "1000"))
"""moto scans the whole table on every query and answers one request at a time: 5,000 rows take
over ten minutes there, so the suite runs 1,000 (set CORRAL_CLAIMS_DYNAMODB_ROWS=5000 for all)."""
FAULT_ROWS = 1_000
DYNAMODB_FAULT_ROWS = 400
INGESTED = 500
"""Findings the ingesting worker delivers again: their rows are raced by ingest and redrive alike."""
WORKERS = 3


class Receiver:
    """A healthy webhook receiver: accepts every POST and counts it by its idempotency key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: Counter[str] = Counter()

    def __call__(self, request: Recorded) -> Reply:
        """Count the request and accept it."""
        with self.lock:
            self.keys[request.header("Idempotency-Key") or ""] += 1
        return Reply(204)


@dataclass
class Clock:
    """The wall clock plus an offset the test moves forward (to let claims lapse)."""

    offset: int = 0

    def __call__(self) -> int:
        return now_ms() + self.offset


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """A counting receiver on loopback, and its URL."""
    counting = Receiver()
    with FakeHTTPServer(counting) as server:
        yield counting, server.url + "/hook"


def settings_for(url: str, hook_url: str) -> config.Settings:
    """Every change to the webhook."""
    return config.parse(
        {
            "store": url,
            "sinks": {HOOK: {"url": hook_url, "secret_env": "HOOK_SECRET", "timeout": 10}},
            "routes": [{"name": "everything", "to": [HOOK]}],
        },
        "claims.toml",
    )


def seed(url: str, count: int, now: int, *, stored: int) -> list[ocsf.Finding]:
    """Queue one pending, due webhook row for each of `count` findings, as retried rows are kept.

    The first `stored` findings are stored too, so that ingesting them again routes their
    versions again and races the redrives for the same rows.
    """
    store = open_store(url)
    try:
        findings = [make_finding(f"claim-{i:05d}") for i in range(count)]
        for start in range(0, stored, 500):
            store.upsert(findings[start : min(start + 500, stored)], now=now)
        for start in range(0, count, 500):
            entries = [
                LedgerEntry(version_of(f), HOOK, ocsf.identity(f), "new", f, created=now, next_attempt=now)
                for f in findings[start : start + 500]
            ]
            if isinstance(store, DynamoDBStore):
                # The same items ledger_add and ledger_update write, 25 a call: moto is slow enough.
                store._batch_write([{"PutRequest": {"Item": item}} for item in _dynamodb_items(entries)])
                continue
            store.ledger_add(entries)
            # A row left pending after an attempt keeps its version's document: so do these.
            store.ledger_update(entries)
    finally:
        store.close()
    return findings


def _dynamodb_items(entries: Sequence[LedgerEntry]) -> Iterator[dict[str, Any]]:
    for e in entries:
        yield dynamodb_delivery.ledger_item(e)
        yield {
            **dynamodb_delivery.document_key(e.version),
            "d": encode_document(e.document or {}, what=e.version),
            "cr": {"N": str(e.created)},
        }


def version_of(finding: ocsf.Finding) -> str:
    """The version key the store gives this finding."""
    return version_key(ocsf.identity(finding), ocsf.modified_time(finding), fingerprint(finding))


@dataclass
class Worker:
    """One worker process's worth of state: its own store connection and pipeline."""

    url: str
    hook_url: str
    clock: Clock
    store_class: Callable[[str], Store] | None = None
    errors: list[BaseException] = field(default_factory=list)
    killed: int = 0

    def pipeline(self) -> Pipeline:
        settings = settings_for(self.url, self.hook_url)
        built = Pipeline.from_settings(settings, {"HOOK_SECRET": HOOK_SECRET})
        if self.store_class is None:
            return Pipeline(built.store, built.router, built.sinks, clock=self.clock, settings=settings)
        built.store.close()
        store = self.store_class(self.url)
        return Pipeline(store, built.router, built.sinks, clock=self.clock, settings=settings)

    def run(self, work: Callable[[Pipeline], None]) -> None:
        """Run `work`; a killed process starts again with a new pipeline, as the platform would."""
        while True:
            pipe = self.pipeline()
            try:
                work(pipe)
                return
            except ProcessKilledError:
                self.killed += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                return
            finally:
                pipe.close()


def redrive_all(pipe: Pipeline, limit: int = 200) -> None:
    """Redrive in rounds of `limit` until nothing is due."""
    while sum(pipe.redrive(limit=limit, rounds=1).values()):
        pass


def ingest_then_redrive(findings: Sequence[ocsf.Finding]) -> Callable[[Pipeline], None]:
    """Re-ingest findings (their versions are routed again and race for the same rows), then redrive."""

    def work(pipe: Pipeline) -> None:
        for start in range(0, len(findings), 50):
            pipe.ingest(Inbound(f, ref=f"f{start}") for f in findings[start : start + 50])
        redrive_all(pipe)

    return work


def run_workers(workers: Sequence[Worker], jobs: Sequence[Callable[[Pipeline], None]]) -> None:
    threads = [threading.Thread(target=w.run, args=(job,)) for w, job in zip(workers, jobs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    errors = [e for w in workers for e in w.errors]
    assert not errors, errors


def ledger_states(url: str) -> Counter[str]:
    store = open_store(url)
    try:
        return Counter({state: n for (_, state), n in store.ledger_summary().counts.items()})
    finally:
        store.close()


@pytest.mark.timeout(3600 if DYNAMODB_ROWS > 1000 else 600)
def test_three_workers_send_every_row_exactly_once(
    store_url: str, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two redrives and an ingest-then-redrive at once over 5,000 due rows: each row is POSTed once."""
    # moto queues every DynamoDB request behind the others (and scans the table per query): a
    # request may wait longer than the production read timeout without anything being wrong.
    monkeypatch.setattr(dynamodb_table, "BOTO_CONFIG", dynamodb_table.BOTO_CONFIG.merge(Config(read_timeout=300)))
    counting, hook_url = receiver
    clock = Clock()
    dynamodb = store_url.startswith("dynamodb:")
    rows, ingested = (DYNAMODB_ROWS, INGESTED // 5) if dynamodb else (ROWS, INGESTED)
    findings = seed(store_url, rows, clock(), stored=ingested)
    workers = [Worker(store_url, hook_url, clock) for _ in range(WORKERS)]
    run_workers(workers, [redrive_all, redrive_all, ingest_then_redrive(findings[:ingested])])
    assert len(counting.keys) == rows
    assert set(counting.keys.values()) == {1}, counting.keys.most_common(3)
    assert ledger_states(store_url) == {"delivered": rows}


class ProcessKilledError(Exception):
    """Stands for the process dying (a Lambda timeout, an OOM kill)."""


class Kills:
    """Decides, across workers, which ledger writes after a sink's acceptance never happen."""

    def __init__(self, every: int, limit: int) -> None:
        self.lock = threading.Lock()
        self.calls = itertools.count(1)
        self.every = every
        self.left = limit
        self.lost: Counter[str] = Counter()
        """Versions whose accepted delivery was never recorded, with how often."""

    def maybe_kill(self, entries: Sequence[LedgerEntry]) -> None:
        delivered = [e for e in entries if e.state == "delivered"]
        if not delivered:
            return
        with self.lock:
            if self.left <= 0 or next(self.calls) % self.every:
                return
            self.left -= 1
            self.lost.update(e.version for e in delivered)
        raise ProcessKilledError(f"killed after the sink accepted {len(delivered)} deliveries")


def killing(kills: Kills) -> Callable[[str], Store]:
    """A store opener whose ledger outcome writes are sometimes lost to a kill."""

    def open_killing(url: str) -> Store:
        store = open_store(url)
        original = store.ledger_update

        def ledger_update(entries: Sequence[LedgerEntry]) -> None:
            kills.maybe_kill(entries)
            original(entries)

        store.ledger_update = ledger_update  # type: ignore[method-assign]
        return store

    return open_killing


def test_faults_are_the_only_source_of_duplicates(store_url: str, receiver: tuple[Receiver, str]) -> None:
    """Workers killed between the receiver's acceptance and the ledger write: only those rows go twice."""
    counting, hook_url = receiver
    clock = Clock()
    rows = DYNAMODB_FAULT_ROWS if store_url.startswith("dynamodb:") else FAULT_ROWS
    findings = seed(store_url, rows, clock(), stored=INGESTED // 5)
    kills = Kills(every=4, limit=3)
    workers = [Worker(store_url, hook_url, clock, killing(kills)) for _ in range(WORKERS)]
    redrive = functools.partial(redrive_all, limit=40)
    run_workers(workers, [redrive, redrive, ingest_then_redrive(findings[: INGESTED // 5])])
    assert sum(w.killed for w in workers) == 3 - kills.left > 0
    # The dead workers' claims hold their rows until they lapse; then the survivors send them again
    # (and may be killed again).
    while ledger_states(store_url)["pending"]:
        clock.offset += LEASE_MS
        run_workers(workers, [redrive] * WORKERS)
    assert len(counting.keys) == rows
    duplicates = Counter({key: n - 1 for key, n in counting.keys.items() if n > 1})
    assert duplicates, "the faults should have caused duplicates"
    assert duplicates == kills.lost
    assert ledger_states(store_url) == {"delivered": rows}


# A lost race is not sent ------------------------------------------------------------------------


class Recording:
    """An in-process sink that records what it is asked to send."""

    def __init__(self, sink_id: str, family: Any = "siem") -> None:
        self.id = sink_id
        self.family = family
        self.sent: list[Delivery] = []

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Accept everything."""
        self.sent += deliveries
        return [Result.success(d.version, message_ref=f"ts-{d.version[:8]}") for d in deliveries]

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def dynamodb_url(moto_server: str) -> str:
    """A fresh table on the session's moto server."""
    url = f"dynamodb://corral-claims-{uuid.uuid4().hex}?region=us-east-1&endpoint={moto_server}"
    store = open_store(url)
    store.migrate()
    store.close()
    return url


def test_a_dynamodb_claim_whose_condition_fails_is_not_sent(dynamodb_url: str) -> None:
    """Another worker takes the rows between the index read and the conditional write: nothing is sent."""
    store_url = dynamodb_url
    now = now_ms()
    seed(store_url, 20, now, stored=0)
    late, early = open_store(store_url), open_store(store_url)
    try:
        candidates = late._due_candidates  # type: ignore[attr-defined]

        def raced(*args: Any) -> Any:
            found = candidates(*args)
            # The other worker wins every row between this worker's index read and its writes.
            assert len(early.ledger_claim(Claim.new(now + 1))) == 20
            late._due_candidates = candidates  # type: ignore[attr-defined]
            return found

        late._due_candidates = raced  # type: ignore[attr-defined]
        sink = Recording(HOOK)
        pipe = Pipeline(late, sinks={HOOK: sink}, clock=lambda: now + 2)
        assert pipe.redrive() == {"delivered": 0, "pending": 0, "dead": 0, "dropped": 0}
        assert sink.sent == []
        assert len(late.ledger_due(now=now + LEASE_MS + 1)) == 20, "the rows stay with the winner's claim"
    finally:
        late.close()
        early.close()


def test_held_rows_are_not_claimed_again_until_the_claim_lapses(store: Store) -> None:
    """A held row goes to no other claim, by insert or by redrive, until its lease runs out."""
    now = now_ms()
    [change] = store.upsert([make_finding("held")], now=now)
    entry = LedgerEntry(change.version, HOOK, change.key, "new", change.finding, created=now, next_attempt=now)
    first = Claim.new(now)
    [held] = store.ledger_add([entry], claim=first)
    assert (held.claim, held.next_attempt) == (first.token, first.until)
    assert store.ledger_add([entry], claim=Claim.new(now + 1)) == []
    assert store.ledger_claim(Claim.new(now + 1)) == []
    lapsed = Claim.new(first.until)
    [again] = store.ledger_claim(lapsed)
    assert (again.version, again.claim, again.document) == (entry.version, lapsed.token, change.finding)
    # The first holder's late outcome is not recorded over the new holder's.
    store.ledger_update([LedgerEntry(**{**_fields(held), "state": "delivered", "delivered_at": now})])
    assert store.ledger_summary().counts == {(HOOK, "pending"): 1}
    store.ledger_update([LedgerEntry(**{**_fields(again), "state": "delivered", "delivered_at": now})])
    assert store.ledger_summary().counts == {(HOOK, "delivered"): 1}
    assert store.ledger_add([entry], claim=Claim.new(2 * first.until)) == []


def test_a_row_left_by_a_crash_is_sent_after_a_newer_version_arrives(store: Store) -> None:
    """A worker dies holding rows it never sent; a newer version comes before the lease runs out.

    The rows are sent once the lease lapses, with the finding's current document, never dropped:
    the chat sink may not be routed the newer version's change, so its first message would be lost.
    """
    now = now_ms()
    [first] = store.upsert([make_finding("crashed", modified=now - 60_000)], now=now)
    entries = [
        LedgerEntry(first.version, sink, first.key, "new", first.finding, created=now, next_attempt=now)
        for sink in (HOOK, "slack:soc")
    ]
    dead_worker = Claim.new(now)
    assert len(store.ledger_add(entries, claim=dead_worker)) == 2  # and then the worker is killed
    [newer] = store.upsert([make_finding("crashed", modified=now, severity_id=5)], now=now + 1)
    assert newer.kind == "escalated" and newer.version != first.version
    redrive = Claim.new(dead_worker.until)
    held = store.ledger_claim(redrive)
    assert sorted((r.version, r.sink, r.change) for r in held) == sorted(
        [(first.version, HOOK, "new"), (first.version, "slack:soc", "new")]
    )
    assert all(r.document == newer.finding for r in held)
    sent: list[Delivery] = []

    class Sink:
        def __init__(self, sink_id: str) -> None:
            self.id, self.family, self.token = sink_id, "webhook", None

        def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
            sent.extend(deliveries)
            return [Result.success(d.version) for d in deliveries]

        def close(self) -> None:
            """Nothing to release."""

    sinks = {sink_id: Sink(sink_id) for sink_id in (HOOK, "slack:soc")}
    totals = Deliverer(store, sinks, lambda: redrive.at).deliver(held, redrive)  # type: ignore[arg-type]
    assert totals == {"delivered": 2}
    assert sorted((d.version, d.change, d.finding["severity_id"]) for d in sent) == [
        (first.version, "new", 5),
        (first.version, "new", 5),
    ]
    assert store.ledger_summary().counts == {(HOOK, "delivered"): 1, ("slack:soc", "delivered"): 1}


def _fields(entry: LedgerEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in LedgerEntry._fields}


def test_a_finding_gets_one_thread_when_two_workers_send_its_changes(store: Store) -> None:
    """While one worker posts a finding's first chat message, another's change waits, then replies under it."""
    now = now_ms()
    sink = Recording("slack:soc", "chat")
    new, escalated = make_finding("t", severity_id=3), make_finding("t", severity_id=5, modified=now)
    [first] = store.upsert([new], now=now)
    [second] = store.upsert([escalated], now=now)
    rows = [
        LedgerEntry(c.version, sink.id, c.key, c.kind, c.finding, created=now, next_attempt=now)
        for c in (first, second)
    ]
    a, b = Claim.new(now), Claim.new(now)
    [row_a] = store.ledger_add(rows[:1], claim=a)
    [row_b] = store.ledger_add(rows[1:], claim=b)
    assert store.claim_thread(first.key, sink.id, a).mine
    worker_b = Deliverer(store, {sink.id: sink}, lambda: now)
    assert worker_b.deliver([row_b], b) == {"pending": 1}
    assert sink.sent == []
    assert Deliverer(store, {sink.id: sink}, lambda: now).deliver([row_a], a) == {"delivered": 1}
    assert [(d.change, d.thread_ref) for d in sink.sent] == [("new", None)]
    ref = store.message_ref(first.key, sink.id)
    assert ref == f"ts-{first.version[:8]}"
    [retry] = store.ledger_claim(Claim.new(now + 10_000))
    assert Deliverer(store, {sink.id: sink}, lambda: now + 10_000).deliver([retry]) == {"delivered": 1}
    assert [(d.change, d.thread_ref) for d in sink.sent] == [("new", None), ("escalated", ref)]


def test_a_lapsed_thread_hold_can_be_taken_and_a_released_one_at_once(store: Store) -> None:
    """A first message held by a dead worker is free once its claim lapses; a released one at once."""
    now = now_ms()
    key = ocsf.identity(make_finding("lapse"))
    dead = Claim.new(now)
    assert store.claim_thread(key, "slack:soc", dead).mine
    assert store.claim_thread(key, "slack:soc", Claim.new(now + 1)) == ThreadClaim()
    later = Claim.new(dead.until)
    assert store.claim_thread(key, "slack:soc", later).mine
    store.release_thread(key, "slack:soc", later)
    assert store.message_ref(key, "slack:soc") is None
    assert store.claim_thread(key, "slack:soc", Claim.new(now + 2)).mine
