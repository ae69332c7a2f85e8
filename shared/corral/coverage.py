"""The coverage matrix: for each container service, layer and task, is anyone watching?

`matrix()` is pure: it takes plain observations (the newest finding per cell and source, which
sources report for which cloud, which of them are silent, the latest health signals) and the
responsibility tables of `corral.responsibility`, and returns one `Cell` per (service, layer,
task). `observe()` is the I/O edge that reads those observations from a store.

Evidence is judged per source: a cell is covered only by a finding (or a Healthy runtime
signal) from a source able to cover that cell, that source not silent for the service's cloud,
seen within the window the user asked for. A source that reports on a slower cadence than that
window (Defender's weekly snapshot) has its own evidence judged over its own reporting window
instead, and only its own: another source's old finding is not made fresh by it. A live source
that reported nothing for a cell does not vouch for a silent source's finding there.

Registry images: an image in a registry (Inspector's ECR scanning, Defender's registry
assessment) is classified under no container service, since nothing in its finding says where it
runs: Inspector's `inUseCount` and `lastInUseAt` say whether and when the image ran, not on which
service. Registry scanning is account-wide, and an image of the account runs on the account's
container services or on none, so a registry image finding counts for the application
vulnerability-management cell (`REGISTRY_SCAN`) of every container service its source declares
that cell for, in the finding's cloud (the matrix is drawn per cloud: the accounts of one cloud
together). This is the only finding without a container service that counts.

States, in the order they are decided:

- **provider-managed**: the provider secures the cell; there is nothing for the customer to watch;
- **unhealthy**: the runtime cell (application, threat detection) of a service whose latest
  GuardDuty Runtime Protection signal is Unhealthy, until a Healthy signal follows;
- **covered**: a source able to cover the cell, and not silent for the service's cloud, had a
  finding classified into the cell within the window, or (runtime cell) sent a Healthy runtime
  signal within the window;
- **silent**: a source able to cover the cell reports for an account of the service's cloud,
  but none that is itself live sent evidence for the cell within the window: nothing arrived,
  or what arrived came from a source that has itself gone silent;
- **not connected**: a source could cover the cell but no such source reports for that cloud;
- **gap**: the customer is responsible and no source Corral ingests can cover the cell.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from corral import sources, traits
from corral.health import HealthReport
from corral.records import HealthSignal
from corral.responsibility import PROVIDER, Owner, capabilities, owner
from corral.sources._core.source import Capability
from corral.stores.base import EvidenceKey, Store

State = Literal["covered", "silent", "unhealthy", "gap", "provider-managed", "not connected"]
STATES: Final[tuple[State, ...]] = ("covered", "silent", "unhealthy", "not connected", "gap", "provider-managed")
CellKey = tuple[str, str, str]
"""(container service, layer, task)."""
SourceCellKey = tuple[str, str, str, str]
"""(container service, layer, task, source id)."""

RUNTIME: Final = (traits.APPLICATION, traits.THREAT_DETECTION)
REGISTRY_SCAN: Final = (traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)
"""The cell a registry image finding (no container service) counts for, on each service its source declares it for."""
DEFAULT_WINDOW_HOURS: Final = 168


@dataclass(frozen=True, slots=True)
class Observations:
    """What the matrix is computed from; every time is epoch milliseconds."""

    now: int
    window_ms: int
    latest: Mapping[SourceCellKey, int] = field(default_factory=dict)
    """The newest `last_seen` of a (non-sample) finding per cell and source."""
    reporting: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Source id → the clouds (AWS, Azure, GCP) of the accounts it has delivered for."""
    silent: frozenset[tuple[str, str]] = frozenset()
    """(source id, cloud) pairs where every account the source reports for has gone silent."""
    signals: Sequence[HealthSignal] = ()
    source_windows: Mapping[str, int] = field(default_factory=dict)
    """Source id → its own reporting window: a cell it covers is judged over at least that long."""


