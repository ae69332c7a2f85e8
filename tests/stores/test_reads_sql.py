"""SQL read paths: the query plans SQLite chooses for listings and lookups, and the migration of old stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corral import traits
from corral.coverage import evidence_keys
from corral.records import HealthSignal
from corral.stores import _sql, migrations, open_store
from corral.stores._images_sql import prioritized_sql
from corral.stores._shared import pack_cursor
from corral.stores.base import FindingQuery, finding_id
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.postgres import PostgresServer, postgres_server

__all__ = ["postgres_server"]

T = BASE_TIME


def plan(db: sqlite3.Connection, sql: str, params: list[object]) -> str:
    """SQLite's query plan of a statement, one step a line."""
    return "\n".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> sqlite3.Connection:
    """A migrated SQLite store with a few hundred findings, opened raw."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    store = open_store(url)
    store.upsert([make_finding(f"f{i}", cluster=f"c{i % 7}") for i in range(300)], now=T)
    store.close()
    db = sqlite3.connect(tmp_path / "plans.db")
    db.execute("ANALYZE")
    return db


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (FindingQuery(container_service=traits.FUNCTION_APPS), "findings_by_service_time"),
        (FindingQuery(cloud="gcp"), "findings_by_cloud_time"),
        (FindingQuery(account="ACCT"), "findings_by_account_time"),
        (FindingQuery(cluster="c1"), "findings_by_last_seen"),
        (FindingQuery(status_id=4), "findings_by_last_seen"),
        (FindingQuery(), "findings_by_last_seen"),
        (FindingQuery(open_only=True), "findings_by_last_seen"),
        (FindingQuery(severity_at_least=4, open_only=True), "findings_by_last_seen"),
        (FindingQuery(severity_id=5, open_only=True), "findings_by_severity_time"),
    ],
)
def test_each_listing_filter_reads_its_index_in_order(
    sqlite_db: sqlite3.Connection, query: FindingQuery, index: str
) -> None:
    """A filtered first page walks the index that leads with the filter: no table scan, no sort of the matches."""
    clause, params = _sql.where(query, "sqlite")
    text = plan(sqlite_db, f"SELECT document FROM findings WHERE {clause} {_sql.ORDER} LIMIT 51", params)  # noqa: S608
    assert index in text
    assert "TEMP B-TREE" not in text
    assert "SCAN findings\n" not in text + "\n"


def test_a_cursor_page_keeps_the_index_order(sqlite_db: sqlite3.Connection) -> None:
    """The keyset condition (last seen, id) continues along the same index."""
    cursor = pack_cursor([T, "0" * 20])
    clause, params = _sql.where(FindingQuery(cloud="AWS", cursor=cursor), "sqlite")
    text = plan(sqlite_db, f"SELECT document FROM findings WHERE {clause} {_sql.ORDER} LIMIT 51", params)  # noqa: S608
    assert "findings_by_cloud_time" in text and "TEMP B-TREE" not in text


def test_a_severity_band_is_counted_in_its_index(sqlite_db: sqlite3.Connection) -> None:
    """The most-severe-first list counts each band of open findings from the index alone."""
    clause, params = _sql.where(FindingQuery(severity_id=5, open_only=True), "sqlite")
    text = plan(sqlite_db, f"SELECT count(*) FROM findings WHERE {clause}", params)  # noqa: S608
    assert "COVERING INDEX findings_by_severity_time" in text


def test_lookup_and_coverage_use_their_indexes(sqlite_db: sqlite3.Connection) -> None:
    """find() searches the id index; coverage does one lookup per cell in the partial cell index."""
    clause, params = _sql.find_clause("abcdef", "?")
    assert "findings_by_id" in plan(sqlite_db, f"SELECT uid FROM findings WHERE {clause}", params)  # noqa: S608
    keys = evidence_keys()
    text = plan(sqlite_db, _sql.latest_per_cell_sql("?", len(keys)), [*(p for k in keys for p in k), T])
    assert "findings_by_cell" in text
    assert "SCAN findings\n" not in text + "\n"


@pytest.mark.parametrize("running", [True, False])
def test_the_prioritized_listing_walks_the_score_index(sqlite_db: sqlite3.Connection, running: bool) -> None:
    """Most urgent first along the score index, each finding looked up by key: no scan of findings, no sort."""
    clause, params = _sql.where(FindingQuery(open_only=True), "sqlite")
    text = plan(sqlite_db, prioritized_sql(clause, "sqlite", running=running), [1, *params, 50])
    page = text.split("SCAN top")[0]  # finding the page; only the page itself is sorted after
    assert "SCAN image_vulnerabilities USING INDEX image_vulnerabilities_by_risk" in page
    assert "TEMP B-TREE" not in page
    assert "SCAN findings\n" not in text + "\n"


def test_images_are_ranked_from_the_image_index_alone(sqlite_db: sqlite3.Connection) -> None:
    """The worst stored priority per image is read from the covering image index."""
    text = plan(
        sqlite_db,
        "SELECT image, coalesce(max(risk_score), -1) AS worst FROM image_vulnerabilities"
        " WHERE is_open = 1 AND image >= ? AND image <= ? GROUP BY image",
        ["sha256:0", "sha256:f"],
    )
    assert "COVERING INDEX image_vulnerabilities_by_image" in text


def _old_store(path: Path) -> None:
    """Build a version-2 SQLite store (before the read columns) holding two findings, as Corral wrote them then."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(migrations.SCHEMA_TABLE_SQLITE)
    for step in migrations.MIGRATIONS[:2]:
        for statement in step.sqlite:
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (step.version, step.description, 0))
    old_columns = _sql.FINDING_COLUMNS[: _sql.FINDING_COLUMNS.index("fid")]
    sample = make_finding(
        "sample", extra_traits=traits.classify(traits.EKS, traits.PLATFORM, traits.HARDENING, sample=True)[-1:]
    )
    for finding in (make_finding("old-1", title="Reverse Shell"), sample):
        row = _sql.plain_row(finding, now=T)[: len(old_columns)]
        db.execute(f"INSERT INTO findings ({', '.join(old_columns)}) VALUES ({', '.join('?' * len(row))})", row)  # noqa: S608
    db.close()


