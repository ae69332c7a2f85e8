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

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from corral import ocsf
from corral.context import ContainerContext
from corral.errors import ConfigError, StoreUnavailableError
from corral.redaction import redact_url
from corral.stores import _sql, migrations
from corral.stores._sql_store import SqlStore
from corral.stores.base import (
    Change,
    Claim,
    FindingKey,
    LedgerEntry,
)

DEFAULT_PATH: Final = "corral.db"
BUSY_TIMEOUT_MS: Final = 30_000
# Keys per `IN (VALUES …)` read: three parameters each, far below SQLite's parameter limit.
_KEYS_PER_READ: Final = 300

_LEDGER_INSERT: Final = (
    f"INSERT INTO ledger ({', '.join(_sql.LEDGER_COLUMNS[:6])}, document, {', '.join(_sql.LEDGER_COLUMNS[6:])})"
    f" VALUES ({', '.join('?' * 6)}, 'null', {', '.join('?' * (len(_sql.LEDGER_COLUMNS) - 6))})"
)
"""A new ledger row; the legacy document column gets JSON null."""
_TAKE_LEDGER: Final = "UPDATE ledger SET claim = ?, next_attempt = ? WHERE version = ? AND sink = ?"
_LEDGER_CLAIM: Final = _sql.LEDGER_COLUMNS.index("claim")
_LEDGER_NEXT: Final = _sql.LEDGER_COLUMNS.index("next_attempt")

_T = TypeVar("_T")

_INSERT_FINDINGS: Final = _sql.insert("findings", _sql.FINDING_COLUMNS, "sqlite") + _sql.ON_CONFLICT_FINDINGS
_REFRESH_FINDINGS: Final = (
    "UPDATE findings SET last_seen = ?, modified_time = ?, closed = ?, document = ?,"
    " logged_time = ?, sequence = ?, seen = ?"
    " WHERE product = ? AND account = ? AND uid = ?"
)
_INSERT_HISTORY: Final = _sql.insert("finding_history", _sql.HISTORY_COLUMNS, "sqlite")
_FID: Final = _sql.FINDING_COLUMNS.index("fid")
_STATE_COLUMNS: Final = ", ".join(f"f.{c.strip()}" for c in _sql.STATE_SELECT.split(","))


def open(url: str) -> SqliteStore:
    """Open (and migrate) the SQLite store at `sqlite:///path`; a relative path is relative to the working folder."""
    return SqliteStore(url)


