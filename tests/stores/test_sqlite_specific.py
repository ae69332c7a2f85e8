"""What only the SQLite store does: migrate on open, WAL, paths relative to the working folder."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from corral import limits
from corral.errors import ConfigError, StoreUnavailableError
from corral.stores import migrations, open_store
from corral.stores.sqlite import SqliteStore, path_of
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.permissions import loose_umask, mode  # noqa: F401  (loose_umask: the fixture)


def applied(path: Path) -> list[int]:
    """Return the versions recorded in schema_migrations, in order."""
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_open_migrates_once(tmp_path: Path) -> None:
    """Opening applies every migration once; opening again and migrating again apply nothing."""
    path = tmp_path / "corral.db"
    store = SqliteStore(f"sqlite:///{path}")
    assert store.schema_version() == migrations.LATEST
    store.migrate()
    store.close()
    SqliteStore(f"sqlite:///{path}").close()
    assert applied(path) == [m.version for m in migrations.MIGRATIONS]


def test_concurrent_opens_migrate_once(tmp_path: Path) -> None:
    """Several stores opening a new file at the same moment all succeed and migrate it once."""
    path = tmp_path / "race.db"
    barrier = threading.Barrier(6)

    def opener(_: int) -> int:
        barrier.wait(timeout=30)
        store = SqliteStore(f"sqlite:///{path}")
        store.migrate()
        version = store.schema_version()
        store.close()
        return version

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(opener, range(6))) == [migrations.LATEST] * 6
    assert applied(path) == [m.version for m in migrations.MIGRATIONS]


def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The database file is switched to WAL, so readers do not block the writer."""
    path = tmp_path / "wal.db"
    SqliteStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_relative_path_is_relative_to_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sqlite:///name.db` is a file in the working folder; `sqlite://` is `corral.db` there."""
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/here.db")
    store.upsert([make_finding()], now=BASE_TIME)
    store.close()
    assert (tmp_path / "data" / "here.db").is_file()
    assert path_of("sqlite://") == "corral.db"
    assert path_of("sqlite:////var/lib/corral/x.db") == "/var/lib/corral/x.db"
    assert path_of("sqlite:///:memory:") == ":memory:"


def test_memory_store_works() -> None:
    """An in-memory store keeps what it is given for its lifetime."""
    store = open_store("sqlite:///:memory:")
    [change] = store.upsert([make_finding()], now=BASE_TIME)
    assert change.kind == "new"
    assert store.get(change.key) is not None


def test_remote_host_is_a_config_error() -> None:
    """A SQLite URL naming a host is refused: SQLite is a local file."""
    with pytest.raises(ConfigError, match="local file"):
        open_store("sqlite://db.example.com/corral.db")


def test_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    """A path that cannot be a database raises StoreUnavailableError naming the URL."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    url = f"sqlite:///{blocker}/corral.db"
    with pytest.raises(StoreUnavailableError, match="not-a-folder"):
        open_store(url)


def test_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    """A file that is not a SQLite database raises StoreUnavailableError, not a driver error."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError, match=r"garbage\.db"):
        open_store(f"sqlite:///{path}")


def test_documents_serialized_beforehand_are_stored_as_the_store_would_write_them(tmp_path: Path) -> None:
    """The pipeline hands over each finding's JSON from its limits check: the rows are the same as without it."""
    findings = [make_finding(f"f{n}", severity_id=2 + n % 3) for n in range(4)]
    again = [make_finding(f"f{n}", severity_id=5, modified=BASE_TIME + 1000) for n in range(2)]
    encoder = limits.Encoder()
    rows = []
    for name, documents in (("plain", None), ("given", [encoder.encode(f)[0] for f in [*findings, *again]])):
        store = SqliteStore(f"sqlite:///{tmp_path}/{name}.db")
        first = store.upsert(findings, now=BASE_TIME, documents=(documents or [])[: len(findings)])
        # Given for some findings only (None for others), as when the prioritizer changed a finding.
        second = store.upsert(again, now=BASE_TIME + 1, documents=[None, *(documents or [])[len(findings) + 1 :]])
        assert [c.kind for c in (*first, *second)] == ["new"] * 4 + ["escalated"] * 2
        store.close()
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            rows.append(db.execute("SELECT * FROM findings ORDER BY uid").fetchall())
    assert rows[0] == rows[1]
    assert [orjson.loads(row[22]) for row in rows[1]] == [*again, *findings[2:]]


def test_a_document_given_is_written_as_it_is(tmp_path: Path) -> None:
    """No second serialization: the text given is the text stored (here indented, to tell them apart)."""
    finding = make_finding("given")
    text = orjson.dumps(finding, option=orjson.OPT_INDENT_2)
    store = SqliteStore(f"sqlite:///{tmp_path}/corral.db")
    store.upsert([finding], now=BASE_TIME, documents=[text])
    store.upsert([finding], now=BASE_TIME + 1, documents=[text])  # unchanged: the refresh writes it too
    store.close()
    with sqlite3.connect(tmp_path / "corral.db") as db:
        [(stored,)] = db.execute("SELECT document FROM findings").fetchall()
    assert stored == text.decode()


@pytest.mark.usefixtures("loose_umask")
def test_a_new_database_is_owner_only_with_its_wal_and_shm(tmp_path: Path) -> None:
    """Under umask 022 a new store file is 0600, its -wal and -shm follow, and the folders made for it are 0700."""
    path = tmp_path / "made" / "for-it" / "corral.db"
    store = SqliteStore(f"sqlite:///{path}")
    try:
        store.upsert([make_finding("private")], now=BASE_TIME)
        # The files SQLite makes beside the database exist while a connection is open.
        assert {p.name for p in path.parent.iterdir()} == {"corral.db", "corral.db-wal", "corral.db-shm"}
        assert {p.name: mode(p) for p in path.parent.iterdir()} == dict.fromkeys(
            ("corral.db", "corral.db-wal", "corral.db-shm"), 0o600
        )
    finally:
        store.close()
    assert mode(tmp_path / "made") == mode(path.parent) == 0o700


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """A file the operator created is opened as it is: its mode stands, and SQLite's -wal and -shm take it."""
    path = tmp_path / "corral.db"
    path.touch()
    path.chmod(0o640)
    store = SqliteStore(f"sqlite:///{path}")
    try:
        store.upsert([make_finding("kept")], now=BASE_TIME)
        assert [mode(path), mode(f"{path}-wal"), mode(f"{path}-shm")] == [0o640] * 3
    finally:
        store.close()
    assert applied(path) == [m.version for m in migrations.MIGRATIONS]
