"""The store contract: one suite, run unchanged against every backend through the `store` fixture."""

from __future__ import annotations

import hashlib
import multiprocessing
import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from corral import ocsf, traits
from corral.records import HealthSignal
from corral.stores import open_store
from corral.stores.base import (
    DEAD_LETTER_MAX_TEXT,
    FUTURE_ALLOWANCE_MS,
    CountRow,
    DeadLetter,
    FindingQuery,
    LedgerEntry,
    SourceSeen,
    Store,
    Suppression,
    fingerprint,
    version_key,
)
from tests.stores.factory import BASE_TIME, make_finding, write_versions

T = BASE_TIME
NOW = T + 60_000

pytestmark = pytest.mark.integration


def key_of(finding: ocsf.Finding) -> tuple[str, str, str]:
    """Return the identity of a test finding."""
    return ocsf.identity(finding)


# Change kinds ---------------------------------------------------------------------------------------


def test_same_event_twice_is_unchanged(store: Store) -> None:
    """A second delivery of the same content is unchanged, refreshes last seen and keeps one version."""
    first = make_finding(delivery_id="delivery-1")
    again = make_finding(delivery_id="delivery-2")
    assert [c.kind for c in store.upsert([first], now=NOW)] == ["new"]
    [change] = store.upsert([again], now=NOW + 500)
    assert change.kind == "unchanged"
    stored = store.get(key_of(first))
    assert stored is not None
    assert (stored.first_seen, stored.last_seen, stored.versions) == (NOW, NOW + 500, 1)
    assert stored.document["metadata"]["uid"] == "delivery-2"
    assert [h.kind for h in store.history(key_of(first))] == ["new"]


def test_unchanged_with_a_newer_time_keeps_the_newer_document(store: Store) -> None:
    """Unchanged content with a newer modified time replaces the document; an older one is then stale."""
    store.upsert([make_finding(modified=T)], now=NOW)
    [change] = store.upsert([make_finding(modified=T + 50)], now=NOW + 1)
    assert change.kind == "unchanged"
    stored = store.get(key_of(make_finding()))
    assert stored is not None
    assert stored.modified_time == T + 50
    assert stored.document["finding_info"]["modified_time"] == T + 50
    [late] = store.upsert([make_finding(modified=T + 20, severity_id=5)], now=NOW + 2)
    assert late.kind == "stale"


def test_older_update_after_newer_is_stale_and_newer_document_kept(store: Store) -> None:
    """An update older than the stored one is stale and writes nothing, not even last seen."""
    store.upsert([make_finding(modified=T, severity_id=3)], now=NOW)
    assert store.upsert([make_finding(modified=T + 20, severity_id=4)], now=NOW + 1)[0].kind == "escalated"
    [stale] = store.upsert([make_finding(modified=T + 10, severity_id=5, title="older")], now=NOW + 2)
    assert stale.kind == "stale"
    stored = store.get(key_of(make_finding()))
    assert stored is not None
    assert (stored.severity_id, stored.modified_time, stored.versions, stored.last_seen) == (4, T + 20, 2, NOW + 1)
    assert stored.document["finding_info"]["title"] != "older"
    assert [h.kind for h in store.history(key_of(make_finding()))] == ["new", "escalated"]


def test_close_and_reopen(store: Store) -> None:
    """Resolved closes a finding; a newer open version reopens it."""
    store.upsert([make_finding(modified=T)], now=NOW)
    [closed] = store.upsert([make_finding(modified=T + 1, status_id=ocsf.STATUS_RESOLVED)], now=NOW + 1)
    assert closed.kind == "closed"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.closed and stored.status_id == ocsf.STATUS_RESOLVED
    [reopened] = store.upsert([make_finding(modified=T + 2, status_id=ocsf.STATUS_NEW)], now=NOW + 2)
    assert reopened.kind == "reopened"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and not stored.closed


def test_escalation_and_deescalation(store: Store) -> None:
    """A higher severity escalates, a lower one deescalates, and `previous` is what was stored."""
    store.upsert([make_finding(modified=T, severity_id=3)], now=NOW)
    [up] = store.upsert([make_finding(modified=T + 1, severity_id=5)], now=NOW + 1)
    [down] = store.upsert([make_finding(modified=T + 2, severity_id=2)], now=NOW + 2)
    assert (up.kind, down.kind) == ("escalated", "deescalated")
    assert up.previous is not None and up.previous.severity_id == 3
    assert down.previous is not None and down.previous.severity_id == 5
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.severity_id == 2


def test_suppressed_status_is_not_closed(store: Store) -> None:
    """A muted (suppressed) finding is an update and stays open."""
    store.upsert([make_finding(modified=T)], now=NOW)
    [muted] = store.upsert([make_finding(modified=T + 1, status_id=ocsf.STATUS_SUPPRESSED)], now=NOW + 1)
    assert muted.kind == "updated"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and not stored.closed and stored.status_id == ocsf.STATUS_SUPPRESSED
    assert [f.key for f in store.query(FindingQuery(open_only=True)).items] == [key_of(make_finding())]


