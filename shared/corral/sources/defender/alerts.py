"""Defender for Cloud security alerts → OCSF Detection Finding (2004).

Two shapes arrive: the continuous-export "SecurityAlert" record (flat PascalCase, `Entities` as
a `$id`/`$ref` graph) and the ARM/REST alert (`{id, name, type: Microsoft.Security/Locations/
alerts, properties: {...camelCase}}`). Both are read case-insensitively, through one field map.

Decisions:

- Identity: `finding_info.uid` is `SystemAlertId` (REST: `properties.system_alert_id`, else the
  resource `name`, which is the same id); the ARM id is `uid_alt`. A REST row whose name differs
  from its `systemAlertId` takes its ARM id as uid instead (see `_identity`).
- Status: New/Active → New + Create; InProgress → In Progress + Update; Resolved → Resolved +
  Close; Dismissed → Suppressed + Close. An unknown status is kept as status Other (99) with
  the vendor's word, activity Other.
- Cloud describes the affected resource. An alert whose resource is a multicloud connector
  resource (`Microsoft.Security/securityConnectors/...`), or that Defender relates to an
  `aws-resource`/`gcp-resource` entity, gets that AWS account or GCP project; the Azure
  connector id stays in `resources[]`. Without an account id the connector's subscription is
  used, because the identity triple needs an account.
- Every entity becomes one evidence whose `data` is the entity as sent (so none is lost);
  containers also fill `evidences[].container`, and clusters, namespaces and pods `resources[]`.
- `Intent` values that are ATT&CK tactics become `finding_info.attacks[]` with the tactic's
  ATT&CK id; PreAttack, Probing, Exploitation and Unknown are not tactics, and an `Intent`
  holding any of them stays in `unmapped` as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.folded import FieldMap, FieldRecord, MappedTree, spellings, text
from corral.sources.defender import _common as common
from corral.sources.defender._entities import Entities, Foreign, foreign_resource
from corral.sources.defender._services import placement
from corral.sources.defender._tactics import TACTICS
from corral.sources.defender._values import consumed, listed_value, time_of

LOG_NAME: Final = "SecurityAlert"

_STATUS: Final = {
    "new": (ocsf.STATUS_NEW, ocsf.CREATE),
    "active": (ocsf.STATUS_NEW, ocsf.CREATE),
    "inprogress": (ocsf.STATUS_IN_PROGRESS, ocsf.UPDATE),
    "resolved": (ocsf.STATUS_RESOLVED, ocsf.CLOSE),
    "dismissed": (ocsf.STATUS_SUPPRESSED, ocsf.CLOSE),
}

# Alert type prefix → (service, layer) for alerts whose resource does not already say.
# K8S_ alerts come from the Kubernetes control plane (audit log); K8S.NODE_ alerts from the
# sensor on a node, about a process in a container (application) or on the node itself.
_PREFIXES: Final = (
    ("K8S.NODE_", traits.AKS, traits.APPLICATION),
    ("K8S_", traits.AKS, traits.PLATFORM),
)
_FOREIGN: Final = {traits.AKS: {"AWS": traits.EKS, "GCP": traits.GKE}}
_ORCHESTRATORS: Final = {"AWS": "EKS", "GCP": "GKE"}

_TOP_CONSUMED: Final = (
    "SystemAlertId",
    "AlertType",
    "AlertDisplayName",
    "Description",
    "Severity",
    "Status",
    "Entities",
    "AlertUri",
    "RemediationSteps",
    "TimeGenerated",
    "TimeGeneratedUtc",
    "StartTimeUtc",
    "EndTimeUtc",
    "ProcessingEndTime",
    "ProcessingEndTimeUtc",
    "AzureResourceId",
    "ProductComponentName",
)
_INTENT_CONSUMED: Final = ("Intent", "Techniques", "SubTechniques")
_ARM_CONSUMED: Final = ("id", "name", "type")


def _consumed(prefix: str, intent_mapped: bool) -> MappedTree:
    paths = [prefix + key for key in _TOP_CONSUMED]
    if intent_mapped:
        paths += [prefix + key for key in _INTENT_CONSUMED]
    if prefix:
        paths += _ARM_CONSUMED
    return consumed(*paths)


# Keyed on (ARM alert resource, every Intent value mapped).
_CONSUMED: Final = {
    (rest, intent): _consumed("properties." if rest else "", intent)
    for rest in (False, True)
    for intent in (False, True)
}


class _Top(FieldRecord):
    properties: Any
    system_alert_id: Any
    id: Any
    name: Any
    type: Any
    alert_type: Any


class _Alert(FieldRecord):
    """What is read of an alert (the record itself, or an ARM alert's `properties`)."""

    system_alert_id: Any
    alert_type: Any
    alert_display_name: Any
    alert_uri: Any
    entities: Any
    resource_identifiers: Any
    azure_resource_id: Any
    extended_properties: Any
    status: Any
    severity: Any
    time_generated: Any
    time_generated_utc: Any
    processing_end_time: Any
    processing_end_time_utc: Any
    start_time_utc: Any
    end_time_utc: Any
    intent: Any
    techniques: Any
    sub_techniques: Any
    product_component_name: Any
    description: Any
    remediation_steps: Any
    compromised_entity: Any


class _Extended(FieldRecord):
    product_component_name: Any
    effective_azure_resource_id: Any


class _Identifier(FieldRecord):
    type: Any
    azure_resource_id: Any
    azure_resource_tenant_id: Any
    aad_tenant_id: Any


_TOP: Final = FieldMap(_Top)
_ALERT: Final = FieldMap(_Alert)
_EXTENDED: Final = FieldMap(_Extended)
_IDENTIFIER: Final = FieldMap(_Identifier)


def matches(doc: dict[str, Any]) -> bool:
    """True for an exported alert record (its own keys) or an ARM alert resource."""
    return matched(doc) is not None


def matched(doc: dict[str, Any]) -> _Top | None:
    """What is read of the top of an alert record (for `normalize`), or None when `doc` is no alert."""
    top = _TOP.read(doc)
    kind = (text(top.type) or "").lower()
    if kind.startswith("microsoft.security/") and kind.endswith("/alerts"):
        return top
    return top if top.system_alert_id is not None and top.alert_type is not None else None


def normalize(
    doc: dict[str, Any], delivery_id: str | None, received_time: int | None, top: _Top | None = None
) -> dict[str, Any]:
    """Return the Detection Finding for one Defender alert (either shape); `top`: what `matched` read of it."""
    if top is None:
        top = _TOP.read(doc)
    is_rest = "properties" in spellings(doc) and not top.system_alert_id
    alert = _ALERT.read(top.properties if is_rest else doc)
    arm_id = text(top.id) if is_rest else None
    uid, uid_alt = _identity(text(alert.system_alert_id), text(top.name) if is_rest else None, arm_id)
    alert_type, title, link = text(alert.alert_type), text(alert.alert_display_name), text(alert.alert_uri)
    graph = Entities(listed_value(alert.entities))
    identifiers = [_identifier(item) for item in listed_value(alert.resource_identifiers) if isinstance(item, dict)]
    extended = _EXTENDED.read(alert.extended_properties)
    primary = _primary_resource(alert, identifiers, extended)
    foreign = _foreign(graph, identifiers, primary)
    provider, cloud, foreign_resource = _cloud(foreign, primary, arm_id, link)

    status_word = text(alert.status)
    status_id, activity_id = _STATUS.get((status_word or "new").lower(), (99, 99))
    severity_word = alert.severity
    times = _times(alert)
    order = ("modified_time", "created_time", "last_seen_time", "first_seen_time")
    time = common.require_time([times[key] for key in order], received_time, "alert")
    attacks, intent_mapped = _attacks(alert)
    cluster_ids = graph.cluster_ids()
    service, layer = _classify(alert_type, primary, cluster_ids, provider, graph.has_containers())
    orchestrator = _orchestrator(provider, graph, cluster_ids, primary)
    feature = text(alert.product_component_name) or text(extended.product_component_name)

    finding = common.envelope(
        ocsf.DETECTION,
        log_name=LOG_NAME,
        activity_id=activity_id,
        time=time,
        severity_id=common.severity_id(severity_word),
        vendor_severity=severity_word,
        status_id=status_id,
        status_word=status_word if status_id == 99 else None,
        delivery_id=delivery_id,
        tenant=next((tenant for _, _, _, tenant in identifiers if tenant), None),
        feature=feature,
    )
    info = _info(alert, alert_type, title, link)
    info.update(times, uid=uid, uid_alt=uid_alt, attacks=attacks)
    info["traits"] = traits.classify(service, layer, traits.THREAT_DETECTION)
    finding.update(
        common.compact(
            {
                "message": title,
                "is_alert": True,
                "cloud": cloud,
                "finding_info": common.compact(info),
                "resources": _resources(primary, alert, graph, foreign_resource),
                "evidences": graph.evidences(orchestrator or "Kubernetes"),
                "remediation": _remediation(alert),
            }
        )
    )
    return common.finish(finding, _CONSUMED[is_rest, intent_mapped].rest(doc))


_Ident = tuple[dict[str, Any], str, str | None, str | None]
"""A resource identifier: (as sent, its `Type` lower-cased, its Azure resource id, its tenant)."""


def _identifier(item: dict[str, Any]) -> _Ident:
    found = _IDENTIFIER.read(item)
    tenant = text(found.azure_resource_tenant_id) or text(found.aad_tenant_id)
    return item, (text(found.type) or "").lower(), text(found.azure_resource_id), tenant


def _info(alert: _Alert, alert_type: str | None, title: str | None, link: str | None) -> dict[str, Any]:
    return {
        "title": title,
        "desc": text(alert.description),
        "types": [alert_type] if alert_type else [],
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": alert_type, "name": title})
        if alert_type
        else None,
        "src_url": link,
    }


def _times(alert: _Alert) -> dict[str, int | None]:
    created, modified = alert.time_generated, alert.processing_end_time
    return {
        "created_time": time_of(created, "TimeGenerated")
        if created is not None and created != ""
        else time_of(alert.time_generated_utc, "TimeGeneratedUtc"),
        "modified_time": time_of(modified, "ProcessingEndTime")
        if modified is not None and modified != ""
        else time_of(alert.processing_end_time_utc, "ProcessingEndTimeUtc"),
        "first_seen_time": time_of(alert.start_time_utc, "StartTimeUtc"),
        "last_seen_time": time_of(alert.end_time_utc, "EndTimeUtc"),
    }


def _cloud(
    foreign: tuple[str, str, str | None, dict[str, Any]] | None,
    primary: str | None,
    arm_id: str | None,
    link: str | None,
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Return (provider, cloud, the foreign resource) of the alert's affected resource."""
    if foreign is not None:
        provider, account, foreign_region, resource = foreign
        return provider, ocsf.cloud(provider, account, foreign_region), resource
    region = common.location(arm_id) or common.location(link)
    return "Azure", common.azure_cloud(primary, region, fallback=arm_id or link), None


def _orchestrator(provider: str, graph: Entities, cluster_ids: list[str], primary: str | None) -> str | None:
    if found := _ORCHESTRATORS.get(provider) or graph.platform():
        return found
    aks = any(placement(c) == (traits.AKS, traits.PLATFORM) for c in [*cluster_ids, primary or ""])
    return "AKS" if aks else None


def _remediation(alert: _Alert) -> dict[str, Any] | None:
    steps = listed_value(alert.remediation_steps)
    text = common.remediation_text(steps) if steps else common.remediation_text(alert.remediation_steps)
    return {"desc": text} if text else None


def _primary_resource(alert: _Alert, identifiers: list[_Ident], extended: _Extended) -> str | None:
    found = text(alert.azure_resource_id)
    if found:
        return found
    for _, kind, resource_id, _ in identifiers:
        if kind == "azureresource" and resource_id:
            return resource_id
    return text(extended.effective_azure_resource_id)


def _identity(system_id: str | None, name: str | None, arm_id: str | None) -> tuple[str, str | None]:
    """Return (finding uid, uid_alt) of an alert.

    An exported alert and its REST row share `SystemAlertId`, which is also the REST row's
    resource name: that id is the uid, so both shapes are one finding. A REST row whose name is
    not its `systemAlertId` is a different alert resource that shares the id (Defender reuses it
    across alert types); its ARM id is its uid then, so the two never collapse into one finding.
    """
    if system_id and name and name.lower() != system_id.lower() and arm_id:
        return arm_id, system_id
    uid = system_id or name
    if not uid:
        raise MalformedEventError("SystemAlertId: missing or not a string")
    return uid, arm_id


def _attacks(alert: _Alert) -> tuple[list[dict[str, Any]], bool]:
    """Return the ATT&CK entries, and whether every Intent value was a tactic."""
    intent = alert.intent
    words = [w.strip() for w in intent.split(",")] if isinstance(intent, str) else []
    attacks: list[dict[str, Any]] = []
    all_mapped = isinstance(intent, str) and bool(words)
    for word in words:
        found = TACTICS.get(word.lower().replace(" ", ""))
        if found:
            attacks.append({"tactic": {"uid": found[0], "name": found[1]}})
        else:
            all_mapped = False
    for technique in listed_value(alert.techniques):
        if isinstance(technique, str) and technique:
            attacks.append({"technique": {"uid": technique}})
    for sub in listed_value(alert.sub_techniques):
        if isinstance(sub, str) and sub:
            parent = sub.split(".", 1)[0]
            attacks.append({"technique": {"uid": parent}, "sub_technique": {"uid": sub}})
    return attacks, all_mapped or (intent is None and bool(attacks))


def _classify(
    alert_type: str | None, primary: str | None, clusters: list[str], provider: str, has_containers: bool
) -> tuple[str, str]:
    for prefix, service, layer in _PREFIXES:
        if alert_type and alert_type.upper().startswith(prefix):
            # A node alert without a container or pod is about the node itself.
            found_layer = traits.INFRASTRUCTURE if prefix == "K8S.NODE_" and not has_containers else layer
            return _FOREIGN.get(service, {}).get(provider, service), found_layer
    for resource_id in [primary, *clusters]:
        where = placement(resource_id)
        if where:
            return where
    if clusters or has_containers:
        return _FOREIGN[traits.AKS].get(provider, traits.AKS), traits.PLATFORM
    return traits.NO_SERVICE, traits.INFRASTRUCTURE if (alert_type or "").upper().startswith("VM_") else traits.PLATFORM


def _foreign(
    graph: Entities, identifiers: list[_Ident], primary: str | None
) -> tuple[str, str, str | None, dict[str, Any]] | None:
    """Return (provider, account, region, resource) when the alert is about an AWS/GCP resource."""
    on_connector = primary is None or "/microsoft.security/securityconnectors/" in primary.lower()
    candidates = [*graph.foreign(), *_foreign_identifiers(identifiers)]
    for provider, account, region, resource, related in candidates:
        if not account:
            continue
        if on_connector or (primary and primary.lower() in related):
            return provider, account, region, resource
    return None


def _foreign_identifiers(identifiers: list[_Ident]) -> Iterator[Foreign]:
    for identifier, kind, _, _ in identifiers:
        if "aws" in kind or "gcp" in kind:
            yield foreign_resource(identifier, "AWS" if "aws" in kind else "GCP")


def _resources(
    primary: str | None, alert: _Alert, graph: Entities, foreign: dict[str, Any] | None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if primary:
        found.append(common.arm_resource(primary, role_id=1))
    if foreign:
        found.append(foreign)
    found += graph.resources()
    if not found and (compromised := text(alert.compromised_entity)):
        found.append({"name": compromised, "role_id": 1})
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in found:
        uid = str(resource.get("uid") or "").lower()
        unique.setdefault((uid, "" if uid else f"{resource.get('type')}:{resource.get('name')}"), resource)
    return list(unique.values())
