"""One SCC finding (already split from its envelope) to OCSF: lifecycle, finding_info, class-specific body.

`corral.sources.scc` documents the decisions; this module carries them out, one concern per
function, and records every finding key it maps in `consumed` so that `unmapped` is the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources.scc import _cloud, _context, _details
from corral.sources.scc._read import compact, field, mapping, millis, snake, text
from corral.sources.scc._tables import (
    MISCONFIGURATION,
    OBSERVATION,
    POSTURE_VIOLATION,
    SEVERITIES,
    THREAT,
    TOXIC_COMBINATION,
    VULNERABILITY,
)

PRODUCT: Final = {"name": "Security Command Center", "vendor_name": "Google", "uid": "google.scc"}

_SOURCE_NAME: Final = re.compile(r"^(?:organizations|folders|projects)/[^/]+/sources/[^/]+(?:/locations/[^/]+)?$")
_ORG_ROOTED: Final = re.compile(r"^organizations/([^/]+)/")
_SHA_CATEGORY: Final = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CONSOLE: Final = "https://console.cloud.google.com/security/command-center/findingsv2;name="
# Resource names are ASCII letters, digits, `-_.~` and `/`: only the slashes need quoting.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9_.~/-]*")

_CLASS_UIDS: Final = {
    THREAT: ocsf.DETECTION,
    OBSERVATION: ocsf.DETECTION,
    TOXIC_COMBINATION: ocsf.DETECTION,
    MISCONFIGURATION: ocsf.COMPLIANCE,
    POSTURE_VIOLATION: ocsf.COMPLIANCE,
}
_TASKS: Final = {
    THREAT: traits.THREAT_DETECTION,
    OBSERVATION: traits.THREAT_DETECTION,
    TOXIC_COMBINATION: traits.THREAT_DETECTION,
    VULNERABILITY: traits.VULNERABILITY_MANAGEMENT,
    MISCONFIGURATION: traits.HARDENING,
    POSTURE_VIOLATION: traits.HARDENING,
}
# Detections a responder must look at; observations and toxic combinations are posture context.
_IS_ALERT: Final = {THREAT: True, OBSERVATION: False, TOXIC_COMBINATION: False}
_GKE_TYPES: Final = ("container.googleapis.com/", "k8s.io/", "google.container.")
_CLOUD_RUN_TYPES: Final = ("run.googleapis.com/", "google.cloud.run.")
_RESOURCE_CONSUMED: Final = frozenset(
    {"name", "displayName", "display_name", "type", "location", "cloudProvider", "cloud_provider"}
)

_ORCHESTRATORS: Final = {traits.GKE: _context.GKE_ORCHESTRATOR, traits.CLOUD_RUN: _context.CLOUD_RUN_ORCHESTRATOR}


def finding(
    finding: Mapping[str, Any],
    resource: Mapping[str, Any],
    extra: dict[str, Any],
    scc_class: str,
    delivery_id: str | None,
    received_time: int | None,
) -> ocsf.Finding:
    """Return the OCSF finding of one SCC finding of class `scc_class` (not SCC_ERROR)."""
    consumed: set[str] = set()
    _consume(consumed, "name")
    _take(finding, "findingClass", consumed)
    create_ms, modified, activity_id, status_id, state = _lifecycle(finding, consumed, received_time)
    severity_id, vendor_severity = _severity(finding)
    _take(finding, "severity", consumed)
    cloud = _cloud.cloud(finding, resource)
    provider = cloud["provider"]
    vuln = _details.vulnerability(
        finding, ocsf.SEVERITY_NAMES[severity_id] if severity_id != 99 else str(vendor_severity)
    )
    class_uid = _CLASS_UIDS.get(scc_class, ocsf.DETECTION)
    if scc_class == VULNERABILITY and vuln is not None:
        class_uid = ocsf.VULNERABILITY
    task = _TASKS.get(scc_class, traits.THREAT_DETECTION)
    service = _service(finding, resource, provider)
    layer = _layer(finding, resource, service, task)
    info, product = _info(finding, resource, scc_class, provider, consumed)
    info.update(created_time=create_ms, modified_time=modified, traits=traits.classify(service, layer, task))
    out = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity_id,
        time=modified,
        severity_id=severity_id,
        vendor_severity=vendor_severity,
        status_id=status_id,
        product=product,
        delivery_id=delivery_id,
    )
    out.update(
        {
            "message": info.get("title"),
            "status_detail": text(finding, "muteInitiator") if status_id == ocsf.STATUS_SUPPRESSED else None,
            "finding_info": compact(info),
            "cloud": cloud,
            "resources": _context.resources(finding, resource, provider),
        }
    )
    orchestrator = _ORCHESTRATORS.get(service)
    _body(out, finding, class_uid, scc_class, vuln, orchestrator, state != "INACTIVE", consumed)
    # Every part above is built without empty values; only this level still holds some.
    result: ocsf.Finding = compact(out)
    unmapped = _unmapped(finding, resource, extra, consumed)
    if unmapped:
        result["unmapped"] = unmapped
    return result


def _lifecycle(
    finding: Mapping[str, Any], consumed: set[str], received_time: int | None
) -> tuple[int | None, int, int, int, str | None]:
    """Return (created, modified, activity_id, status_id, state)."""
    event_ms = millis(field(finding, "eventTime"))
    create_ms = millis(field(finding, "createTime"))
    mute_ms = millis(field(finding, "muteUpdateTime"))
    # Muting a finding does not move its eventTime; muteUpdateTime orders that change.
    modified = max(event_ms or 0, mute_ms or 0) or create_ms or received_time
    if modified is None:
        raise MalformedEventError("SCC finding has no usable eventTime or createTime")
    if event_ms is not None:
        _consume(consumed, "eventTime")
    if create_ms is not None:
        _consume(consumed, "createTime")
    state = text(finding, "state")
    mute = text(finding, "mute") or text(mapping(mapping(finding, "muteInfo"), "staticMute"), "state")
    if state == "INACTIVE":
        activity_id, status_id = ocsf.CLOSE, ocsf.STATUS_RESOLVED
    else:
        later = max(event_ms or 0, mute_ms or 0)
        activity_id = ocsf.UPDATE if create_ms is not None and later > create_ms else ocsf.CREATE
        if mute == "MUTED":
            status_id = ocsf.STATUS_SUPPRESSED
        elif state == "ACTIVE":
            status_id = ocsf.STATUS_NEW
        else:
            status_id = 0 if state in (None, "STATE_UNSPECIFIED") else 99
    if state in ("ACTIVE", "INACTIVE"):
        _consume(consumed, "state")
    return create_ms, modified, activity_id, status_id, state


def _info(
    finding: Mapping[str, Any], resource: Mapping[str, Any], scc_class: str, provider: str, consumed: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the finding's `finding_info` (without times and traits) and its `product`."""
    name = text(finding, "name") or ""
    category = _take(finding, "category", consumed)
    canonical = _take(finding, "canonicalName", consumed)
    description = _take(finding, "description", consumed)
    external = text(finding, "externalUri")
    if external and external.startswith(("https://", "http://")):
        src_url = external
        _consume(consumed, "externalUri")
    else:
        src_url = _console_url(name, finding, resource, provider)
    attacks, attacks_complete = _details.attacks(finding)
    if attacks_complete:
        _consume(consumed, "mitreAttack")
    source_display = _take(finding, "parentDisplayName", consumed) or _take(finding, "sourceDisplayName", consumed)
    module = _take(finding, "moduleName", consumed)
    parent = text(finding, "parent")
    if parent and _SOURCE_NAME.match(parent):
        _consume(consumed, "parent")
    else:
        parent = None
    _take(finding, "resourceName", consumed)
    info = {
        "uid": canonical or name,
        "uid_alt": name if canonical and canonical != name else None,
        "title": category,
        "desc": description or text(_details.source_properties(finding), "Explanation"),
        "types": list(dict.fromkeys(t for t in (category, scc_class) if t)),
        "analytic": compact({"type_id": 1, "type": "Rule", "uid": module or category, "name": category})
        if module or category
        else None,
        "src_url": src_url,
        "attacks": attacks,
        "related_events": [{"uid": uid, "type": "Security Command Center finding"} for uid in _related(finding)],
        "tags": _tags(finding),
    }
    product: dict[str, Any] = dict(PRODUCT)
    feature = compact({"name": source_display, "uid": parent})
    if feature:
        product["feature"] = feature
    return info, product