def test_changed_content_is_updated(store: Store) -> None:
    """New content at the same severity and status is `updated`."""
    store.upsert([make_finding(modified=T)], now=NOW)
    [change] = store.upsert([make_finding(modified=T + 1, title="now with more detail")], now=NOW + 1)
    assert change.kind == "updated"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.document["finding_info"]["title"] == "now with more detail"


def test_versions_count_accepted_versions_only(store: Store) -> None:
    """Versions count new and real changes, not unchanged or stale deliveries."""
    kinds = []
    for modified, severity, now in ((T, 3, NOW), (T, 3, NOW + 1), (T + 5, 4, NOW + 2), (T + 1, 2, NOW + 3)):
        kinds += [c.kind for c in store.upsert([make_finding(modified=modified, severity_id=severity)], now=now)]
    kinds += [c.kind for c in store.upsert([make_finding(modified=T + 9, severity_id=4, title="x")], now=NOW + 4)]
    assert kinds == ["new", "unchanged", "escalated", "stale", "updated"]
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.versions == 3


def test_history_records_real_changes_with_version_keys(store: Store) -> None:
    """History lists each real change, oldest first, with the version key the Change carried."""
    changes = []
    for modified, severity, status, now in (
        (T, 3, ocsf.STATUS_NEW, NOW),
        (T, 3, ocsf.STATUS_NEW, NOW + 1),
        (T + 1, 5, ocsf.STATUS_NEW, NOW + 2),
        (T + 2, 5, ocsf.STATUS_RESOLVED, NOW + 3),
    ):
        changes += store.upsert([make_finding(modified=modified, severity_id=severity, status_id=status)], now=now)
    history = store.history(key_of(make_finding()))
    assert [h.kind for h in history] == ["new", "escalated", "closed"]
    assert [h.version for h in history] == [changes[0].version, changes[2].version, changes[3].version]
    assert [h.at for h in history] == [NOW, NOW + 2, NOW + 3]
    assert [(h.modified_time, h.severity_id, h.status_id) for h in history] == [
        (T, 3, ocsf.STATUS_NEW),
        (T + 1, 5, ocsf.STATUS_NEW),
        (T + 2, 5, ocsf.STATUS_RESOLVED),
    ]
    finding = make_finding(modified=T + 1, severity_id=5)
    assert changes[2].version == version_key(key_of(finding), T + 1, fingerprint(finding))


def test_a_batch_is_decided_in_order(store: Store) -> None:
    """The same finding twice in one batch: the second sees the first."""
    batch = [
        make_finding("a", modified=T),
        make_finding("b", modified=T),
        make_finding("a", modified=T + 1, severity_id=5),
        make_finding("a", modified=T + 1, severity_id=5),
        make_finding("b", modified=T - 1, severity_id=1),
    ]
    assert [c.kind for c in store.upsert(batch, now=NOW)] == ["new", "new", "escalated", "unchanged", "stale"]
    a = store.get(key_of(batch[0]))
    b = store.get(key_of(batch[1]))
    assert a is not None and (a.severity_id, a.versions) == (5, 2)
    assert b is not None and (b.severity_id, b.versions) == (3, 1)
    assert [h.kind for h in store.history(key_of(batch[0]))] == ["new", "escalated"]
    twice = [make_finding("c", delivery_id="d-1"), make_finding("c", modified=T + 3, delivery_id="d-2")]
    assert [c.kind for c in store.upsert(twice, now=NOW + 1)] == ["new", "unchanged"]
    c = store.get(key_of(twice[0]))
    assert c is not None and (c.versions, c.modified_time, c.last_seen) == (1, T + 3, NOW + 1)
    assert c.document["metadata"]["uid"] == "d-2"


def test_histories_of_many_findings_match_each_history(store: Store) -> None:
    """`histories` answers for each key what `history` does, in one call; unknown keys get []."""
    first, second = make_finding(uid="h-1"), make_finding(uid="h-2")
    store.upsert([first, second], now=NOW)
    store.upsert([make_finding(uid="h-1", modified=T + 1, severity_id=5)], now=NOW + 1)
    unknown = ("aws.guardduty", "1", "nope")
    keys = [key_of(first), key_of(second), unknown]
    found = store.histories(keys)
    assert found == {key: store.history(key) for key in keys}
    assert [h.kind for h in found[key_of(first)]] == ["new", "escalated"]
    assert found[unknown] == []


def test_unknown_finding_is_none(store: Store) -> None:
    """A finding never stored has no record and no history."""
    assert store.get(("aws.guardduty", "1", "nope")) is None
    assert store.history(("aws.guardduty", "1", "nope")) == []
    assert store.upsert([], now=NOW) == []


