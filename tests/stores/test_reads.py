"""The read side of the store contract on every backend: counts, lookups by id, coverage, trend, filters.

The same tests run against SQLite, PostgreSQL and DynamoDB (moto); each backend computes these in
its own way (SQL aggregates and indexes, DynamoDB's maintained aggregate items and shards), so the
answers must agree here.
"""

from __future__ import annotations

from typing import Any

import pytest

from corral import ocsf, traits
from corral.stores.base import FindingQuery, MatchCount, Store, TrendDay, finding_id, uid_prefix
from tests.stores.factory import BASE_TIME, make_finding

pytestmark = pytest.mark.integration

DAY = 86_400_000
T = BASE_TIME - BASE_TIME % DAY  # a day start, so that day arithmetic stays readable
SAMPLE_TRAIT = traits.classify(traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, sample=True)[-1]


def corral_finding(uid: str, **fields: Any) -> ocsf.Finding:
    """A finding of Corral's own (as source-silence findings are)."""
    finding = make_finding(uid, **fields)
    finding["metadata"]["product"]["uid"] = "corral"
    return finding


def ids(store: Store, query: FindingQuery) -> list[str]:
    """The uids a query answers, in order."""
    return [f.key[2] for f in store.query(query).items]


# Lookup by id ------------------------------------------------------------------------------------


def test_every_finding_has_a_short_stable_id_starting_with_its_uid_hash(store: Store) -> None:
    """A finding's id is 20 hex digits; its first 12 are its uid's, so two accounts' copies share them."""
    store.upsert([make_finding("dup", account="acct-1"), make_finding("dup", account="acct-2")], now=T)
    items = store.query(FindingQuery()).items
    assert {item.id for item in items} == {finding_id(item.key) for item in items}
    assert all(len(item.id) == 20 and item.id.startswith(uid_prefix("dup")) for item in items)
    assert len({item.id for item in items}) == 2
    assert items[0].as_data()["id"] == items[0].id


def test_find_by_id_prefix_and_by_uid(store: Store) -> None:
    """A unique prefix finds one finding; a uid finds every finding with it; the unknown finds nothing."""
    store.upsert(
        [make_finding("one"), make_finding("two"), make_finding("dup", account="a"), make_finding("dup", account="b")],
        now=T,
    )
    one = store.query(FindingQuery(limit=10)).items
    target = next(item for item in one if item.key[2] == "one")
    assert [f.key[2] for f in store.find(target.id)] == ["one"]
    assert [f.key[2] for f in store.find(target.id[:8].upper())] == ["one"]
    assert [f.key[2] for f in store.find("one")] == ["one"]
    assert sorted(f.key[1] for f in store.find("dup")) == ["a", "b"]
    assert len(store.find("dup", limit=1)) == 1
    assert store.find("no-such-finding") == []
    assert store.find("ffffffffffffffffffff") == []


# Counts ------------------------------------------------------------------------------------------


def test_count_matches_the_query_and_ignores_limit_and_cursor(store: Store) -> None:
    """count() counts every match of the filters, not the page."""
    store.upsert([make_finding(f"a{i}", cloud="AWS") for i in range(7)], now=T)
    store.upsert([make_finding(f"g{i}", cloud="GCP", account="proj") for i in range(3)], now=T + 1)
    assert store.count(FindingQuery()) == MatchCount(10)
    assert store.count(FindingQuery(cloud="gcp", limit=1)) == MatchCount(3)
    page = store.query(FindingQuery(cloud="AWS", limit=2))
    assert store.count(FindingQuery(cloud="AWS", limit=2, cursor=page.next_cursor)) == MatchCount(7)
    assert store.count(FindingQuery(cloud="Azure")) == MatchCount(0)


def test_counts_follow_changes_and_expiry(store: Store) -> None:
    """Counts by cloud, severity and status move with an escalation and drop with an expired finding."""
    store.upsert([make_finding("a", severity_id=3), make_finding("b", severity_id=3)], now=T)
    store.upsert([make_finding("a", severity_id=5, modified=BASE_TIME + 1)], now=T + 1)
    store.upsert([make_finding("b", status_id=ocsf.STATUS_RESOLVED, modified=BASE_TIME + 1)], now=T + 2)
    rows = {(r.cloud, r.severity_id, r.status_id): r.count for r in store.counts()}
    assert rows == {("AWS", 5, ocsf.STATUS_NEW): 1, ("AWS", 3, ocsf.STATUS_RESOLVED): 1}
    assert store.count(FindingQuery(open_only=True)) == MatchCount(1)
    assert store.count(FindingQuery(severity_id=3)) == MatchCount(1)
    assert store.count(FindingQuery(severity_id=3, open_only=True)) == MatchCount(0)
    assert store.expire_closed(T + 10) == 1
    assert [(r.severity_id, r.count) for r in store.counts()] == [(5, 1)]


# Coverage and trend -------------------------------------------------------------------------------


