"""Corral priority: what to fix first, from severity and where the image actually runs (pure).

A CVE in an image that sits in a registry and never runs matters far less than the same CVE in
an image running in production, reachable from the internet. The priority of a Vulnerability
Finding combines:

- the severity of the finding (points per severity);
- the runtime context of its image, from the inventory of every cloud: *running* (seen running
  within the window, by source time), *deployed* (seen running, not lately), *registry only*
  (never seen running) or *unknown* (no digest to match on) — a factor on the severity points;
- internet exposure of a running workload (a Defender attack path, an SCC exposure);
- exploit availability and fix availability (points each).

The result goes in OCSF's own fields: `priority_id`/`priority`, `risk_score` (0-100),
`risk_level_id`/`risk_level` and `risk_details` saying why in words. In OCSF 1.8.0 these belong
to the `incident` and `security_control` profiles, which the finding then declares. The runtime
context and exposure are also kept as Corral traits (`finding_info.traits`, category
`corral.priority`) so that routes can match them. None of this takes part in the finding's
fingerprint: a new priority is `reprioritized`, not a vendor update.

Defaults, overridable in `[priority]` of corral.toml:

```toml
[priority]
window_hours = 24          # runtime evidence older than this (source time) is "deployed, not seen lately"
critical = 60              # points per severity
high = 45
medium = 30
low = 15
informational = 5
unknown_severity = 20
running = 1.0              # factors on the severity points, per runtime context
deployed = 0.7
unknown = 0.6
registry_only = 0.35
internet_exposed = 20      # points added
exploit_available = 15
fix_available = 5
```

The score is clamped to 0-100; 80 and above is Critical, 60 High, 35 Medium, otherwise Low.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from corral.errors import ConfigError
from corral.records import NamedTuple

if TYPE_CHECKING:
    from corral.inventory import Exposure, Sighting, Vulnerable

RuntimeContext = Literal["running", "deployed", "registry_only", "unknown"]
CONTEXTS: Final[tuple[RuntimeContext, ...]] = ("running", "deployed", "registry_only", "unknown")
CONTEXT_WORDS: Final[dict[str, str]] = {
    "running": "running",
    "deployed": "deployed, not seen lately",
    "registry_only": "registry only",
    "unknown": "unknown (no digest)",
}

# OCSF 1.8.0: priority_id 1 Low … 4 Critical; risk_level_id 0 Info, 1 Low … 4 Critical.
LEVELS: Final = ("low", "medium", "high", "critical")
LEVEL_IDS: Final = {"low": 1, "medium": 2, "high": 3, "critical": 4}
LEVEL_NAMES: Final = {1: "Low", 2: "Medium", 3: "High", 4: "Critical"}
_THRESHOLDS: Final = ((80, 4), (60, 3), (35, 2))
PROFILES: Final = ("incident", "security_control")
TRAIT_CATEGORY: Final = "corral.priority"
RUNTIME_TRAIT: Final = "corral.runtime"
EXPOSURE_TRAIT: Final = "corral.exposure"
FIELDS: Final = ("priority_id", "priority", "risk_score", "risk_level_id", "risk_level", "risk_details")
HOUR_MS: Final = 3_600_000


# The records here are NamedTuples, not dataclasses: every cold start builds them (see corral.records).
class Weights(NamedTuple):
    """How much each factor counts; see the module documentation for the defaults."""

    window_hours: float = 24
    critical: float = 60
    high: float = 45
    medium: float = 30
    low: float = 15
    informational: float = 5
    unknown_severity: float = 20
    running: float = 1.0
    deployed: float = 0.5
    unknown: float = 0.6
    registry_only: float = 0.35
    internet_exposed: float = 20
    exploit_available: float = 15
    fix_available: float = 5

    @property
    def window_ms(self) -> int:
        """The running window in milliseconds."""
        return int(self.window_hours * HOUR_MS)

    def severity_points(self, severity_id: int) -> float:
        """Points for an OCSF severity id (Fatal counts as Critical)."""
        by_id = {1: self.informational, 2: self.low, 3: self.medium, 4: self.high, 5: self.critical, 6: self.critical}
        return by_id.get(severity_id, self.unknown_severity)

    def factor(self, context: RuntimeContext) -> float:
        """The factor of a runtime context."""
        return float(getattr(self, context))


DEFAULT_WEIGHTS: Final = Weights()


def parse_weights(table: object, origin: str) -> Weights:
    """Validate a `[priority]` table; every error names `origin` and the key."""
    if table is None:
        return DEFAULT_WEIGHTS
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}: priority: expected a [priority] table")
    known = set(Weights._fields)
    values: dict[str, float] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{origin}: priority.{key}: unknown key; expected one of {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{origin}: priority.{key}: expected a number, at least 0")
        values[key] = float(value)
    if values.get("window_hours", 1.0) <= 0:
        raise ConfigError(f"{origin}: priority.window_hours: expected a number of hours above 0")
    return Weights(**values)


class Runtime(NamedTuple):
    """Where an image runs, as the inventory says at one moment."""

    context: RuntimeContext
    workloads: tuple[tuple[str, str, str, str, str], ...] = ()
    """Places seen running within the window (cloud, account, cluster, namespace, workload)."""
    clouds: tuple[str, ...] = ()
    exposed: bool = False
    probable: bool = False
    """True when the only running evidence named the image by tag, not digest."""
    last_seen: int | None = None
    basis: int = 0
    """The source time the context rests on: the newest evidence, or when it aged out."""


def runtime(
    image: str,
    sightings: Iterable[tuple[Sighting, bool]],
    exposures: Iterable[Exposure],
    *,
    now: int,
    window_ms: int,
) -> Runtime:
    """Return the runtime context of `image` from its sightings (each with `probable`) at wall-clock `now`."""
    if not image.startswith("sha256:"):
        return Runtime("unknown")
    seen = list(sightings)
    if not seen:
        return Runtime("registry_only")
    last = max(s.source_time for s, _ in seen)
    recent = [(s, p) for s, p in seen if now - s.source_time <= window_ms]
    if not recent:
        return Runtime("deployed", last_seen=last, basis=last + window_ms + 1)
    places = tuple(sorted({s.place for s, _ in recent}))
    active = [e for e in exposures if e.active]
    exposed = any(e.names(s) for e in active for s, _ in recent)
    return Runtime(
        "running",
        workloads=places,
        clouds=tuple(sorted({s.cloud for s, _ in recent})),
        exposed=exposed,
        probable=all(p for _, p in recent),
        last_seen=last,
        basis=last,
    )


class Priority(NamedTuple):
    """The Corral priority of one Vulnerability Finding."""

    priority_id: int
    risk_score: int
    context: RuntimeContext
    exposed: bool
    details: str
    basis: int = 0

    @property
    def level(self) -> str:
        """Low, Medium, High or Critical."""
        return LEVEL_NAMES[self.priority_id]

    @property
    def running(self) -> bool:
        """True when the image ran within the window."""
        return self.context == "running"

    def same(self, other: Priority | None) -> bool:
        """True when nothing a reader sees differs (the basis time is bookkeeping)."""
        return other is not None and (
            self.priority_id,
            self.risk_score,
            self.context,
            self.exposed,
            self.details,
        ) == (other.priority_id, other.risk_score, other.context, other.exposed, other.details)


def score(vulnerable: Vulnerable, where: Runtime, weights: Weights = DEFAULT_WEIGHTS) -> Priority:
    """Combine severity, runtime context, exposure, exploit and fix availability into a priority."""
    points = weights.severity_points(vulnerable.severity_id) * weights.factor(where.context)
    exposed = where.exposed and where.context == "running"
    if exposed:
        points += weights.internet_exposed
    if vulnerable.exploit:
        points += weights.exploit_available
    if vulnerable.fix:
        points += weights.fix_available
    risk = max(0, min(100, round(points)))
    level = next((lid for bound, lid in _THRESHOLDS if risk >= bound), 1)
    return Priority(level, risk, where.context, exposed, _details(vulnerable, where, exposed), where.basis)


def _details(vulnerable: Vulnerable, where: Runtime, exposed: bool) -> str:
    severity = {1: "informational", 2: "low", 3: "medium", 4: "high", 5: "critical", 6: "fatal"}
    parts = [f"{severity.get(vulnerable.severity_id, 'unknown')}-severity vulnerability"]
    if where.context == "running":
        count = len(where.workloads)
        clouds = ", ".join(where.clouds)
        running = f"image running in {count} workload{'s' if count != 1 else ''} on {clouds}"
        parts.append(f"{running} (probable: matched by tag)" if where.probable else running)
    elif where.context == "deployed":
        parts.append("image deployed, not seen running lately")
    elif where.context == "registry_only":
        parts.append("image in a registry only, never seen running")
    else:
        parts.append("runtime unknown (no image digest)")
    if exposed:
        parts.append("internet-exposed")
    if vulnerable.exploit:
        parts.append("exploit available")
    if vulnerable.fix:
        parts.append("fix available")
    return "; ".join(parts)


def apply(finding: Mapping[str, Any], priority: Priority) -> dict[str, Any]:
    """Return a copy of `finding` carrying the priority in OCSF's fields and Corral's traits."""
    out = dict(finding)
    metadata = dict(out["metadata"])
    profiles = list(metadata.get("profiles") or [])
    metadata["profiles"] = profiles + [p for p in PROFILES if p not in profiles]
    out["metadata"] = metadata
    out["priority_id"] = priority.priority_id
    out["priority"] = priority.level
    out["risk_score"] = priority.risk_score
    out["risk_level_id"] = priority.priority_id
    out["risk_level"] = priority.level
    out["risk_details"] = priority.details
    info = dict(out["finding_info"])
    kept = [t for t in info.get("traits") or [] if not (isinstance(t, Mapping) and t.get("category") == TRAIT_CATEGORY)]
    kept.append({"uid": RUNTIME_TRAIT, "name": "runtime", "category": TRAIT_CATEGORY, "values": [priority.context]})
    if priority.exposed:
        kept.append({"uid": EXPOSURE_TRAIT, "name": "exposure", "category": TRAIT_CATEGORY, "values": ["internet"]})
    info["traits"] = kept
    out["finding_info"] = info
    return out


def without(finding: Mapping[str, Any]) -> dict[str, Any]:
    """Return `finding` without any priority, as the vendor sent it (what the fingerprint sees)."""
    if "priority_id" not in finding:
        return dict(finding)
    out = {k: v for k, v in finding.items() if k not in FIELDS}
    metadata = dict(out["metadata"])
    metadata["profiles"] = [p for p in metadata.get("profiles") or [] if p not in PROFILES]
    out["metadata"] = metadata
    info = dict(out["finding_info"])
    info["traits"] = [
        t for t in info.get("traits") or [] if not (isinstance(t, Mapping) and t.get("category") == TRAIT_CATEGORY)
    ]
    out["finding_info"] = info
    return out


def read(finding: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """Return the (priority_id, runtime context) a finding carries, or Nones."""
    priority_id = finding.get("priority_id")
    context = None
    for trait in (finding.get("finding_info") or {}).get("traits") or []:
        if isinstance(trait, Mapping) and trait.get("uid") == RUNTIME_TRAIT and trait.get("values"):
            context = str(trait["values"][0])
    return (priority_id if isinstance(priority_id, int) else None), context


def level_id(word: str) -> int | None:
    """Return the priority id of low/medium/high/critical (any case), or None."""
    return LEVEL_IDS.get(word.lower())