def test_mark_suppressed_sets_and_clears(store: Store) -> None:
    """A suppression is kept with the finding until cleared, and upserts leave it alone."""
    store.upsert([make_finding("a"), make_finding("b")], now=NOW)
    mark = Suppression(reason="accepted risk", by="rule:dev-clusters", until=T + 86_400_000)
    store.mark_suppressed([(key_of(make_finding("a")), mark)])
    a = store.get(key_of(make_finding("a")))
    b = store.get(key_of(make_finding("b")))
    assert a is not None and a.suppression == mark
    assert b is not None and b.suppression is None
    store.upsert([make_finding("a", modified=T + 1, title="changed")], now=NOW + 1)
    a = store.get(key_of(make_finding("a")))
    assert a is not None and a.suppression == mark
    store.mark_suppressed([(key_of(make_finding("a")), None)])
    a = store.get(key_of(make_finding("a")))
    assert a is not None and a.suppression is None


def test_an_upsert_tells_whether_the_stored_finding_is_marked_suppressed(store: Store) -> None:
    """`previous.suppressed` is what routing needs to clear a mark whose rule no longer holds."""
    store.upsert([make_finding("a")], now=NOW)
    store.mark_suppressed([(key_of(make_finding("a")), Suppression(reason="accepted risk", by="rule:dev"))])
    [marked] = store.upsert([make_finding("a")], now=NOW + 1)
    assert marked.previous is not None and marked.previous.suppressed
    store.mark_suppressed([(key_of(make_finding("a")), None)])
    [cleared] = store.upsert([make_finding("a", modified=T + 1, title="changed")], now=NOW + 2)
    assert cleared.previous is not None and not cleared.previous.suppressed


# A source's clock -----------------------------------------------------------------------------------

FAR_FUTURE = 4_070_908_800_000
"""2099-01-01, epoch ms: a sender's clock gone wrong, or a garbled or hostile timestamp."""
LATER = NOW + FUTURE_ALLOWANCE_MS + 1
"""When the source's next genuine update happens and arrives: past the future version's arrival plus the allowance."""
HOUR = 3_600_000


def test_a_future_time_does_not_silence_the_updates_after_it(store: Store) -> None:
    """A version dated past its arrival orders as its arrival (plus the allowance): a genuine update after it is news.

    The document keeps the time the source gave, and so does the history; only the order is Corral's.
    """
    [first] = store.upsert([make_finding(modified=FAR_FUTURE, severity_id=3)], now=NOW)
    assert first.kind == "new"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.modified_time == NOW + FUTURE_ALLOWANCE_MS
    assert stored.document["finding_info"]["modified_time"] == FAR_FUTURE
    [up] = store.upsert([make_finding(modified=LATER, severity_id=5)], now=LATER)
    assert up.kind == "escalated"
    [closed] = store.upsert(
        [make_finding(modified=LATER + 1, severity_id=5, status_id=ocsf.STATUS_RESOLVED)], now=LATER + 1
    )
    assert closed.kind == "closed"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and (stored.severity_id, stored.closed, stored.versions) == (5, True, 3)
    history = store.history(key_of(make_finding()))
    assert [(h.kind, h.modified_time) for h in history] == [
        ("new", FAR_FUTURE),
        ("escalated", LATER),
        ("closed", LATER + 1),
    ]


def test_a_replayed_future_version_does_not_flip_the_finding_back(store: Store) -> None:
    """Delivered again, a future-dated version is the same version: unchanged while current, else stale.

    Each delivery of it orders as its own arrival (plus the allowance): the genuine update comes
    an hour after the last one, when the source's clock has long passed both.
    """
    future = make_finding(modified=FAR_FUTURE, severity_id=5, delivery_id="d-1")
    [first] = store.upsert([future], now=NOW)
    [again] = store.upsert([make_finding(modified=FAR_FUTURE, severity_id=5, delivery_id="d-2")], now=NOW + 60_000)
    assert (again.kind, again.version) == ("unchanged", first.version)
    [down] = store.upsert([make_finding(modified=NOW + HOUR, severity_id=3)], now=NOW + HOUR)
    assert down.kind == "deescalated"
    [replay] = store.upsert([make_finding(modified=FAR_FUTURE, severity_id=5, delivery_id="d-3")], now=NOW + 2 * HOUR)
    assert (replay.kind, replay.version) == ("stale", first.version)
    stored = store.get(key_of(future))
    assert stored is not None and (stored.severity_id, stored.versions, stored.last_seen) == (3, 2, NOW + HOUR)
    assert [h.kind for h in store.history(key_of(future))] == ["new", "deescalated"]


def test_a_time_within_the_allowance_orders_as_the_source_says(store: Store) -> None:
    """Ordinary clock skew: a time a little ahead of the arrival is trusted, so an older version after it is stale."""
    ahead = NOW + FUTURE_ALLOWANCE_MS - 1
    store.upsert([make_finding(modified=ahead, severity_id=3)], now=NOW)
    [older] = store.upsert([make_finding(modified=ahead - 1, severity_id=5)], now=NOW + 1)
    assert older.kind == "stale"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and (stored.modified_time, stored.severity_id) == (ahead, 3)