def test_sqlite_migration_fills_the_read_columns_of_existing_findings(tmp_path: Path) -> None:
    """A store written before the read columns gets ids, sample flags and search text on open."""
    path = tmp_path / "old.db"
    _old_store(path)
    store = open_store(f"sqlite:///{path}")
    try:
        [found] = store.find("old-1")
        assert found.id == finding_id(found.key)
        assert [f.key[2] for f in store.query(FindingQuery(text="reverse shell")).items] == ["old-1"]
        key = (traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, "aws.guardduty", "AWS")
        assert store.latest_per_cell(0, [key]) == {key: T}
    finally:
        store.close()


def test_postgresql_migration_fills_the_read_columns(postgres_server: PostgresServer) -> None:
    """The same upgrade on PostgreSQL: step 3 backfills, step 4 builds the indexes."""
    import psycopg

    url = postgres_server.create_database("upgrade")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(migrations.SCHEMA_TABLE_POSTGRESQL)
            for step in migrations.MIGRATIONS[:2]:
                for statement in step.postgresql:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (step.version, step.description, 0))
            old_columns = _sql.FINDING_COLUMNS[: _sql.FINDING_COLUMNS.index("fid")]
            row = _sql.plain_row(make_finding("old-pg", title="Crypto Miner"), now=T)[: len(old_columns)]
            marks = ", ".join("%s::jsonb" if c in ("traits", "document") else "%s" for c in old_columns)
            conn.execute(f"INSERT INTO findings ({', '.join(old_columns)}) VALUES ({marks})", row)  # noqa: S608
        store = open_store(url)
        try:
            store.migrate()
            [found] = store.find("old-pg")
            assert found.id == finding_id(found.key)
            assert store.count(FindingQuery(text="MINER")).count == 1
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)


def test_latest_step_is_recorded(tmp_path: Path) -> None:
    """A new store is at the latest schema version at once."""
    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert store.schema_version() == migrations.LATEST  # type: ignore[attr-defined]
    finally:
        store.close()


def test_sqlite_migration_keeps_the_signals_it_had(tmp_path: Path) -> None:
    """Signals kept before each resource had its own survive the change of key, naming no resource."""
    path = tmp_path / "signals.db"
    db = sqlite3.connect(path)
    db.execute(migrations.SCHEMA_TABLE_SQLITE)
    for step in migrations.MIGRATIONS[:11]:
        for statement in step.sqlite:
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (step.version, step.description, 0))
    db.execute(
        "INSERT INTO health_signals VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("aws.guardduty", "111", "EKS", "eu-west-1", 0, T, "EKS prod: HEALTHY -> UNHEALTHY"),
    )
    db.commit()
    db.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.signals() == [
            HealthSignal("aws.guardduty", "111", "EKS", False, T, "eu-west-1", "EKS prod: HEALTHY -> UNHEALTHY", "")
        ]
    finally:
        store.close()
