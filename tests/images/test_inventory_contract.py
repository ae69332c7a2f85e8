"""The image-inventory contract, run unchanged on every backend."""

from __future__ import annotations

from corral import inventory, ocsf, priority
from corral.stores.base import FindingQuery, Store
from tests.images.support import HOUR, RECEIVED, digest, registry_cve, runtime_alert

D = digest("d")
E = digest("e")
REPO = "shopacr.azurecr.io/shop/web"


def observe(*findings: dict[str, object]) -> list[inventory.Observations]:
    return [inventory.observe(f) for f in findings]


def test_an_empty_inventory_knows_nothing(store: Store) -> None:
    assert store.image_digests() == []
    assert store.image_vulnerabilities() == []
    assert store.image_evidence([D])[D].sightings == []
    assert store.record_images([]) == []


def test_registry_names_and_vulnerabilities_are_kept(store: Store) -> None:
    cve = registry_cve("v1", D, REPO, tag="2.0", severity_id=5, exploit=True)
    assert store.record_images(observe(cve)) == []
    assert store.image_digests() == [D]
    evidence = store.image_evidence([D])[D]
    assert [(n.repository, n.tag, n.registry, n.cloud) for n in evidence.names] == [
        (REPO, "2.0", "shopacr.azurecr.io", "Azure")
    ]
    (row,) = store.image_vulnerabilities([D])
    assert (row.vulnerable.severity_id, row.vulnerable.cves, row.vulnerable.exploit, row.vulnerable.fix) == (
        5,
        ("CVE-2026-0001",),
        True,
        True,
    )
    assert row.priority is None
    assert evidence.runtime(now=RECEIVED, window_ms=HOUR).context == "registry_only"


def test_digests_are_found_by_prefix_in_order_and_limited(store: Store) -> None:
    """Named, seen-running and vulnerable digests are all found by a prefix; a tag-only sighting never is."""
    named, seen, vulnerable = "sha256:ab" + "1" * 62, "sha256:ab" + "2" * 62, "sha256:ac" + "0" * 62
    store.record_images(observe(registry_cve("v1", named, REPO, tag="1.0")))
    store.record_images(observe(runtime_alert("a1", {"uid": seen}, seen=RECEIVED)))
    store.record_images(observe(runtime_alert("a2", {"name": REPO, "tag": "1.0"}, seen=RECEIVED)))
    store.record_images(observe(registry_cve("v2", vulnerable, "", tag="")))
    assert store.image_digests() == [named, seen, vulnerable]
    assert store.image_digests("sha256:ab") == [named, seen]
    assert store.image_digests("sha256:ab", limit=1) == [named]
    assert store.image_digests("sha256:ab2") == [seen]
    assert store.image_digests(vulnerable) == [vulnerable]
    assert store.image_digests("sha256:f") == []


def test_a_sighting_by_digest_on_another_cloud_is_runtime_evidence(store: Store) -> None:
    store.record_images(observe(registry_cve("v1", D, REPO)))
    alert = runtime_alert("a1", {"uid": D, "name": REPO}, seen=RECEIVED + HOUR)
    assert store.record_images(observe(alert)) == [D]
    (record, probable) = store.image_evidence([D])[D].sightings[0]
    assert not probable
    assert (record.sighting.cloud, record.sighting.cluster, record.sighting.workload) == (
        "GCP",
        "shop-prod",
        "checkout-7d9c5b6f4-k2x8q",
    )
    assert record.sighting.reporter == "google.scc|corral-demo|a1"
    assert store.image_evidence([D])[D].runtime(now=RECEIVED + HOUR, window_ms=HOUR).context == "running"


def test_evidence_only_moves_forward_in_source_time(store: Store) -> None:
    newer = runtime_alert("a2", {"uid": D}, seen=RECEIVED + 2 * HOUR)
    older = runtime_alert("a1", {"uid": D}, seen=RECEIVED)
    assert store.record_images(observe(newer)) == [D]
    assert store.record_images(observe(older)) == []
    assert store.record_images(observe(newer)) == []
    ((record, _),) = store.image_evidence([D])[D].sightings
    assert (record.last_time, record.sighting.reporter) == (RECEIVED + 2 * HOUR, "google.scc|corral-demo|a2")


