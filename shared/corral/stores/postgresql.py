# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
"""The PostgreSQL store: the OCSF document as JSONB beside indexed columns, via psycopg 3.

A batch upsert takes transaction-scoped advisory locks on its keys (sorted, so that two batches
never wait on each other in a circle), reads the stored state of all its keys in one query,
decides each change in Python with `base.decide`, and writes every row and every history entry
with one statement each (re-delivered unchanged findings with a third that refreshes only last
seen and the document), in one transaction pipelined into two round trips. The locks make two
writers of a finding that does not exist yet queue instead of both seeing "new".

This store never changes the schema on its own: production runtimes need only SELECT, INSERT,
UPDATE and DELETE. `corral store migrate` (`Store.migrate()`) applies pending migrations.
Passwords may be in the URL but `PGPASSWORD` / `~/.pgpass` are better; messages show the URL
without it. A server beyond loopback is reached over TLS unless the URL says otherwise: see
`encrypted`.

Example:
    >>> store = open("postgresql://corral@db.internal/corral")  # connects on first use
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import psycopg
import psycopg.conninfo

from corral import ocsf
from corral.context import ContainerContext
from corral.errors import ConfigError, PermanentError, StoreUnavailableError
from corral.loopback import LOOPBACK_HOSTS
from corral.redaction import redact_text, url_secrets
from corral.stores import _sql, migrations, redact
from corral.stores._sql_store import SqlStore
from corral.stores.base import (
    Change,
    Claim,
    FindingKey,
    LedgerEntry,
)

Connection = psycopg.Connection[tuple[Any, ...]]
_T = TypeVar("_T")

CONNECT_TIMEOUT_S: Final = 10
# Deadlocks and serialization failures are transient by definition: the transaction is retried.
_TRANSIENT_RETRIES: Final = 3
# (class id, object id) of the migration lock; the two-integer advisory lock space never meets the
# one-bigint space that the per-finding locks use.
_MIGRATION_LOCK: Final = (0x636F72, 1)

# The libpq environment variables that stand in for a connection parameter the URL leaves out.
_ENVIRONMENT: Final = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "service": "PGSERVICE",
}

# Each column's SQL type, for `unnest(%s::type[], …)`: one statement writes a whole batch.
_FINDING_TYPES: Final = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "int",
    "int",
    "int",
    "bool",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bigint",
    "text",
    "bigint",
    "bigint",
    "int",
    "jsonb",
    "jsonb",
    "text",
    "bool",
    "text",
    "bigint",
    "bigint",
    "text",
)
_HISTORY_TYPES: Final = ("text", "text", "text", "bigint", "text", "text", "bigint", "int", "int")


def encrypted(params: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """`params` with sslmode=require when they reach a server beyond loopback and leave TLS to libpq.

    libpq's default, `prefer`, falls back to plaintext without a word when the server, or anyone
    in the path, does not take up TLS: the findings and the password would cross the network in
    the clear. `require` encrypts or does not connect. It checks the server's certificate only when
    a root certificate file is present (libpq then checks as `verify-ca`); `verify-full` in the
    URL checks the name too. What the operator chose is left alone: an sslmode in the URL or
    PGSSLMODE (`disable` included), a service entry (it may set its own), and
    sslrootcert=system (libpq then defaults to `verify-full` and refuses anything weaker).
    Loopback hosts and Unix sockets keep libpq's default: nothing crosses a network.

    Example:
        >>> encrypted({"host": "db.internal", "dbname": "corral"}, {})
        {'host': 'db.internal', 'dbname': 'corral', 'sslmode': 'require'}
        >>> encrypted({"host": "127.0.0.1", "dbname": "corral"}, {})
        {'host': '127.0.0.1', 'dbname': 'corral'}
    """
    given = {key: env[name] for key, name in _ENVIRONMENT.items() if name in env} | dict(params)
    chosen = "sslmode" in given or "service" in given or given.get("sslrootcert") == "system"
    if chosen or all(_local(destination) for destination in _destinations(given)):
        return dict(params)
    return {**params, "sslmode": "require"}


def _destinations(params: Mapping[str, Any]) -> list[str]:
    """Each server libpq may try, in order: its `hostaddr` (connected to as is), else its `host`; "" for the default."""
    hosts = str(params.get("host") or "").split(",")
    addresses = str(params.get("hostaddr") or "").split(",")
    return [address or host for host, address in itertools.zip_longest(hosts, addresses, fillvalue="")]


def _local(destination: str) -> bool:
    """True for a loopback host and a Unix socket: a directory, an abstract one (@name), or "" (libpq's default)."""
    return not destination or destination.startswith(("/", "@")) or destination.lower() in LOOPBACK_HOSTS


def _beyond_a_limit(exc: psycopg.Error) -> bool:
    """True for SQLSTATE class 54, "program limit exceeded": a value too large for an index or a statement.

    psycopg files these under OperationalError with the outages, but no retry can store them.
    """
    return isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "").startswith("54")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _unnest(names: Sequence[str], types: Sequence[str]) -> str:
    # JSON arrives as text and is cast per row: psycopg has no cheap jsonb[] from Python strings.
    arrays = ", ".join(f"%s::{'text' if t == 'jsonb' else t}[]" for t in types)
    cols = ", ".join(f"{n}::jsonb" if t == "jsonb" else n for n, t in zip(names, types, strict=True))
    return f"SELECT {cols} FROM unnest({arrays}) AS t({', '.join(names)})"


