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
from typing import Any, Final, Literal, Protocol

import orjson

from corral.records import NamedTuple
from corral.stores.base import columns, finding_id

Dialect = Literal["sqlite", "postgresql"]


class Executor(Protocol):
    """A DB-API connection's `execute`, as sqlite3 and psycopg both offer it."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Iterable[Any]:
        """Run one statement."""


class Migration(NamedTuple):
    """One schema step: the same change written for each SQL dialect."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    backfill: Callable[[Executor, Dialect], None] | None = None
    """Python run after the statements, in the same transaction, for values SQL cannot compute."""

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

# Read side: a short stable id (lookups by id prefix and by uid), the sample flag and the text that
# search looks in, as columns; then indexes that lead with what each listing filters on and end
# with the listing's order (last seen, then id), so that a filtered first page reads one page.
_STEP_3_COLUMNS: Final = (
    "ALTER TABLE findings ADD COLUMN fid TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE findings ADD COLUMN sample {bool} NOT NULL DEFAULT {false}",
    "ALTER TABLE findings ADD COLUMN search TEXT NOT NULL DEFAULT ''",
)
_BACKFILL_CHUNK: Final = 1_000


def _backfill_read_columns(db: Executor, dialect: Dialect) -> None:
    """Fill fid, sample and search of existing findings, a chunk at a time (keyset over the key)."""
    mark = "?" if dialect == "sqlite" else "%s"
    document = "document" if dialect == "sqlite" else "document::text"
    after: tuple[str, str, str] = ("", "", "")
    while True:
        rows = list(
            db.execute(
                f"SELECT product, account, uid, {document} FROM findings"  # noqa: S608 - constants only
                f" WHERE (product, account, uid) > ({mark}, {mark}, {mark}) ORDER BY product, account, uid"
                f" LIMIT {_BACKFILL_CHUNK}",
                after,
            )
        )
        if not rows:
            return
        for product, account, uid, text in rows:
            cols = columns(orjson.loads(text), "")
            db.execute(
                f"UPDATE findings SET fid = {mark}, sample = {mark}, search = {mark}"  # noqa: S608 - constants only
                f" WHERE product = {mark} AND account = {mark} AND uid = {mark}",
                (finding_id((product, account, uid)), cols.sample, cols.search, product, account, uid),
            )
        after = (rows[-1][0], rows[-1][1], rows[-1][2])


_STEP_4_SQLITE: Final = (
    "DROP INDEX findings_by_last_seen",
    "CREATE INDEX findings_by_last_seen ON findings (last_seen, fid)",
    "CREATE INDEX findings_by_id ON findings (fid)",
    "CREATE INDEX findings_by_cloud_time ON findings (cloud, last_seen, fid)",
    "CREATE INDEX findings_by_service_time ON findings (container_service, last_seen, fid)",
    "CREATE INDEX findings_by_account_time ON findings (account COLLATE NOCASE, last_seen, fid)",
    "CREATE INDEX findings_by_cluster_time ON findings (cluster COLLATE NOCASE, last_seen, fid)",
    "CREATE INDEX findings_by_namespace_time ON findings (namespace COLLATE NOCASE, last_seen, fid)",
    "CREATE INDEX findings_by_status_time ON findings (status_id, last_seen, fid)",
    "CREATE INDEX findings_by_first_seen ON findings (first_seen)",
    "CREATE INDEX findings_by_cell ON findings (container_service, layer, task, last_seen)"
    " WHERE NOT sample AND product <> 'corral'",
)
# PostgreSQL folds case with lower() where SQLite uses the NOCASE collation: the index is on the same expression.
_STEP_4_POSTGRESQL: Final = tuple(
    statement.replace("account COLLATE NOCASE", "lower(account)")
    .replace("cluster COLLATE NOCASE", "lower(cluster)")
    .replace("namespace COLLATE NOCASE", "lower(namespace)")
    for statement in _STEP_4_SQLITE
)
# Every index holding last_seen is rewritten by each re-delivery (last_seen moves): upserts of
# unchanged findings cost about three times as much with all of step 4's indexes as without.
# Cluster, namespace and status filters match common values and walk the time index instead.
_STEP_6: Final = (
    "DROP INDEX findings_by_cluster_time",
    "DROP INDEX findings_by_namespace_time",
    "DROP INDEX findings_by_status_time",
)
# The finding list is most severe first: it counts each severity band of the open findings and
# reads the bands' pages newest first, both ranges of this one index. (closed, last_seen) served
# only the hourly expiry, which may scan, and made SQLite sort every open finding to list them.
_STEP_10: Final = (
    "CREATE INDEX findings_by_severity_time ON findings (severity_id, closed, last_seen, fid)",
    "DROP INDEX findings_by_closed",
)

