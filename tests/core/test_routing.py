"""Routing: conditions, suppressions in force, destinations, default change kinds and samples."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral import config, ocsf, priority, sinks, traits
from corral.errors import ConfigError
from corral.routing import CONDITIONS, Condition, Router
from corral.stores.base import CHANGE_KINDS
from tests.stores.factory import make_finding

NOW = 1_800_000_000_000


def finding(**kwargs: Any) -> ocsf.Finding:
    """Return a test finding with a labelled cluster resource."""
    doc = make_finding(**kwargs)
    doc["resources"][0]["labels"] = ["team:payments", "env:prod"]
    return doc


def when(table: dict[str, Any]) -> Condition:
    """Parse a `when` table."""
    return Condition.parse(table, "test.when")


BASE = finding()
# What `running` and `priority_at_least` read: Corral's priority (see corral.priority).
BASE = priority.apply(BASE, priority.Priority(3, 65, "running", False, "high-severity vulnerability; image running"))
MATCHING = {
    "type": ["Execution:*", BASE["finding_info"]["types"][0], "execution:*", BASE["finding_info"]["types"][0].upper()],
    "severity_at_least": [ocsf.SEVERITY_NAMES[BASE["severity_id"]].lower(), "informational"],
    "container_service": [traits.read(BASE)[traits.SERVICE], traits.read(BASE)[traits.SERVICE].lower(), " EKS "],
    "layer": [traits.read(BASE)[traits.LAYER]],
    "task": [traits.read(BASE)[traits.TASK]],
    "cluster": [BASE["resources"][0]["name"], BASE["resources"][0]["name"].upper()],
    "namespace": [BASE["resources"][1]["namespace"]],
    "tag": ["env:prod", "TEAM:payments"],
    "trait": [f"container_service={traits.read(BASE)[traits.SERVICE]}", f"task={traits.read(BASE)[traits.TASK]}"],
    "account": [BASE["cloud"]["account"]["uid"]],
    "cloud": [BASE["cloud"]["provider"], BASE["cloud"]["provider"].lower()],
    "source": [BASE["metadata"]["product"]["uid"], "AWS.GuardDuty"],
    "region": [BASE["cloud"]["region"]],
    "class": [str(BASE["class_uid"]), BASE["class_name"], BASE["class_name"].upper(), "Detection", "detection"],
    "running": ["true", "TRUE"],
    "priority_at_least": ["high", "low"],
}
NOT_MATCHING = {
    "type": ["Recon:*", BASE["finding_info"]["types"][0] + "X", "Execution:Runtime/?ewBinaryExecuted"],
    "severity_at_least": ["critical"],
    "container_service": [traits.GKE, traits.ECS_FARGATE, "ECS"],
    "layer": [traits.APPLICATION],
    "task": [traits.HARDENING],
    "cluster": ["other-cluster", BASE["resources"][0]["name"][:-1]],
    "namespace": ["kube-system"],
    "tag": ["env:dev", "env"],
    "trait": ["container_service=GKE", "sample=true"],
    "account": ["999999999999"],
    "cloud": ["GCP"],
    "source": ["gcp.scc", "azure.defender", "microsoft.defender_for_cloud", "aws.inspector2"],
    "region": ["eu-west-1"],
    "class": [str(ocsf.VULNERABILITY), "compliance finding", "Vulnerability"],
    "running": ["false"],
    "priority_at_least": ["critical"],
}


def test_every_condition_key_is_tested() -> None:
    """The tables below cover every condition key Corral offers."""
    assert set(MATCHING) == set(NOT_MATCHING) == set(CONDITIONS)


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, values in MATCHING.items() for v in values])
def test_condition_matches(key: str, value: str) -> None:
    """Each condition key matches a finding with that value (case-insensitive where it names things)."""
    assert when({key: value}).matches(BASE)


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, values in NOT_MATCHING.items() for v in values])
def test_condition_does_not_match(key: str, value: str) -> None:
    """Each condition key rejects a finding with another value."""
    assert not when({key: value}).matches(BASE)


@pytest.mark.parametrize("key", sorted(set(CONDITIONS) - {"severity_at_least"}))
def test_or_within_a_list(key: str) -> None:
    """A list of values matches when any one of them does (severity_at_least takes exactly one)."""
    assert when({key: [NOT_MATCHING[key][0], MATCHING[key][0]]}).matches(BASE)
    assert not when({key: NOT_MATCHING[key]}).matches(BASE)


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(sorted(CONDITIONS), 2)))
def test_and_across_keys(first: str, second: str) -> None:
    """Several keys match only when every key does."""
    for a, b in ((MATCHING, MATCHING), (MATCHING, NOT_MATCHING), (NOT_MATCHING, MATCHING)):
        expected = a is MATCHING and b is MATCHING
        assert when({first: a[first][0], second: b[second][0]}).matches(BASE) is expected


def test_empty_condition_matches_everything() -> None:
    """A route without `when` matches every finding."""
    assert when({}).matches(BASE)
    assert Condition.parse(None, "x").matches(BASE)


@given(
    st.sampled_from([1, 2, 3, 4, 5, 6, 0, 99]), st.sampled_from(["informational", "low", "medium", "high", "critical"])
)
def test_severity_at_least(severity_id: int, threshold: str) -> None:
    """`severity_at_least` matches an ordered severity at or above the threshold; Unknown and Other never."""
    matched = when({"severity_at_least": threshold}).matches(finding(severity_id=severity_id))
    assert matched is (1 <= severity_id <= 6 and severity_id >= ocsf.SEVERITY_IDS[threshold])


def test_suppression_in_force_until_its_time() -> None:
    """A suppression applies before `until` and not from `until` on; one without `until` always applies."""
    settings = config.parse(
        {
            "suppress": [
                {
                    "name": "timed",
                    "when": {"cluster": "prod-eks"},
                    "reason": "maintenance",
                    "until": dt.date(2027, 1, 31),
                },
                {"name": "forever", "when": {"namespace": "sandbox"}, "reason": "sandbox"},
            ]
        }
    )
    router = settings.router
    until = router.suppressions[0].until
    assert until is not None
    before = router.suppression(BASE, until - 1)
    assert before is not None
    assert (before.reason, before.by, before.until) == ("maintenance", "suppress:timed", until)
    assert router.suppression(BASE, until) is None
    sandboxed = finding(cluster="other", namespace="sandbox")
    for now in (0, until, until * 10):
        rule = router.suppression(sandboxed, now)
        assert rule is not None
        assert (rule.by, rule.until) == ("suppress:forever", None)
    assert router.suppression(finding(cluster="other", namespace="x"), 0) is None


SINKS = {
    "slack:soc": {"kind": "slack"},
    "teams:ops": {"kind": "teams"},
    "splunk_hec:main": {},
    "relay:hub": {},
    "file:archive": {},
}


def router(routes: list[dict[str, Any]]) -> Router:
    """Return the router a configuration with these routes (and all test sinks) describes."""
    return config.parse({"sinks": SINKS, "routes": routes}).router


def test_every_matching_route_fires_but_a_sink_gets_a_change_once() -> None:
    """Destinations are the union of matching routes' sinks, each once, in configuration order."""
    r = router(
        [
            {"name": "high", "when": {"severity_at_least": "high"}, "to": ["slack:soc"]},
            {"name": "eks", "when": {"container_service": "EKS"}, "to": ["splunk_hec:main", "slack:soc"]},
            {"name": "all", "to": ["file:archive", "splunk_hec:main"]},
            {"name": "gke", "when": {"container_service": "GKE"}, "to": ["teams:ops"]},
        ]
    )
    high_eks = finding(severity_id=4)
    assert r.destinations("new", high_eks) == ["slack:soc", "splunk_hec:main", "file:archive"]
    low_gke = finding(severity_id=2, service=traits.GKE)
    assert r.destinations("new", low_gke) == ["file:archive", "splunk_hec:main", "teams:ops"]