_INSERT_FINDINGS: Final = (
    f"INSERT INTO findings ({', '.join(_sql.FINDING_COLUMNS)}) {_unnest(_sql.FINDING_COLUMNS, _FINDING_TYPES)}"
    + _sql.ON_CONFLICT_FINDINGS
)
_INSERT_HISTORY: Final = (
    f"INSERT INTO finding_history ({', '.join(_sql.HISTORY_COLUMNS)}) {_unnest(_sql.HISTORY_COLUMNS, _HISTORY_TYPES)}"
)
_REFRESH_FINDINGS: Final = (
    "UPDATE findings AS f SET last_seen = t.last_seen, modified_time = t.modified_time, closed = t.closed,"
    " document = t.document::jsonb, logged_time = t.logged_time, sequence = t.sequence, seen = t.seen"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::bool[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],"
    " %s::text[], %s::text[], %s::text[])"
    " AS t(last_seen, modified_time, closed, document, logged_time, sequence, seen, product, account, uid)"
    " WHERE f.product = t.product AND f.account = t.account AND f.uid = t.uid"
)
_SELECT_STATE: Final = (
    f"SELECT {_sql.STATE_SELECT} FROM findings WHERE (product, account, uid) IN"
    " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))"
)


# An escaped NUL (`\u0000`) preceded by an even number of backslashes, i.e. not itself escaped.
_JSON_NUL: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _without_nul(row: Sequence[Any], json_at: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """Return the row with NUL characters replaced by U+FFFD in its text and JSON (`json_at`) values.

    PostgreSQL text and jsonb cannot hold NUL at all, and attacker-controlled strings (command
    lines, file names) may carry one: without this the whole batch would fail on every retry.
    Only the stored copy changes; fingerprints and the Change returned come from the original.
    """
    if not any(isinstance(v, str) and ("\x00" in v or (i in json_at and "\\u0000" in v)) for i, v in enumerate(row)):
        return tuple(row)
    return tuple(
        (_JSON_NUL.sub(r"\1\\ufffd", v) if i in json_at else v.replace("\x00", "\ufffd")) if isinstance(v, str) else v
        for i, v in enumerate(row)
    )


def _columns_of(rows: Sequence[Sequence[Any]], json_at: tuple[int, ...]) -> list[list[Any]]:
    """Transpose rows into one list per column, for `unnest`."""
    return [list(column) for column in zip(*(_without_nul(row, json_at) for row in rows), strict=True)]


# Where the JSON text sits in the rows of `_sql`: findings (traits, document), refresh, ledger.
_FINDING_JSON: Final = (_sql.FINDING_COLUMNS.index("traits"), _sql.FINDING_COLUMNS.index("document"))
_REFRESH_JSON: Final = (3,)


def open(url: str) -> PostgresStore:
    """Return the store for a `postgresql://` URL; it connects on first use."""
    return PostgresStore(url)


def lock_id(key: FindingKey) -> int:
    """Return the advisory lock id of a finding: 64 bits of its identity's hash, signed."""
    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore(SqlStore):
    """The Store contract on PostgreSQL (one connection per store object, shared under a lock)."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        """Remember the URL; nothing connects until the first call."""
        self.url = redact(url)
        self._secrets = url_secrets(url)
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"store URL {self.url}: {self._scrub(exc)}") from None
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        params.setdefault("application_name", "corral")
        self._conninfo = psycopg.conninfo.make_conninfo("", **encrypted(params, os.environ))
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._schema_checked = False

    # Plumbing ---------------------------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        # libpq's messages are multi-line and name host and port; one line, never the password.
        lines = str(exc).strip().splitlines()
        text = lines[0].strip() if lines else type(exc).__name__
        return redact_text(text, self._secrets)

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"PostgreSQL store {self.url} is unavailable: {self._scrub(exc)}")

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _check_schema(self, conn: Connection) -> None:
        version = self._schema_version(conn)
        if version < migrations.LATEST:
            state = "has no Corral schema" if version == 0 else f"has schema version {version}"
            raise ConfigError(
                f"PostgreSQL store {self.url} {state}; this Corral needs version {migrations.LATEST}:"
                " run `corral store migrate` (it needs DDL rights; the runtime does not)"
            )
        self._schema_checked = True

    @staticmethod
    def _schema_version(conn: Connection) -> int:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def _run(self, work: Callable[[Connection], _T], *, check_schema: bool = True) -> _T:
        with self._lock:
            for attempt in range(_TRANSIENT_RETRIES + 1):
                try:
                    conn = self._connection()
                    if check_schema and not self._schema_checked:
                        self._check_schema(conn)
                    return work(conn)
                except psycopg.errors.TransactionRollback as exc:
                    if attempt == _TRANSIENT_RETRIES:
                        raise self._unavailable(exc) from None
                    time.sleep(0.01 * (attempt + 1))
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if _beyond_a_limit(exc):
                        # The data's fault, not the server's (an index row over 2.7 KB): retrying
                        # cannot help, so the caller dead-letters that record and goes on.
                        raise PermanentError(f"PostgreSQL refused it: {_first_line(exc)}") from None
                    self._discard()
                    raise self._unavailable(exc) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall())

    def _fetch_all(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        # Pipeline mode: every read is sent before any result is awaited, so they cost one round trip.
        def work(conn: Connection) -> list[list[Any]]:
            with conn.pipeline():
                cursors = [conn.execute(sql, params) for sql, params in reads]
            return [cursor.fetchall() for cursor in cursors]

        return self._run(work)

    def _storable(self, row: Sequence[Any], json_at: tuple[int, ...] = ()) -> tuple[Any, ...]:
        return _without_nul(row, json_at)

    def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return

        def work(conn: Connection) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)

        self._run(work)

    # Lifecycle --------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending migrations under a session advisory lock (a second migrator waits, then finds none)."""

        def work(conn: Connection) -> None:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", _MIGRATION_LOCK)
            try:
                migrations.apply_pending(conn, "postgresql", conn.transaction)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", _MIGRATION_LOCK)
            self._schema_checked = False

        self._run(work, check_schema=False)

    def schema_version(self) -> int:
        """Return the highest applied migration (0 when the schema is missing)."""
        return self._run(self._schema_version, check_schema=False)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._discard()

    # Findings ---------------------------------------------------------------------------------------

    def upsert(
        self,
        findings: Sequence[ocsf.Finding],
        *,
        now: int,
        documents: Sequence[bytes | None] = (),
        contexts: Sequence[ContainerContext | None] = (),
    ) -> list[Change]:
        """Store a batch in one transaction (two round trips) and return one Change per finding."""
        if not findings:
            return []
        keys = list(dict.fromkeys(ocsf.identity(f) for f in findings))
        locks = sorted({lock_id(k) for k in keys})
        key_columns = [list(c) for c in zip(*keys, strict=True)]

        def work(conn: Connection) -> list[Change]:
            with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                # unnest yields the sorted array in order, so every batch locks in the same order.
                cur.execute("SELECT pg_advisory_xact_lock(h) FROM unnest(%s::bigint[]) AS t(h)", [locks])
                # A separate statement after the locks: its snapshot sees what earlier holders committed.
                cur.execute(_SELECT_STATE, key_columns)
                stored = dict(_sql.Current.of_row(row) for row in cur.fetchall())
                plan = _sql.plan_upsert(findings, stored, now=now, documents=documents, contexts=contexts)
                if plan.rows:
                    cur.execute(_INSERT_FINDINGS, _columns_of(plan.rows, _FINDING_JSON))
                if plan.refresh:
                    cur.execute(_REFRESH_FINDINGS, _columns_of(plan.refresh, _REFRESH_JSON))
                if plan.history:
                    cur.execute(_INSERT_HISTORY, [list(c) for c in zip(*plan.history, strict=True)])
            return plan.changes

        return self._run(work)

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time, with their history and message refs."""

        def work(conn: Connection) -> int:
            row = conn.execute(
                "WITH doomed AS (DELETE FROM findings WHERE closed AND last_seen < %s RETURNING product, account, uid),"
                " h AS (DELETE FROM finding_history WHERE (product, account, uid) IN (SELECT * FROM doomed)),"
                " m AS (DELETE FROM message_refs WHERE (product, account, uid) IN (SELECT * FROM doomed))"
                " SELECT count(*) FROM doomed",
                (closed_before,),
            ).fetchone()
            return int(row[0]) if row else 0

        return self._run(work)

    # Dead letter ------------------------------------------------------------------------------------

    # Delivery ledger --------------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry], *, claim: Claim | None = None) -> list[LedgerEntry]:
        """Insert entries whose (version, sink) is new in one statement; with a claim, hold them and due rows."""
        unique = list({(e.version, e.sink): e for e in reversed(entries)}.values())[::-1]
        if not unique:
            return []
        columns = _columns_of([_sql.ledger_row(e, claim) for e in unique], ())
        sql, params = (_LEDGER_CLAIM, [*columns, claim.at]) if claim is not None else (_LEDGER_INSERT, columns)

        def work(conn: Connection) -> list[tuple[Any, ...]]:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()

        returned = {(row[0], row[1]): row for row in self._run(work)}
        if claim is None:
            return [e for e in unique if (e.version, e.sink) in returned]
        return [
            _sql.ledger_held(e, returned[(e.version, e.sink)], claim) for e in unique if (e.version, e.sink) in returned
        ]

    def ledger_claim(self, claim: Claim, *, limit: int = 500, sinks: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Hold up to `limit` due rows, oldest first; rows another worker is claiming are skipped, not awaited."""
        if sinks is not None and not sinks:
            return []
        only = " AND sink = ANY(%s)" if sinks is not None else ""
        sql = (
            "WITH held AS (UPDATE ledger AS h SET claim = %s, next_attempt = %s FROM ("
            f"SELECT version, sink FROM ledger WHERE state = 'pending' AND next_attempt <= %s{only}"
            " ORDER BY created, version, sink LIMIT %s FOR UPDATE SKIP LOCKED) AS due"
            " WHERE h.version = due.version AND h.sink = due.sink RETURNING h.*)"
            f" SELECT {self._ledger_read.replace('FROM ledger AS l', 'FROM held AS l', 1)}"
            " ORDER BY l.created, l.version, l.sink"
        )
        params: list[Any] = [claim.token, claim.until, claim.at, *([list(sinks)] if sinks is not None else []), limit]
        return [_sql.ledger_entry(row) for row in self._fetch(sql, params)]

    def _write_all(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        def work(conn: Connection) -> list[int]:
            counts: list[int] = []
            with conn.transaction(), conn.cursor() as cur:
                for sql, rows in statements:
                    if rows:
                        cur.executemany(sql, rows)
                    counts.append(max(cur.rowcount, 0) if rows else 0)
            return counts

        return self._run(work)

    def _write_returning(self, sql: str, params: Sequence[Any]) -> list[Any]:
        def work(conn: Connection) -> list[Any]:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()

        return self._run(work)


_LEDGER_TYPES: Final = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bigint",
    "text",
    "int",
    "bigint",
    "text",
    "bigint",
    "text",
    "int",
)
_LEDGER_INSERT_HEAD: Final = (
    f"INSERT INTO ledger ({', '.join(_sql.LEDGER_COLUMNS)}, document)"
    f" SELECT *, 'null'::jsonb FROM ({_unnest(_sql.LEDGER_COLUMNS, _LEDGER_TYPES)}) AS t"
    # Sorted, so that two concurrent batches take the unique-index locks in the same order.
    " ORDER BY version, sink"
)
_LEDGER_INSERT: Final = (
    _LEDGER_INSERT_HEAD + f" ON CONFLICT (version, sink) DO NOTHING RETURNING {_sql.LEDGER_RETURNING}"
)
_LEDGER_CLAIM: Final = (
    _LEDGER_INSERT_HEAD
    + " ON CONFLICT (version, sink) DO UPDATE SET claim = excluded.claim, next_attempt = excluded.next_attempt"
    " WHERE ledger.state = 'pending' AND ledger.next_attempt <= %s"
    f" RETURNING {_sql.LEDGER_RETURNING}"
)
"""A ledger insert that also takes existing rows that are pending, due and held by no live claim."""
