"""Across clouds: a registry CVE, the image running elsewhere, the evidence ageing out, and replays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from corral import config, ocsf, priority
from corral.errors import ConfigError
from corral.pipeline import Inbound, Pipeline
from corral.routing import Condition
from corral.sinks.base import Delivery, Result
from corral.stores.base import Store
from tests.images.support import HOUR, RECEIVED, assert_valid_declared, digest, registry_cve, runtime_alert

D = digest("d")
REPO = "shopacr.azurecr.io/shop/web"


class Recording:
    """A sink that accepts everything and records what it was sent."""

    def __init__(self, sink_id: str, family: Any) -> None:
        self.id = sink_id
        self.family = family
        self.sent: list[Delivery] = []

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Record and accept every delivery."""
        self.sent.extend(deliveries)
        return [Result.success(d.version) for d in deliveries]

    def close(self) -> None:
        """Nothing to release."""


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def build(store: Store, clock: Clock, routes: list[dict[str, Any]]) -> tuple[Pipeline, Recording]:
    chat = Recording("slack:soc", "chat")
    settings = config.parse({"sinks": {"slack:soc": {}}, "routes": routes})
    return Pipeline(store, settings.router, {chat.id: chat}, clock=clock, settings=settings), chat


def deliver(pipeline: Pipeline, *findings: dict[str, Any]) -> dict[str, int]:
    return pipeline.ingest([Inbound(f, ref=f"test:{i}") for i, f in enumerate(findings)]).summary()


def test_a_registry_cve_rises_when_its_image_runs_on_another_cloud_and_falls_back(store: Store) -> None:
    clock = Clock(RECEIVED)
    routes = [{"to": ["slack:soc"], "when": {"class": "2002"}, "on": ["new", "reprioritized"]}]
    pipeline, chat = build(store, clock, routes)
    cve = registry_cve("acr-cve", D, REPO, tag="2.0", severity_id=4, cloud="Azure", modified=RECEIVED - HOUR)

    # 1. A registry CVE for D on Azure: registry only, low.
    assert deliver(pipeline, cve)["new"] == 1
    (first,) = chat.sent
    assert (first.change, first.finding["priority"]) == ("new", "Low")
    assert "registry only" in first.finding["risk_details"]
    assert_valid_declared(dict(first.finding))

    # 2. SCC on GCP sees D running in GKE: the priority rises, one reprioritization, sent once.
    clock.now = RECEIVED + HOUR
    alert = runtime_alert("ctd-1", {"uid": D, "name": REPO, "tag": "2.0"}, seen=RECEIVED + HOUR, cloud="GCP")
    summary = deliver(pipeline, alert)
    assert summary["reprioritized"] == 1
    assert deliver(pipeline, alert)["reprioritized"] == 0
    assert pipeline.redrive()["delivered"] == 0
    risen = chat.sent[1:]
    assert [(d.change, d.finding["priority"]) for d in risen] == [("reprioritized", "Medium")]
    assert "running in 1 workload on GCP" in risen[0].finding["risk_details"]
    assert_valid_declared(dict(risen[0].finding))
    stored = store.get(ocsf.identity(risen[0].finding))
    assert stored is not None and stored.document["priority"] == "Medium"
    assert stored.versions == 1  # a new priority is no new vendor version

    # 3. D is not seen for longer than the window: the hourly check lowers it, once.
    clock.now = RECEIVED + HOUR + priority.DEFAULT_WEIGHTS.window_ms + 1
    assert pipeline.check_sources()["reprioritized"] == 1
    assert pipeline.check_sources()["reprioritized"] == 0
    fallen = chat.sent[2:]
    assert [(d.change, d.finding["priority"]) for d in fallen] == [("reprioritized", "Low")]
    assert "deployed, not seen running lately" in fallen[0].finding["risk_details"]

    # 4. Replaying everything changes nothing and sends nothing.
    replay = deliver(pipeline, cve, alert, cve)
    assert replay["unchanged"] == 3
    assert replay["reprioritized"] == 0
    assert pipeline.check_sources()["reprioritized"] == 0
    assert len(chat.sent) == 3
    stored = store.get(ocsf.identity(risen[0].finding))
    assert stored is not None and stored.document["priority"] == "Low"


