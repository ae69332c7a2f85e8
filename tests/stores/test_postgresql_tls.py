"""The PostgreSQL store reaches a server beyond loopback over TLS, unless the operator chose otherwise.

libpq's default sslmode, `prefer`, falls back to plaintext without a word. These tests read the
connection string the store hands to `psycopg.connect` (stopped there, no server needed) with
psycopg's own parser.
"""

from __future__ import annotations

from typing import NoReturn

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from corral.errors import StoreUnavailableError
from corral.stores import open_store

LIBPQ_ENVIRONMENT = ("PGHOST", "PGHOSTADDR", "PGSSLMODE", "PGSSLROOTCERT", "PGSERVICE")


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: the machine's own PG* variables would change the outcome."""
    for name in LIBPQ_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def connected_with(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The parameters the store for `url` would connect with, as psycopg parses them."""
    seen: list[str] = []

    def connect(conninfo: str, **_: object) -> NoReturn:
        seen.append(conninfo)
        raise psycopg.OperationalError("stopped before connecting")

    monkeypatch.setattr(psycopg, "connect", connect)
    with pytest.raises(StoreUnavailableError):
        open_store(url).schema_version()
    [conninfo] = seen
    return conninfo_to_dict(conninfo)


def test_a_remote_host_without_sslmode_gains_require_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """sslmode=require is added; every other parameter is what it was."""
    assert connected_with("postgresql://corral@db.internal:5432/corral?connect_timeout=3", monkeypatch) == {
        "user": "corral",
        "host": "db.internal",
        "port": "5432",
        "dbname": "corral",
        "connect_timeout": "3",
        "application_name": "corral",
        "sslmode": "require",
    }


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://corral@10.0.0.5/corral",
        "postgres://corral@corral.postgres.database.azure.com/corral",
        "postgresql://corral@127.0.0.1,db.internal/corral",  # one server of two is remote
        "postgresql://corral@localhost/corral?hostaddr=10.0.0.5",  # the name is local, the address is not
    ],
)
def test_remote_servers_are_reached_with_sslmode_require(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any server that is not loopback, named or addressed, gets sslmode=require."""
    assert connected_with(url, monkeypatch)["sslmode"] == "require"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])
def test_an_explicit_sslmode_is_kept(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL's sslmode is the operator's choice, even a weaker one."""
    assert connected_with(f"postgresql://corral@db.internal/corral?sslmode={mode}", monkeypatch)["sslmode"] == mode


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("postgresql://corral@db.internal/corral", {"PGSSLMODE": "verify-full"}),  # libpq reads it: never downgraded
        ("postgresql://corral@db.internal/corral", {"PGSSLMODE": "disable"}),
        ("postgresql://corral@db.internal/corral?service=corral", {}),  # the service entry may set its own
        ("postgresql://corral@db.internal/corral", {"PGSERVICE": "corral"}),
        ("postgresql://corral@db.internal/corral?sslrootcert=system", {}),  # libpq: verify-full, nothing weaker
        ("postgresql://corral@db.internal/corral", {"PGSSLROOTCERT": "system"}),
    ],
)
def test_what_the_environment_or_a_service_chooses_is_left_to_libpq(
    url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sslmode is written over PGSSLMODE, a service entry or sslrootcert=system."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert "sslmode" not in connected_with(url, monkeypatch)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://corral@127.0.0.1:5432/corral",
        "postgresql://corral@localhost/corral",
        "postgresql://corral@LocalHost/corral",
        "postgresql://corral@[::1]:5432/corral",
        "postgresql:///corral",  # libpq's default Unix socket
        "postgresql:///corral?host=/var/run/postgresql",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/corral",
        "postgresql:///corral?host=@corral",  # an abstract Unix socket
        "postgresql://corral@db.internal/corral?hostaddr=127.0.0.1",  # the name only labels a loopback address
        "postgresql://corral@127.0.0.1,localhost/corral",
    ],
)
def test_loopback_hosts_and_unix_sockets_are_untouched(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing crosses a network: libpq's default stays."""
    assert "sslmode" not in connected_with(url, monkeypatch)


def test_the_environment_host_counts_when_the_url_names_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """PGHOST supplies the host libpq connects to when the URL has none, and only then."""
    monkeypatch.setenv("PGHOST", "db.internal")
    assert connected_with("postgresql:///corral", monkeypatch)["sslmode"] == "require"
    assert "sslmode" not in connected_with("postgresql://127.0.0.1/corral", monkeypatch)
