"""The Corral priority: runtime context, exposure and weights, and the OCSF fields it fills."""

from __future__ import annotations

import pytest

from corral import inventory, priority
from corral.errors import ConfigError
from tests.images.support import HOUR, RECEIVED, assert_valid_declared, digest, fixture, registry_cve

D = digest("d")
WINDOW = 24 * HOUR


def sighting(at: int, *, workload: str = "web", image: str = D) -> inventory.Sighting:
    return inventory.Sighting(image, "GCP", "p", "gke", "shop", workload, "r", at)


def vulnerable(severity_id: int = 4, *, exploit: bool | None = None, fix: bool | None = None) -> inventory.Vulnerable:
    return inventory.Vulnerable(("p", "a", "u"), D, severity_id, True, ("CVE-1",), exploit, fix, RECEIVED)


def test_contexts() -> None:
    now = RECEIVED
    assert priority.runtime("", [], [], now=now, window_ms=WINDOW).context == "unknown"
    assert priority.runtime("repo:tag", [], [], now=now, window_ms=WINDOW).context == "unknown"
    assert priority.runtime(D, [], [], now=now, window_ms=WINDOW).context == "registry_only"
    running = priority.runtime(D, [(sighting(now - HOUR), False)], [], now=now, window_ms=WINDOW)
    assert (running.context, len(running.workloads), running.probable) == ("running", 1, False)
    old = priority.runtime(D, [(sighting(now - 2 * WINDOW), False)], [], now=now, window_ms=WINDOW)
    assert old.context == "deployed"
    assert old.basis == now - 2 * WINDOW + WINDOW + 1


def test_probable_only_when_every_recent_sighting_is_by_tag() -> None:
    now = RECEIVED
    both = [(sighting(now), True), (sighting(now, workload="api"), False)]
    assert not priority.runtime(D, both, [], now=now, window_ms=WINDOW).probable
    assert priority.runtime(D, both[:1], [], now=now, window_ms=WINDOW).probable


def test_exposure_counts_only_for_a_running_exposed_workload() -> None:
    now = RECEIVED
    exposed = inventory.Exposure("Azure", "s", "gke", "shop", "web", "ap", now)
    closed = inventory.Exposure("Azure", "s", "gke", "shop", "web", "ap", now, active=False)
    assert priority.runtime(D, [(sighting(now), False)], [exposed], now=now, window_ms=WINDOW).exposed
    assert not priority.runtime(D, [(sighting(now), False)], [closed], now=now, window_ms=WINDOW).exposed
    assert not priority.runtime(
        D, [(sighting(now, workload="db"), False)], [exposed], now=now, window_ms=WINDOW
    ).exposed


def test_a_running_high_outranks_a_registry_critical() -> None:
    running = priority.runtime(D, [(sighting(RECEIVED), False)], [], now=RECEIVED, window_ms=WINDOW)
    registry = priority.runtime(D, [], [], now=RECEIVED, window_ms=WINDOW)
    high_running = priority.score(vulnerable(4, fix=True), running)
    critical_registry = priority.score(vulnerable(5, fix=True), registry)
    assert high_running.risk_score > critical_registry.risk_score
    assert (high_running.level, critical_registry.level) == ("Medium", "Low")
    assert "running in 1 workload on GCP" in high_running.details
    assert "registry only" in critical_registry.details


def test_exposure_and_exploit_raise_the_priority() -> None:
    running = priority.runtime(
        D,
        [(sighting(RECEIVED), False)],
        [inventory.Exposure("GCP", "p", "gke", "shop", "web", "x", RECEIVED)],
        now=RECEIVED,
        window_ms=WINDOW,
    )
    found = priority.score(vulnerable(5, exploit=True, fix=True), running)
    assert (found.level, found.risk_score) == ("Critical", 100)
    assert "internet-exposed; exploit available; fix available" in found.details


def test_weights_come_from_configuration() -> None:
    weights = priority.parse_weights({"registry_only": 1, "window_hours": 2}, "corral.toml")
    assert weights.window_ms == 2 * HOUR
    registry = priority.runtime(D, [], [], now=RECEIVED, window_ms=weights.window_ms)
    assert priority.score(vulnerable(5), registry, weights).risk_score == 60
    assert priority.parse_weights(None, "x") == priority.DEFAULT_WEIGHTS


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"runing": 1}, "corral.toml: priority.runing: unknown key"),
        ({"high": "a lot"}, "corral.toml: priority.high: expected a number"),
        ({"high": -1}, "corral.toml: priority.high: expected a number"),
        ({"window_hours": 0}, "corral.toml: priority.window_hours: expected a number of hours above 0"),
        ({"exploit_available": True}, "corral.toml: priority.exploit_available: expected a number"),
        ("high", "corral.toml: priority: expected a [priority] table"),
    ],
)
def test_bad_weights_name_the_key(table: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        priority.parse_weights(table, "corral.toml")


@pytest.mark.parametrize(
    "relative",
    [
        "azure/defender/subassessment-runtime-image-cve.camelcase.json",
        "azure/defender/subassessment-acr-image-cve.pascalcase.json",
        "gcp/scc/gke-image-cve.notification.json",
        "gcp/scc/vm-os-cve.finding.json",
    ],
)
def test_prioritized_findings_validate_against_ocsf_with_their_profiles(relative: str) -> None:
    for finding in fixture(relative):
        seen = inventory.observe(finding)
        assert seen.vulnerable is not None
        where = priority.runtime(
            seen.vulnerable.image, [(s, False) for s in seen.sightings], [], now=RECEIVED, window_ms=WINDOW
        )
        done = priority.apply(finding, priority.score(seen.vulnerable, where))
        assert {"incident", "security_control"} <= set(done["metadata"]["profiles"])
        assert_valid_declared(done)
        assert priority.without(done) == {
            **finding,
            "metadata": done["metadata"] | {"profiles": ["cloud", "container"]},
        }


def test_the_profiles_are_what_makes_the_fields_valid() -> None:
    finding = registry_cve("v", D, "repo/app")
    done = priority.apply(finding, priority.score(vulnerable(), priority.Runtime("registry_only")))
    done["metadata"] = {**done["metadata"], "profiles": ["cloud", "container"]}
    with pytest.raises(AssertionError):
        assert_valid_declared(done)


def test_priority_is_not_part_of_the_fingerprint() -> None:
    from corral.stores.base import fingerprint

    finding = registry_cve("v", D, "repo/app")
    low = priority.apply(finding, priority.score(vulnerable(), priority.Runtime("registry_only")))
    high = priority.apply(finding, priority.score(vulnerable(), priority.Runtime("running", clouds=("GCP",))))
    assert fingerprint(low) == fingerprint(high) == fingerprint(finding)
    assert priority.read(high) == (high["priority_id"], "running")


def test_priority_table_in_the_configuration_file() -> None:
    from corral import config

    assert config.parse({"priority": {"running": 0.9}}, "corral.toml").priority.running == 0.9
    assert config.parse({}, "corral.toml").priority == priority.DEFAULT_WEIGHTS
    with pytest.raises(ConfigError, match=r"corral\.toml: priority\.high: expected a number"):
        config.parse({"priority": {"high": "x"}}, "corral.toml")
