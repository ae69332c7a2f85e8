# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
"""The embedded default store: one SQLite file, migrated on open.

WAL mode lets readers run beside the one writer; every write is a `BEGIN IMMEDIATE` transaction,
so that writers in other processes queue on the file lock (up to `busy_timeout`) instead of
failing half-way, and a batch's read-decide-write is atomic. One connection per store object,
shared by threads under a lock.

Example:
    >>> store = open("sqlite:///:memory:")
    >>> store.counts()
    []
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from corral import ocsf
from corral.errors import ConfigError, StoreUnavailableError
from corral.records import HealthSignal
from corral.stores import _sql, migrations
from corral.stores.base import (
    DEAD_LETTER_MAX_RAW,
    Change,
    CountRow,
    DeadLetter,
    FindingKey,
    FindingQuery,
    HistoryEntry,
    LedgerEntry,
    LedgerSummary,
    Page,
    SourceSeen,
    SourceState,
    StoredFinding,
    Suppression,
)

DEFAULT_PATH: Final = "corral.db"
BUSY_TIMEOUT_MS: Final = 30_000
# Keys per `IN (VALUES …)` read: three parameters each, far below SQLite's parameter limit.
_KEYS_PER_READ: Final = 300

_T = TypeVar("_T")

_INSERT_FINDINGS: Final = (
    f"INSERT INTO findings ({', '.join(_sql.FINDING_COLUMNS)}) VALUES ({', '.join('?' * len(_sql.FINDING_COLUMNS))})"
    " ON CONFLICT (product, account, uid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _sql.FINDING_COLUMNS[3:])
)
_REFRESH_FINDINGS: Final = (
    "UPDATE findings SET last_seen = ?, modified_time = ?, closed = ?, document = ?"
    " WHERE product = ? AND account = ? AND uid = ?"
)
_INSERT_HISTORY: Final = (
    f"INSERT INTO finding_history ({', '.join(_sql.HISTORY_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_sql.HISTORY_COLUMNS))})"
)
_STATE_COLUMNS: Final = ", ".join(f"f.{c.strip()}" for c in _sql.STATE_SELECT.split(","))


def open(url: str) -> SqliteStore:
    """Open (and migrate) the SQLite store at `sqlite:///path`; a relative path is relative to the working folder."""
    return SqliteStore(url)


def path_of(url: str) -> str:
    """Return the file path of a `sqlite:` URL (`:memory:` for an in-memory database)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"store URL {url!r} is not a sqlite:/// URL")
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"store URL {url!r}: a SQLite store is a local file; write sqlite:///path")
    # sqlite:///corral.db → "/corral.db" → relative "corral.db"; sqlite:////abs/x.db → "/abs/x.db".
    path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
    return path or DEFAULT_PATH