@dataclass(frozen=True, slots=True)
class Cell:
    """One (service, layer, task) cell of the matrix."""

    service: str
    layer: str
    task: str
    owner: Owner
    state: State
    reason: str
    sources: tuple[str, ...] = ()
    """Detectors able to cover the cell."""
    expected: tuple[str, ...] = ()
    """Of those, the ones whose source reports for this service's cloud."""
    last_finding: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the cell as plain data."""
        return {
            "service": self.service,
            "layer": self.layer,
            "task": self.task,
            "owner": self.owner,
            "state": self.state,
            "reason": self.reason,
            "sources": list(self.sources),
            "expected": list(self.expected),
            "last_finding": self.last_finding,
        }


@dataclass(frozen=True, slots=True)
class Matrix:
    """Every cell, in service, layer, task order."""

    generated_at: int
    window_ms: int
    cells: tuple[Cell, ...]

    def cell(self, service: str, layer: str, task: str) -> Cell:
        """Return one cell."""
        for cell in self.cells:
            if (cell.service, cell.layer, cell.task) == (service, layer, task):
                return cell
        raise KeyError((service, layer, task))

    def rows(self) -> list[tuple[str, list[Cell]]]:
        """Return (service, its nine cells in layer-then-task order) for each service."""
        return [(s, [c for c in self.cells if c.service == s]) for s in traits.CONTAINER_SERVICES]

    def totals(self) -> dict[str, int]:
        """Return how many cells are in each state (every state listed, zero included)."""
        return {state: sum(1 for c in self.cells if c.state == state) for state in STATES}

    def to_json(self) -> dict[str, Any]:
        """Return the matrix as plain data."""
        return {
            "generated_at": self.generated_at,
            "window_ms": self.window_ms,
            "layers": list(traits.LAYERS),
            "tasks": list(traits.TASKS),
            "totals": self.totals(),
            "cells": [c.to_json() for c in self.cells],
        }


def latest_signals(signals: Iterable[HealthSignal]) -> list[HealthSignal]:
    """Keep the newest signal per (source, account, service, region, resource): signals are state, not events.

    A signal naming no resource (kept before each resource had its own, or from a source that
    names none) cannot say which resource it was about: a later signal about any resource of the
    same account, service and region supersedes it.
    """
    newest: dict[tuple[str, str, str, str | None, str], HealthSignal] = {}
    for signal in signals:
        key = (signal.source, signal.account_uid, signal.service, signal.region, signal.resource)
        if key not in newest or signal.time >= newest[key].time:
            newest[key] = signal
    named: dict[tuple[str, str, str, str | None], int] = {}
    for key, signal in newest.items():
        if key[4]:
            named[key[:4]] = max(named.get(key[:4], signal.time), signal.time)
    return [s for k, s in newest.items() if k[4] or named.get(k[:4], s.time) <= s.time]


def matrix(obs: Observations) -> Matrix:
    """Compute the coverage matrix (pure).

    Example:
        >>> m = matrix(Observations(now=0, window_ms=1))
        >>> m.cell(traits.CLOUD_RUN, traits.INFRASTRUCTURE, traits.HARDENING).state
        'provider-managed'
    """
    by_service: dict[str, list[HealthSignal]] = {}
    for signal in latest_signals(obs.signals):
        by_service.setdefault(signal.service, []).append(signal)
    cells = tuple(
        _cell(obs, by_service.get(service, []), service, layer, task)
        for service in traits.CONTAINER_SERVICES
        for layer in traits.LAYERS
        for task in traits.TASKS
    )
    return Matrix(obs.now, obs.window_ms, cells)


@functools.cache
def _fixed(service: str, layer: str, task: str) -> tuple[Owner, tuple[Capability, ...], tuple[str, ...], str]:
    """What never changes in a process about a cell: its owner, who can cover it, and its cloud."""
    caps = capabilities(service, layer, task)
    return owner(service, layer, task), caps, tuple(c.name for c in caps), traits.SERVICE_CLOUD[service]


def _cell(obs: Observations, mine: Sequence[HealthSignal], service: str, layer: str, task: str) -> Cell:
    """One cell's state; `mine` are the latest health signals of its service."""
    # One pass over the cell's sources: the dashboard's coverage answer asks this of all 72 cells.
    who, caps, names, cloud = _fixed(service, layer, task)
    expected = [c for c in caps if cloud in obs.reporting.get(c.source, ())]
    live: set[str] = set()
    silenced: set[str] = set()
    fresh: set[str] = set()
    last: int | None = None
    for capability in expected:
        source = capability.source
        at = obs.latest.get((service, layer, task, source))
        if (source, cloud) in obs.silent:
            silenced.add(source)
        else:
            live.add(source)
            if at is not None and at >= _since(obs, source):
                fresh.add(source)
        if at is not None and (last is None or at > last):
            last = at
    quiet = sorted(silenced - live)
    shown = tuple(c.name for c in expected)

    def made(state: State, reason: str) -> Cell:
        return Cell(service, layer, task, who, state, reason, names, shown, last)

    if who == PROVIDER:
        return made("provider-managed", f"the provider secures this part of {service}")
    if (layer, task) == RUNTIME:
        sick = [s for s in mine if not s.healthy]
        if sick:
            return made("unhealthy", "; ".join(s.detail or f"{s.source} {s.account_uid} unhealthy" for s in sick))
    if fresh:
        return made("covered", f"findings within the window from {', '.join(sorted(fresh))}")
    if (layer, task) == RUNTIME:
        well = sorted({s.source for s in mine if s.healthy and s.source in live and s.time >= _since(obs, s.source)})
        if well:
            return made("covered", f"runtime protection reported healthy within the window by {', '.join(well)}")
    if quiet and not live:
        return made("silent", f"{', '.join(quiet)} silent for {cloud}")
    if quiet:
        waiting = ", ".join(sorted(live))
        return made("silent", f"{', '.join(quiet)} silent for {cloud}; no finding from {waiting} within the window")
    if expected:
        return made("silent", "no finding within the window")
    if caps:
        return made("not connected", f"no source able to cover it reports for {cloud}")
    return made("gap", "customer responsibility, and no source Corral ingests covers it")