CHAT_DEFAULT = {"new", "escalated", "reopened", "closed"}


@pytest.mark.parametrize("kind", CHANGE_KINDS)
@pytest.mark.parametrize("sink", sorted(SINKS))
def test_default_change_kinds_per_family(kind: str, sink: str) -> None:
    """Without `on`, chat sinks get new/escalated/reopened/closed; others all but unchanged and stale."""
    r = router([{"to": [sink]}])
    family = sinks.family(str(SINKS[sink].get("kind") or sink.partition(":")[0]))
    wanted = CHAT_DEFAULT if family == "chat" else set(CHANGE_KINDS) - {"unchanged", "stale"}
    assert (r.destinations(kind, BASE) == [sink]) is (kind in wanted)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_explicit_on_replaces_the_default(kind: str) -> None:
    """A route's `on` list decides the change kinds for every sink it names."""
    on = ["updated", "deescalated"]
    r = router([{"to": ["slack:soc", "splunk_hec:main"], "on": on}])
    expected = ["slack:soc", "splunk_hec:main"] if kind in on else []
    assert r.destinations(kind, BASE) == expected  # type: ignore[arg-type]


def test_change_kind_filter_per_route_with_shared_sink() -> None:
    """A sink named by two routes gets the union of their change kinds, still once each."""
    r = router([{"to": ["slack:soc"], "on": ["new"]}, {"to": ["slack:soc"], "on": ["closed", "new"]}])
    assert [k for k in CHANGE_KINDS if r.destinations(k, BASE) == ["slack:soc"]] == ["new", "closed"]


