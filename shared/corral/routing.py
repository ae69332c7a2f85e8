"""Routing and suppression: which sinks get which change of which finding.

Conditions are a tiny data vocabulary (AND across keys, OR within a list, `*` globs for finding
types, any case) evaluated by pure predicates listed in `CONDITIONS`. A key naming a fixed
vocabulary (source, cloud, class, container service, layer, task, trait) reads its values from the
lists `corral findings list` reads too (`corral.vocabulary`, `corral.traits`) and refuses any other
at start-up: a value no finding carries would match nothing, and its route would drop every alert
without a word. Suppressions are checked first: a suppressed finding is stored and marked, never
sent. Every matching route fires, but a sink receives a given change once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from corral import ocsf, priority, traits, vocabulary
from corral.context import container_context
from corral.errors import ConfigError
from corral.records import NamedTuple  # typing.NamedTuple, built without its per-field checks
from corral.stores.base import CHANGE_KINDS, ChangeKind, Suppression

if TYPE_CHECKING:
    from corral.sinks.base import SinkFamily

CHAT_DEFAULT: Final[frozenset[ChangeKind]] = frozenset({"new", "escalated", "reopened", "closed"})
OTHER_DEFAULT: Final[frozenset[ChangeKind]] = frozenset(CHANGE_KINDS) - {"unchanged", "stale"}
DEFAULT_ON: Final[dict[SinkFamily, frozenset[ChangeKind]]] = {
    "chat": CHAT_DEFAULT,
    "siem": OTHER_DEFAULT,
    "relay": OTHER_DEFAULT,
    "file": OTHER_DEFAULT,
}

ORDERED_SEVERITIES: Final = ("informational", "low", "medium", "high", "critical", "fatal")
Values = tuple[str, ...]
Predicate = Callable[[Mapping[str, Any], Values], bool]


def _any(actual: str | None, wanted: Values) -> bool:
    return actual is not None and actual.lower() in {w.lower() for w in wanted}


def _source(finding: Mapping[str, Any], wanted: Values) -> bool:
    # `wanted` holds product uids: `Condition.parse` reads a source id as the products it stands for.
    return _any(finding["metadata"]["product"].get("uid"), wanted)


def _cloud(finding: Mapping[str, Any], wanted: Values) -> bool:
    return _any(finding["cloud"].get("provider"), wanted)


def _account(finding: Mapping[str, Any], wanted: Values) -> bool:
    return _any(finding["cloud"]["account"].get("uid"), wanted)


def _region(finding: Mapping[str, Any], wanted: Values) -> bool:
    return _any(finding["cloud"].get("region"), wanted)


def _class(finding: Mapping[str, Any], wanted: Values) -> bool:
    # `wanted` holds class uids: `Condition.parse` reads a class name as its uid.
    return str(finding.get("class_uid")) in wanted


def _severity_at_least(finding: Mapping[str, Any], wanted: Values) -> bool:
    severity_id = int(finding.get("severity_id", 0))
    return 1 <= severity_id <= 6 and severity_id >= ocsf.SEVERITY_IDS[wanted[0].lower()]


@functools.cache
def _glob(pattern: str) -> re.Pattern[str]:
    """A `*` glob (only `*` is a wildcard) in any case, as `findings list --type` matches one."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE | re.DOTALL)


def _type(finding: Mapping[str, Any], wanted: Values) -> bool:
    types = finding.get("finding_info", {}).get("types") or []
    return any(isinstance(t, str) and _glob(w).fullmatch(t) is not None for t in types for w in wanted)


def _trait(name: str) -> Predicate:
    return lambda finding, wanted: _any(traits.read(finding).get(name), wanted)


def _cluster(finding: Mapping[str, Any], wanted: Values) -> bool:
    return _any(container_context(finding).cluster, wanted)


def _namespace(finding: Mapping[str, Any], wanted: Values) -> bool:
    return _any(container_context(finding).namespace, wanted)


def _tag(finding: Mapping[str, Any], wanted: Values) -> bool:
    labels = {
        str(label).lower()
        for resource in finding.get("resources", [])
        if isinstance(resource, Mapping)
        for label in resource.get("labels", [])
    }
    return any(w.lower() in labels for w in wanted)


def _running(finding: Mapping[str, Any], wanted: Values) -> bool:
    _, context = priority.read(finding)
    if context is None:
        return False  # no runtime context (not a Vulnerability Finding): neither running nor not
    return any((context == "running") == (w.lower() == "true") for w in wanted)


