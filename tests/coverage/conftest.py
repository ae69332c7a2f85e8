"""Shared fixtures: a SQLite store in tmp filled through the real pipeline from the delivery fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store

EVENTS = Path(__file__).resolve().parents[1] / "events"
HOUR = 3_600_000
# 2025-06-01T00:00:00Z: after every fixture's own time, so ordering is realistic.
T0 = 1_748_736_000_000


@dataclass
class Clock:
    """A settable clock for the pipeline (epoch ms)."""

    now: int = T0
    history: list[int] = field(default_factory=list)

    def __call__(self) -> int:
        return self.now


def published(inbounds: list[Inbound], at: int) -> list[Inbound]:
    """The same EventBridge deliveries as if published at `at`: a source shows it is live only by
    the times it states, and the fixtures' own are a year old."""
    stamp = datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return [inbound._replace(data={**inbound.data, "time": stamp}) for inbound in inbounds]  # type: ignore[dict-item]


def deliveries(*globs: str) -> list[Inbound]:
    """Read fixture files (relative to tests/events) as deliveries."""
    found = []
    for pattern in globs:
        paths = sorted(EVENTS.glob(pattern))
        assert paths, f"no fixture matches {pattern}"
        found += [Inbound(json.loads(p.read_text()), ref=str(p.relative_to(EVENTS))) for p in paths]
    return found


@pytest.fixture
def clock() -> Clock:
    """A clock starting at T0."""
    return Clock()


@pytest.fixture
def pipeline(tmp_path: Path, clock: Clock) -> Iterator[Pipeline]:
    """A pipeline over a fresh SQLite store, without sinks."""
    pipe = Pipeline(open_store(f"sqlite:///{tmp_path / 'corral.db'}"), clock=clock)
    yield pipe
    pipe.close()