@pytest.mark.parametrize("samples", [False, True])
def test_sample_findings_reach_chat_only_with_samples(samples: bool) -> None:
    """Vendor sample findings go to chat sinks only when the route sets `samples = true`; others always."""
    sample = finding(
        extra_traits=[
            t
            for t in traits.classify(traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, sample=True)
            if t["name"] == traits.SAMPLE
        ]
    )
    assert traits.is_sample(sample)
    r = router([{"to": ["slack:soc", "teams:ops", "splunk_hec:main", "relay:hub"], "samples": samples}])
    chat = ["slack:soc", "teams:ops"] if samples else []
    assert r.destinations("new", sample) == [*chat, "splunk_hec:main", "relay:hub"]
    assert r.destinations("new", BASE) == ["slack:soc", "teams:ops", "splunk_hec:main", "relay:hub"]


def test_sample_on_one_route_does_not_block_another_that_allows_it() -> None:
    """A chat sink skipped for a sample by one route still gets it from a route with `samples = true`."""
    sample = make_finding()
    sample["finding_info"]["traits"] = traits.classify(
        traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION, sample=True
    )
    r = router([{"to": ["slack:soc"]}, {"to": ["slack:soc"], "samples": True}])
    assert r.destinations("new", sample) == ["slack:soc"]
    assert router([{"to": ["slack:soc"]}]).destinations("new", sample) == []


def test_running_false_matches_only_what_is_known_not_to_run() -> None:
    """A finding with no runtime context (a detection) is neither running nor not: `running = false` skips it."""
    r = router([{"name": "idle", "when": {"running": False}, "to": ["file:archive"]}])
    assert r.destinations("new", make_finding("detection")) == []
    idle = priority.apply(make_finding("cve"), priority.Priority(2, 30, "registry_only", False, "never seen running"))
    assert priority.read(idle)[1] == "registry_only"
    assert r.destinations("new", idle) == ["file:archive"]


@pytest.mark.parametrize("kinds", [[], ["unchanged"], ["new", "stale"]])
def test_a_route_on_change_kinds_never_sent_is_refused(kinds: list[str]) -> None:
    """`on` naming only what is never sent would route nothing, silently: it is a configuration error."""
    with pytest.raises(ConfigError, match=r"routes\[0\] \(x\)\.on: .*(never sent|sends nothing)"):
        router([{"name": "x", "on": kinds, "to": ["file:archive"]}])