def test_refreshing_a_sighting_inside_the_window_is_no_move(store: Store) -> None:
    """Only a new place, or one whose evidence had aged out of the window, changes what priorities say."""
    window_start = RECEIVED - HOUR
    assert store.record_images(observe(runtime_alert("a1", {"uid": D}, seen=RECEIVED)), fresh_since=window_start) == [D]
    again = runtime_alert("a2", {"uid": D}, seen=RECEIVED + 1_000)
    assert store.record_images(observe(again), fresh_since=window_start) == []
    elsewhere = runtime_alert("a3", {"uid": D}, seen=RECEIVED + 2_000, pod="web-2")
    assert store.record_images(observe(elsewhere), fresh_since=window_start) == [D]
    aged = runtime_alert("a4", {"uid": D}, seen=RECEIVED + 3 * HOUR)
    assert store.record_images(observe(aged), fresh_since=RECEIVED + 2 * HOUR) == [D]
    # A refresh is recorded all the same: only what it reports differs.
    times = sorted(r.last_time for r, _ in store.image_evidence([D])[D].sightings)
    assert times == [RECEIVED + 2_000, RECEIVED + 3 * HOUR]


def test_a_tag_only_report_is_a_probable_match_never_merged_with_digest_evidence(store: Store) -> None:
    store.record_images(observe(registry_cve("v1", D, REPO, tag="2.0")))
    by_tag = runtime_alert("a1", {"name": REPO, "tag": "2.0"}, seen=RECEIVED, pod="web-1")
    assert store.record_images(observe(by_tag)) == [D]
    by_digest = runtime_alert("a2", {"uid": D, "name": REPO, "tag": "2.0"}, seen=RECEIVED, pod="web-1")
    store.record_images(observe(by_digest))
    found = sorted((r.sighting.image, p) for r, p in store.image_evidence([D])[D].sightings)
    assert found == [(D, False), (f"{REPO}:2.0", True)]


def test_a_tag_names_the_digest_it_was_last_seen_with(store: Store) -> None:
    store.record_images(observe(registry_cve("v1", D, REPO, tag="2.0", modified=RECEIVED)))
    store.record_images(observe(registry_cve("v2", E, REPO, tag="2.0", modified=RECEIVED + HOUR)))
    store.record_images(observe(runtime_alert("a1", {"name": REPO, "tag": "2.0"}, seen=RECEIVED)))
    evidence = store.image_evidence([D, E])
    assert evidence[D].sightings == []
    assert [p for _, p in evidence[E].sightings] == [True]


def test_exposure_of_a_running_workload(store: Store) -> None:
    store.record_images(observe(runtime_alert("a1", {"uid": D}, seen=RECEIVED, pod="web")))
    exposure = inventory.Exposure("Azure", "s", "shop-prod", "shop", "web", "ap", RECEIVED)
    assert store.record_images([inventory.Observations(exposures=(exposure,))]) == [D]
    assert store.record_images([inventory.Observations(exposures=(exposure,))]) == []
    assert store.image_evidence([D])[D].runtime(now=RECEIVED, window_ms=HOUR).exposed
    closed = inventory.Exposure("Azure", "s", "shop-prod", "shop", "web", "ap", RECEIVED + 1, active=False)
    assert store.record_images([inventory.Observations(exposures=(closed,))]) == [D]
    assert not store.image_evidence([D])[D].runtime(now=RECEIVED, window_ms=HOUR).exposed


