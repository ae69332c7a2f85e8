"""The coverage matrix: responsibility data per service, and each state from plain observations."""

from __future__ import annotations

import pytest

from corral import sources, traits
from corral.coverage import RUNTIME, Observations, latest_per_cell, latest_signals, matrix
from corral.records import HealthSignal
from corral.responsibility import RESPONSIBILITY, capabilities, owner
from corral.sources import CAPABILITIES

HOUR = 3_600_000
NOW = 1_748_736_000_000
WEEK = 168 * HOUR
APP, TD = RUNTIME
C, P = "customer", "provider"

# service -> {(layer, task): expected owner} for the cells each model pins down.
EXPECTED_SPLIT = {
    traits.EKS: {
        ("infrastructure", "hardening"): C,
        ("platform", "hardening"): C,
        ("application", "threat detection"): C,
    },
    traits.ECS_EC2: {("infrastructure", "vulnerability management"): C, ("application", "hardening"): C},
    traits.ECS_FARGATE: {
        ("infrastructure", "hardening"): P,
        ("infrastructure", "threat detection"): P,
        ("platform", "hardening"): C,
        ("application", "vulnerability management"): C,
    },
    traits.AKS: {("infrastructure", "vulnerability management"): C, ("platform", "threat detection"): C},
    traits.CONTAINER_APPS: {("infrastructure", "vulnerability management"): P, ("platform", "hardening"): C},
    traits.FUNCTION_APPS: {("infrastructure", "threat detection"): P, ("application", "threat detection"): C},
    traits.GKE: {("infrastructure", "hardening"): C, ("application", "vulnerability management"): C},
    traits.CLOUD_RUN: {
        ("infrastructure", "hardening"): P,
        ("platform", "vulnerability management"): P,
        ("application", "threat detection"): C,
    },
}