def test_future_versions_order_by_their_arrival(store: Store) -> None:
    """Two versions both dated past their arrival: the later arrival is the newer version, whatever they claim."""
    store.upsert([make_finding(modified=FAR_FUTURE, severity_id=3)], now=NOW)
    [up] = store.upsert([make_finding(modified=FAR_FUTURE - HOUR, severity_id=5)], now=NOW + 1)
    assert up.kind == "escalated"
    stored = store.get(key_of(make_finding()))
    assert stored is not None and stored.document["finding_info"]["modified_time"] == FAR_FUTURE - HOUR


# Queries --------------------------------------------------------------------------------------------

POPULATION = {
    "a": ({"account": "acct-a", "severity_id": 5, "cluster": "prod-eks", "namespace": "payments"}, 100),
    "b": (
        {
            "account": "acct-b",
            "severity_id": 2,
            "status_id": ocsf.STATUS_IN_PROGRESS,
            "finding_type": "CryptoCurrency:Runtime/BitcoinTool.B",
            "service": traits.ECS_FARGATE,
            "cluster": "batch",
            "namespace": "jobs",
            "image": "miner:latest",
        },
        200,
    ),
    "c": (
        {
            "cloud": "Azure",
            "account": "sub-1",
            "severity_id": 4,
            "status_id": ocsf.STATUS_RESOLVED,
            "finding_type": "K8S_Privileged container",
            "service": traits.AKS,
            "cluster": "aks-1",
            "namespace": "default",
            "image": "redis:7",
        },
        300,
    ),
    "d": (
        {
            "cloud": "GCP",
            "account": "proj-1",
            "class_uid": ocsf.VULNERABILITY,
            "finding_type": "VULNERABILITY",
            "service": traits.GKE,
            "layer": traits.APPLICATION,
            "task": traits.VULNERABILITY_MANAGEMENT,
            "cluster": "gke-1",
            "namespace": "web",
            "image_digest": "sha256:" + "ab" * 32,
        },
        400,
    ),
    "e": (
        {
            "cloud": "GCP",
            "account": "proj-1",
            "class_uid": ocsf.COMPLIANCE,
            "severity_id": 6,
            "status_id": ocsf.STATUS_SUPPRESSED,
            "finding_type": "MISCONFIGURATION",
            "service": traits.CLOUD_RUN,
            "layer": traits.INFRASTRUCTURE,
            "task": traits.HARDENING,
            "cluster": "run-1",
            "namespace": "svc",
        },
        500,
    ),
    "f": (
        {
            "account": "acct-a",
            "severity_id": 1,
            "status_id": ocsf.STATUS_ARCHIVED,
            "finding_type": "Execution:Runtime/ReverseShell",
            "cluster": "prod-eks",
            "namespace": "kube-system",
        },
        600,
    ),
}


@pytest.fixture
def populated(store: Store) -> Store:
    """The store holding POPULATION, each finding last seen at its own time (a oldest, f newest)."""
    for uid, (fields, seen) in POPULATION.items():
        store.upsert([make_finding(uid, **fields)], now=T + seen)  # type: ignore[arg-type]
    return store


def uids(store: Store, query: FindingQuery) -> list[str]:
    """Return the finding uids a query answers, in the order given."""
    return [f.key[2] for f in store.query(query).items]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (FindingQuery(), "fedcba"),
        (FindingQuery(cloud="AWS"), "fba"),
        (FindingQuery(account="acct-a"), "fa"),
        (FindingQuery(severity_at_least=4), "eca"),
        (FindingQuery(status_id=ocsf.STATUS_NEW), "da"),
        (FindingQuery(open_only=True), "edba"),
        (FindingQuery(class_uid=ocsf.VULNERABILITY), "d"),
        (FindingQuery(finding_type="CryptoCurrency:Runtime/BitcoinTool.B"), "b"),
        (FindingQuery(finding_type="Execution:*"), "fa"),
        (FindingQuery(finding_type="*:Runtime/*"), "fba"),
        (FindingQuery(finding_type="K8S_*"), "c"),
        (FindingQuery(finding_type="K8S%*"), ""),
        (FindingQuery(finding_type="execution:*"), "fa"),
        (FindingQuery(container_service=traits.EKS), "fa"),
        (FindingQuery(cluster="prod-eks"), "fa"),
        (FindingQuery(namespace="payments"), "a"),
        (FindingQuery(image="redis:7"), "c"),
        (FindingQuery(image="sha256:" + "ab" * 32), "d"),
        (FindingQuery(trait=("task", traits.VULNERABILITY_MANAGEMENT)), "d"),
        (FindingQuery(trait=("layer", traits.INFRASTRUCTURE)), "e"),
        (FindingQuery(trait=("container_service", traits.AKS)), "c"),
        (FindingQuery(trait=("layer", traits.AKS)), ""),
        (FindingQuery(since=T + 250, until=T + 450), "dc"),
        (FindingQuery(since=T + 550), "f"),
        (FindingQuery(until=T + 150), "a"),
        (FindingQuery(cloud="AWS", open_only=True, severity_at_least=2), "ba"),
        (FindingQuery(cloud="GCP", account="proj-1", class_uid=ocsf.COMPLIANCE), "e"),
    ],
)
def test_query_filters(populated: Store, query: FindingQuery, expected: str) -> None:
    """Each filter keeps exactly the matching findings, newest last seen first."""
    assert uids(populated, query) == list(expected)