def _since(obs: Observations, source: str) -> int:
    """Where a source's evidence window starts.

    A source that reports weekly (Defender's snapshot) would leave its cells silent for part of
    every week under a shorter window: its own evidence is judged over its own window.
    """
    return obs.now - max(obs.window_ms, obs.source_windows.get(source, 0))


# I/O edge ----------------------------------------------------------------------------------------


def latest_per_cell(items: Iterable[tuple[Mapping[str, Any], int]]) -> dict[EvidenceKey, int]:
    """Reduce (finding document, last_seen) pairs to the newest last_seen per (cell, product, cloud) (pure).

    What `Store.latest_per_cell` answers, from documents. Sample findings and Corral's own
    findings prove nothing about a detector, so they are left out.
    """
    latest: dict[EvidenceKey, int] = {}
    for document, last_seen in items:
        product = str(document.get("metadata", {}).get("product", {}).get("uid", ""))
        if traits.is_sample(document) or product == "corral":
            continue
        found = traits.read(document)
        cloud = str(document.get("cloud", {}).get("provider", ""))
        key = (found.get(traits.SERVICE, ""), found.get(traits.LAYER, ""), found.get(traits.TASK, ""), product, cloud)
        if key[0] in traits.CONTAINER_SERVICES and key[1] in traits.LAYERS and key[2] in traits.TASKS:
            latest[key] = max(latest.get(key, 0), last_seen)
    return latest


def evidence_keys(caps: Iterable[Capability] | None = None) -> list[EvidenceKey]:
    """Return the (service, layer, task, product, cloud) keys whose newest finding the matrix reads.

    One per cell and source able to cover it (its `FACTS`), in the service's own cloud: evidence
    from anyone else proves nothing about the cell. A source able to cover `REGISTRY_SCAN` is also
    asked for its registry image findings (no container service) in each of those clouds.
    """
    if caps is None:
        return list(_every_evidence_key())
    return _evidence_keys(caps)


@functools.cache
def _every_evidence_key() -> tuple[EvidenceKey, ...]:
    # The same for the life of a process: every coverage answer asks it.
    return tuple(_evidence_keys(sources.CAPABILITIES))


def _evidence_keys(caps: Iterable[Capability]) -> list[EvidenceKey]:
    facts = sources.FACTS
    keys: set[EvidenceKey] = set()
    for cap in caps:
        product = facts[cap.source].product_uid
        for service in cap.services:
            cloud = traits.SERVICE_CLOUD[service]
            for layer, task in cap.cells:
                keys.add((service, layer, task, product, cloud))
                if (layer, task) == REGISTRY_SCAN:
                    keys.add((traits.NO_SERVICE, layer, task, product, cloud))
    return sorted(keys)


def per_source(rows: Mapping[EvidenceKey, int]) -> dict[SourceCellKey, int]:
    """Turn the store's newest finding per (cell, product, cloud) into the newest per (cell, source) (pure).

    A finding counts for the cell of its own classification, in the service's own cloud; a registry
    image finding (no container service) for `REGISTRY_SCAN` of each service of its cloud that its
    source declares that cell for.
    """
    latest: dict[SourceCellKey, int] = {}
    for (service, layer, task, product, cloud), at in rows.items():
        source = sources.PRODUCT_SOURCES.get(product, product)
        if service == traits.NO_SERVICE and (layer, task) == REGISTRY_SCAN:
            served = [s for s in _registry_services(source) if traits.SERVICE_CLOUD[s] == cloud]
        else:
            served = [service] if traits.SERVICE_CLOUD.get(service) == cloud else []
        for each in served:
            key = (each, layer, task, source)
            latest[key] = max(latest.get(key, 0), at)
    return latest


@functools.cache
def _registry_services(source: str) -> tuple[str, ...]:
    """The container services whose `REGISTRY_SCAN` cell a source declares it can cover."""
    return tuple(s for c in sources.CAPABILITIES if c.source == source and REGISTRY_SCAN in c.cells for s in c.services)


def observe(store: Store, health: HealthReport, window_ms: int) -> Observations:
    """Read the matrix's observations from a store: the newest finding per cell and source, source states and signals.

    The store answers the newest finding per cell and source itself (`Store.latest_per_cell`), so
    no document is read here, whatever the number of findings.
    """
    windows: dict[str, int] = {}
    for row in health.sources:
        windows[row.source] = max(windows.get(row.source, 0), row.window_ms)
    since = health.now - max([window_ms, *windows.values()])
    reporting: dict[str, set[str]] = {}
    live: set[tuple[str, str]] = set()
    for row in health.sources:
        reporting.setdefault(row.source, set()).add(row.cloud)
        if row.state == "ok":
            live.add((row.source, row.cloud))
    silent = frozenset((s, c) for s, clouds in reporting.items() for c in clouds if (s, c) not in live)
    return Observations(
        now=health.now,
        window_ms=window_ms,
        latest=per_source(store.latest_per_cell(since, evidence_keys())),
        reporting={s: frozenset(c) for s, c in reporting.items()},
        silent=silent,
        signals=tuple(store.signals()),
        source_windows=windows,
    )
