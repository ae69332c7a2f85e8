"""Defender attack paths (`Microsoft.Security/attackPaths`) → OCSF Detection Finding (2004).

No exported attack path has been published, so both shapes are read from Microsoft's field
tables, tolerantly:

- legacy Defender CSPM: `displayName`, `description`, `attackPathType`, `potentialImpact`,
  `riskCategories`, `entryPointEntityInternalID`, `targetEntityInternalID`, `assessments`
  (entity id → recommendation ids), `manualRemediationSteps`, `graphComponent{entities
  [{entityInternalId, entityName, entityType, entityIdentifiers}], connections
  [{sourceEntityInternalId, targetEntityInternalId, title}], insights}`, `AttackPathID`;
- Exposure Management: `riskLevel`, `riskFactors`, `entryPoint` and `target` (entity objects),
  `attackPathSteps`, `mITRETacticsAndTechniques`, `attackStory`, `isPartialAttackPath`.

Decisions:

- An attack path is a posture risk, not a detection (P14): `is_alert` false, `finding_info.types`
  starts with "Attack Path", and the graph goes to `finding_info.attack_graph` (nodes from the
  entities, edges from the connections; no edge is inferred that the source did not state).
- Task: hardening. Nothing was seen happening; closing a path means fixing the
  recommendations along it, which `finding_info.related_events` links (their ids, lower-cased,
  are the uids of the recommendation findings).
- Identity: the attack path resource id, lower-cased; `AttackPathID` is `uid_alt`.
- Severity from `riskLevel` (Critical is real here); the legacy shape has none: Unknown (0).
- Status New; export `Delete` (the path disappeared) → Deleted + Close. The records carry no
  time: the delivery's `received_time` is used, and without one the record is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.records import NamedTuple
from corral.sources._core.folded import FieldMap, FieldRecord, text
from corral.sources.defender import _common as common
from corral.sources.defender._records import RESOURCE, Export, Resource
from corral.sources.defender._services import placement
from corral.sources.defender._tactics import TACTICS
from corral.sources.defender._values import consumed, listed_value, time_of

LOG_NAME: Final = "AttackPath"
TYPE: Final = "microsoft.security/attackpaths"
_NUMBERS: Final = (int, float)  # a tuple: `int | float` would be built on every test

_TECHNIQUE: Final = re.compile(r"^T\d{4}(\.\d{3})?$")


class _Props(FieldRecord):
    display_name: Any
    description: Any
    attack_story: Any
    attack_path_type: Any
    attack_path_id: Any
    risk_level: Any
    last_modified_time: Any
    last_updated_time: Any
    time_generated: Any
    created_time: Any
    entry_point: Any
    target: Any
    entry_point_entity_internal_id: Any
    target_entity_internal_id: Any
    graph_component: Any
    attack_path_steps: Any
    assessments: Any
    manual_remediation_steps: Any
    remediation_steps: Any
    m_itre_tactics_and_techniques: Any


class _Graph(FieldRecord):
    entities: Any
    connections: Any


class _EntityFields(FieldRecord):
    """A graph entity (or `entryPoint`/`target`); `entityInternalId` and `entityInternalID` are one key."""

    entity_internal_id: Any
    internal_id: Any
    id: Any
    entity_name: Any
    display_name: Any
    name: Any
    entity_type: Any
    type: Any
    entity_identifiers: Any
    identifiers: Any


class _Identifiers(FieldRecord):
    azure_resource_id: Any
    aws_resource_id: Any
    gcp_resource_id: Any
    resource_id: Any
    id: Any


class _Connection(FieldRecord):
    source_entity_internal_id: Any
    source: Any
    target_entity_internal_id: Any
    target: Any
    title: Any
    relation: Any
    name: Any
    display_name: Any


_PROPS: Final = FieldMap(_Props)
_GRAPH: Final = FieldMap(_Graph)
_ENTITY: Final = FieldMap(_EntityFields)
_IDENTIFIERS: Final = FieldMap(_Identifiers)
_CONNECTION: Final = FieldMap(_Connection)
_CONSUMED: Final = consumed(
    "id",
    "name",
    "type",
    "tenantId",
    "subscriptionId",
    "location",
    "properties.displayName",
    "properties.description",
    "properties.attackPathType",
    "properties.manualRemediationSteps",
    "properties.riskLevel",
    "properties.entryPointEntityInternalID",
    "properties.targetEntityInternalID",
    "properties.assessments",
    "properties.graphComponent.entities",
    "properties.graphComponent.connections",
    "properties.AttackPathID",
    "properties.entryPoint",
    "properties.target",
    "properties.mITRETacticsAndTechniques",
)


def normalize(doc: dict[str, Any], delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Detection Finding (with `attack_graph`) for one attack path."""
    top = RESOURCE.read(doc)
    path_id = text(top.id)
    if not path_id:
        raise MalformedEventError("id: missing or not a string")
    props = _PROPS.read(top.properties)
    title = text(props.display_name)
    status_id, activity_id = _lifecycle(top.export())
    time = common.require_time([_time(props)], received_time, "attack path")
    risk = props.risk_level

    graph_component = _GRAPH.read(props.graph_component)
    entry, target = _entity(props.entry_point), _entity(props.target)
    entry_id = text(props.entry_point_entity_internal_id) or entry.internal
    target_id = text(props.target_entity_internal_id) or target.internal
    entities = [*(_entity(e) for e in _objects(graph_component.entities)), entry, target]
    graph = _graph(top, props, title, entities, graph_component)
    resources = list(_resources(entities, entry_id, target_id))
    service, layer = _classify(entities)
    subscription = text(top.subscription_id) or common.subscription(path_id)
    if not subscription:
        raise MalformedEventError("id: no /subscriptions/<id> in the attack path id")
    steps = props.manual_remediation_steps
    remediation = common.remediation_text(steps if steps is not None else props.remediation_steps)

    finding = common.envelope(
        ocsf.DETECTION,
        log_name=LOG_NAME,
        activity_id=activity_id,
        time=time,
        severity_id=common.severity_id(risk),
        vendor_severity=risk,
        status_id=status_id,
        status_word=None,
        delivery_id=delivery_id,
        tenant=text(top.tenant_id),
        feature="Attack path analysis",
    )
    finding.update(
        common.compact(
            {
                "message": title,
                "is_alert": False,
                "cloud": ocsf.cloud("Azure", subscription, (text(top.location) or "").lower() or None),
                "finding_info": _info(path_id, props, title, graph, service, layer),
                "resources": resources,
                "remediation": {"desc": remediation} if remediation else None,
            }
        )
    )
    return common.finish(finding, _CONSUMED.rest(doc))


