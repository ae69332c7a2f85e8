"""Source health and silence findings, and the matrix over a store filled from the delivery fixtures."""

from __future__ import annotations

from typing import Any

import orjson

from corral import ocsf, traits
from corral.coverage import RUNTIME, matrix, observe
from corral.health import check_sources, report, silence_key
from corral.pipeline import Inbound, Pipeline
from corral.records import HealthSignal
from corral.sinks.text import iso_ms
from corral.stores.base import FUTURE_ALLOWANCE_MS, DeadLetter, FindingQuery, LedgerEntry, SourceSeen
from tests.coverage.conftest import EVENTS, HOUR, Clock, deliveries, published
from tests.stores.factory import make_finding
from tests.support.ocsf import assert_valid

APP, TD = RUNTIME
AWS_ACCOUNT = "111122223333"


def test_fixtures_from_each_cloud_fill_the_matrix(pipeline: Pipeline, clock: Clock) -> None:
    """Real deliveries from all three clouds: covered, silent, unhealthy, gap and provider cells where expected."""
    result = pipeline.ingest(deliveries("aws/guardduty/*.json", "azure/defender/*.json", "gcp/scc/*.json"))
    assert result.counts["new"] > 20
    # The fixtures' own times are up to years old: windows wide enough that every source counts as live.
    years = dict.fromkeys(("aws.guardduty", "azure.defender", "gcp.scc"), 3 * 365 * 24 * 60)
    health = report(pipeline.store, years, clock.now)
    m = matrix(observe(pipeline.store, health, 168 * HOUR))
    assert m.cell(traits.GKE, APP, TD).state == "covered"
    assert m.cell(traits.CLOUD_RUN, APP, TD).state == "covered"
    assert m.cell(traits.AKS, "platform", "hardening").state == "covered"
    assert m.cell(traits.ECS_FARGATE, APP, TD).state == "covered"
    # The runtime-protection fixture says the EKS agent stopped reporting.
    assert m.cell(traits.EKS, APP, TD).state == "unhealthy"
    # SCC reports for GCP and could cover GKE workload hardening, but no such finding arrived.
    assert m.cell(traits.GKE, "application", "hardening").state == "silent"
    assert m.cell(traits.ECS_EC2, "infrastructure", "hardening").state == "gap"
    assert m.cell(traits.CLOUD_RUN, "infrastructure", "threat detection").state == "provider-managed"
    # Later Healthy signals for the EKS clusters (the delegated administrator's member account
    # among them) restore the runtime cell.
    pipeline.store.record_signals(
        [
            HealthSignal(
                "aws.guardduty", AWS_ACCOUNT, traits.EKS, True, clock.now, "us-east-1", "HEALTHY", "shop-prod"
            ),
            HealthSignal(
                "aws.guardduty", "444455556666", traits.EKS, True, clock.now, "eu-west-1", "HEALTHY", "shop-prod"
            ),
        ]
    )
    m = matrix(observe(pipeline.store, report(pipeline.store, {}, clock.now), 168 * HOUR))
    assert m.cell(traits.EKS, APP, TD).state == "covered"


def test_report_lists_each_source_and_account_with_cloud_and_window(pipeline: Pipeline, clock: Clock) -> None:
    """Each (source, account) appears once, with the cloud of its findings and its default window."""
    pipeline.ingest(
        deliveries("azure/defender/alert-k8s-*.json", "gcp/scc/ctd-added-binary-executed.notification.json")
    )
    health = report(pipeline.store, {"gcp.scc": 30}, clock.now)
    rows = {(r.source, r.account_uid): r for r in health.sources}
    assert rows[("azure.defender", AWS_ACCOUNT)].cloud == "AWS"
    assert rows[("azure.defender", AWS_ACCOUNT)].window_ms == 8 * 24 * HOUR
    assert rows[("gcp.scc", "corral-demo")].cloud == "GCP"
    assert rows[("gcp.scc", "corral-demo")].window_ms == 30 * 60_000
    assert all(r.state == "ok" for r in rows.values())
    clock.now += 31 * 60_000
    later = {(r.source, r.account_uid): r.state for r in report(pipeline.store, {"gcp.scc": 30}, clock.now).sources}
    assert later[("gcp.scc", "corral-demo")] == "silent"
    assert later[("azure.defender", AWS_ACCOUNT)] == "ok"