class SqliteStore:
    """The Store contract on one SQLite database file."""

    def __init__(self, url: str) -> None:
        """Open the database, switch it to WAL and apply pending migrations."""
        self.url = url
        self._path = path_of(url)
        self._lock = threading.RLock()
        try:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit: transactions are explicit BEGIN IMMEDIATE … COMMIT
                check_same_thread=False,  # threads share the connection under self._lock
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"SQLite store {url}: cannot open: {exc}") from None
        self._guard(self._configure)
        self.migrate()

    # Plumbing ---------------------------------------------------------------------------------------

    def _configure(self) -> None:
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self._path != ":memory:":
            # Switching to WAL needs a moment alone with the file; another process opening the same
            # new file at the same time can make it answer "locked" without waiting.
            for attempt in range(50):
                try:
                    self._db.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.05)
        # In WAL mode NORMAL is still safe against a crash of the process (only a power loss
        # can drop the last commits), and it saves an fsync per transaction.
        self._db.execute("PRAGMA synchronous = NORMAL")

    def _guard(self, work: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return work()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"SQLite store {self.url}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailableError(f"SQLite store {self.url}: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Called with self._lock held (through _guard).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._guard(lambda: self._db.execute(sql, params).fetchall())

    # Lifecycle --------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending schema migrations; a second process waits on the write lock, then finds none."""

        def work() -> None:
            with self._write() as db:
                db.execute(migrations.SCHEMA_TABLE_SQLITE)
                applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
                for step in migrations.pending(applied):
                    for statement in step.sqlite:
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                        (step.version, step.description, int(time.time() * 1000)),
                    )

        self._guard(work)

    def schema_version(self) -> int:
        """Return the highest applied migration (0 for an empty database)."""
        rows = self._read("SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # Findings ---------------------------------------------------------------------------------------

    def upsert(self, findings: Sequence[ocsf.Finding], *, now: int) -> list[Change]:
        """Store a batch in one transaction and return one Change per finding, in order."""
        if not findings:
            return []
        keys = list(dict.fromkeys(ocsf.identity(f) for f in findings))

        def work() -> list[Change]:
            with self._write() as db:
                stored: dict[FindingKey, _sql.Current] = {}
                for start in range(0, len(keys), _KEYS_PER_READ):
                    chunk = keys[start : start + _KEYS_PER_READ]
                    values = ", ".join("(?, ?, ?)" for _ in chunk)
                    # A join, not `(…) IN (VALUES …)`: SQLite answers a row-value IN list with a
                    # full scan, but searches the primary key for each row of a joined VALUES.
                    sql = (
                        f"WITH k (p, a, u) AS (VALUES {values}) SELECT {_STATE_COLUMNS} FROM k"
                        " JOIN findings AS f ON f.product = k.p AND f.account = k.a AND f.uid = k.u"
                    )
                    for row in db.execute(sql, [part for key in chunk for part in key]):
                        key, current = _sql.Current.of_row(row)
                        stored[key] = current
                plan = _sql.plan_upsert(findings, stored, now=now)
                db.executemany(_INSERT_FINDINGS, plan.rows)
                db.executemany(_REFRESH_FINDINGS, plan.refresh)
                db.executemany(_INSERT_HISTORY, plan.history)
            return plan.changes

        return self._guard(work)

    def mark_suppressed(self, marks: Sequence[tuple[FindingKey, Suppression | None]]) -> None:
        """Record (or clear) why findings are stored but not sent."""
        rows = [(s.reason if s else None, s.by if s else None, s.until if s else None, *key) for key, s in marks]

        def work() -> None:
            with self._write() as db:
                db.executemany(
                    "UPDATE findings SET suppressed_reason = ?, suppressed_by = ?, suppressed_until = ?"
                    " WHERE product = ? AND account = ? AND uid = ?",
                    rows,
                )

        self._guard(work)

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""
        rows = self._read(
            f"SELECT {_sql.FINDING_SELECT.format(document='document')} FROM findings"
            " WHERE product = ? AND account = ? AND uid = ?",
            key,
        )
        return _sql.stored_finding(rows[0]) if rows else None

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first."""
        rows = self._read(
            "SELECT at, kind, version, modified_time, severity_id, status_id FROM finding_history"
            " WHERE product = ? AND account = ? AND uid = ? ORDER BY seq",
            key,
        )
        return [_sql.history_entry(row) for row in rows]

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every given filter, newest last seen first, paged by keyset."""
        clause, params = _sql.where(query, "sqlite")
        sql = (
            f"SELECT {_sql.FINDING_SELECT.format(document='document')} FROM findings"
            f" WHERE {clause} {_sql.ORDER} LIMIT ?"
        )
        rows = self._read(sql, [*params, query.limit + 1])
        items = [_sql.stored_finding(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit and items
        return Page(items, _sql.encode_cursor(items[-1]) if more else None)

    def counts(self) -> list[CountRow]:
        """Return finding counts grouped by cloud, severity and status."""
        rows = self._read(
            "SELECT cloud, severity_id, status_id, count(*) FROM findings"
            " GROUP BY cloud, severity_id, status_id ORDER BY cloud, severity_id, status_id"
        )
        return [CountRow(*row) for row in rows]

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time, with their history and message refs."""

        def work() -> int:
            with self._write() as db:
                doomed = "SELECT product, account, uid FROM findings WHERE closed AND last_seen < ?"
                for table in ("finding_history", "message_refs"):
                    db.execute(f"DELETE FROM {table} WHERE (product, account, uid) IN ({doomed})", (closed_before,))
                return db.execute("DELETE FROM findings WHERE closed AND last_seen < ?", (closed_before,)).rowcount

        return self._guard(work)

    # Dead letter ------------------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs with their reasons (the first 256 KiB of each)."""
        rows = [(d.at, d.reason, d.ref, d.raw[:DEAD_LETTER_MAX_RAW], d.sha256, d.size, d.source) for d in letters]

        def work() -> None:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO dead_letters (at, reason, ref, raw, sha256, size, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

        self._guard(work)

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first, with their ids."""
        if source is None:
            sql = f"SELECT {_sql.DEAD_LETTER_SELECT} FROM dead_letters ORDER BY at DESC, id DESC LIMIT ?"
            rows = self._read(sql, (limit,))
        else:
            sql = (
                f"SELECT {_sql.DEAD_LETTER_SELECT} FROM dead_letters WHERE source = ? ORDER BY at DESC, id DESC LIMIT ?"
            )
            rows = self._read(sql, (source, limit))
        return [_sql.dead_letter(row) for row in rows]

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""
        if not letter_id.isdigit():
            return None
        rows = self._read(f"SELECT {_sql.DEAD_LETTER_SELECT} FROM dead_letters WHERE id = ?", (int(letter_id),))
        return _sql.dead_letter(rows[0]) if rows else None

    def count_dead_letters(self) -> dict[str, int]:
        """Return dead-letter counts per source ("" for unknown)."""
        rows = self._read("SELECT coalesce(source, ''), count(*) FROM dead_letters GROUP BY 1")
        return {source: int(count) for source, count in rows}

    # Delivery ledger --------------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Insert entries whose (version, sink) is new; return each row as stored now."""
        if not entries:
            return []
        select = f"SELECT {_sql.LEDGER_SELECT.format(document='document')} FROM ledger WHERE version = ? AND sink = ?"

        def work() -> list[LedgerEntry]:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO ledger (version, sink, product, account, uid, change, document, created, state,"
                    " attempts, next_attempt, last_error, delivered_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version, sink) DO NOTHING",
                    [_sql.ledger_row(e) for e in entries],
                )
                return [_sql.ledger_entry(db.execute(select, (e.version, e.sink)).fetchone()) for e in entries]

        return self._guard(work)

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest (created) first."""
        rows = self._read(
            f"SELECT {_sql.LEDGER_SELECT.format(document='document')} FROM ledger"
            " WHERE state = 'pending' AND next_attempt <= ? ORDER BY created, version, sink LIMIT ?",
            (now, limit),
        )
        return [_sql.ledger_entry(row) for row in rows]

    def ledger_update(self, entry: LedgerEntry) -> None:
        """Record the new state, attempts, error and next attempt of one row."""

        def work() -> None:
            with self._write() as db:
                db.execute(
                    "UPDATE ledger SET state = ?, attempts = ?, next_attempt = ?, last_error = ?, delivered_at = ?"
                    " WHERE version = ? AND sink = ?",
                    (
                        entry.state,
                        entry.attempts,
                        entry.next_attempt,
                        entry.last_error,
                        entry.delivered_at,
                        entry.version,
                        entry.sink,
                    ),
                )

        self._guard(work)

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink."""
        counts = self._read("SELECT sink, state, count(*) FROM ledger GROUP BY sink, state")
        oldest = self._read("SELECT sink, min(created) FROM ledger WHERE state = 'pending' GROUP BY sink")
        return LedgerSummary(
            counts={(sink, state): int(n) for sink, state, n in counts},
            oldest_pending={sink: int(created) for sink, created in oldest},
        )

    # Sink message references ------------------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding."""
        rows = self._read(
            "SELECT ref FROM message_refs WHERE product = ? AND account = ? AND uid = ? AND sink = ?", (*key, sink)
        )
        return str(rows[0][0]) if rows else None

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference; an existing one is kept."""

        def work() -> None:
            with self._write() as db:
                db.execute(
                    "INSERT INTO message_refs (product, account, uid, sink, ref) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (*key, sink, ref),
                )

        self._guard(work)

    # Source health ----------------------------------------------------------------------------------

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: last delivery per (source, account) only moves forward."""
        rows = _sql.source_updates(seen)

        def work() -> None:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO sources (source, account_uid, last_delivery, last_finding_time, deliveries)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, account_uid) DO UPDATE SET"
                    " last_delivery = max(last_delivery, excluded.last_delivery),"
                    " last_finding_time = max(coalesce(last_finding_time, excluded.last_finding_time),"
                    "                         coalesce(excluded.last_finding_time, last_finding_time)),"
                    " deliveries = deliveries + excluded.deliveries",
                    rows,
                )

        self._guard(work)

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""
        rows = self._read(
            "SELECT source, account_uid, last_delivery, last_finding_time, deliveries FROM sources"
            " ORDER BY source, account_uid"
        )
        return [_sql.source_state(row) for row in rows]

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest health signal per (source, account, service, region)."""
        rows = _sql.signal_updates(signals)

        def work() -> None:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO health_signals (source, account_uid, service, region, healthy, time, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, account_uid, service, region) DO UPDATE SET"
                    " healthy = excluded.healthy, time = excluded.time, detail = excluded.detail"
                    " WHERE excluded.time >= health_signals.time",
                    rows,
                )

        self._guard(work)

    def signals(self) -> list[HealthSignal]:
        """Return the latest health signal per (source, account, service, region)."""
        rows = self._read(
            "SELECT source, account_uid, service, region, healthy, time, detail FROM health_signals"
            " ORDER BY source, account_uid, service, region"
        )
        return [_sql.health_signal(row) for row in rows]