def _time(props: _Props) -> int | None:
    for value, name in (
        (props.last_modified_time, "lastModifiedTime"),
        (props.last_updated_time, "lastUpdatedTime"),
        (props.time_generated, "timeGenerated"),
        (props.created_time, "createdTime"),
    ):
        if value is not None and value != "":
            return time_of(value, name)
    return None


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in listed_value(value) if isinstance(item, dict)]


def _lifecycle(export: Export) -> tuple[int, int]:
    """Return (status_id, activity_id); a REST or Resource Graph row (no export action) is Create (see _posture)."""
    action = (text(export.action) or "").lower()
    if action == "delete":
        return ocsf.STATUS_DELETED, ocsf.CLOSE
    snapshot = action != "insert" or export.snapshot()
    return ocsf.STATUS_NEW, ocsf.UPDATE if action and snapshot else ocsf.CREATE


def _graph(
    top: Resource, props: _Props, title: str | None, entities: list[_Entity], component: _Graph
) -> dict[str, Any] | None:
    nodes = _nodes(entities)
    if not nodes:
        return None
    uid = text(props.attack_path_id) or text(top.name)
    graph = {
        "uid": uid,
        "name": title,
        "type": "Attack Path",
        "is_directed": True,
        "nodes": nodes,
        "edges": _edges(component, props),
    }
    return common.compact(graph)


def _info(
    path_id: str, props: _Props, title: str | None, graph: dict[str, Any] | None, service: str, layer: str
) -> dict[str, Any]:
    path_type = text(props.attack_path_type)
    analytic = {"type_id": 1, "type": "Rule", "uid": path_type, "name": title} if path_type else None
    info = {
        "uid": path_id.lower(),
        "uid_alt": text(props.attack_path_id),
        "title": title,
        "desc": common.first_text(props.description, props.attack_story),
        "types": ["Attack Path", *[t for t in [path_type] if t]],
        "analytic": common.compact(analytic) if analytic else None,
        "attack_graph": graph,
        "attacks": _attacks(props.m_itre_tactics_and_techniques),
        "related_events": [{"uid": uid, "type": "Recommendation"} for uid in _assessments(props)],
        "traits": traits.classify(service, layer, traits.HARDENING),
    }
    return common.compact(info)