class Reads:
    """The real store, counting the findings queries made through it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.queries = 0

    def query(self, query: FindingQuery) -> Any:
        self.queries += 1
        return self.store.query(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_report_names_each_accounts_cloud_without_reading_its_findings(pipeline: Pipeline, clock: Clock) -> None:
    """Deliveries record their account's cloud; only a source recorded without one reads a finding back."""
    pipeline.ingest(deliveries("azure/defender/alert-k8s-*.json", "gcp/scc/*.json", "aws/guardduty/*.json"))
    reads = Reads(pipeline.store)
    health = report(reads, {}, clock.now)
    assert reads.queries == 0
    clouds = {(r.source, r.account_uid): r.cloud for r in health.sources}
    assert clouds[("azure.defender", AWS_ACCOUNT)] == "AWS"
    assert clouds[("gcp.scc", "corral-demo")] == "GCP"
    assert len(clouds) > 3
    # A source recorded before the store kept clouds: its account's cloud is read from a finding.
    pipeline.store.touch_sources([SourceSeen("azure.defender", "legacy", at=clock.now)])
    legacy = {(r.source, r.account_uid): r.cloud for r in report(reads, {}, clock.now).sources}
    assert (reads.queries, legacy[("azure.defender", "legacy")]) == (1, "Azure")


