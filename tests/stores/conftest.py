"""One `store` fixture over every backend, so that the contract suite runs unchanged on each.

SQLite uses a file (other processes open it by URL); PostgreSQL gets a fresh, migrated database
on the session's own server; DynamoDB gets a fresh table on the session's moto server.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.stores import open_store
from corral.stores.base import Store
from tests.support.moto import moto_server
from tests.support.postgres import PostgresServer, postgres_server, postgres_url

__all__ = ["moto_server", "postgres_server", "postgres_url"]

BACKENDS = ("sqlite", "postgresql", "dynamodb")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _dynamodb_url(request: pytest.FixtureRequest) -> str:
    if importlib.util.find_spec("corral.stores.dynamodb") is None:
        _missing("corral.stores.dynamodb is not available")
    endpoint = request.getfixturevalue("moto_server")
    return f"dynamodb://corral-test-{uuid.uuid4().hex}?region=us-east-1&endpoint={endpoint}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated store of each backend (for opening from other threads and processes)."""
    backend: str = request.param
    server: PostgresServer | None = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'corral.db'}"
    elif backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database("contract")
    else:
        url = _dynamodb_url(request)
    store = open_store(url)
    try:
        store.migrate()
    finally:
        store.close()
    yield url
    if server is not None:
        server.drop_database(url)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An empty store of each backend."""
    opened = open_store(store_url)
    yield opened
    opened.close()
