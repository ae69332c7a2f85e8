"""Versioned schema migrations shared by the SQL stores (SQLite and PostgreSQL).

One literal, ordered list: each step has a version, a description and the statements for each
dialect. A step is applied once, in its own transaction, and recorded in `schema_migrations`;
a new step is appended at the end, never edited in place once released. Statements are tuples,
not scripts, because SQLite's `executescript` commits the open transaction first.

The SQLite store applies pending steps when it opens (it is the embedded default); the
PostgreSQL store never does DDL on its own, so that production runtimes need only data rights:
`corral store migrate` applies the steps there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the same change written for each SQL dialect."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        """Return the step's statements for one dialect."""
        return self.sqlite if dialect == "sqlite" else self.postgresql


# The column types that differ between the dialects; DDL below names them as {placeholders}.
TYPES: Final[dict[Dialect, dict[str, str]]] = {
    "sqlite": {
        "big": "INTEGER",
        "bool": "INTEGER",
        "json": "TEXT",
        "bytes": "BLOB",
        "serial": "INTEGER PRIMARY KEY",
    },
    "postgresql": {
        "big": "BIGINT",
        "bool": "BOOLEAN",
        "json": "JSONB",
        "bytes": "BYTEA",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}


def _spell(statements: tuple[str, ...], dialect: Dialect) -> tuple[str, ...]:
    return tuple(statement.format(**TYPES[dialect]) for statement in statements)


_SCHEMA_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at {big} NOT NULL)"
)
SCHEMA_TABLE_SQLITE: Final = _SCHEMA_TABLE.format(**TYPES["sqlite"])
SCHEMA_TABLE_POSTGRESQL: Final = _SCHEMA_TABLE.format(**TYPES["postgresql"])

_STEP_1: Final = (
    """CREATE TABLE findings (
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        cloud TEXT NOT NULL,
        region TEXT,
        class_uid INTEGER NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL,
        closed {bool} NOT NULL,
        finding_type TEXT,
        container_service TEXT,
        layer TEXT,
        task TEXT,
        cluster TEXT,
        namespace TEXT,
        image TEXT,
        modified_time {big} NOT NULL,
        fingerprint TEXT NOT NULL,
        first_seen {big} NOT NULL,
        last_seen {big} NOT NULL,
        versions INTEGER NOT NULL,
        traits {json} NOT NULL,
        document {json} NOT NULL,
        suppressed_reason TEXT,
        suppressed_by TEXT,
        suppressed_until {big},
        PRIMARY KEY (product, account, uid)
    )""",
    "CREATE INDEX findings_by_last_seen ON findings (last_seen, product, account, uid)",
    "CREATE INDEX findings_by_closed ON findings (closed, last_seen)",
    "CREATE INDEX findings_by_cloud ON findings (cloud, severity_id, status_id)",
    """CREATE TABLE finding_history (
        seq {serial},
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        at {big} NOT NULL,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        modified_time {big} NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL
    )""",
    "CREATE INDEX finding_history_by_key ON finding_history (product, account, uid, seq)",
    """CREATE TABLE dead_letters (
        id {serial},
        at {big} NOT NULL,
        reason TEXT NOT NULL,
        ref TEXT NOT NULL,
        raw {bytes} NOT NULL,
        sha256 TEXT NOT NULL,
        size {big} NOT NULL,
        source TEXT
    )""",
    "CREATE INDEX dead_letters_by_at ON dead_letters (at, id)",
    """CREATE TABLE ledger (
        version TEXT NOT NULL,
        sink TEXT NOT NULL,
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        change TEXT NOT NULL,
        document {json} NOT NULL,
        created {big} NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt {big} NOT NULL,
        last_error TEXT,
        delivered_at {big},
        PRIMARY KEY (version, sink)
    )""",
    "CREATE INDEX ledger_pending ON ledger (created, version, sink) WHERE state = 'pending'",
    """CREATE TABLE message_refs (
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        sink TEXT NOT NULL,
        ref TEXT NOT NULL,
        PRIMARY KEY (product, account, uid, sink)
    )""",
    """CREATE TABLE sources (
        source TEXT NOT NULL,
        account_uid TEXT NOT NULL,
        last_delivery {big} NOT NULL,
        last_finding_time {big},
        deliveries {big} NOT NULL,
        PRIMARY KEY (source, account_uid)
    )""",
    """CREATE TABLE health_signals (
        source TEXT NOT NULL,
        account_uid TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        healthy {bool} NOT NULL,
        time {big} NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (source, account_uid, service, region)
    )""",
)

# Trait queries (routing, coverage) read `traits @> {"name": ["value"]}`; jsonb_path_ops keeps
# the index small and supports exactly that operator.
_POSTGRESQL_2: Final = ("CREATE INDEX findings_by_traits ON findings USING GIN (traits jsonb_path_ops)",)

# The same input failing again is one dead letter with a count: keep the newest row of each input,
# count what it stood for, then let the unique index keep it so.
_STEP_3: Final = (
    "ALTER TABLE dead_letters ADD COLUMN count {big} NOT NULL DEFAULT 1",
    "UPDATE dead_letters SET count = (SELECT count(*) FROM dead_letters AS d WHERE d.sha256 = dead_letters.sha256)",
    "DELETE FROM dead_letters WHERE id NOT IN (SELECT max(id) FROM dead_letters GROUP BY sha256)",
    "CREATE UNIQUE INDEX dead_letters_by_input ON dead_letters (sha256)",
)

# Replays converge: a finding keeps the transport's order of its version (for versions whose
# source times tie) and the contents it has accepted (so that an old one delivered again is stale).
_STEP_4: Final = (
    "ALTER TABLE findings ADD COLUMN logged_time {big}",
    "ALTER TABLE findings ADD COLUMN sequence {big}",
    "ALTER TABLE findings ADD COLUMN seen TEXT",
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "findings, history, dead letter, delivery ledger, message refs, source health",
        _spell(_STEP_1, "sqlite"),
        _spell(_STEP_1, "postgresql"),
    ),
    Migration(
        2,
        "index findings by trait (PostgreSQL; SQLite scans the small traits column)",
        (),
        _POSTGRESQL_2,
    ),
    Migration(
        3,
        "one dead letter per distinct input, with a count of how often it failed",
        _spell(_STEP_3, "sqlite"),
        _spell(_STEP_3, "postgresql"),
    ),
    Migration(
        4,
        "findings keep their version's transport order and the contents they have accepted",
        _spell(_STEP_4, "sqlite"),
        _spell(_STEP_4, "postgresql"),
    ),
)
LATEST: Final = MIGRATIONS[-1].version


def pending(applied: set[int]) -> list[Migration]:
    """Return the steps not yet applied, in order."""
    return [m for m in MIGRATIONS if m.version not in applied]


class Executor(Protocol):
    """A DB-API connection's `execute`, as sqlite3 and psycopg both offer it."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Iterable[Any]:
        """Run one statement."""


def apply_pending(
    db: Executor,
    dialect: Dialect,
    each_step: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> None:
    """Create the bookkeeping table, then apply and record every pending step, each within `each_step()`."""
    record = "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)"
    if dialect != "sqlite":
        record = record.replace("?", "%s")
    db.execute(SCHEMA_TABLE_SQLITE if dialect == "sqlite" else SCHEMA_TABLE_POSTGRESQL)
    applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    for step in pending(applied):
        with each_step():
            for statement in step.statements(dialect):
                db.execute(statement)
            db.execute(record, (step.version, step.description, int(time.time() * 1000)))
