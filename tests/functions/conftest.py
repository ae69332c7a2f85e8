"""Helpers for calling each cloud's entry point the way its platform does.

Each entry module builds its `Pipeline` at import (cold start), so every test imports a fresh copy
of the module under a unique name, after setting the environment the platform would set.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from corral.stores import open_store
from tests.support.moto import moto_server  # noqa: F401 - the session fixture, used by the AWS tests

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "tests" / "events"
_counter = itertools.count()


def load_event(relative: str) -> Any:
    """Parse one sample delivery from tests/events/."""
    return json.loads((EVENTS / relative).read_text())


def import_entry(path: Path) -> ModuleType:
    """Import an entry module as a fresh cold start (the environment must already be set)."""
    name = f"corral_entry_{path.parent.name}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


UNROUTED_NOTICE = 'sink "file:spare" is named by no route; it will receive nothing'
"""What a cold start logs, at WARNING, for `spare_sink_config`."""


def spare_sink_config(folder: Path) -> str:
    """A corral.toml in `folder` defining two file sinks and routing one: "file:spare" receives nothing."""
    path = folder / "corral.toml"
    path.write_text(
        f'[sinks."file:archive"]\npath = "{folder / "archive.jsonl"}"\n'
        f'[sinks."file:spare"]\npath = "{folder / "spare.jsonl"}"\n'
        '[[routes]]\nto = ["file:archive"]\n'
    )
    return str(path)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_store_url() -> str:
    """A real store URL whose server is down: PostgreSQL on a loopback port nobody listens on."""
    return f"postgresql://corral@127.0.0.1:{free_port()}/corral?connect_timeout=2"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite store in a temporary folder."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    store.migrate()
    store.close()
    yield url