# The image inventory: names, runtime sightings and exposures keyed by place, and one row per
# Vulnerability Finding with the priority last given to it (see stores/images.py).
_IMAGES: Final = (
    """CREATE TABLE image_names (
        digest TEXT NOT NULL,
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        registry TEXT NOT NULL,
        cloud TEXT NOT NULL,
        account TEXT NOT NULL,
        first_time {big} NOT NULL,
        last_time {big} NOT NULL,
        PRIMARY KEY (digest, repository, tag, cloud, account)
    )""",
    "CREATE INDEX image_names_by_repository ON image_names (repository, tag)",
    """CREATE TABLE image_sightings (
        image TEXT NOT NULL,
        cloud TEXT NOT NULL,
        account TEXT NOT NULL,
        cluster TEXT NOT NULL,
        namespace TEXT NOT NULL,
        workload TEXT NOT NULL,
        reporter TEXT NOT NULL,
        first_time {big} NOT NULL,
        last_time {big} NOT NULL,
        PRIMARY KEY (image, cloud, account, cluster, namespace, workload)
    )""",
    "CREATE INDEX image_sightings_by_namespace ON image_sightings (namespace)",
    """CREATE TABLE image_exposures (
        cloud TEXT NOT NULL,
        account TEXT NOT NULL,
        cluster TEXT NOT NULL,
        namespace TEXT NOT NULL,
        workload TEXT NOT NULL,
        reporter TEXT NOT NULL,
        active {bool} NOT NULL,
        first_time {big} NOT NULL,
        last_time {big} NOT NULL,
        PRIMARY KEY (cloud, account, cluster, namespace, workload)
    )""",
    "CREATE INDEX image_exposures_by_namespace ON image_exposures (namespace)",
    "CREATE INDEX image_exposures_by_workload ON image_exposures (workload)",
    """CREATE TABLE image_vulnerabilities (
        product TEXT NOT NULL,
        account TEXT NOT NULL,
        uid TEXT NOT NULL,
        image TEXT NOT NULL,
        severity_id INTEGER NOT NULL,
        is_open {bool} NOT NULL,
        cves TEXT NOT NULL,
        exploit {bool},
        fix {bool},
        source_time {big} NOT NULL,
        priority_id INTEGER,
        risk_score INTEGER,
        context TEXT,
        exposed {bool},
        details TEXT,
        basis {big},
        PRIMARY KEY (product, account, uid)
    )""",
    "CREATE INDEX image_vulnerabilities_by_image ON image_vulnerabilities (image)",
)

# Vulnerabilities by priority: the most-urgent-first listing walks the score index and stops at a
# page, and ranking images by their worst priority reads the image index alone.
_PRIORITY_INDEXES: Final = (
    "CREATE INDEX image_vulnerabilities_by_risk ON image_vulnerabilities (risk_score DESC, product, account, uid)",
    "DROP INDEX image_vulnerabilities_by_image",
    "CREATE INDEX image_vulnerabilities_by_image ON image_vulnerabilities (image, is_open, risk_score)",
)

# Claims and a lean ledger. New ledger rows no longer copy the document: the legacy column holds
# JSON null for them (rows written before keep theirs, so nothing is rewritten), a retried row's
# document is kept once per version in ledger_documents, and a row sent at once needs none. A
# claim token on the row and a thread hold on message_refs make concurrent workers send each row
# and each first message once. The indexes serve the hourly check (the oldest pending row per sink
# without reading settled rows) and expiry (settled rows by when they were settled).
_LEDGER_7: Final = (
    "ALTER TABLE ledger ADD COLUMN claim TEXT",
    "ALTER TABLE ledger ADD COLUMN previous_severity_id INTEGER",
    """CREATE TABLE ledger_documents (
        version TEXT NOT NULL PRIMARY KEY,
        document {json} NOT NULL,
        created {big} NOT NULL
    )""",
    "CREATE INDEX ledger_pending_by_sink ON ledger (sink, created) WHERE state = 'pending'",
    "CREATE INDEX ledger_settled ON ledger (next_attempt) WHERE state <> 'pending'",
    "ALTER TABLE message_refs ADD COLUMN claim TEXT",
    "ALTER TABLE message_refs ADD COLUMN lease_until {big}",
)

# The same input failing again is one dead letter with a count: keep the newest row of each input,
# count what it stood for, then let the unique index keep it so.
_DEAD_LETTERS: Final = (
    "ALTER TABLE dead_letters ADD COLUMN count {big} NOT NULL DEFAULT 1",
    "UPDATE dead_letters SET count = (SELECT count(*) FROM dead_letters AS d WHERE d.sha256 = dead_letters.sha256)",
    "DELETE FROM dead_letters WHERE id NOT IN (SELECT max(id) FROM dead_letters GROUP BY sha256)",
    "CREATE UNIQUE INDEX dead_letters_by_input ON dead_letters (sha256)",
)