def obs(**kwargs: object) -> Observations:
    """Observations at NOW over a week, with the given fields."""
    return Observations(now=NOW, window_ms=WEEK, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", traits.CONTAINER_SERVICES)
def test_responsibility_row_per_service(service: str) -> None:
    """Each service's row follows its provider's shared-responsibility model."""
    for (layer, task), expected in EXPECTED_SPLIT[service].items():
        assert owner(service, layer, task) == expected, (service, layer, task)
    # Whatever the model, the workload the customer deploys is the customer's to watch.
    assert all(owner(service, traits.APPLICATION, task) == C for task in traits.TASKS)


def test_every_service_has_a_row_and_capabilities_name_known_cells() -> None:
    """The tables cover exactly the eight services, and every detector names real services and cells."""
    assert set(RESPONSIBILITY) == set(traits.CONTAINER_SERVICES)
    for cap in CAPABILITIES:
        assert cap.source in sources.FACTS
        assert set(cap.services) <= set(traits.CONTAINER_SERVICES)
        assert all(layer in traits.LAYERS and task in traits.TASKS for layer, task in cap.cells)


def test_empty_store_shows_provider_cells_gaps_and_unconnected() -> None:
    """With nothing observed: provider cells are provider-managed, uncoverable ones gaps, the rest not connected."""
    m = matrix(obs())
    assert len(m.cells) == 8 * 9
    assert m.cell(traits.ECS_FARGATE, "infrastructure", "hardening").state == "provider-managed"
    assert m.cell(traits.ECS_EC2, "infrastructure", "hardening").state == "gap"
    assert m.cell(traits.EKS, APP, TD).state == "not connected"
    assert sum(m.totals().values()) == 72


def test_recent_finding_covers_and_expected_cell_without_one_is_silent() -> None:
    """A finding in the window covers its cell; a cell GuardDuty could cover but did not is silent."""
    latest = {(traits.EKS, APP, TD, "aws.guardduty"): NOW - HOUR}
    m = matrix(obs(latest=latest, reporting={"aws.guardduty": frozenset({"AWS"})}))
    assert m.cell(traits.EKS, APP, TD).state == "covered"
    assert m.cell(traits.EKS, APP, TD).last_finding == NOW - HOUR
    silent = m.cell(traits.EKS, "platform", "threat detection")
    assert silent.state == "silent"
    assert "GuardDuty EKS Protection (audit logs)" in silent.expected
    # GuardDuty does not report for Azure: AKS cells are not expected from it.
    assert m.cell(traits.AKS, APP, TD).state == "not connected"


def test_finding_older_than_window_is_silent() -> None:
    """A finding just outside the window no longer covers the cell."""
    latest = {(traits.GKE, APP, TD, "gcp.scc"): NOW - WEEK - 1}
    m = matrix(obs(latest=latest, reporting={"gcp.scc": frozenset({"GCP"})}))
    assert m.cell(traits.GKE, APP, TD).state == "silent"
    latest = {(traits.GKE, APP, TD, "gcp.scc"): NOW - WEEK}
    assert (
        matrix(obs(latest=latest, reporting={"gcp.scc": frozenset({"GCP"})})).cell(traits.GKE, APP, TD).state
        == "covered"
    )


def test_silent_source_makes_its_cells_silent_even_with_recent_findings() -> None:
    """When the only source expected for a cell has gone silent, the cell is silent, naming the source."""
    latest = {(traits.CLOUD_RUN, APP, TD, "gcp.scc"): NOW - HOUR}
    m = matrix(obs(latest=latest, reporting={"gcp.scc": frozenset({"GCP"})}, silent=frozenset({("gcp.scc", "GCP")})))
    cell = m.cell(traits.CLOUD_RUN, APP, TD)
    assert cell.state == "silent"
    assert "gcp.scc" in cell.reason


def test_multicloud_source_is_expected_for_the_cloud_it_reports() -> None:
    """Defender reporting for an AWS account makes Defender for Containers expected on EKS."""
    m = matrix(obs(reporting={"azure.defender": frozenset({"AWS"})}))
    assert m.cell(traits.EKS, "platform", "hardening").state == "silent"
    assert m.cell(traits.AKS, "platform", "hardening").state == "not connected"


def test_unhealthy_signal_flips_runtime_cell_and_healthy_restores_it() -> None:
    """An Unhealthy runtime signal makes the runtime cell unhealthy; a later Healthy one restores it."""
    latest = {(traits.EKS, APP, TD, "aws.guardduty"): NOW - HOUR}
    reporting = {"aws.guardduty": frozenset({"AWS"})}
    sick = HealthSignal("aws.guardduty", "111122223333", traits.EKS, False, NOW - 2 * HOUR, "us-east-1", "agent down")
    m = matrix(obs(latest=latest, reporting=reporting, signals=(sick,)))
    assert m.cell(traits.EKS, APP, TD).state == "unhealthy"
    assert "agent down" in m.cell(traits.EKS, APP, TD).reason
    # Only the runtime cell of that service flips.
    assert m.cell(traits.EKS, "platform", "threat detection").state == "silent"
    assert m.cell(traits.ECS_EC2, APP, TD).state == "silent"
    well = HealthSignal("aws.guardduty", "111122223333", traits.EKS, True, NOW - HOUR, "us-east-1", "back")
    m = matrix(obs(latest=latest, reporting=reporting, signals=(sick, well)))
    assert m.cell(traits.EKS, APP, TD).state == "covered"


def test_healthy_signal_in_window_covers_runtime_cell_without_findings() -> None:
    """A Healthy runtime signal within the window covers the runtime cell; an old one does not."""
    reporting = {"aws.guardduty": frozenset({"AWS"})}
    well = HealthSignal("aws.guardduty", "111122223333", traits.ECS_FARGATE, True, NOW - HOUR)
    assert matrix(obs(reporting=reporting, signals=(well,))).cell(traits.ECS_FARGATE, APP, TD).state == "covered"
    old = HealthSignal("aws.guardduty", "111122223333", traits.ECS_FARGATE, True, NOW - WEEK - HOUR)
    assert matrix(obs(reporting=reporting, signals=(old,))).cell(traits.ECS_FARGATE, APP, TD).state == "silent"


def test_capabilities_of_a_cell() -> None:
    """Cells list the detectors able to cover them, and uncoverable ones list none."""
    assert any(c.name == "Cloud Run Threat Detection" for c in capabilities(traits.CLOUD_RUN, APP, TD))
    assert capabilities(traits.ECS_EC2, "infrastructure", "hardening") == ()


def test_latest_per_cell_ignores_samples_and_unclassified() -> None:
    """Sample findings and findings without a container service are not coverage; each product is its own."""

    def doc(service: str, *, sample: bool = False, product: str = "gcp.scc") -> dict[str, object]:
        return {
            "metadata": {"product": {"uid": product}},
            "cloud": {"provider": traits.SERVICE_CLOUD.get(service, "GCP")},
            "finding_info": {"traits": traits.classify(service, APP, TD, sample=sample)},
        }

    latest = latest_per_cell(
        [
            (doc(traits.GKE), 5),
            (doc(traits.GKE), 9),
            (doc(traits.GKE, product="azure.defender"), 6),
            (doc(traits.AKS, sample=True), 7),
            (doc("none"), 8),
        ]
    )
    assert latest == {(traits.GKE, APP, TD, "gcp.scc", "GCP"): 9, (traits.GKE, APP, TD, "azure.defender", "GCP"): 6}


def test_a_cell_waits_as_long_as_its_weekly_source() -> None:
    """A Defender cell is judged over Defender's 8-day window even when the matrix asks for a week."""
    cell = (traits.AKS, traits.PLATFORM, traits.HARDENING)
    reporting = {"azure.defender": frozenset({"Azure"})}
    windows = {"azure.defender": 8 * 24 * HOUR}
    latest = {(*cell, "azure.defender"): NOW - WEEK - 10 * 60_000}  # the weekly snapshot is ten minutes late
    assert matrix(obs(latest=latest, reporting=reporting)).cell(*cell).state == "silent"
    assert matrix(obs(latest=latest, reporting=reporting, source_windows=windows)).cell(*cell).state == "covered"
    older = {(*cell, "azure.defender"): NOW - 8 * 24 * HOUR - 1}
    assert matrix(obs(latest=older, reporting=reporting, source_windows=windows)).cell(*cell).state == "silent"


def test_a_signal_naming_no_resource_gives_way_to_a_later_named_one() -> None:
    """A signal kept before resources had their own cannot say which cluster it was about."""
    legacy = HealthSignal("aws.guardduty", "111", traits.EKS, False, NOW - 2 * HOUR, "us-east-1", "UNHEALTHY")
    prod = legacy._replace(healthy=True, time=NOW - HOUR, resource="prod")
    dev = legacy._replace(healthy=False, time=NOW - 3 * HOUR, resource="dev")
    assert sorted(latest_signals([legacy, prod, dev]), key=lambda s: s.resource) == [dev, prod]
    assert latest_signals([legacy, dev]) == [legacy, dev]  # the named one is older: both stand