def test_priorities_are_remembered_and_closed_findings_leave(store: Store) -> None:
    store.record_images(observe(registry_cve("v1", D, REPO), registry_cve("v2", E, REPO, tag="3")))
    rows = store.image_vulnerabilities()
    assert [r.vulnerable.image for r in rows] == [D, E]
    given = priority.score(rows[0].vulnerable, priority.Runtime("registry_only"))
    store.set_image_priorities([(rows[0].vulnerable, given)])
    assert store.image_vulnerabilities([D])[0].priority == given
    # A priority worked out for another image than the one stored is not the stored finding's.
    elsewhere = priority.score(rows[1].vulnerable, priority.Runtime("deployed"))
    store.set_image_priorities([(rows[1].vulnerable._replace(image=D), elsewhere)])
    assert [r.priority for r in store.image_vulnerabilities()] == [given, None]
    store.record_images(observe(registry_cve("v1", D, REPO, modified=RECEIVED + 1, status_id=4)))
    assert store.image_vulnerabilities([D]) == []
    # An older delivery of the open finding does not reopen it.
    store.record_images(observe(registry_cve("v1", D, REPO, modified=RECEIVED)))
    assert store.image_vulnerabilities([D]) == []


def test_priorities_are_read_by_key_for_open_findings_of_the_same_image(store: Store) -> None:
    """`image_priorities` answers what `image_vulnerabilities` holds for these findings, and nothing else."""
    v1, v2, v3 = (
        registry_cve("v1", D, REPO),
        registry_cve("v2", D, REPO, cve="CVE-2026-0002"),
        registry_cve("v3", E, REPO, tag="3"),
    )
    store.record_images(observe(v1, v2, v3))
    rows = {r.key: r for r in store.image_vulnerabilities()}
    facts = {key: row.vulnerable for key, row in rows.items()}
    assert len(facts) == 3
    assert store.image_priorities(list(facts.values())) == {}  # none given yet
    given = {key: priority.score(row.vulnerable, priority.Runtime("registry_only")) for key, row in rows.items()}
    store.set_image_priorities([(facts[key], given[key]) for key in sorted(given)])
    assert store.image_priorities(list(facts.values())) == given
    # Only the findings asked for, each under the image it names.
    k1, _, k3 = sorted(facts)
    assert store.image_priorities([facts[k1]]) == {k1: given[k1]}
    assert store.image_priorities([facts[k3]._replace(image=D)]) == {}
    assert store.image_priorities([facts[k1]._replace(key=(*k1[:2], "unknown"))]) == {}
    # A closed finding has no priority to compare with.
    store.record_images(observe(registry_cve("v2", D, REPO, cve="CVE-2026-0002", modified=RECEIVED + 1, status_id=4)))
    assert store.image_priorities(list(facts.values())) == {k1: given[k1], k3: given[k3]}
    assert all(store.image_priorities([facts[k]]) == {k: given[k]} for k in (k1, k3))


def test_images_are_ranked_by_the_worst_priority_stored_for_an_open_vulnerability(store: Store) -> None:
    """The worst stored priority first; then images with none or only closed vulnerabilities, by digest."""
    low, high, closed, unscored, named = digest("1"), digest("2"), digest("3"), digest("4"), digest("5")
    store.record_images(
        observe(
            registry_cve("v1", low, REPO, tag="1"),
            registry_cve("v2", high, REPO, tag="2"),
            registry_cve("v3", high, REPO, tag="2", cve="CVE-2026-0003"),
            registry_cve("v4", closed, REPO, tag="3", status_id=4),
            registry_cve("v5", unscored, REPO, tag="4"),
        )
    )
    store.record_images(observe(runtime_alert("a1", {"uid": named, "name": REPO}, seen=RECEIVED)))
    rows = {r.key[2]: r.vulnerable for r in store.image_vulnerabilities()}
    registry_only = priority.Runtime("registry_only")
    store.set_image_priorities(
        [
            (rows["v1"], priority.score(rows["v1"], registry_only)._replace(risk_score=30)),
            (rows["v2"], priority.score(rows["v2"], registry_only)._replace(risk_score=20)),
            (rows["v3"], priority.score(rows["v3"], registry_only)._replace(risk_score=80)),
        ]
    )
    assert store.ranked_image_digests(2) == [high, low]
    assert store.ranked_image_digests(10) == [high, low, unscored, closed, named]
    assert store.ranked_image_digests(4) == [high, low, unscored, closed]