def test_latest_per_cell_is_the_newest_real_finding_per_cell(store: Store) -> None:
    """The newest last seen per cell since a time; samples and Corral's own findings do not count."""
    store.upsert([make_finding("old", service=traits.GKE, cloud="GCP", account="p")], now=T)
    store.upsert([make_finding("eks-1")], now=T + 100)
    store.upsert([make_finding("eks-2")], now=T + 200)
    store.upsert([make_finding("vuln", task=traits.VULNERABILITY_MANAGEMENT)], now=T + 150)
    store.upsert([make_finding("sample", extra_traits=[SAMPLE_TRAIT], service=traits.AKS, cloud="Azure")], now=T + 300)
    store.upsert([corral_finding("ours", service=traits.CLOUD_RUN, cloud="GCP", account="p")], now=T + 300)
    store.upsert([make_finding("defender", cloud="Azure", account="sub")], now=T + 250)
    td = (traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, "aws.guardduty", "AWS")
    vuln = (traits.EKS, traits.PLATFORM, traits.VULNERABILITY_MANAGEMENT, "aws.guardduty", "AWS")
    gke = (traits.GKE, traits.PLATFORM, traits.THREAT_DETECTION, "gcp.scc", "GCP")
    other = (traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, "azure.defender", "Azure")
    sample = (traits.AKS, traits.PLATFORM, traits.THREAT_DETECTION, "azure.defender", "Azure")
    ours = (traits.CLOUD_RUN, traits.PLATFORM, traits.THREAT_DETECTION, "corral", "GCP")
    keys = [td, vuln, gke, other, sample, ours]
    # Each source's findings are its own: Defender's newer finding in the same cell is told apart.
    assert store.latest_per_cell(T + 50, keys) == {td: T + 200, vuln: T + 150, other: T + 250}
    assert store.latest_per_cell(T, keys)[gke] == T
    assert store.latest_per_cell(T, [td]) == {td: T + 200}  # only the keys asked for
    assert store.latest_per_cell(T, []) == {}


def test_trend_counts_first_and_last_seen_per_day(store: Store) -> None:
    """Per UTC day: findings first seen that day, and findings whose last sighting was that day."""
    store.upsert([make_finding("a"), make_finding("b")], now=T + 1_000)
    store.upsert([make_finding("c")], now=T + DAY + 5)
    store.upsert([make_finding("a", modified=BASE_TIME + 1)], now=T + 2 * DAY + 7)  # seen again two days later
    assert store.trend(T) == [
        TrendDay(T, 2, 1),
        TrendDay(T + DAY, 1, 1),
        TrendDay(T + 2 * DAY, 0, 1),
    ]
    assert store.trend(T + DAY) == [TrendDay(T + DAY, 1, 1), TrendDay(T + 2 * DAY, 0, 1)]


# Filters -----------------------------------------------------------------------------------------


def test_filters_match_case_insensitively(store: Store) -> None:
    """cloud, service, account, cluster, namespace and type match whatever their case."""
    store.upsert(
        [
            make_finding("x", account="Acct-Mixed", cluster="Prod-EKS", namespace="Payments"),
            make_finding("y", cloud="GCP", account="proj", service=traits.CLOUD_RUN, cluster="run", namespace="svc"),
        ],
        now=T,
    )
    assert ids(store, FindingQuery(cloud="aws")) == ["x"]
    assert ids(store, FindingQuery(cloud="gcp")) == ["y"]
    assert ids(store, FindingQuery(container_service="cloud run")) == ["y"]
    assert ids(store, FindingQuery(container_service="eks")) == ["x"]
    assert ids(store, FindingQuery(account="acct-mixed")) == ["x"]
    assert ids(store, FindingQuery(cluster="prod-eks")) == ["x"]
    assert ids(store, FindingQuery(cluster="PROD-*")) == ["x"]
    assert ids(store, FindingQuery(namespace="PAYMENTS")) == ["x"]
    assert sorted(ids(store, FindingQuery(finding_type="execution:runtime/*"))) == ["x", "y"]
    assert ids(store, FindingQuery(cloud="amazon")) == []


def test_source_severity_and_text_filters(store: Store) -> None:
    """source by id or product, an exact severity, and text in the title or a resource name."""
    store.upsert(
        [
            make_finding("aws-1", severity_id=5, title="Crypto miner XMRig ran", cluster="shop"),
            make_finding("az-1", cloud="Azure", account="sub", severity_id=2, title="Privileged container"),
            make_finding("gcp-1", cloud="GCP", account="proj", severity_id=5, title="Image CVE", cluster="Billing-GKE"),
        ],
        now=T,
    )
    assert ids(store, FindingQuery(source="aws.guardduty")) == ["aws-1"]
    assert ids(store, FindingQuery(source="AZURE.DEFENDER")) == ["az-1"]
    assert ids(store, FindingQuery(source="gcp.scc")) == ["gcp-1"]
    assert sorted(ids(store, FindingQuery(severity_id=5))) == ["aws-1", "gcp-1"]
    assert ids(store, FindingQuery(text="xmrig")) == ["aws-1"]
    assert ids(store, FindingQuery(text="billing-gke")) == ["gcp-1"]
    assert ids(store, FindingQuery(text="gcp-1-pod")) == ["gcp-1"]  # the pod resource's name
    assert ids(store, FindingQuery(text="CONTAINER", cloud="azure")) == ["az-1"]
    assert ids(store, FindingQuery(text="nowhere")) == []
    assert store.count(FindingQuery(text="c")).count == 3


def test_paging_walks_every_match_once_in_order(store: Store) -> None:
    """Keyset pages of a filtered query (many findings, ties in last seen) cover every match exactly once."""
    for batch in range(4):
        store.upsert([make_finding(f"f{batch}-{i}", severity_id=1 + i % 5) for i in range(10)], now=T + batch * 10)
    full = ids(store, FindingQuery(severity_at_least=2, limit=100))
    assert len(full) == 32
    walked: list[str] = []
    cursor = None
    while True:
        page = store.query(FindingQuery(severity_at_least=2, limit=7, cursor=cursor))
        walked += [f.key[2] for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == full
    text_walk: list[str] = []
    cursor = None
    while True:
        page = store.query(FindingQuery(text="unexpected", limit=9, cursor=cursor))
        text_walk += [f.key[2] for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert text_walk == ids(store, FindingQuery(limit=100))