def test_query_pages_with_a_cursor(populated: Store) -> None:
    """Keyset paging walks every match once, in order, and ends with no cursor."""
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = populated.query(FindingQuery(limit=2, cursor=cursor))
        seen += [f.key[2] for f in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 10
    assert seen == list("fedcba")
    assert pages == 3
    filtered = populated.query(FindingQuery(cloud="AWS", limit=2))
    assert [f.key[2] for f in filtered.items] == ["f", "b"]
    assert filtered.next_cursor is not None
    rest = populated.query(FindingQuery(cloud="AWS", limit=2, cursor=filtered.next_cursor))
    assert ([f.key[2] for f in rest.items], rest.next_cursor) == (["a"], None)


def test_query_pages_through_equal_last_seen(store: Store) -> None:
    """Findings last seen at the same moment are each returned exactly once across pages."""
    store.upsert([make_finding(f"same-{i}") for i in range(7)], now=NOW)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = store.query(FindingQuery(limit=3, cursor=cursor))
        assert len(page.items) <= 3
        seen += [f.key[2] for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"same-{i}" for i in range(7))
    assert len(seen) == 7


def test_query_returns_the_stored_record(populated: Store) -> None:
    """A queried finding is the same record `get` returns."""
    [item] = populated.query(FindingQuery(namespace="payments")).items
    assert item == populated.get(item.key)
    assert item.document["finding_info"]["uid"] == "a"


def test_counts_group_by_cloud_severity_status(populated: Store) -> None:
    """Counts group every finding, open and closed, by cloud, severity and status."""
    populated.upsert([make_finding("a2", account="acct-z", severity_id=5)], now=T + 700)
    expected: Counter[tuple[str, int, int]] = Counter()
    for uid, (fields, _) in POPULATION.items():
        found = make_finding(uid, **fields)  # type: ignore[arg-type]
        expected[(found["cloud"]["provider"], found["severity_id"], found["status_id"])] += 1
    expected[("AWS", 5, ocsf.STATUS_NEW)] += 1
    rows = populated.counts()
    assert sorted(rows, key=lambda r: (r.cloud, r.severity_id, r.status_id)) == sorted(
        (CountRow(cloud, sev, status, n) for (cloud, sev, status), n in expected.items()),
        key=lambda r: (r.cloud, r.severity_id, r.status_id),
    )


def test_expire_closed_keeps_open_findings(populated: Store) -> None:
    """Only closed findings last seen before the time go; open ones stay however old."""
    assert populated.expire_closed(T + 400) == 1
    assert populated.get(key_of(make_finding("c", **POPULATION["c"][0]))) is None  # type: ignore[arg-type]
    assert uids(populated, FindingQuery()) == list("fedba")
    assert populated.expire_closed(T + 10_000) == 1
    assert uids(populated, FindingQuery()) == list("edba")
    assert populated.expire_closed(T + 10_000) == 0


# Dead letter ----------------------------------------------------------------------------------------


def test_a_dead_letter_quoting_a_huge_input_still_fits(store: Store) -> None:
    """Reason and ref quoting 300 KB of the input, beside 1.2 MB of raw bytes that do not compress: all kept, text cut.

    1.2 MB is more than one DynamoDB item holds: the raw input is split over parts there.
    """
    raw = secrets.token_bytes(1_200_000)
    quoted = "k" * 300_000
    store.add_dead_letters(
        [DeadLetter.of(raw, at=T, reason=f"no source recognizes this document (keys: {quoted})", ref=quoted)]
    )
    [letter] = store.dead_letters()
    assert letter.raw == raw
    assert len(letter.reason) == len(letter.ref) == DEAD_LETTER_MAX_TEXT
    assert letter.reason.startswith("no source recognizes this document (keys: kkk") and letter.reason.endswith("…")
    assert letter.id is not None and store.dead_letter(letter.id) == letter
    # The same input again counts up and keeps every byte once.
    store.add_dead_letters([DeadLetter.of(raw, at=T + 1, reason="again", ref="again")])
    [again] = store.dead_letters()
    assert (again.raw, again.count, again.id) == (raw, 2, letter.id)


def test_dead_letter_round_trip(store: Store) -> None:
    """Dead letters keep binary raw input, every byte, with its hash and size, and get ids."""
    binary = bytes(range(256)) * 3
    huge = b"\x00\xff" * (200 * 1024)  # 400 KiB
    store.add_dead_letters(
        [
            DeadLetter.of(binary, at=T + 1, reason="not JSON", ref="Records[0]", source="aws.guardduty"),
            DeadLetter.of(huge, at=T + 2, reason="too big", ref="Records[1]", source="aws.guardduty"),
        ]
    )
    store.add_dead_letters([DeadLetter.of(b"{}", at=T + 3, reason="no source matched", ref="0")])
    letters = store.dead_letters()
    assert [d.reason for d in letters] == ["no source matched", "too big", "not JSON"]
    assert all(d.id for d in letters)
    assert len({d.id for d in letters}) == 3
    big = letters[1]
    assert big.raw == huge
    assert (big.size, big.sha256) == (len(huge), hashlib.sha256(huge).hexdigest())
    assert big.id is not None
    again = store.dead_letter(big.id)
    assert again == big
    first = letters[2]
    assert first.raw == binary and first.source == "aws.guardduty" and first.ref == "Records[0]" and first.at == T + 1
    assert letters[0].source is None
    assert [d.reason for d in store.dead_letters(source="aws.guardduty")] == ["too big", "not JSON"]
    assert [d.reason for d in store.dead_letters(limit=1)] == ["no source matched"]
    assert store.count_dead_letters() == {"aws.guardduty": 2, "": 1}
    assert store.dead_letter("999999999") is None


# Delivery ledger ------------------------------------------------------------------------------------


def ledger_entry(version: str, sink: str = "slack:secops", **fields: object) -> LedgerEntry:
    """Return a pending ledger entry for a test finding."""
    finding = make_finding()
    values: dict[str, object] = {"key": key_of(finding), "change": "new", "document": finding, "created": T}
    values.update(fields)
    return LedgerEntry(version=version, sink=sink, **values)  # type: ignore[arg-type]


def test_ledger_add_is_insert_if_absent(store: Store) -> None:
    """A delivered row is never re-queued by a later add; only the rows inserted come back."""
    first = store.ledger_add([ledger_entry("v1"), ledger_entry("v1", "splunk_hec:prod")])
    assert first == [ledger_entry("v1"), ledger_entry("v1", "splunk_hec:prod")]
    delivered = ledger_entry("v1", state="delivered", attempts=1, delivered_at=T + 5)
    store.ledger_update([delivered])
    again = store.ledger_add([ledger_entry("v1", created=T + 9), ledger_entry("v2", created=T + 9)])
    assert again == [ledger_entry("v2", created=T + 9)]
    assert [(e.version, e.sink) for e in store.ledger_due(now=T + 100)] == [
        ("v1", "splunk_hec:prod"),
        ("v2", "slack:secops"),
    ]


def test_ledger_due_orders_oldest_first_and_honours_next_attempt(store: Store) -> None:
    """Due rows are pending ones whose next attempt has come, oldest created first, up to the limit."""
    store.ledger_add(
        [
            ledger_entry("v3", created=T + 3),
            ledger_entry("v1", created=T + 1, next_attempt=T + 50),
            ledger_entry("v2", created=T + 2),
            ledger_entry("v4", created=T + 4, state="dead", attempts=9),
        ]
    )
    assert [e.version for e in store.ledger_due(now=T + 10)] == ["v2", "v3"]
    assert [e.version for e in store.ledger_due(now=T + 50)] == ["v1", "v2", "v3"]
    assert [e.version for e in store.ledger_due(now=T + 50, limit=2)] == ["v1", "v2"]
    retry = ledger_entry("v2", created=T + 2, attempts=1, next_attempt=T + 500, last_error="HTTP 503")
    store.ledger_update([retry])
    assert [e.version for e in store.ledger_due(now=T + 100)] == ["v1", "v3"]
    assert store.ledger_due(now=T + 500)[1] == retry


def test_ledger_summary(store: Store) -> None:
    """The summary counts rows by sink and state and gives the oldest pending row per sink."""
    store.ledger_add(
        [
            ledger_entry("v1", created=T + 7),
            ledger_entry("v2", created=T + 3),
            ledger_entry("v3", created=T + 1, state="delivered", delivered_at=T + 2),
            ledger_entry("v1", "webhook:x", created=T + 4, state="dead"),
        ]
    )
    summary = store.ledger_summary()
    assert summary.counts == {
        ("slack:secops", "pending"): 2,
        ("slack:secops", "delivered"): 1,
        ("webhook:x", "dead"): 1,
    }
    assert summary.oldest_pending == {"slack:secops": T + 3}


# Message refs and source health ---------------------------------------------------------------------


def test_message_refs_first_one_wins(store: Store) -> None:
    """The first message reference per finding and sink is kept."""
    key = key_of(make_finding())
    assert store.message_ref(key, "slack:secops") is None
    store.set_message_ref(key, "slack:secops", "1717000000.000100")
    store.set_message_ref(key, "slack:secops", "1717000999.000200")
    store.set_message_ref(key, "teams:soc", "msg-7")
    assert store.message_ref(key, "slack:secops") == "1717000000.000100"
    assert store.message_ref(key, "teams:soc") == "msg-7"


def test_source_health_moves_forward_only(store: Store) -> None:
    """Last delivery and finding time only move forward; every delivery is counted."""
    store.touch_sources([SourceSeen("aws.guardduty", "111", at=T + 100, finding_time=T + 90)])
    store.touch_sources(
        [
            SourceSeen("aws.guardduty", "111", at=T + 50, finding_time=None),
            SourceSeen("aws.guardduty", "111", at=T + 60, finding_time=T + 10),
            SourceSeen("gcp.scc", "proj", at=T + 5),
        ]
    )
    states = {(s.source, s.account_uid): s for s in store.sources()}
    aws = states[("aws.guardduty", "111")]
    assert (aws.last_delivery, aws.last_finding_time, aws.deliveries) == (T + 100, T + 90, 3)
    gcp = states[("gcp.scc", "proj")]
    assert (gcp.last_delivery, gcp.last_finding_time, gcp.deliveries) == (T + 5, None, 1)
    store.touch_sources([SourceSeen("aws.guardduty", "111", at=T + 200, finding_time=T + 150)])
    aws = {(s.source, s.account_uid): s for s in store.sources()}[("aws.guardduty", "111")]
    assert (aws.last_delivery, aws.last_finding_time, aws.deliveries) == (T + 200, T + 150, 4)


def test_source_health_keeps_the_accounts_cloud(store: Store) -> None:
    """Each delivery may name its account's cloud; one that does not keeps what was recorded."""
    store.touch_sources([SourceSeen("aws.guardduty", "111", at=T + 100, finding_time=T + 90, cloud="AWS")])
    store.touch_sources([SourceSeen("aws.guardduty", "111", at=T + 200), SourceSeen("gcp.scc", "proj", at=T + 5)])
    # An older delivery takes the read-then-write way on some stores: it keeps the cloud too.
    store.touch_sources([SourceSeen("aws.guardduty", "111", at=T + 50, finding_time=T + 10)])
    clouds = {(s.source, s.account_uid): (s.cloud, s.deliveries) for s in store.sources()}
    assert clouds == {("aws.guardduty", "111"): ("AWS", 3), ("gcp.scc", "proj"): (None, 1)}
    store.touch_sources([SourceSeen("gcp.scc", "proj", at=T + 6, cloud="GCP")])
    assert {s.account_uid: s.cloud for s in store.sources()} == {"111": "AWS", "proj": "GCP"}


def test_signals_latest_wins(store: Store) -> None:
    """The latest signal per source, account, service and region is kept, whatever the arrival order."""
    sick = HealthSignal(
        "aws.guardduty", "111", "EKS Runtime Monitoring", healthy=False, time=T + 10, region="eu-west-1"
    )
    older = HealthSignal("aws.guardduty", "111", "EKS Runtime Monitoring", healthy=True, time=T + 5, region="eu-west-1")
    other = HealthSignal("azure.defender", "sub", "Defender for Containers", healthy=True, time=T + 1)
    store.record_signals([sick, other])
    store.record_signals([older])
    assert sorted(store.signals(), key=lambda s: s.source) == [sick, other]
    healed = HealthSignal(
        "aws.guardduty", "111", "EKS Runtime Monitoring", healthy=True, time=T + 20, region="eu-west-1"
    )
    store.record_signals([healed])
    assert sorted(store.signals(), key=lambda s: s.source) == [healed, other]


def test_each_resource_keeps_its_own_signal(store: Store) -> None:
    """One cluster's Healthy does not replace another's Unhealthy: a signal is kept per resource it names."""
    sick = HealthSignal("aws.guardduty", "111", "EKS", healthy=False, time=T + 10, region="eu-west-1", resource="prod")
    fine = HealthSignal("aws.guardduty", "111", "EKS", healthy=True, time=T + 20, region="eu-west-1", resource="dev")
    store.record_signals([sick])
    store.record_signals([fine])
    assert sorted(store.signals(), key=lambda s: s.resource) == [fine, sick]
    healed = sick._replace(healthy=True, time=T + 30)
    store.record_signals([healed])
    assert sorted(store.signals(), key=lambda s: s.resource) == [fine, healed]


# Concurrent writers ---------------------------------------------------------------------------------

WRITERS = 4
VERSIONS = 5
UIDS = ["race-1", "race-2", "race-3"]


def assert_one_record_per_finding(store: Store, results: list[list[tuple[str, int, str]]]) -> None:
    """Each finding has one record, one `new`, and every version accepted exactly once."""
    kinds = Counter((uid, kind) for result in results for uid, _, kind in result)
    accepted = Counter(
        (uid, version) for result in results for uid, version, kind in result if kind not in ("unchanged", "stale")
    )
    assert sum(len(result) for result in results) == WRITERS * VERSIONS * len(UIDS)
    for uid in UIDS:
        assert kinds[(uid, "new")] == 1, kinds
        assert all(accepted[(uid, v)] == 1 for v in range(VERSIONS)), accepted
        stored = store.get(key_of(make_finding(uid)))
        assert stored is not None and stored.versions == VERSIONS
        assert stored.modified_time == T + VERSIONS - 1
        history = store.history(stored.key)
        assert len(history) == VERSIONS and history[0].kind == "new"
        assert [h.modified_time for h in history] == [T + v for v in range(VERSIONS)]
    assert sorted(uids(store, FindingQuery())) == sorted(UIDS)


def test_concurrent_writers_in_threads(store: Store, store_url: str) -> None:
    """Threads writing the same findings through their own store objects end with one record each."""
    barrier = threading.Barrier(WRITERS)

    def writer(seed: int) -> list[tuple[str, int, str]]:
        barrier.wait(timeout=60)
        return write_versions(store_url, UIDS, VERSIONS, seed)

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))
    assert_one_record_per_finding(store, results)