def _first(*values: object) -> str | None:
    """The first value present (not null), as text: a number is written out, anything else but text is None."""
    for value in values:
        if value is not None:
            if isinstance(value, str):  # text first: nearly every value read is
                return value or None
            if isinstance(value, _NUMBERS) and not isinstance(value, bool):
                return str(value)
            return None
    return None


class _Entity(NamedTuple):
    """What is read of one graph entity, once."""

    doc: dict[str, Any]
    internal: str | None
    name: str | None
    kind: str | None
    resource_id: str | None


def _entity(doc: object) -> _Entity:
    e = _ENTITY.read(doc)
    identifiers = e.entity_identifiers if isinstance(e.entity_identifiers, dict) else e.identifiers
    i = _IDENTIFIERS.read(identifiers)
    resource_id = _first(i.azure_resource_id, i.aws_resource_id, i.gcp_resource_id, i.resource_id, i.id)
    return _Entity(
        doc if isinstance(doc, dict) else {},
        _first(e.entity_internal_id, e.internal_id, e.id),
        _first(e.entity_name, e.display_name, e.name),
        _first(e.entity_type, e.type),
        resource_id,
    )


def _node(entity: _Entity) -> dict[str, Any] | None:
    uid = entity.internal or entity.resource_id or entity.name
    if not uid:
        return None
    node = {"uid": uid, "name": entity.name, "type": entity.kind}
    return common.compact({**node, "data": ocsf.shared_prune(entity.doc)})  # shared when nothing needs pruning


def _nodes(entities: list[_Entity]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entity in entities:
        node = _node(entity)
        if node:
            found.setdefault(node["uid"], node)
    return list(found.values())


def _edges(component: _Graph, props: _Props) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in [*_objects(component.connections), *_objects(props.attack_path_steps)]:
        c = _CONNECTION.read(item)
        source = _first(c.source_entity_internal_id, c.source)
        target = _first(c.target_entity_internal_id, c.target)
        if not source or not target:
            continue
        title = _first(c.title, c.relation, c.name, c.display_name)
        edge = {"source": source, "target": target, "name": title, "relation": title, "uid": f"{source}>{target}"}
        found.append(common.compact(edge))
    return found


def _resources(entities: list[_Entity], entry_id: str | None, target_id: str | None) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for entity in entities:
        uid = entity.resource_id
        if not uid or uid.lower() in seen:
            continue
        seen.add(uid.lower())
        internal = entity.internal
        resource = {
            "uid": uid,
            "name": entity.name or common.last_segment(uid),
            "type": common.arm_type(uid) or entity.kind,
            "role_id": 1 if internal is not None and internal == target_id else 4,
        }
        yield common.compact(resource)


def _assessments(props: _Props) -> list[str]:
    """Return the recommendation ids linked to the path's entities, lower-cased, in order."""
    found: list[str] = []
    stack: list[Any] = [props.assessments]
    while stack:
        node = stack.pop(0)
        if isinstance(node, str) and node:
            found.append(node.lower())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return list(dict.fromkeys(found))


def _attacks(value: object) -> list[dict[str, Any]]:
    words: list[str] = []
    stack: list[Any] = [value]
    while stack:
        node = stack.pop(0)
        if isinstance(node, str):
            words += [w.strip() for w in node.split(",") if w.strip()]
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    attacks: list[dict[str, Any]] = []
    for word in dict.fromkeys(words):
        tactic = TACTICS.get(word.lower().replace(" ", ""))
        if tactic:
            attacks.append({"tactic": {"uid": tactic[0], "name": tactic[1]}})
        elif _TECHNIQUE.match(word.upper()):
            upper = word.upper()
            if "." in upper:
                attacks.append({"technique": {"uid": upper.split(".")[0]}, "sub_technique": {"uid": upper}})
            else:
                attacks.append({"technique": {"uid": upper}})
    return attacks


def _classify(entities: list[_Entity]) -> tuple[str, str]:
    placements = [placement(e.resource_id) for e in entities]
    for found in placements:
        if found and found[1] == traits.APPLICATION:
            return found
    for found in placements:
        if found:
            return found
    kinds = " ".join((e.kind or "").lower() for e in entities)
    if any(word in kinds for word in ("container", "pod", "image")):
        return traits.AKS, traits.APPLICATION
    if "kubernetes" in kinds or "cluster" in kinds:
        return traits.AKS, traits.PLATFORM
    return traits.NO_SERVICE, traits.INFRASTRUCTURE