def _priority_at_least(finding: Mapping[str, Any], wanted: Values) -> bool:
    priority_id, _ = priority.read(finding)
    if priority_id is None or not 1 <= priority_id <= 4:
        return False
    return any(priority_id >= (priority.level_id(w) or 5) for w in wanted)


def _any_trait(finding: Mapping[str, Any], wanted: Values) -> bool:
    have = {f"{k}={v}".lower() for k, v in traits.read(finding).items()}
    return any(w.lower() in have for w in wanted)


CONDITIONS: Final[dict[str, Predicate]] = {
    "source": _source,
    "cloud": _cloud,
    "account": _account,
    "region": _region,
    "class": _class,
    "severity_at_least": _severity_at_least,
    "type": _type,
    "container_service": _trait(traits.SERVICE),
    "layer": _trait(traits.LAYER),
    "task": _trait(traits.TASK),
    "cluster": _cluster,
    "namespace": _namespace,
    "tag": _tag,
    "trait": _any_trait,
    "running": _running,
    "priority_at_least": _priority_at_least,
}


def _source_values(where: str, value: str) -> Values:
    # A source id (azure.defender) stands for its products (microsoft.defender_for_cloud); a product uid for itself.
    return tuple(vocabulary.products_of(vocabulary.choose(where, value, vocabulary.sources())))


def _class_values(where: str, value: str) -> Values:
    return (str(vocabulary.CLASSES[vocabulary.choose(where, value, list(vocabulary.CLASSES))]),)


def _service_values(where: str, value: str) -> Values:
    choice = vocabulary.choose(where, value, (*traits.CONTAINER_SERVICES, *traits.SERVICE_GROUPS))
    return traits.SERVICE_GROUPS.get(choice, (choice,))


def _one_of(allowed: Sequence[str]) -> Callable[[str, str], Values]:
    return lambda where, value: (vocabulary.choose(where, value, allowed),)


# The values of each classification trait Corral writes (`sample` is only ever "true").
_TRAIT_VALUES: Final[dict[str, Callable[[str, str], Values]]] = {
    traits.SERVICE: _service_values,
    traits.LAYER: _one_of(traits.LAYERS),
    traits.TASK: _one_of(traits.TASKS),
    traits.SAMPLE: _one_of(("true",)),
}


def _trait_values(where: str, value: str) -> Values:
    name, sep, wanted = value.partition("=")
    name = name.strip().lower()
    if not sep or name not in _TRAIT_VALUES:
        raise ConfigError(
            f"{where}: unknown value {value!r}; expected name=value with name one of {', '.join(_TRAIT_VALUES)}, "
            f'e.g. "{traits.SERVICE}={traits.EKS}"'
        )
    return tuple(f"{name}={v}" for v in _TRAIT_VALUES[name](f"{where}: {name}", wanted))


# How `Condition.parse` reads each value of the keys that name a fixed vocabulary: as the values
# its predicate compares, or a ConfigError naming the accepted ones.
_VOCABULARIES: Final[dict[str, Callable[[str, str], Values]]] = {
    "source": _source_values,
    "cloud": _one_of(vocabulary.CLOUDS),
    "class": _class_values,
    "container_service": _service_values,
    "layer": _one_of(traits.LAYERS),
    "task": _one_of(traits.TASKS),
    "trait": _trait_values,
}


