"""Fixtures: a store filled through the real pipeline, and the dashboard server running in this process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.dashboard import server
from corral.pipeline import Pipeline, now_ms
from corral.stores import open_store
from corral.stores.base import Store
from tests.coverage.conftest import Clock, clock, pipeline  # noqa: F401 (fixtures)
from tests.coverage.test_dashboard import filled  # noqa: F401 (fixture)


class Running:
    """A dashboard server on a free loopback port, served by a background thread."""

    def __init__(self, dashboard: server.Dashboard) -> None:
        self.httpd = server.make_server(dashboard, "127.0.0.1", 0)
        self.port = int(self.httpd.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def run_dashboard(filled: Pipeline) -> Iterator[Callable[..., Running]]:  # noqa: F811
    """Start a dashboard over the filled store; `opener` may wrap each store connection."""
    started: list[Running] = []

    def start(opener: Callable[[], Store] | None = None, **kwargs: object) -> Running:
        url = filled.store.url
        pool = server.StorePool(opener or (lambda: open_store(url)))
        running = Running(server.Dashboard(pool, {}, now_ms, **kwargs))  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def store_path(filled: Pipeline, tmp_path: Path) -> Path:  # noqa: F811
    """The filled SQLite file."""
    return tmp_path / "corral.db"