def test_prioritized_lists_open_vulnerabilities_most_urgent_first_within_the_filters(store: Store) -> None:
    """`findings list --running/--priority-at-least`: by stored priority, closed and unprioritized left out."""
    findings = {
        "v1": registry_cve("v1", D, REPO, severity_id=3),
        "v2": registry_cve("v2", E, REPO, tag="3", severity_id=4),
        "v3": registry_cve("v3", E, REPO, tag="3", cve="CVE-2026-0003", severity_id=5),
        "v4": registry_cve(
            "v4", D, REPO, cve="CVE-2026-0004", severity_id=2, account="11111111-1111-1111-1111-111111111111"
        ),
        "v5": registry_cve("v5", D, REPO, cve="CVE-2026-0005"),
    }
    store.upsert(list(findings.values()), now=RECEIVED)
    store.record_images(observe(*findings.values()))
    facts = {r.key[2]: r.vulnerable for r in store.image_vulnerabilities()}
    given = {
        "v1": priority.Priority(3, 70, "running", False, "running"),
        "v2": priority.Priority(1, 20, "registry_only", False, "registry only"),
        "v3": priority.Priority(4, 90, "running", True, "running, exposed"),
        "v4": priority.Priority(3, 65, "running", False, "running"),
    }
    store.set_image_priorities([(facts[uid], given[uid]) for uid in sorted(given)])  # v5: none yet
    store.upsert(
        [registry_cve("v3", E, REPO, tag="3", cve="CVE-2026-0003", modified=RECEIVED + 1, status_id=4)],
        now=RECEIVED + 1,
    )

    def uids(query: FindingQuery, least_id: int = 1, *, running: bool = False) -> list[str]:
        return [f.key[2] for f in store.prioritized(query, least_id=least_id, running=running)]

    assert uids(FindingQuery()) == ["v1", "v4", "v2"]
    assert uids(FindingQuery(), 3) == ["v1", "v4"]
    assert uids(FindingQuery(), running=True) == ["v1", "v4"]
    assert uids(FindingQuery(limit=1)) == ["v1"]
    assert uids(FindingQuery(account="11111111-1111-1111-1111-111111111111")) == ["v4"]
    assert uids(FindingQuery(account="1111*")) == ["v4"]
    assert uids(FindingQuery(severity_at_least=4)) == ["v2"]


def test_prioritized_applies_every_filter_of_the_listing(store: Store) -> None:
    """Source, image, time, status and text filters narrow the most-urgent-first list as they narrow a listing."""
    findings = [
        registry_cve("v1", D, REPO, severity_id=3),
        registry_cve("v2", E, "shopacr.azurecr.io/shop/api", cve="CVE-2026-0002", modified=RECEIVED + 5),
    ]
    store.upsert(findings[:1], now=RECEIVED)
    store.upsert(findings[1:], now=RECEIVED + 5)
    store.record_images(observe(*findings))
    facts = {r.key[2]: r.vulnerable for r in store.image_vulnerabilities()}
    store.set_image_priorities(
        [
            (facts["v1"], priority.Priority(3, 70, "running", False, "running")),
            (facts["v2"], priority.Priority(2, 40, "registry_only", False, "registry only")),
        ]
    )

    def uids(**filters: object) -> list[str]:
        return [f.key[2] for f in store.prioritized(FindingQuery(**filters), least_id=1, running=False)]  # type: ignore[arg-type]

    assert uids() == ["v1", "v2"]
    assert uids(source="azure.defender") == ["v1", "v2"]
    assert uids(source="aws.inspector2") == []
    assert uids(image=E) == ["v2"]
    assert uids(image="sha256:D*") == ["v1"]
    assert uids(since=RECEIVED + 1) == ["v2"]
    assert uids(until=RECEIVED + 1) == ["v1"]
    assert uids(status_id=ocsf.STATUS_NEW) == ["v1", "v2"]
    assert uids(status_id=ocsf.STATUS_RESOLVED) == []
    assert uids(text="cve-2026-0002") == ["v2"]
    assert uids(class_uid=ocsf.DETECTION) == []