# NamedTuples, not dataclasses: every cold start builds these classes (see corral.records).
class Condition(NamedTuple):
    """A parsed `when` table: every key must match, any value of a key may."""

    terms: tuple[tuple[str, Values], ...] = ()

    def matches(self, finding: Mapping[str, Any]) -> bool:
        """True when every term matches the finding."""
        return all(CONDITIONS[key](finding, values) for key, values in self.terms)

    @classmethod
    def parse(cls, table: object, where: str) -> Condition:
        """Parse a `when` table, raising ConfigError naming `where`, the bad key and the bad value.

        Values of a fixed vocabulary are read as their predicate compares them: a source id as its
        product uids, a class name as its uid, "ECS" as both ECS launch types.
        """
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ConfigError(f'{where}: expected a table like {{ severity_at_least = "high" }}')
        terms = []
        for key, value in table.items():
            if key not in CONDITIONS:
                raise ConfigError(f"{where}.{key}: unknown condition; use one of {', '.join(CONDITIONS)}")
            values = (value,) if isinstance(value, str) else (str(value).lower(),) if isinstance(value, bool) else value
            if key == "running" and not (
                isinstance(values, list | tuple) and values and all(str(v).lower() in ("true", "false") for v in values)
            ):
                raise ConfigError(f"{where}.running: expected true or false")
            if key == "running":
                values = tuple(str(v).lower() for v in values)
            if key == "priority_at_least" and not (
                isinstance(values, list | tuple) and values and all(priority.level_id(str(v)) for v in values)
            ):
                raise ConfigError(f"{where}.priority_at_least: expected one of {', '.join(priority.LEVELS)}")
            if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"{where}.{key}: expected a string or a list of strings")
            if key == "severity_at_least" and (len(values) != 1 or values[0].lower() not in ORDERED_SEVERITIES):
                raise ConfigError(f"{where}.{key}: expected one of {', '.join(ORDERED_SEVERITIES)}")
            read = _VOCABULARIES.get(key)
            if read is not None:
                # dict.fromkeys: each value once, in the order written.
                values = tuple(dict.fromkeys(v for value in values for v in read(f"{where}.{key}", value)))
            terms.append((key, tuple(values)))
        return cls(tuple(terms))


class Route(NamedTuple):
    """Send matching changes to sinks; `on` None means each sink family's default change kinds."""

    name: str
    when: Condition
    to: tuple[str, ...]
    on: frozenset[ChangeKind] | None = None
    samples: bool = False


class SuppressRule(NamedTuple):
    """Store but never send matching findings, with a reason, until a time (epoch ms) or forever."""

    name: str
    when: Condition
    reason: str
    until: int | None = None


class Router(NamedTuple):
    """Decides suppression and destinations for each change; pure."""

    routes: tuple[Route, ...] = ()
    suppressions: tuple[SuppressRule, ...] = ()
    families: Mapping[str, SinkFamily] = MappingProxyType({})

    def suppression(self, finding: Mapping[str, Any], now: int) -> Suppression | None:
        """Return the first suppression in force that matches, or None."""
        for rule in self.suppressions:
            if (rule.until is None or now < rule.until) and rule.when.matches(finding):
                return Suppression(reason=rule.reason, by=f"suppress:{rule.name}", until=rule.until)
        return None

    def destinations(self, kind: ChangeKind, finding: Mapping[str, Any]) -> list[str]:
        """Return each sink that a matching route sends this change to, once, in config order."""
        chosen: list[str] = []
        # Read only when a chat sink asks: most changes go to no chat sink at all.
        sample: bool | None = None
        for route in self.routes:
            if not route.when.matches(finding):
                continue
            for sink in route.to:
                family = self.families[sink]
                wanted = route.on if route.on is not None else DEFAULT_ON[family]
                if kind not in wanted or sink in chosen:
                    continue
                if family == "chat" and not route.samples:
                    if sample is None:
                        sample = traits.is_sample(finding)
                    if sample:
                        continue  # vendor-generated sample findings never page anyone by accident
                chosen.append(sink)
        return chosen


_NEVER_SENT: Final = frozenset({"unchanged", "stale"})


def parse_change_kinds(value: object, where: str) -> frozenset[ChangeKind] | None:
    """Parse a route's `on` list."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: expected a list such as ["new", "escalated"]')
    unknown = [v for v in value if v not in CHANGE_KINDS]
    if unknown:
        raise ConfigError(f"{where}: unknown change kind {unknown[0]!r}; use {', '.join(CHANGE_KINDS)}")
    # `unchanged` and `stale` are never sent (a replay is routed as the change that made it).
    silent = [v for v in value if v in _NEVER_SENT]
    if silent or not value:
        why = f"{silent[0]!r} is never sent" if silent else "an empty list sends nothing"
        sendable = ", ".join(k for k in CHANGE_KINDS if k not in _NEVER_SENT)
        raise ConfigError(f"{where}: {why}; use some of {sendable}")
    return frozenset(v for v in CHANGE_KINDS if v in value)


def sink_list(value: object, known: Sequence[str], where: str) -> tuple[str, ...]:
    """Parse a route's `to` list against the configured sinks."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: expected a list of sink ids such as ["slack:soc"]')
    for sink in value:
        if sink not in known:
            hint = f"; configured sinks: {', '.join(known)}" if known else "; no sinks are configured"
            raise ConfigError(f"{where}: sink {sink!r} is not defined under [sinks]{hint}")
    return tuple(value)