def test_route_conditions_running_and_priority_at_least(store: Store) -> None:
    clock = Clock(RECEIVED)
    routes = [
        {"to": ["slack:soc"], "when": {"running": True, "priority_at_least": "high"}, "on": ["new", "reprioritized"]}
    ]
    pipeline, chat = build(store, clock, routes)
    deliver(pipeline, runtime_alert("ctd-1", {"uid": D}, seen=RECEIVED))
    deliver(
        pipeline,
        registry_cve("exploitable", D, REPO, severity_id=4, exploit=True),
        registry_cve("medium", D, REPO, severity_id=3, cve="CVE-2026-0003"),
        registry_cve("elsewhere", digest("e"), "repo/other", severity_id=5, exploit=True),
    )
    assert [(d.finding["finding_info"]["uid"], d.finding["priority"]) for d in chat.sent] == [("exploitable", "High")]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"running": "yes"}, "when.running: expected true or false"),
        ({"priority_at_least": "urgent"}, "when.priority_at_least: expected one of low, medium, high, critical"),
    ],
)
def test_bad_route_conditions_name_the_key(when: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Condition.parse(when, "routes[0].when")


def test_an_unknown_image_is_unknown_and_never_reprioritized(store: Store) -> None:
    clock = Clock(RECEIVED)
    pipeline, chat = build(store, clock, [{"to": ["slack:soc"], "on": ["new", "reprioritized"]}])
    cve = registry_cve("no-digest", "repo/app:1", "repo/app", tag="1")
    deliver(pipeline, cve)
    assert chat.sent[0].finding["risk_details"].startswith("high-severity vulnerability; runtime unknown")


class PriorityWrites:
    """The real store, with the priorities each `set_image_priorities` call asks it to write recorded."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.written: list[list[tuple[Any, priority.Priority]]] = []

    def set_image_priorities(self, rows: Sequence[tuple[Any, priority.Priority]]) -> None:
        self.written.append(list(rows))
        self.store.set_image_priorities(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_priority_is_written_when_it_changes_not_on_every_delivery(store: Store) -> None:
    clock = Clock(RECEIVED)
    writes = PriorityWrites(store)
    pipeline, _ = build(writes, clock, [])  # type: ignore[arg-type]  # a Store by delegation
    cve = registry_cve("acr-cve", D, REPO, tag="2.0", modified=RECEIVED - HOUR)
    deliver(pipeline, cve)
    ((facts, first),) = writes.written.pop()
    key = facts.key
    assert first.context == "registry_only"
    # Replays and a new version with the same priority leave the stored priority as it is.
    deliver(pipeline, cve)
    deliver(pipeline, registry_cve("acr-cve", D, REPO, tag="2.0", modified=RECEIVED, cve="CVE-2026-0002"))
    assert writes.written == []
    assert store.image_priorities([r.vulnerable for r in store.image_vulnerabilities([D])]) == {key: first}
    # Runtime evidence moves it: written once, then replays write nothing again.
    clock.now = RECEIVED + HOUR
    alert = runtime_alert("ctd-1", {"uid": D, "name": REPO, "tag": "2.0"}, seen=RECEIVED + HOUR, cloud="GCP")
    deliver(pipeline, alert)
    deliver(pipeline, cve, alert)
    ((moved, risen),) = [row for rows in writes.written for row in rows]
    assert (moved.key, moved.image, risen.context) == (key, D, "running")


def test_a_runtime_finding_dated_in_the_future_stops_counting_when_its_arrival_ages_out(store: Store) -> None:
    """Runtime evidence dated 2099 counts from its arrival (plus the allowance), not until 2099."""
    clock = Clock(RECEIVED)
    routes = [{"to": ["slack:soc"], "when": {"class": "2002"}, "on": ["new", "reprioritized"]}]
    pipeline, chat = build(store, clock, routes)
    deliver(pipeline, registry_cve("acr-cve", D, REPO, tag="2.0", severity_id=4, cloud="Azure", modified=RECEIVED))
    year_2099 = 4_070_908_800_000
    alert = runtime_alert("ctd-1", {"uid": D, "name": REPO, "tag": "2.0"}, seen=year_2099, cloud="GCP")
    assert deliver(pipeline, alert)["reprioritized"] == 1
    assert chat.sent[-1].finding["priority"] == "Medium"

    clock.now = RECEIVED + priority.DEFAULT_WEIGHTS.window_ms + 3_600_000
    assert pipeline.check_sources()["reprioritized"] == 1
    assert chat.sent[-1].finding["priority"] == "Low"
    assert "deployed, not seen running lately" in chat.sent[-1].finding["risk_details"]