def _body(
    out: dict[str, Any],
    finding: Mapping[str, Any],
    class_uid: int,
    scc_class: str,
    vuln: dict[str, Any] | None,
    orchestrator: str | None,
    active: bool,
    consumed: set[str],
) -> None:
    """Add what the class carries: vulnerabilities and images, or evidences, remediation, compliance."""
    remediation = _details.remediation(finding)
    _take(finding, "nextSteps", consumed)
    if class_uid == ocsf.VULNERABILITY and vuln is not None:
        if remediation:
            vuln["remediation"] = remediation
        out["vulnerabilities"] = [vuln]
        out["resources"] += _context.image_resources(finding, orchestrator)
        return
    out["evidences"] = _context.evidences(finding, orchestrator)
    out["remediation"] = remediation
    if class_uid == ocsf.COMPLIANCE:
        out["compliance"] = _details.compliance(finding, active=active)
        if _compliances_clean(finding):
            _consume(consumed, "compliances")
    else:
        out["is_alert"] = _IS_ALERT.get(scc_class)


def _service(finding: Mapping[str, Any], resource: Mapping[str, Any], provider: str) -> str:
    kind = text(resource, "type") or ""
    name = text(finding, "resourceName") or text(resource, "name") or ""
    if kind.startswith(_CLOUD_RUN_TYPES) or name.startswith("//run.googleapis.com/"):
        return traits.CLOUD_RUN
    if kind.startswith(_GKE_TYPES) or name.startswith("//container.googleapis.com/") or mapping(finding, "kubernetes"):
        if provider == "AWS":
            return traits.EKS
        return traits.AKS if provider == "Azure" else traits.GKE
    if provider == "AWS" and (":eks:" in name or "EKS" in kind):
        return traits.EKS
    if provider == "Azure" and "microsoft.containerservice/managedclusters" in (name + kind).lower():
        return traits.AKS
    return traits.NO_SERVICE


