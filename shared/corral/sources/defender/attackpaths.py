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
from typing import Any, Final, NamedTuple

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._services import placement
from corral.sources.defender._tactics import TACTICS
from corral.sources.defender._values import boolean, consumed, objects, unmapped

LOG_NAME: Final = "AttackPath"
TYPE: Final = "microsoft.security/attackpaths"

_TECHNIQUE: Final = re.compile(r"^T\d{4}(\.\d{3})?$")
_ENTITY_ID: Final = ("entityInternalId", "entityInternalID", "internalId", "id")
_ENTITY_NAME: Final = ("entityName", "displayName", "name")
_ENTITY_TYPE: Final = ("entityType", "type")
_RESOURCE_ID: Final = ("azureResourceId", "awsResourceId", "gcpResourceId", "resourceId", "id")
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


def normalize(doc: Fields, delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Detection Finding (with `attack_graph`) for one attack path."""
    path_id = doc.first_text("id")
    if not path_id:
        raise MalformedEventError("id: missing or not a string")
    props = doc.view("properties")
    title = props.first_text("displayName")
    status_id, activity_id = _lifecycle(posture.enrichment(doc))
    time = common.require_time(
        [common.first_time(props, "lastModifiedTime", "lastUpdatedTime", "timeGenerated", "createdTime")],
        received_time,
        "attack path",
    )
    risk = props.get("riskLevel")

    entry_view, target_view = props.view("entryPoint"), props.view("target")
    entry_id = props.first_text("entryPointEntityInternalID") or _first(entry_view, _ENTITY_ID)
    target_id = props.first_text("targetEntityInternalID") or _first(target_view, _ENTITY_ID)
    entities = [_entity(e) for e in (*objects(props.view("graphComponent"), "entities"), entry_view, target_view)]
    graph = _graph(doc, props, title, entities)
    resources = list(_resources(entities, entry_id, target_id))
    service, layer = _classify(entities)
    subscription = doc.first_text("subscriptionId") or common.subscription(path_id)
    if not subscription:
        raise MalformedEventError("id: no /subscriptions/<id> in the attack path id")
    remediation = common.remediation_text(props.get("manualRemediationSteps", "remediationSteps"))

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
        tenant=doc.first_text("tenantId"),
        feature="Attack path analysis",
    )
    finding.update(
        common.compact(
            {
                "message": title,
                "is_alert": False,
                "cloud": ocsf.cloud("Azure", subscription, (doc.first_text("location") or "").lower() or None),
                "finding_info": _info(path_id, props, title, graph, service, layer),
                "resources": resources,
                "remediation": {"desc": remediation} if remediation else None,
            }
        )
    )
    return common.finish(finding, unmapped(doc, _CONSUMED))


def _lifecycle(export: Fields) -> tuple[int, int]:
    """Return (status_id, activity_id); a REST or Resource Graph row (no export action) is Create (see _posture)."""
    action = (export.first_text("action") or "").lower()
    if action == "delete":
        return ocsf.STATUS_DELETED, ocsf.CLOSE
    snapshot = action != "insert" or boolean(export, "isSnapshot")
    return ocsf.STATUS_NEW, ocsf.UPDATE if action and snapshot else ocsf.CREATE


def _graph(doc: Fields, props: Fields, title: str | None, entities: list[_Entity]) -> dict[str, Any] | None:
    nodes = _nodes(entities)
    if not nodes:
        return None
    uid = props.first_text("AttackPathID") or doc.first_text("name")
    graph = {
        "uid": uid,
        "name": title,
        "type": "Attack Path",
        "is_directed": True,
        "nodes": nodes,
        "edges": _edges(props),
    }
    return common.compact(graph)


def _info(
    path_id: str, props: Fields, title: str | None, graph: dict[str, Any] | None, service: str, layer: str
) -> dict[str, Any]:
    path_type = props.first_text("attackPathType")
    analytic = {"type_id": 1, "type": "Rule", "uid": path_type, "name": title} if path_type else None
    info = {
        "uid": path_id.lower(),
        "uid_alt": props.first_text("AttackPathID"),
        "title": title,
        "desc": props.first_text("description", "attackStory"),
        "types": ["Attack Path", *[t for t in [path_type] if t]],
        "analytic": common.compact(analytic) if analytic else None,
        "attack_graph": graph,
        "attacks": _attacks(props.get("mITRETacticsAndTechniques")),
        "related_events": [{"uid": uid, "type": "Recommendation"} for uid in _assessments(props)],
        "traits": traits.classify(service, layer, traits.HARDENING),
    }
    return common.compact(info)


def _first(view: Fields, names: tuple[str, ...]) -> str | None:
    value = view.get(*names)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


class _Entity(NamedTuple):
    """What is read of one graph entity, once."""

    view: Fields
    internal: str | None
    name: str | None
    kind: str | None
    resource_id: str | None


def _entity(view: Fields) -> _Entity:
    resource_id = _first(view.view("entityIdentifiers", "identifiers"), _RESOURCE_ID)
    return _Entity(view, _first(view, _ENTITY_ID), _first(view, _ENTITY_NAME), _first(view, _ENTITY_TYPE), resource_id)


def _node(entity: _Entity) -> dict[str, Any] | None:
    uid = entity.internal or entity.resource_id or entity.name
    if not uid:
        return None
    node = {"uid": uid, "name": entity.name, "type": entity.kind}
    return common.compact({**node, "data": ocsf.prune(entity.view.doc)})


def _nodes(entities: list[_Entity]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entity in entities:
        node = _node(entity)
        if node:
            found.setdefault(node["uid"], node)
    return list(found.values())


def _edges(props: Fields) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    connections = [*objects(props.view("graphComponent"), "connections"), *objects(props, "attackPathSteps")]
    for connection in connections:
        source = _first(connection, ("sourceEntityInternalId", "sourceEntityInternalID", "source"))
        target = _first(connection, ("targetEntityInternalId", "targetEntityInternalID", "target"))
        if not source or not target:
            continue
        title = _first(connection, ("title", "relation", "name", "displayName"))
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


def _assessments(props: Fields) -> list[str]:
    """Return the recommendation ids linked to the path's entities, lower-cased, in order."""
    found: list[str] = []
    stack: list[Any] = [props.get("assessments")]
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