def path_of(url: str) -> str:
    """Return the file path of a `sqlite:` URL (`:memory:` for an in-memory database)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"store URL {redact_url(url)!r} is not a sqlite:/// URL")
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"store URL {redact_url(url)!r}: a SQLite store is a local file; write sqlite:///path")
    # sqlite:///corral.db → "/corral.db" → relative "corral.db"; sqlite:////abs/x.db → "/abs/x.db".
    path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
    return path or DEFAULT_PATH


def _create_private(path: str) -> None:
    """Create the database file owner-only (0600), and the folders missing above it 0700, whatever the umask.

    The store holds findings and dead letters (raw vendor records): nobody but its owner should
    read it. SQLite gives its -wal, -shm and -journal files the database file's permissions, so
    they follow. An existing file or folder keeps the mode its owner gave it.
    """
    # os, not pathlib: pathlib is a millisecond of every cold start that nothing else needs.
    folder = os.path.dirname(path)  # noqa: PTH120
    missing: list[str] = []
    while folder and not os.path.isdir(folder):  # noqa: PTH112
        missing.append(folder)
        parent = os.path.dirname(folder)  # noqa: PTH120
        if parent == folder:
            break
        folder = parent
    for name in reversed(missing):
        try:
            os.mkdir(name, 0o700)  # noqa: PTH102
        except FileExistsError:
            if not os.path.isdir(name):  # noqa: PTH112 - a file in the way: say so, as makedirs did
                raise
    try:
        # O_EXCL: an existing file is never opened here, so its mode (and its owner's choice) stands.
        created = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(created)


class SqliteStore(SqlStore):
    """The Store contract on one SQLite database file."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        """Open the database, switch it to WAL and apply pending migrations."""
        self.url = redact_url(url)
        self._path = path_of(url)
        self._lock = threading.RLock()
        try:
            if self._path != ":memory:":
                _create_private(self._path)
            self._db = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit: transactions are explicit BEGIN IMMEDIATE … COMMIT
                check_same_thread=False,  # threads share the connection under self._lock
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"SQLite store {self.url}: cannot open: {exc}") from None
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
            except sqlite3.DatabaseError as exc:  # OperationalError (locked, I/O) included
                raise self._unavailable(exc) from None

    def _unavailable(self, exc: sqlite3.DatabaseError) -> StoreUnavailableError:
        return StoreUnavailableError(f"SQLite store {self.url}: {exc}")

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

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        # `_guard` without its closure: every read passes here, and a listing that matches nothing
        # takes microseconds.
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._unavailable(exc) from None

    def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        def work() -> None:
            with self._write() as db:
                db.executemany(sql, rows)

        self._guard(work)

    def _write_all(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        def work() -> list[int]:
            with self._write() as db:
                return [db.executemany(sql, rows).rowcount if rows else 0 for sql, rows in statements]

        return self._guard(work)

    def _write_returning(self, sql: str, params: Sequence[Any]) -> list[Any]:
        def work() -> list[Any]:
            with self._write() as db:
                return db.execute(sql, params).fetchall()

        return self._guard(work)

    # Lifecycle --------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending schema migrations; a second process waits on the write lock, then finds none."""

        def work() -> None:
            with self._write() as db:
                migrations.apply_pending(db, "sqlite")

        self._guard(work)

    def schema_version(self) -> int:
        """Return the highest applied migration (0 for an empty database)."""
        rows = self._fetch("SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # Findings ---------------------------------------------------------------------------------------

    def upsert(
        self,
        findings: Sequence[ocsf.Finding],
        *,
        now: int,
        documents: Sequence[bytes | None] = (),
        contexts: Sequence[ContainerContext | None] = (),
    ) -> list[Change]:
        """Store a batch in one transaction and return one Change per finding, in order."""
        if not findings:
            return []
        keys = list(dict.fromkeys(ocsf.identity(f) for f in findings))

        def work() -> list[Change]:
            with self._write() as db:
                stored: dict[FindingKey, _sql.Current] = dict(
                    _sql.Current.of_row(row)
                    for row in _joined(
                        db,
                        keys,
                        "k (p, a, u)",
                        f"SELECT {_STATE_COLUMNS} FROM k"
                        " JOIN findings AS f ON f.product = k.p AND f.account = k.a AND f.uid = k.u",
                    )
                )
                plan = _sql.plan_upsert(findings, stored, now=now, documents=documents, contexts=contexts)
                # In id order: the indexes ending in the id then grow at their end, where SQLite
                # appends to a page instead of splitting one (a batch shares one last seen).
                rows: list[tuple[Any, ...]] = sorted(plan.rows, key=_fid_of)
                db.executemany(_INSERT_FINDINGS, rows)
                db.executemany(_REFRESH_FINDINGS, plan.refresh)
                db.executemany(_INSERT_HISTORY, plan.history)
            return plan.changes

        return self._guard(work)

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

    # Delivery ledger --------------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry], *, claim: Claim | None = None) -> list[LedgerEntry]:
        """Insert entries whose (version, sink) is new; with a claim, hold them and the due rows that existed.

        The rows that exist are read first, inside the write transaction: the new ones then go in
        by a plain insert and the due ones are taken by key, which costs SQLite less than one
        insert that resolves each conflict and returns every row (the writer holds the file, so
        nothing changes in between).
        """
        unique = list({(e.version, e.sink): e for e in reversed(entries)}.values())[::-1]
        if not unique:
            return []

        def work() -> list[LedgerEntry]:
            with self._write() as db:
                stored = _ledger_stored(db, [(e.version, e.sink) for e in unique])
                fresh = [e for e in unique if (e.version, e.sink) not in stored]
                db.executemany(_LEDGER_INSERT, [_sql.ledger_row(e, claim) for e in fresh])
                if claim is None:
                    return fresh
                held: list[LedgerEntry] = []
                taken: list[tuple[Any, ...]] = []
                for entry in unique:
                    found = stored.get((entry.version, entry.sink))
                    if found is None:
                        row = (entry.version, entry.sink, entry.change, entry.created, entry.attempts, entry.last_error)
                    elif found[0] == "pending" and found[1] <= claim.at:
                        # Pending, due and held by no live claim (a held row's next attempt is its lapse).
                        given = _sql.ledger_row(entry, claim)
                        taken.append((given[_LEDGER_CLAIM], given[_LEDGER_NEXT], entry.version, entry.sink))
                        row = (entry.version, entry.sink, *found[2:])
                    else:
                        continue
                    held.append(_sql.ledger_held(entry, row, claim))
                db.executemany(_TAKE_LEDGER, taken)
            return held

        return self._guard(work)

    def ledger_claim(self, claim: Claim, *, limit: int = 500, sinks: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Hold up to `limit` due rows, oldest first: read and marked in one write transaction."""
        only = f" AND l.sink IN ({', '.join('?' for _ in sinks)})" if sinks is not None else ""
        if sinks is not None and not sinks:
            return []
        select = (
            f"SELECT {self._ledger_read} WHERE l.state = 'pending' AND l.next_attempt <= ?{only}"
            " ORDER BY l.created, l.version, l.sink LIMIT ?"
        )

        def work() -> list[LedgerEntry]:
            with self._write() as db:
                rows = db.execute(select, (claim.at, *(sinks or ()), limit)).fetchall()
                db.executemany(
                    "UPDATE ledger SET claim = ?, next_attempt = ? WHERE version = ? AND sink = ?",
                    [(claim.token, claim.until, row[0], row[1]) for row in rows],
                )
            return [_sql.ledger_entry(row)._replace(claim=claim.token, next_attempt=claim.until) for row in rows]

        return self._guard(work)


def _fid_of(row: tuple[Any, ...]) -> str:
    return str(row[_FID])


def _ledger_stored(db: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The ledger rows that exist among `keys`: (state, next_attempt, change, created, attempts, last_error) each."""
    rows = _joined(
        db,
        keys,
        "k (v, s)",
        "SELECT l.version, l.sink, l.state, l.next_attempt, l.change, l.created, l.attempts, l.last_error"
        " FROM k JOIN ledger AS l ON l.version = k.v AND l.sink = k.s",
    )
    return {(row[0], row[1]): (row[2], int(row[3]), *row[4:]) for row in rows}


def _joined(
    db: sqlite3.Connection, keys: Sequence[tuple[Any, ...]], table: str, select: str
) -> Iterator[tuple[Any, ...]]:
    """The rows `select` finds for `keys`, read as the VALUES table `table`, in chunks of _KEYS_PER_READ.

    A join, not `(…) IN (VALUES …)`: SQLite answers a row-value IN list with a full scan, but
    searches the primary key for each row of a joined VALUES.
    """
    marks = "(" + ", ".join("?" * len(keys[0])) + ")" if keys else ""
    for start in range(0, len(keys), _KEYS_PER_READ):
        chunk = keys[start : start + _KEYS_PER_READ]
        values = ", ".join(marks for _ in chunk)
        yield from db.execute(f"WITH {table} AS (VALUES {values}) {select}", [part for key in chunk for part in key])
