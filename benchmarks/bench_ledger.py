"""The delivery ledger on SQLite: its write cost per finding, and the hourly check at 10x the rows.

- Write path: `ledger_add` (held by a claim, as ingest does) and `ledger_update` (the outcome) for
  two sinks per finding, in microseconds per finding and as a ratio to a plain INSERT of the same
  normalized GuardDuty documents measured in the same run. Ledger rows refer to the version and
  copy no document, so their cost no longer grows with the document.
- Hourly check: `health.report` (the scheduled source check's read) over a ledger of N rows and of
  10N rows, with the same share of pending rows; goal: ratio at most 1.5. It reads the oldest
  pending row per sink with one index probe per sink, never the settled rows. For contrast, the
  same run times `ledger_summary()`, which counts every row.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from corral import health, ocsf
from corral.normalize import normalize
from corral.stores import open_store
from corral.stores.base import Claim, LedgerEntry, Store
from corral.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "events" / "aws" / "guardduty" / "eks-runtime-newbinaryexecuted-eventbridge.json"
WRITE_FINDINGS = 5_000
SINKS = ("file:a", "file:b")
CHECK_ROWS = (10_000, 100_000)
PENDING_SHARE = 100  # one row in 100 pending, the rest delivered
NOW = 1_717_000_000_000
REPEATS = 5


def documents(count: int) -> list[ocsf.Finding]:
    """`count` normalized GuardDuty findings, each a distinct finding."""
    event = orjson.loads(TEMPLATE.read_bytes())
    [outcome] = list(normalize(event))
    assert outcome.finding is not None
    found = []
    for n in range(count):
        doc = orjson.loads(orjson.dumps(outcome.finding))
        doc["finding_info"]["uid"] = f"{doc['finding_info']['uid']}-{n:08x}"
        found.append(doc)
    return found


def best(run: Callable[[], float]) -> float:
    """The fastest of REPEATS runs (the machine's load only ever adds time)."""
    return min(run() for _ in range(REPEATS))


def _plain_insert(docs: list[ocsf.Finding]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(f"{tmp}/plain.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE plain (product TEXT, account TEXT, uid TEXT, document TEXT,"
            " PRIMARY KEY (product, account, uid))"
        )
        rows = [(*ocsf.identity(d), orjson.dumps(d).decode()) for d in docs]
        start = time.perf_counter()
        for at in range(0, len(rows), 500):
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO plain VALUES (?, ?, ?, ?)", rows[at : at + 500])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    return elapsed


def _ledger_writes(docs: list[ocsf.Finding]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/ledger.db")
        changes = []
        for at in range(0, len(docs), 500):
            changes += store.upsert(docs[at : at + 500], now=NOW)
        added = updated = 0.0
        for at in range(0, len(changes), 500):
            entries = [
                LedgerEntry(c.version, sink, c.key, c.kind, c.finding, created=NOW, next_attempt=NOW)
                for c in changes[at : at + 500]
                for sink in SINKS
            ]
            start = time.perf_counter()
            held = store.ledger_add(entries, claim=Claim.new(NOW))
            added += time.perf_counter() - start
            outcomes = [e._replace(state="delivered", attempts=1, next_attempt=NOW, delivered_at=NOW) for e in held]
            start = time.perf_counter()
            store.ledger_update(outcomes)
            updated += time.perf_counter() - start
        store.close()
    return added, updated


def write_lines() -> list[str]:
    """ledger_add and ledger_update per finding (two sinks), against a plain INSERT of the documents."""
    docs = documents(WRITE_FINDINGS)
    plain = best(lambda: _plain_insert(docs))
    runs = [_ledger_writes(docs) for _ in range(REPEATS)]
    added, updated = min(r[0] for r in runs), min(r[1] for r in runs)
    n = len(docs)
    line = (
        f"ledger write path, {len(SINKS)} sinks: ledger_add {added / n * 1e6:6.1f} us/finding "
        f"({added / plain:4.2f}x a plain INSERT of the document), ledger_update {updated / n * 1e6:6.1f} us/finding "
        f"({updated / plain:4.2f}x); plain INSERT {plain / n * 1e6:5.1f} us/finding"
    )
    print(line, flush=True)
    return [line]


def _ledger_of(rows: int, path: str) -> Store:
    store = open_store(f"sqlite:///{path}")
    doc: dict[str, Any] = {}
    batch: list[LedgerEntry] = []
    for n in range(rows):
        pending = n % PENDING_SHARE == 0
        batch.append(
            LedgerEntry(
                f"{n:064x}",
                SINKS[n % len(SINKS)],
                ("bench", "000000000000", f"f-{n}"),
                "new",
                doc,
                created=NOW + n,
                state="pending" if pending else "delivered",
                attempts=0 if pending else 1,
                next_attempt=NOW + n,
                delivered_at=None if pending else NOW + n,
            )
        )
        if len(batch) == 5_000:
            store.ledger_add(batch)
            batch = []
    store.ledger_add(batch)
    return store


def _timed(run: Callable[[], object]) -> float:
    def once() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return best(once)


def check_lines() -> list[str]:
    """The hourly check's read at N and 10N ledger rows."""
    costs: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in CHECK_ROWS:
            store = _ledger_of(rows, f"{tmp}/check-{rows}.db")
            assert isinstance(store, SqliteStore)
            check = _timed(lambda store=store: health.report(store, {}, NOW + 10 * CHECK_ROWS[-1]))  # type: ignore[misc]
            summary = _timed(store.ledger_summary)
            costs[rows] = (check, summary)
            store.close()
    (small, big) = CHECK_ROWS
    ratio = costs[big][0] / costs[small][0]
    full = costs[big][1] / costs[small][1]
    line = (
        f"hourly check: {small:,} ledger rows {costs[small][0] * 1e3:6.2f} ms, "
        f"{big:,} rows {costs[big][0] * 1e3:6.2f} ms, "
        f"ratio {ratio:4.2f} (goal <= 1.5); counting every row instead (ledger_summary) ratio {full:4.1f}"
    )
    print(line, flush=True)
    return [line]


def main() -> list[str]:
    """Run both; return the printed lines."""
    return write_lines() + check_lines()


if __name__ == "__main__":
    main()