# Replays converge: a finding keeps the transport's order of its version (for versions whose
# source times tie) and the contents it has accepted (so that an old one delivered again is stale).
_REPLAYS: Final = (
    "ALTER TABLE findings ADD COLUMN logged_time {big}",
    "ALTER TABLE findings ADD COLUMN sequence {big}",
    "ALTER TABLE findings ADD COLUMN seen TEXT",
)

# The health report names each account's cloud: kept as deliveries arrive, instead of a finding
# read back per account on every report (rows from before stay NULL until their next delivery).
_SOURCE_CLOUD: Final = ("ALTER TABLE sources ADD COLUMN cloud TEXT",)

# A table's key cannot change in place on SQLite: the signals move to a table keyed by resource
# too; those kept before name no resource ("").
_SIGNAL_RESOURCE: Final = (
    """CREATE TABLE health_signals_by_resource (
        source TEXT NOT NULL,
        account_uid TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        resource TEXT NOT NULL,
        healthy {bool} NOT NULL,
        time {big} NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (source, account_uid, service, region, resource)
    )""",
    "INSERT INTO health_signals_by_resource (source, account_uid, service, region, resource, healthy, time, detail)"
    " SELECT source, account_uid, service, region, '', healthy, time, detail FROM health_signals",
    "DROP TABLE health_signals",
    "ALTER TABLE health_signals_by_resource RENAME TO health_signals",
)

# Coverage tells one source's evidence in a cell from another's (a silent source's old finding
# must not count because another source of the cell is live): the cell index names the product
# and cloud, so that each (cell, source, cloud) is still one lookup at the end of the index.
_CELL_BY_SOURCE: Final = (
    "DROP INDEX findings_by_cell",
    "CREATE INDEX findings_by_cell ON findings (container_service, layer, task, product, cloud, last_seen)"
    " WHERE NOT sample AND product <> 'corral'",
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
        "findings: short id, sample flag and search text as columns",
        tuple(st.format(bool="INTEGER", false="0") for st in _STEP_3_COLUMNS),
        tuple(st.format(bool="BOOLEAN", false="FALSE") for st in _STEP_3_COLUMNS),
        _backfill_read_columns,
    ),
    Migration(
        4,
        "findings: indexes by id, and by cloud, service, account, cluster, namespace, status over time; coverage cells",
        _STEP_4_SQLITE,
        _STEP_4_POSTGRESQL,
    ),
    Migration(
        5,
        "image inventory: names, runtime sightings, exposures, vulnerabilities with their priority",
        _spell(_IMAGES, "sqlite"),
        _spell(_IMAGES, "postgresql"),
    ),
    Migration(
        6,
        "findings: drop the cluster, namespace and status listing indexes (each re-delivery rewrote them)",
        _STEP_6,
        _STEP_6,
    ),
    Migration(
        7,
        "delivery claims, ledger rows without document copies, ledger expiry and backlog indexes",
        _spell(_LEDGER_7, "sqlite"),
        _spell(_LEDGER_7, "postgresql"),
    ),
    Migration(
        8,
        "one dead letter per distinct input, with a count of how often it failed",
        _spell(_DEAD_LETTERS, "sqlite"),
        _spell(_DEAD_LETTERS, "postgresql"),
    ),
    Migration(
        9,
        "findings keep their version's transport order and the contents they have accepted",
        _spell(_REPLAYS, "sqlite"),
        _spell(_REPLAYS, "postgresql"),
    ),
    Migration(
        10,
        "findings: index by severity and state over time (the most-severe-first list); drop (closed, last seen)",
        _STEP_10,
        _STEP_10,
    ),
    Migration(11, "source health: each account's cloud, as its findings say", _SOURCE_CLOUD, _SOURCE_CLOUD),
    Migration(
        12,
        "health signals: one per resource (cluster, instance) the source names",
        _spell(_SIGNAL_RESOURCE, "sqlite"),
        _spell(_SIGNAL_RESOURCE, "postgresql"),
    ),
    Migration(
        13,
        "image vulnerabilities: index by risk score (most urgent first); the image index covers the priority",
        _PRIORITY_INDEXES,
        _PRIORITY_INDEXES,
    ),
    Migration(
        14,
        "findings: the coverage cell index names each finding's product and cloud (evidence per source)",
        _CELL_BY_SOURCE,
        _CELL_BY_SOURCE,
    ),
)
LATEST: Final = MIGRATIONS[-1].version


def pending(applied: set[int]) -> list[Migration]:
    """Return the steps not yet applied, in order."""
    return [m for m in MIGRATIONS if m.version not in applied]


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
            if step.backfill is not None:
                step.backfill(db, dialect)
            db.execute(record, (step.version, step.description, int(time.time() * 1000)))