def test_concurrent_writers_sharing_one_store(store: Store) -> None:
    """Threads sharing one store object end with one record, one `new` and every version once."""
    barrier = threading.Barrier(WRITERS)

    def writer(seed: int) -> list[tuple[str, int, str]]:
        barrier.wait(timeout=60)
        done: list[tuple[str, int, str]] = []
        for version in range(VERSIONS):
            batch = [
                make_finding(uid, modified=T + version, severity_id=1 + version % 5)
                for uid in UIDS[seed % 3 :] + UIDS[: seed % 3]
            ]
            done += [(c.key[2], version, c.kind) for c in store.upsert(batch, now=NOW + version)]
        return done

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))
    assert_one_record_per_finding(store, results)


def test_concurrent_writers_in_processes(store: Store, store_url: str) -> None:
    """Processes writing the same findings by store URL end with one record, one `new` and every version once."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        results = pool.starmap(write_versions, [(store_url, UIDS, VERSIONS, seed) for seed in range(WRITERS)])
    assert_one_record_per_finding(store, results)


def test_concurrent_deliveries_of_one_source_are_all_counted(store: Store, store_url: str) -> None:
    """Writers touching one source at once, times in and out of order, lose no delivery and keep the latest times."""
    barrier = threading.Barrier(WRITERS)
    touches = 8

    def writer(seed: int) -> None:
        own = open_store(store_url)
        try:
            barrier.wait(timeout=60)
            for n in range(touches):
                # Half the writers move the times forward, half send older ones all along: both ways
                # of recording a delivery (times forward, or older) race on the same item.
                base = 100 if seed % 2 == 0 else 0
                own.touch_sources(
                    [SourceSeen("aws.guardduty", "111", at=T + base + 10 * n + seed, finding_time=T + base + n)]
                )
        finally:
            own.close()

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))
    (state,) = store.sources()
    assert state.deliveries == WRITERS * touches
    newest = max(seed for seed in range(WRITERS) if seed % 2 == 0)
    assert (state.last_delivery, state.last_finding_time) == (
        T + 100 + 10 * (touches - 1) + newest,
        T + 100 + touches - 1,
    )


def test_store_url_opens_the_same_store(store: Store, store_url: str) -> None:
    """A second store opened from the URL sees what the first wrote."""
    store.upsert([make_finding()], now=NOW)
    other = open_store(store_url)
    try:
        stored = other.get(key_of(make_finding()))
        assert stored is not None and stored.first_seen == NOW
    finally:
        other.close()


def test_attacker_text_with_nul_and_escapes_is_stored(store: Store) -> None:
    """A NUL in source text never fails the batch; a literal backslash-u0000 is kept exactly."""
    title = "evil\x00title"
    literal = "C:\\u0000\\\\u0000 \\\x00"
    finding = make_finding(title=title, namespace="ns\x00x")
    finding["unmapped"] = {"cmd": literal}
    assert [c.kind for c in store.upsert([finding], now=NOW)] == ["new"]
    assert [c.kind for c in store.upsert([finding], now=NOW + 1)] == ["unchanged"]
    stored = store.get(key_of(finding))
    assert stored is not None and stored.versions == 1
    # PostgreSQL cannot hold NUL in text or jsonb and keeps U+FFFD in its place; others keep it.
    assert stored.document["finding_info"]["title"] in (title, "evil\ufffdtitle")
    assert stored.document["unmapped"]["cmd"] in (literal, literal.replace("\x00", "\ufffd"))
    assert stored.document["unmapped"]["cmd"].startswith("C:\\u0000\\\\u0000 \\")
