"""SQLite's `ledger_add` (read, then plain insert and take by key) against the one statement it replaced.

The reference is the earlier multi-row `INSERT … ON CONFLICT … RETURNING`; both run on a copy of the
same ledger, and must return the same rows and leave the same table behind, whatever mix of new,
pending (due or not, held or not), delivered and dead rows and repeated entries a batch brings.
"""

# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.stores import _sql
from corral.stores.base import Claim, LedgerEntry
from corral.stores.sqlite import SqliteStore

_KEY = ("aws.guardduty", "111122223333", "finding-1")


def _reference_insert(rows: int, *, claiming: bool) -> str:
    columns = _sql.LEDGER_COLUMNS
    one = "(" + ", ".join("?" for _ in columns[:6]) + ", 'null', " + ", ".join("?" for _ in columns[6:]) + ")"
    head = f"INSERT INTO ledger ({', '.join(columns[:6])}, document, {', '.join(columns[6:])}) VALUES "
    if claiming:
        tail = (
            " ON CONFLICT (version, sink) DO UPDATE SET claim = excluded.claim, next_attempt = excluded.next_attempt"
            " WHERE ledger.state = 'pending' AND ledger.next_attempt <= ?"
        )
    else:
        tail = " ON CONFLICT (version, sink) DO NOTHING"
    return head + ", ".join(one for _ in range(rows)) + tail + f" RETURNING {_sql.LEDGER_RETURNING}"


def _reference_add(store: SqliteStore, entries: list[LedgerEntry], claim: Claim | None) -> list[LedgerEntry]:
    unique = list({(e.version, e.sink): e for e in reversed(entries)}.values())[::-1]
    if not unique:
        return []
    returned: dict[tuple[str, str], Any] = {}
    with store._write() as db:
        params: list[Any] = [v for e in unique for v in _sql.ledger_row(e, claim)]
        if claim is not None:
            params.append(claim.at)
        for row in db.execute(_reference_insert(len(unique), claiming=claim is not None), params):
            returned[(row[0], row[1])] = row
    if claim is None:
        return [e for e in unique if (e.version, e.sink) in returned]
    held = [e for e in unique if (e.version, e.sink) in returned]
    return [_sql.ledger_held(e, returned[(e.version, e.sink)], claim) for e in held]


def _table(store: SqliteStore) -> list[tuple[Any, ...]]:
    return store._fetch(
        "SELECT version, sink, change, created, state, attempts, next_attempt, last_error, delivered_at, claim,"
        " previous_severity_id, document FROM ledger ORDER BY version, sink"
    )


@contextmanager
def _stores() -> Iterator[tuple[SqliteStore, SqliteStore]]:
    mine, theirs = SqliteStore("sqlite:///:memory:"), SqliteStore("sqlite:///:memory:")
    try:
        yield mine, theirs
    finally:
        mine.close()
        theirs.close()


_ENTRY = st.builds(
    lambda v, sink, change, created, state, attempts, next_attempt, error, claim, previous: LedgerEntry(
        f"v{v}", sink, _KEY, change, {"n": v}, created, state, attempts, next_attempt, error, None, claim, previous
    ),
    st.integers(0, 3),
    st.sampled_from(["file:a", "file:b"]),
    st.sampled_from(["new", "updated", "closed"]),
    st.integers(0, 20),
    st.sampled_from(["pending", "pending", "delivered", "dead"]),
    st.integers(0, 3),
    st.integers(0, 6),
    st.sampled_from([None, "boom"]),
    st.sampled_from([None, "someone"]),
    st.sampled_from([None, 3]),
)


@settings(max_examples=200, deadline=None)
@given(
    existing=st.lists(_ENTRY, max_size=8),
    batch=st.lists(_ENTRY, max_size=8),
    at=st.one_of(st.none(), st.integers(0, 6)),
)
def test_ledger_add_is_the_statement_it_replaced(
    existing: list[LedgerEntry], batch: list[LedgerEntry], at: int | None
) -> None:
    with _stores() as (mine, theirs):
        for store in (mine, theirs):
            # Earlier rows as they stand, some held by another worker's claim.
            _reference_add(store, existing, None)
        claim = None if at is None else Claim("tok", at, at + 100)
        got = mine.ledger_add(batch, claim=claim)
        with theirs._lock:
            expected = _reference_add(theirs, batch, claim)
        assert got == expected
        assert _table(mine) == _table(theirs)