def test_silence_is_raised_once_and_closed_on_recovery(pipeline: Pipeline, clock: Clock) -> None:
    """A silent GuardDuty account gives one valid Create finding, not twice, then a Close after a new delivery."""
    pipeline.ingest(published(deliveries("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"), clock.now))
    assert check_sources(pipeline, clock.now).raised == ()

    clock.now += 7 * HOUR + 1
    first = check_sources(pipeline, clock.now)
    assert first.raised == ("corral:silent:aws.guardduty:111122223333",)
    stored = pipeline.store.get(silence_key("aws.guardduty", AWS_ACCOUNT))
    assert stored is not None and not stored.closed
    doc = stored.document
    assert_valid(doc)
    assert doc["activity_id"] == ocsf.CREATE
    assert doc["metadata"]["product"] == {"name": "Corral", "uid": "corral", "vendor_name": "Corral"}
    assert doc["finding_info"]["types"] == ["Source Silent"]
    assert doc["cloud"]["provider"] == "AWS"
    # Corral's own finding is not a source of its own.
    assert all(r.source != "corral" for r in first.sources)

    clock.now += HOUR
    again = check_sources(pipeline, clock.now)
    assert again.raised == () and again.closed == ()
    assert pipeline.store.get(silence_key("aws.guardduty", AWS_ACCOUNT)).versions == 1  # type: ignore[union-attr]

    [event] = deliveries("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    [update] = deliveries("aws/guardduty/eks-runtime-newbinaryexecuted-update.json")
    pipeline.ingest(published([event._replace(data={**event.data, "detail": update.data})], clock.now))
    clock.now += 1
    recovered = check_sources(pipeline, clock.now)
    assert recovered.closed == ("corral:silent:aws.guardduty:111122223333",)
    closed = pipeline.store.get(silence_key("aws.guardduty", AWS_ACCOUNT))
    assert closed is not None and closed.closed
    assert_valid(closed.document)
    assert closed.document["activity_id"] == ocsf.CLOSE
    assert closed.document["status_id"] == ocsf.STATUS_RESOLVED
    kinds = [h.kind for h in pipeline.store.history(silence_key("aws.guardduty", AWS_ACCOUNT))]
    assert kinds == ["new", "closed"]


def test_a_second_silence_reopens_the_finding(pipeline: Pipeline, clock: Clock) -> None:
    """After recovery, a new silence reopens the same finding rather than creating another."""
    pipeline.ingest(deliveries("gcp/scc/gke-image-cve.notification.json"))
    for step in (25 * HOUR, 1):
        clock.now += step
        check_sources(pipeline, clock.now)
        if step == 25 * HOUR:
            pipeline.ingest(deliveries("gcp/scc/gke-image-cve.notification.json"))
    clock.now += 25 * HOUR
    assert check_sources(pipeline, clock.now).raised == ("corral:silent:gcp.scc:corral-demo",)
    kinds = [h.kind for h in pipeline.store.history(silence_key("gcp.scc", "corral-demo"))]
    assert kinds == ["new", "closed", "reopened"]


def test_report_counts_dead_letters_and_pending(pipeline: Pipeline, clock: Clock) -> None:
    """Dead letters are counted per source, and the oldest pending delivery's age is reported."""
    pipeline.ingest(deliveries("gcp/scc/gke-image-cve.notification.json"))
    assert report(pipeline.store, {}, clock.now).oldest_pending_age_ms() is None
    pipeline.store.add_dead_letters(
        [DeadLetter.of(b"{}", at=clock.now, reason="bad", ref="x", source="azure.defender") for _ in range(2)]
    )
    item = pipeline.store.query(FindingQuery(limit=1)).items[0]
    pipeline.store.ledger_add(
        [LedgerEntry("v1", "slack:soc", item.key, "new", item.document, created=clock.now - HOUR, next_attempt=0)]
    )
    health = report(pipeline.store, {}, clock.now)
    assert health.dead_letters.get("azure.defender") == 2
    assert health.oldest_pending_age_ms() == HOUR
    assert health.to_json()["oldest_pending"]["slack:soc"]["age_ms"] == HOUR


def test_a_replayed_old_version_does_not_end_a_silence(pipeline: Pipeline, clock: Clock) -> None:
    """A stale delivery (a redrive, a backfill) proves nothing about the live export: the source stays silent."""
    old = make_finding("gd-1", modified=clock.now - 40 * 24 * HOUR)
    new = make_finding("gd-1", modified=clock.now)
    pipeline.ingest([Inbound(new, "bus#1")])
    clock.now += 8 * HOUR
    key = silence_key("aws.guardduty", new["cloud"]["account"]["uid"])
    assert check_sources(pipeline, clock.now).raised == (key[2],)
    clock.now += HOUR
    assert pipeline.ingest([Inbound(old, "redrive#1")]).counts["stale"] == 1
    clock.now += HOUR
    checked = check_sources(pipeline, clock.now)
    assert checked.closed == ()
    assert [s.state for s in checked.sources if s.source == "aws.guardduty"] == ["silent"]


def test_old_data_arriving_now_does_not_end_a_silence(pipeline: Pipeline, clock: Clock) -> None:
    """The same version again (an archive replay), never-seen old findings (a backfill) and an old health
    signal all arrive now, but show nothing of now: the source stays silent until it speaks again."""
    new = make_finding("gd-1", modified=clock.now)
    pipeline.ingest([Inbound(new, "bus#1")])
    clock.now += 8 * HOUR
    key = silence_key("aws.guardduty", new["cloud"]["account"]["uid"])
    assert check_sources(pipeline, clock.now).raised == (key[2],)
    signal = orjson.loads((EVENTS / "aws" / "guardduty" / "runtime-protection-healthy-ecs-fargate.json").read_bytes())
    replays = [
        Inbound(new, "replay#1"),  # unchanged
        Inbound(make_finding("gd-2", modified=clock.now - 40 * 24 * HOUR), "backfill#1"),  # new, but old
        Inbound(signal, "signal#1"),  # a health signal from 2025
    ]
    counts = pipeline.ingest(replays).counts
    assert (counts["unchanged"], counts["new"], counts["signals"]) == (1, 1, 1)
    clock.now += HOUR
    checked = check_sources(pipeline, clock.now)
    assert checked.closed == ()
    assert [s.state for s in checked.sources if s.source == "aws.guardduty"] == ["silent"]
    pipeline.ingest([Inbound(make_finding("gd-3", modified=clock.now), "bus#2")])  # the source speaks: recovered
    assert check_sources(pipeline, clock.now + 1).closed == (key[2],)


def test_a_source_sending_only_health_signals_is_delivering(pipeline: Pipeline, clock: Clock) -> None:
    """Inspector scan events every hour, and no new finding: Inspector is not silent."""
    scan = orjson.loads((EVENTS / "aws" / "inspector" / "scan-ecr-initial-scan-complete.eventbridge.json").read_bytes())
    pipeline.ingest([Inbound(scan, "bus#0")])
    for hour in range(1, 27):
        clock.now += HOUR
        pipeline.ingest([Inbound({**scan, "time": iso_ms(clock.now)}, f"bus#{hour}")])
    checked = check_sources(pipeline, clock.now)
    assert checked.raised == ()
    [state] = [s for s in checked.sources if s.source == "aws.inspector2"]
    assert state.state == "ok"
    assert state.last_finding_time is not None and clock.now - state.last_finding_time < HOUR


def test_one_cluster_healthy_does_not_hide_another_unhealthy(pipeline: Pipeline, clock: Clock) -> None:
    """Runtime Protection Unhealthy for one EKS cluster, then Healthy for another: the cell stays unhealthy."""
    sick = orjson.loads((EVENTS / "aws" / "guardduty" / "runtime-protection-unhealthy-eks.json").read_bytes())
    fine = orjson.loads(orjson.dumps(sick))
    fine["detail-type"] = "GuardDuty Runtime Protection Healthy"
    fine["detail"]["resourceDetails"]["eksClusterDetails"]["clusterName"] = "dev-sandbox"
    fine["detail"]["currentStatus"], fine["detail"]["previousStatus"] = "HEALTHY", "UNHEALTHY"
    fine["time"] = iso_ms(clock.now)
    fine["detail"]["lastUpdatedAt"] = iso_ms(clock.now)
    pipeline.ingest([Inbound(sick, "bus#1"), Inbound(fine, "bus#2")])
    m = matrix(observe(pipeline.store, report(pipeline.store, {}, clock.now), 168 * HOUR))
    cell = m.cell(traits.EKS, *RUNTIME)
    assert cell.state == "unhealthy" and "shop-prod" in cell.reason


def test_a_silent_sources_healthy_signal_does_not_cover(pipeline: Pipeline, clock: Clock) -> None:
    """A Healthy Fargate runtime signal from GuardDuty, now silent: the cell is silent, naming GuardDuty.

    And once GuardDuty delivers again, the same 48 h old signal covers a week's window but not a day's.
    """
    healthy = orjson.loads((EVENTS / "aws" / "guardduty" / "runtime-protection-healthy-ecs-fargate.json").read_bytes())
    start = clock.now
    clock.now = start - 48 * HOUR
    healthy["time"] = healthy["detail"]["lastUpdatedAt"] = iso_ms(clock.now)
    pipeline.ingest([Inbound(healthy, "bus#1")])
    clock.now = start
    health = report(pipeline.store, {}, clock.now)
    assert [r.state for r in health.sources if r.source == "aws.guardduty"] == ["silent"]
    cell = matrix(observe(pipeline.store, health, 168 * HOUR)).cell(traits.ECS_FARGATE, *RUNTIME)
    assert (cell.state, cell.reason) == ("silent", "aws.guardduty silent for AWS")

    pipeline.ingest([Inbound(make_finding("gd-live", modified=clock.now), "bus#2")])  # GuardDuty is live again
    health = report(pipeline.store, {}, clock.now)
    assert [r.state for r in health.sources if r.source == "aws.guardduty"] == ["ok"]
    week = matrix(observe(pipeline.store, health, 168 * HOUR)).cell(traits.ECS_FARGATE, *RUNTIME)
    assert week.state == "covered" and "healthy" in week.reason
    day = matrix(observe(pipeline.store, health, 24 * HOUR)).cell(traits.ECS_FARGATE, *RUNTIME)
    assert (day.state, day.reason) == ("silent", "no finding within the window")


def test_a_live_source_does_not_vouch_for_another_sources_old_finding(pipeline: Pipeline, clock: Clock) -> None:
    """GuardDuty's EKS runtime finding 6 days ago, GuardDuty silent; a Defender recommendation for the account 1 h ago.

    Over 24 h the EKS runtime cell is silent: the finding is older than the window asked for (Defender's
    8-day window is Defender's own), and Defender, live, reported nothing for that cell.
    """
    start = clock.now
    clock.now = start - 6 * 24 * HOUR
    pipeline.ingest(deliveries("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"))
    seen = clock.now
    clock.now = start - HOUR
    pipeline.ingest(deliveries("azure/defender/assessment-aws-eks-control-plane-logging.unhealthy.json"))
    clock.now = start
    health = report(pipeline.store, {}, clock.now)
    states = {r.source: r.state for r in health.sources}
    assert states == {"aws.guardduty": "silent", "azure.defender": "ok"}
    m = matrix(observe(pipeline.store, health, 24 * HOUR))
    cell = m.cell(traits.EKS, *RUNTIME)
    assert cell.state == "silent"
    assert cell.reason == "aws.guardduty silent for AWS; no finding from azure.defender within the window"
    assert cell.last_finding == seen
    # Defender's own finding is judged over its own window, and covers its own cell.
    assert m.cell(traits.EKS, traits.PLATFORM, traits.HARDENING).state == "covered"
    # Over a week the finding is within the window, but its source is silent: still not covered.
    assert matrix(observe(pipeline.store, health, 168 * HOUR)).cell(traits.EKS, *RUNTIME).state == "silent"


def test_registry_image_scanning_covers_the_accounts_container_services(pipeline: Pipeline, clock: Clock) -> None:
    """An Inspector ECR image finding (no container service) covers application vulnerability management of
    EKS, ECS on EC2 and ECS on Fargate in AWS; once Inspector goes silent, those cells say so."""
    pipeline.ingest(deliveries("aws/inspector/ecr-image-package-vulnerability.eventbridge.json"))
    [stored] = pipeline.store.query(FindingQuery(limit=2)).items
    assert traits.read(stored.document)[traits.SERVICE] == traits.NO_SERVICE  # an image, not a service
    m = matrix(observe(pipeline.store, report(pipeline.store, {}, clock.now), 168 * HOUR))
    for service in (traits.EKS, traits.ECS_EC2, traits.ECS_FARGATE):
        cell = m.cell(service, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)
        assert (cell.state, cell.reason) == ("covered", "findings within the window from aws.inspector2"), service
    # Not the node layer (an image says nothing about the worker nodes), nor another cloud's services.
    assert m.cell(traits.EKS, traits.INFRASTRUCTURE, traits.VULNERABILITY_MANAGEMENT).state == "silent"
    assert m.cell(traits.GKE, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT).state == "not connected"
    clock.now += 26 * HOUR
    m = matrix(observe(pipeline.store, report(pipeline.store, {}, clock.now), 168 * HOUR))
    fargate = m.cell(traits.ECS_FARGATE, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)
    assert (fargate.state, fargate.reason) == ("silent", "aws.inspector2 silent for AWS")


def test_a_finding_dated_in_the_future_shows_no_later_event_time_than_its_arrival(
    pipeline: Pipeline, clock: Clock
) -> None:
    """The newest event time only moves forward: one sender's clock in 2099 must not show 2099 for ever."""
    pipeline.ingest([Inbound(make_finding("gd-future", modified=4_070_908_800_000), "bus#1")])
    [state] = [s for s in check_sources(pipeline, clock.now).sources if s.source == "aws.guardduty"]
    assert state.last_finding_time is not None and state.last_finding_time <= clock.now + FUTURE_ALLOWANCE_MS
