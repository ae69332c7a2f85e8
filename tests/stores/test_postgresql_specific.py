"""What only the PostgreSQL store does: explicit migrations, data-only runtime rights, outages."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import pq

from corral import config
from corral.errors import ConfigError, PermanentError, StoreUnavailableError
from corral.pipeline import Inbound, Pipeline
from corral.stores import migrations, open_store
from corral.stores.base import FindingQuery, LedgerEntry, SourceSeen
from corral.stores.postgresql import PostgresStore, lock_id
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.postgres import PostgresServer, start_or_skip

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def empty_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database (no Corral schema)."""
    url = postgres_server.create_database("specific")
    yield url
    postgres_server.drop_database(url)


def applied(url: str) -> list[int]:
    """Return the versions recorded in schema_migrations, in order."""
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_missing_schema_asks_for_migrate(empty_url: str) -> None:
    """A store on a database without the schema refuses to work and says to run `corral store migrate`."""
    store = open_store(empty_url)
    with pytest.raises(ConfigError, match="run `corral store migrate`"):
        store.get(("p", "a", "u"))
    with pytest.raises(ConfigError, match="run `corral store migrate`"):
        store.upsert([make_finding()], now=BASE_TIME)
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regclass('findings')").fetchone() == (None,)
    store.close()


def test_older_schema_asks_for_migrate(empty_url: str) -> None:
    """A database at an older schema version is refused with the version it has."""
    first = migrations.MIGRATIONS[0]
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(migrations.SCHEMA_TABLE_POSTGRESQL)
        for statement in first.postgresql:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, 0)", (first.version, first.description))
    store = open_store(empty_url)
    with pytest.raises(ConfigError, match=rf"schema version {first.version}.*run `corral store migrate`"):
        store.counts()
    store.migrate()
    assert store.counts() == []
    assert applied(empty_url) == [m.version for m in migrations.MIGRATIONS]
    store.close()


def test_migrate_applies_once(empty_url: str) -> None:
    """Migrating twice applies each step once; the store then works."""
    store = open_store(empty_url)
    store.migrate()
    store.migrate()
    assert applied(empty_url) == [m.version for m in migrations.MIGRATIONS]
    assert store.upsert([make_finding()], now=BASE_TIME)[0].kind == "new"
    store.close()


def test_concurrent_migrations_apply_once(empty_url: str) -> None:
    """Several migrators at once all succeed and apply each step once."""
    barrier = threading.Barrier(5)

    def migrator(_: int) -> int:
        store = PostgresStore(empty_url)
        barrier.wait(timeout=30)
        store.migrate()
        version = store.schema_version()
        store.close()
        return version

    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(migrator, range(5))) == [migrations.LATEST] * 5
    assert applied(empty_url) == [m.version for m in migrations.MIGRATIONS]


def test_runtime_needs_only_data_rights(empty_url: str) -> None:
    """A role with SELECT, INSERT, UPDATE and DELETE only (no DDL) can run every store operation."""
    owner = open_store(empty_url)
    owner.migrate()
    owner.close()
    role = "corral_runtime"
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    url = empty_url.replace("postgres@", f"{role}@")
    store = open_store(url)
    finding = make_finding()
    [change] = store.upsert([finding], now=BASE_TIME)
    store.upsert([make_finding(modified=BASE_TIME + 1, severity_id=5)], now=BASE_TIME + 1)
    assert [f.key for f in store.query(FindingQuery(severity_at_least=5)).items] == [change.key]
    entry = LedgerEntry(change.version, "slack:x", change.key, "new", finding, BASE_TIME)
    assert store.ledger_add([entry]) == [entry]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE nope (x int)")
    store.close()
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_server_down_is_unavailable_without_the_password() -> None:
    """A stopped server gives StoreUnavailableError: one line, the URL without its password."""
    server = start_or_skip()
    try:
        url = server.create_database("outage").replace("postgres@", f"postgres:{PASSWORD}@")
        store = open_store(url)
        store.migrate()
        assert store.upsert([make_finding()], now=BASE_TIME)[0].kind == "new"
        assert PASSWORD not in store.url
        server.stop()
        for call in (store.counts, lambda: open_store(url).get(("p", "a", "u"))):
            with pytest.raises(StoreUnavailableError) as caught:
                call()
            message = str(caught.value)
            assert PASSWORD not in message
            assert "postgres:***@127.0.0.1" in message
            assert "\n" not in message
            assert caught.value.__cause__ is None
        server.start()
        # The same store object reconnects once the server is back (a warm function keeps its store).
        assert store.upsert([make_finding()], now=BASE_TIME + 1)[0].kind == "unchanged"
        store.close()
    finally:
        server.remove()