def _layer(finding: Mapping[str, Any], resource: Mapping[str, Any], service: str, task: str) -> str:
    """Return the layer: infrastructure for nodes and VMs, application for workloads, else platform."""
    node = _context.touches_node(finding, resource)
    workload = _context.has_workload(finding)
    if task == traits.HARDENING:
        return traits.INFRASTRUCTURE if node else traits.PLATFORM
    if service == traits.CLOUD_RUN:
        return traits.APPLICATION
    if service == traits.NO_SERVICE:
        return traits.INFRASTRUCTURE if node else traits.PLATFORM
    if workload:
        return traits.APPLICATION
    return traits.INFRASTRUCTURE if node else traits.PLATFORM


def _severity(finding: Mapping[str, Any]) -> tuple[int, object]:
    raw = field(finding, "severity")
    if raw is None or raw == "":
        return 0, None
    if isinstance(raw, str) and raw in SEVERITIES:
        return SEVERITIES[raw], raw
    return 99, raw


def _quote(value: str) -> str:
    """Percent-encode every character but the unreserved ones, as `urllib.parse.quote(value, safe="")`."""
    return value.replace("/", "%2F") if _PLAIN_PATH.fullmatch(value) else quote(value, safe="")


def _console_url(name: str, finding: Mapping[str, Any], resource: Mapping[str, Any], provider: str) -> str:
    url = _CONSOLE + _quote(name)
    org = _ORG_ROOTED.match(name)
    if org:
        return f"{url}?organizationId={_quote(org.group(1))}"
    project_id = _cloud.project_ids(finding, resource)[0] if provider == "GCP" else None
    return f"{url}?project={_quote(project_id)}" if project_id else url


def _tags(finding: Mapping[str, Any]) -> list[dict[str, str]]:
    marks = mapping(mapping(finding, "securityMarks"), "marks")
    return [{"name": k, "value": v} for k, v in marks.items() if isinstance(k, str) and k and isinstance(v, str) and v]


def _consume(consumed: set[str], *keys: str) -> None:
    for key in keys:
        consumed.update((key, snake(key)))


def _take(finding: Mapping[str, Any], key: str, consumed: set[str]) -> str | None:
    """Return a text field and mark it consumed; a value of another JSON type stays in unmapped."""
    value = text(finding, key)
    if value is not None:
        _consume(consumed, key)
    return value


def _related(finding: Mapping[str, Any]) -> list[str]:
    combination = mapping(finding, "toxicCombination")
    value = field(combination, "relatedFindings")
    return list(dict.fromkeys(v for v in value if isinstance(v, str) and v)) if isinstance(value, list) else []


def _compliances_clean(finding: Mapping[str, Any]) -> bool:
    """True when `compliances[]` holds only {standard, version, ids} strings, all carried into `compliance`."""
    value = field(finding, "compliances")
    if not isinstance(value, list):
        return False
    allowed = {"standard", "version", "ids"}
    return all(
        isinstance(c, dict)
        and set(c) <= allowed
        and all(isinstance(c.get(k, ""), str) for k in ("standard", "version"))
        and isinstance(c.get("ids", []), list)
        and all(isinstance(i, str) for i in c.get("ids", []))
        for c in value
    )


def _unmapped(
    finding: Mapping[str, Any], resource: Mapping[str, Any], extra: dict[str, Any], consumed: set[str]
) -> dict[str, Any]:
    unmapped: dict[str, Any] = dict(extra)
    leftover = {k: v for k, v in finding.items() if k not in consumed}
    if leftover:
        unmapped["finding"] = leftover
    if resource is not mapping(finding, "resource"):
        rest = {k: v for k, v in resource.items() if k not in _RESOURCE_CONSUMED}
        if rest:
            unmapped["resource"] = rest
    return unmapped
