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

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the same change written for each SQL dialect."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


SCHEMA_TABLE_SQLITE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)"
)
SCHEMA_TABLE_POSTGRESQL: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)

_SQLITE_1: Final = (
    """CREATE TABLE findings (
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        cloud TEXT NOT NULL,
        region TEXT,
        class_uid INTEGER NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL,
        closed INTEGER NOT NULL,
        finding_type TEXT,
        container_service TEXT,
        layer TEXT,
        task TEXT,
        cluster TEXT,
        namespace TEXT,
        image TEXT,
        modified_time INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        versions INTEGER NOT NULL,
        traits TEXT NOT NULL,
        document TEXT NOT NULL,
        suppressed_reason TEXT,
        suppressed_by TEXT,
        suppressed_until INTEGER,
        PRIMARY KEY (product, account, uid)
    )""",
    "CREATE INDEX findings_by_last_seen ON findings (last_seen, product, account, uid)",
    "CREATE INDEX findings_by_closed ON findings (closed, last_seen)",
    "CREATE INDEX findings_by_cloud ON findings (cloud, severity_id, status_id)",
    """CREATE TABLE finding_history (
        seq INTEGER PRIMARY KEY,
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        modified_time INTEGER NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL
    )""",
    "CREATE INDEX finding_history_by_key ON finding_history (product, account, uid, seq)",
    """CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        ref TEXT NOT NULL,
        raw BLOB NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
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
        document TEXT NOT NULL,
        created INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt INTEGER NOT NULL,
        last_error TEXT,
        delivered_at INTEGER,
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
        last_delivery INTEGER NOT NULL,
        last_finding_time INTEGER,
        deliveries INTEGER NOT NULL,
        PRIMARY KEY (source, account_uid)
    )""",
    """CREATE TABLE health_signals (
        source TEXT NOT NULL,
        account_uid TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        healthy INTEGER NOT NULL,
        time INTEGER NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (source, account_uid, service, region)
    )""",
)

_POSTGRESQL_1: Final = (
    """CREATE TABLE findings (
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        cloud TEXT NOT NULL,
        region TEXT,
        class_uid INTEGER NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL,
        closed BOOLEAN NOT NULL,
        finding_type TEXT,
        container_service TEXT,
        layer TEXT,
        task TEXT,
        cluster TEXT,
        namespace TEXT,
        image TEXT,
        modified_time BIGINT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        versions INTEGER NOT NULL,
        traits JSONB NOT NULL,
        document JSONB NOT NULL,
        suppressed_reason TEXT,
        suppressed_by TEXT,
        suppressed_until BIGINT,
        PRIMARY KEY (product, account, uid)
    )""",
    "CREATE INDEX findings_by_last_seen ON findings (last_seen, product, account, uid)",
    "CREATE INDEX findings_by_closed ON findings (closed, last_seen)",
    "CREATE INDEX findings_by_cloud ON findings (cloud, severity_id, status_id)",
    """CREATE TABLE finding_history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        version TEXT NOT NULL,
        modified_time BIGINT NOT NULL,
        severity_id INTEGER NOT NULL,
        status_id INTEGER NOT NULL
    )""",
    "CREATE INDEX finding_history_by_key ON finding_history (product, account, uid, seq)",
    """CREATE TABLE dead_letters (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        reason TEXT NOT NULL,
        ref TEXT NOT NULL,
        raw BYTEA NOT NULL,
        sha256 TEXT NOT NULL,
        size BIGINT NOT NULL,
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
        document JSONB NOT NULL,
        created BIGINT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt BIGINT NOT NULL,
        last_error TEXT,
        delivered_at BIGINT,
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
        last_delivery BIGINT NOT NULL,
        last_finding_time BIGINT,
        deliveries BIGINT NOT NULL,
        PRIMARY KEY (source, account_uid)
    )""",
    """CREATE TABLE health_signals (
        source TEXT NOT NULL,
        account_uid TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        healthy BOOLEAN NOT NULL,
        time BIGINT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (source, account_uid, service, region)
    )""",
)

# Trait queries (routing, coverage) read `traits @> {"name": ["value"]}`; jsonb_path_ops keeps
# the index small and supports exactly that operator.
_POSTGRESQL_2: Final = ("CREATE INDEX findings_by_traits ON findings USING GIN (traits jsonb_path_ops)",)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "findings, history, dead letter, delivery ledger, message refs, source health",
        _SQLITE_1,
        _POSTGRESQL_1,
    ),
    Migration(
        2,
        "index findings by trait (PostgreSQL; SQLite scans the small traits column)",
        (),
        _POSTGRESQL_2,
    ),
)
LATEST: Final = MIGRATIONS[-1].version


def pending(applied: set[int]) -> list[Migration]:
    """Return the steps not yet applied, in order."""
    return [m for m in MIGRATIONS if m.version not in applied]