def test_bad_url_is_a_config_error_without_the_password() -> None:
    """An unparsable connection string is a ConfigError that does not echo the password."""
    with pytest.raises(ConfigError) as caught:
        open_store(f"postgresql://corral:{PASSWORD}@db.internal/corral?sslmode=nonsense&foo=bar")
    assert PASSWORD not in str(caught.value)


def test_lock_ids_are_stable_signed_64_bit() -> None:
    """Advisory lock ids depend only on the identity and fit PostgreSQL's bigint."""
    key = ("aws.guardduty", "111122223333", "arn:aws:guardduty:...:finding/abc")
    assert lock_id(key) == lock_id(tuple(key))  # type: ignore[arg-type]
    assert lock_id(key) != lock_id((*key[:2], "other"))
    assert all(-(2**63) <= lock_id((str(i), "a", "b")) < 2**63 for i in range(200))


def test_a_value_beyond_an_index_limit_is_dead_lettered_not_an_outage(empty_url: str) -> None:
    """A finding id too long for PostgreSQL's index is that record's failure: the rest of the batch is stored."""
    store = open_store(empty_url)
    store.migrate()
    huge = make_finding(uid=secrets.token_hex(2500))  # random, so PostgreSQL cannot compress it under 2.7 KB
    with pytest.raises(PermanentError, match=r"PostgreSQL refused it: index row size") as caught:
        store.upsert([huge], now=BASE_TIME)
    assert not isinstance(caught.value, StoreUnavailableError)
    run = Pipeline(store, config.parse({}).router, {}, clock=lambda: BASE_TIME)
    batch = [make_finding("a"), huge, make_finding("b")]
    result = run.ingest([Inbound(orjson.dumps(f), f"bus#{n}") for n, f in enumerate(batch)])
    assert result.counts == Counter(new=2, failed=1)
    [letter] = store.dead_letters()
    assert letter.ref == "bus#1"
    assert "index row size" in letter.reason
    assert orjson.loads(letter.raw)["finding_info"]["uid"] == huge["finding_info"]["uid"]
    store.close()


def test_health_inputs_are_one_round_trip(empty_url: str, tmp_path: Path) -> None:
    """The three reads of a health report are pipelined: libpq's own trace shows one Sync and one answer."""
    store = open_store(empty_url)
    store.migrate()
    assert isinstance(store, PostgresStore)
    try:
        store.touch_sources([SourceSeen("aws.guardduty", "111", at=BASE_TIME)])
        conn = store._connection()  # the store's own connection, to trace what it sends
        trace = tmp_path / "libpq.trace"
        with trace.open("w") as out:
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            inputs = store.health_inputs()
            conn.pgconn.untrace()
        lines = trace.read_text().splitlines()
        assert [s.source for s in inputs.sources] == ["aws.guardduty"]
        sent = [line for line in lines if line.startswith("F") and ("\tExecute\t" in line or "\tQuery\t" in line)]
        assert len(sent) == 3
        assert sum("\tReadyForQuery\t" in line for line in lines) == 1  # the server answered once
    finally:
        store.close()
