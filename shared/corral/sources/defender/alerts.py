"""Defender for Cloud security alerts → OCSF Detection Finding (2004).

Two shapes arrive: the continuous-export "SecurityAlert" record (flat PascalCase, `Entities` as
a `$id`/`$ref` graph) and the ARM/REST alert (`{id, name, type: Microsoft.Security/Locations/
alerts, properties: {...camelCase}}`). Both are read through one case-insensitive view.

Decisions:

- Identity: `finding_info.uid` is `SystemAlertId` (REST: `properties.systemAlertId`, else the
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
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender._entities import Entities, foreign_resource
from corral.sources.defender._services import placement
from corral.sources.defender._values import consumed, listed, objects, unmapped

LOG_NAME: Final = "SecurityAlert"

_STATUS: Final = {
    "new": (ocsf.STATUS_NEW, ocsf.CREATE),
    "active": (ocsf.STATUS_NEW, ocsf.CREATE),
    "inprogress": (ocsf.STATUS_IN_PROGRESS, ocsf.UPDATE),
    "resolved": (ocsf.STATUS_RESOLVED, ocsf.CLOSE),
    "dismissed": (ocsf.STATUS_SUPPRESSED, ocsf.CLOSE),
}

TACTICS: Final = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resourcedevelopment": ("TA0042", "Resource Development"),
    "initialaccess": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilegeescalation": ("TA0004", "Privilege Escalation"),
    "defenseevasion": ("TA0005", "Defense Evasion"),
    "credentialaccess": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateralmovement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "commandandcontrol": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
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


def _consumed(prefix: str, intent_mapped: bool) -> dict[str, Any]:
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


def matches(doc: Fields) -> bool:
    """True for an exported alert record (its own keys) or an ARM alert resource."""
    kind = (doc.first_text("type") or "").lower()
    if kind.startswith("microsoft.security/") and kind.endswith("/alerts"):
        return True
    return doc.get("SystemAlertId") is not None and doc.get("AlertType") is not None


def normalize(doc: Fields, delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Detection Finding for one Defender alert (either shape)."""
    rest = doc.view("properties") if doc.has("properties") and not doc.get("SystemAlertId") else None
    alert = rest if rest is not None else doc
    arm_id = doc.first_text("id") if rest is not None else None
    name = doc.first_text("name") if rest is not None else None
    uid, uid_alt = _identity(alert.first_text("SystemAlertId"), name, arm_id)
    alert_type, title = alert.first_text("AlertType"), alert.first_text("AlertDisplayName")
    link = alert.first_text("AlertUri")
    graph = Entities(listed(alert, "Entities"))
    identifiers = objects(alert, "ResourceIdentifiers")
    primary = _primary_resource(alert, identifiers)
    foreign = _foreign(graph, identifiers, primary)
    provider, cloud, foreign_resource = _cloud(foreign, primary, arm_id, link)

    status_word = alert.first_text("Status")
    status_id, activity_id = _STATUS.get((status_word or "new").lower(), (99, 99))
    severity_word = alert.get("Severity")
    times = _times(alert)
    order = ("modified_time", "created_time", "last_seen_time", "first_seen_time")
    time = common.require_time([times[key] for key in order], received_time, "alert")
    attacks, intent_mapped = _attacks(alert)
    cluster_ids = graph.cluster_ids()
    service, layer = _classify(alert_type, primary, cluster_ids, provider, graph.has_containers())
    orchestrator = _orchestrator(provider, graph, cluster_ids, primary)
    extended = alert.view("ExtendedProperties")
    feature = alert.first_text("ProductComponentName") or extended.first_text("ProductComponentName")

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
        tenant=_tenant(identifiers),
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
                "evidences": list(graph.evidences(orchestrator or "Kubernetes")),
                "remediation": _remediation(alert),
            }
        )
    )
    return common.finish(finding, unmapped(doc, _CONSUMED[rest is not None, intent_mapped]))


def _info(alert: Fields, alert_type: str | None, title: str | None, link: str | None) -> dict[str, Any]:
    return {
        "title": title,
        "desc": alert.first_text("Description"),
        "types": [alert_type] if alert_type else [],
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": alert_type, "name": title})
        if alert_type
        else None,
        "src_url": link,
    }


def _times(alert: Fields) -> dict[str, int | None]:
    return {
        "created_time": common.first_time(alert, "TimeGenerated", "TimeGeneratedUtc"),
        "modified_time": common.first_time(alert, "ProcessingEndTime", "ProcessingEndTimeUtc"),
        "first_seen_time": common.first_time(alert, "StartTimeUtc"),
        "last_seen_time": common.first_time(alert, "EndTimeUtc"),
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


def _remediation(alert: Fields) -> dict[str, Any] | None:
    steps = listed(alert, "RemediationSteps")
    text = common.remediation_text(steps) if steps else common.remediation_text(alert.get("RemediationSteps"))
    return {"desc": text} if text else None


def _tenant(identifiers: list[Fields]) -> str | None:
    for identifier in identifiers:
        found = identifier.first_text("AzureResourceTenantId", "AadTenantId")
        if found:
            return found
    return None


def _primary_resource(alert: Fields, identifiers: list[Fields]) -> str | None:
    found = alert.first_text("AzureResourceId")
    if found:
        return found
    for identifier in identifiers:
        if (identifier.first_text("Type") or "").lower() == "azureresource" and identifier.first_text(
            "AzureResourceId"
        ):
            return identifier.first_text("AzureResourceId")
    return alert.view("ExtendedProperties").first_text("EffectiveAzureResourceId")


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


def _attacks(alert: Fields) -> tuple[list[dict[str, Any]], bool]:
    """Return the ATT&CK entries, and whether every Intent value was a tactic."""
    intent = alert.get("Intent")
    words = [w.strip() for w in intent.split(",")] if isinstance(intent, str) else []
    attacks: list[dict[str, Any]] = []
    all_mapped = isinstance(intent, str) and bool(words)
    for word in words:
        found = TACTICS.get(word.lower().replace(" ", ""))
        if found:
            attacks.append({"tactic": {"uid": found[0], "name": found[1]}})
        else:
            all_mapped = False
    for technique in listed(alert, "Techniques"):
        if isinstance(technique, str) and technique:
            attacks.append({"technique": {"uid": technique}})
    for sub in listed(alert, "SubTechniques"):
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
    graph: Entities, identifiers: list[Fields], primary: str | None
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


def _foreign_identifiers(
    identifiers: list[Fields],
) -> Iterator[tuple[str, str | None, str | None, dict[str, Any], set[str]]]:
    for identifier in identifiers:
        kind = (identifier.first_text("Type") or "").lower()
        if "aws" in kind or "gcp" in kind:
            yield foreign_resource(identifier, "AWS" if "aws" in kind else "GCP")


def _resources(
    primary: str | None, alert: Fields, graph: Entities, foreign: dict[str, Any] | None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if primary:
        found.append(common.arm_resource(primary, role_id=1))
    if foreign:
        found.append(foreign)
    found += graph.resources()
    if not found and alert.first_text("CompromisedEntity"):
        found.append({"name": alert.first_text("CompromisedEntity"), "role_id": 1})
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in found:
        uid = str(resource.get("uid") or "").lower()
        unique.setdefault((uid, "" if uid else f"{resource.get('type')}:{resource.get('name')}"), resource)
    return list(unique.values())
