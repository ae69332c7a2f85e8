"""The coverage drill-down counts every finding in the window on SQL stores, and a bounded sample otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import ocsf
from corral.dashboard import listing
from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store
from corral.stores.base import PlaceCount, Store
from tests.coverage.test_dashboard import hostile_finding
from tests.support.moto import moto_server
from tests.support.postgres import PostgresServer, postgres_server

__all__ = ["moto_server", "postgres_server"]

NOW = 1_780_000_000_000
HOUR = 3_600_000
WINDOW = 24 * HOUR
# (account, cluster) of each GKE finding: 3 in a-1/c-1, 2 in a-1/c-2, 1 in a-2 without a cluster.
PLACES = [("a-1", "c-1")] * 3 + [("a-1", "c-2")] * 2 + [("a-2", None)]


def _findings() -> list[dict[str, object]]:
    found = []
    for i, (account, cluster) in enumerate(PLACES):
        finding = hostile_finding(NOW - i)
        finding["cloud"] = ocsf.cloud("GCP", account, "europe-west1")
        finding["finding_info"] = {**finding["finding_info"], "uid": f"f-{i}"}  # type: ignore[dict-item]
        finding["resources"] = [{"type": "GKE Cluster", "name": cluster}] if cluster else []
        found.append(finding)
    return found


@pytest.fixture(params=["sqlite", "postgresql", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of each backend holding the GKE findings of PLACES, plus one seen before the window."""
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'corral.db'}"
    elif request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database("drill")
    else:
        url = f"dynamodb://corral-drill-{uuid.uuid4().hex}?region=us-east-1&endpoint={request.getfixturevalue('moto_server')}"
    opened = open_store(url)
    opened.migrate()
    old = hostile_finding(NOW - 3 * WINDOW)
    old["finding_info"] = {**old["finding_info"], "uid": "old"}  # type: ignore[dict-item]
    Pipeline(opened, clock=lambda: NOW - 2 * WINDOW).ingest([Inbound(old, ref="old")])
    Pipeline(opened, clock=lambda: NOW).ingest([Inbound(f, ref=f"t{i}") for i, f in enumerate(_findings())])
    yield opened
    opened.close()
    if server is not None:
        server.drop_database(url)


EXPECTED_CLUSTERS = [("c-1", 3, NOW), ("c-2", 2, NOW)]
EXPECTED_ACCOUNTS = [("GCP", "a-1", 5, NOW), ("GCP", "a-2", 1, NOW)]


def test_grouped_counts_match_what_the_findings_say(store: Store) -> None:
    """Per cluster and per account, in the window only; SQL stores group, DynamoDB says it cannot."""
    grouped = store.place_counts("GKE", NOW - WINDOW)
    if store.url.startswith("dynamodb"):
        assert grouped is None
    else:
        assert sorted(grouped or [], key=lambda p: (p.account, p.cluster or "")) == [
            PlaceCount("GCP", "a-1", "c-1", 3, NOW),
            PlaceCount("GCP", "a-1", "c-2", 2, NOW),
            PlaceCount("GCP", "a-2", None, 1, NOW),
        ]
        assert store.place_counts("EKS", NOW - WINDOW) == []
    drill = listing.drilldown(store, "GKE", NOW, WINDOW)
    assert (drill.clusters, drill.accounts, drill.read, drill.total) == (EXPECTED_CLUSTERS, EXPECTED_ACCOUNTS, 6, 6)


def test_sql_stores_count_beyond_the_sample_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the sample limit below the matches, SQL stores still count them all; DynamoDB counts a sample
    and says how many it read of how many."""
    monkeypatch.setattr(listing, "DRILL_LIMIT", 2)
    drill = listing.drilldown(store, "GKE", NOW, WINDOW)
    if store.url.startswith("dynamodb"):
        assert (drill.read, drill.total) == (2, 6)
        assert sum(n for _, _, n, _ in drill.accounts) == 2
    else:
        assert (drill.clusters, drill.accounts, drill.read, drill.total) == (EXPECTED_CLUSTERS, EXPECTED_ACCOUNTS, 6, 6)
