"""A `store` fixture over every backend for the image-inventory contract, as tests/stores has for findings."""

from __future__ import annotations

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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated store of each backend."""
    backend: str = request.param
    server: PostgresServer | None = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'corral.db'}"
    elif backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database("images")
    else:
        endpoint = request.getfixturevalue("moto_server")
        url = f"dynamodb://corral-images-{uuid.uuid4().hex}?region=us-east-1&endpoint={endpoint}"
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
