"""One SCC finding (already split from its envelope) to OCSF: lifecycle, finding_info, class-specific body.

`corral.sources.scc` documents the decisions; this module carries them out, one concern per
function. It reads the finding's own keys through `Fields`, which records those mapped in full,
so that `unmapped` is the rest; the objects it maps in part stay whole and are read as sent.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core import times
from corral.sources._core.reader import Fields, Trie
from corral.sources.scc import _cloud, _context, _details
from corral.sources.scc._spelling import both_spellings, inner, recorded, string
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
# The resource keys mapped in full, in both spellings, as `Fields` records them (read by `rest()` only).
_RESOURCE_TAKEN: Final = recorded(
    "name", "displayName", "display_name", "type", "location", "cloudProvider", "cloud_provider"
)
_HTTP: Final = ("https://", "http://")

_ORCHESTRATORS: Final = {traits.GKE: _context.GKE_ORCHESTRATOR, traits.CLOUD_RUN: _context.CLOUD_RUN_ORCHESTRATOR}


def finding(
    doc: dict[str, Any],
    raw: tuple[dict[str, Any], dict[str, Any] | None],
    resource: dict[str, Any],
    extra: dict[str, Any],
    scc_class: str,
    delivery_id: str | None,
    received_time: int | None,
) -> ocsf.Finding:
    """Return the OCSF finding of one SCC finding of class `scc_class` (not SCC_ERROR).

    `doc` and `resource` are the finding and its resource as `camel()` spells them; `raw` the
    finding and (when the envelope carried it apart) the resource as sent, for `unmapped`.
    """
    taken: Trie = {}
    fields = Fields(doc, taken)
    fields.mark("name")
    fields.text("findingClass")
    create_ms, modified, activity_id, status_id, state = _lifecycle(fields, doc, received_time)
    severity_id, vendor_severity = _severity(fields, doc)
    resource_name = fields.text("resourceName") or string(resource.get("name")) or ""
    provider = _cloud.provider(resource)
    cloud, project_id = _cloud.cloud(doc, resource, resource_name, provider)
    vuln = _details.vulnerability(doc, ocsf.SEVERITY_NAMES[severity_id] if severity_id != 99 else str(vendor_severity))
    class_uid = (
        ocsf.VULNERABILITY if vuln and scc_class == VULNERABILITY else _CLASS_UIDS.get(scc_class, ocsf.DETECTION)
    )
    task = _TASKS.get(scc_class, traits.THREAT_DETECTION)
    kubernetes = inner(doc, "kubernetes")
    kind = string(resource.get("type")) or ""
    service = _service(kind, resource_name, bool(kubernetes), provider)
    layer = _layer(doc, kubernetes, kind, resource_name, service, task)
    info, product = _info(fields, doc, scc_class, (provider, project_id))
    if create_ms is not None:
        info["created_time"] = create_ms
    info.update(modified_time=modified, traits=traits.classify(service, layer, task))
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
    if title := info.get("title"):
        out["message"] = title
    if status_id == ocsf.STATUS_SUPPRESSED and (detail := string(doc.get("muteInitiator"))):
        out["status_detail"] = detail
    out["finding_info"] = info
    out["cloud"] = cloud
    out["resources"] = _context.resources(doc, resource, kubernetes, resource_name or None, provider)
    _body(out, fields, doc, kubernetes, class_uid, scc_class, vuln, _ORCHESTRATORS.get(service), state != "INACTIVE")
    if not out["resources"]:
        del out["resources"]
    if unmapped := _unmapped(raw, doc, extra, taken):
        out["unmapped"] = unmapped
    return out


def _lifecycle(
    fields: Fields, doc: dict[str, Any], received_time: int | None
) -> tuple[int | None, int, int, int, str | None]:
    """Return (created, modified, activity_id, status_id, state)."""
    # An absent, unset (1970) or invalid time reads as no time.
    event_ms = times.optional_ms(value) if isinstance(value := doc.get("eventTime"), str) else None
    create_ms = times.optional_ms(value) if isinstance(value := doc.get("createTime"), str) else None
    mute_ms = times.optional_ms(value) if isinstance(value := doc.get("muteUpdateTime"), str) else None
    # Muting a finding does not move its eventTime; muteUpdateTime orders that change.
    later = max(event_ms or 0, mute_ms or 0)
    modified = later or create_ms or received_time
    if modified is None:
        raise MalformedEventError("SCC finding has no usable eventTime or createTime")
    if event_ms is not None:
        fields.mark("eventTime")
    if create_ms is not None:
        fields.mark("createTime")
    state = doc.get("state")
    if not isinstance(state, str) or not state:
        state = None
    if state == "INACTIVE":
        activity_id, status_id = ocsf.CLOSE, ocsf.STATUS_RESOLVED
    else:
        activity_id = ocsf.UPDATE if create_ms is not None and later > create_ms else ocsf.CREATE
        mute = doc.get("mute")
        if not (isinstance(mute, str) and mute) and "muteInfo" in doc:
            mute = inner(inner(doc, "muteInfo"), "staticMute").get("state")
        if mute == "MUTED":
            status_id = ocsf.STATUS_SUPPRESSED
        elif state == "ACTIVE":
            status_id = ocsf.STATUS_NEW
        else:
            status_id = 0 if state in (None, "STATE_UNSPECIFIED") else 99
    if state in ("ACTIVE", "INACTIVE"):
        fields.mark("state")
    return create_ms, modified, activity_id, status_id, state


def _info(
    fields: Fields, doc: dict[str, Any], scc_class: str, place: tuple[str, str | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the finding's `finding_info` (without times and traits) and its `product`."""
    name = doc["name"]
    category = fields.text("category")
    canonical = fields.text("canonicalName")
    description = fields.text("description")
    info: dict[str, Any] = {"uid": canonical or name}
    if canonical and canonical != name:
        info["uid_alt"] = name
    if category:
        info["title"] = category
    if desc := description or string(_details.source_properties(doc).get("Explanation")):
        info["desc"] = desc
    info["types"] = [category, scc_class] if category and category != scc_class else [scc_class]
    module = fields.text("moduleName")
    if module or category:
        analytic: dict[str, Any] = {"type_id": 1, "type": "Rule", "uid": module or category}
        if category:
            analytic["name"] = category
        info["analytic"] = analytic
    external = fields.peek_text("externalUri")
    if external and external.startswith(_HTTP):
        info["src_url"] = external
        fields.mark("externalUri")
    else:
        info["src_url"] = _console_url(name, *place)
    attacks, attacks_complete = _details.attacks(doc)
    if attacks_complete:
        fields.mark("mitreAttack")
    if attacks:
        info["attacks"] = attacks
    if related := _related(doc):
        info["related_events"] = [{"uid": uid, "type": "Security Command Center finding"} for uid in related]
    if tags := _tags(doc):
        info["tags"] = tags
    return info, _product(fields)


def _product(fields: Fields) -> dict[str, Any]:
    source_display = fields.text("parentDisplayName") or fields.text("sourceDisplayName")
    parent = fields.peek_text("parent")
    if parent and _SOURCE_NAME.match(parent):
        fields.mark("parent")
    else:
        parent = None
    product: dict[str, Any] = dict(PRODUCT)
    if source_display or parent:
        feature = {"name": source_display} if source_display else {}
        if parent:
            feature["uid"] = parent
        product["feature"] = feature
    return product


def _body(
    out: dict[str, Any],
    fields: Fields,
    doc: dict[str, Any],
    kubernetes: dict[str, Any],
    class_uid: int,
    scc_class: str,
    vuln: dict[str, Any] | None,
    orchestrator: str | None,
    active: bool,
) -> None:
    """Add what the class carries: vulnerabilities and images, or evidences, remediation, compliance."""
    remediation = _details.remediation(doc)
    fields.text("nextSteps")
    found = _context.containers(doc, kubernetes, orchestrator)
    if class_uid == ocsf.VULNERABILITY and vuln is not None:
        if remediation:
            vuln["remediation"] = remediation
        out["vulnerabilities"] = [vuln]
        out["resources"] += _context.image_resources(found)
        return
    if evidences := _context.evidences(doc, found):
        out["evidences"] = evidences
    if remediation:
        out["remediation"] = remediation
    if class_uid == ocsf.COMPLIANCE:
        out["compliance"] = _details.compliance(doc, active=active)
        if _compliances_clean(doc):
            fields.mark("compliances")
    elif (is_alert := _IS_ALERT.get(scc_class)) is not None:
        out["is_alert"] = is_alert


def _service(kind: str, name: str, kubernetes: bool, provider: str) -> str:
    if kind.startswith(_CLOUD_RUN_TYPES) or name.startswith("//run.googleapis.com/"):
        return traits.CLOUD_RUN
    if kind.startswith(_GKE_TYPES) or name.startswith("//container.googleapis.com/") or kubernetes:
        if provider == "AWS":
            return traits.EKS
        return traits.AKS if provider == "Azure" else traits.GKE
    if provider == "AWS" and (":eks:" in name or "EKS" in kind):
        return traits.EKS
    if provider == "Azure" and "microsoft.containerservice/managedclusters" in (name + kind).lower():
        return traits.AKS
    return traits.NO_SERVICE


def _layer(doc: dict[str, Any], kubernetes: dict[str, Any], kind: str, name: str, service: str, task: str) -> str:
    """Return the layer: infrastructure for nodes and VMs, application for workloads, else platform."""
    node = _context.touches_node(kubernetes, kind, name)
    if task == traits.HARDENING or service == traits.NO_SERVICE:
        return traits.INFRASTRUCTURE if node else traits.PLATFORM
    if service == traits.CLOUD_RUN or _context.has_workload(doc, kubernetes):
        return traits.APPLICATION
    return traits.INFRASTRUCTURE if node else traits.PLATFORM


def _severity(fields: Fields, doc: dict[str, Any]) -> tuple[int, object]:
    fields.text("severity")
    raw = doc.get("severity")
    if raw is None or raw == "":
        return 0, None
    if isinstance(raw, str) and raw in SEVERITIES:
        return SEVERITIES[raw], raw
    return 99, raw


def _quote(value: str) -> str:
    """Percent-encode every character but the unreserved ones, as `urllib.parse.quote(value, safe="")`."""
    return value.replace("/", "%2F") if _PLAIN_PATH.fullmatch(value) else quote(value, safe="")


def _console_url(name: str, provider: str, project_id: str | None) -> str:
    url = _CONSOLE + _quote(name)
    org = _ORG_ROOTED.match(name)
    if org:
        return f"{url}?organizationId={_quote(org.group(1))}"
    return f"{url}?project={_quote(project_id)}" if project_id and provider == "GCP" else url


def _tags(doc: dict[str, Any]) -> list[dict[str, str]]:
    marks = inner(doc, "securityMarks").get("marks")
    if not isinstance(marks, dict) or not marks:
        return []
    return [{"name": k, "value": v} for k, v in marks.items() if isinstance(k, str) and k and isinstance(v, str) and v]


def _related(doc: dict[str, Any]) -> list[str]:
    value = inner(doc, "toxicCombination").get("relatedFindings")
    return list(dict.fromkeys(v for v in value if isinstance(v, str) and v)) if isinstance(value, list) else []


def _compliances_clean(doc: dict[str, Any]) -> bool:
    """True when `compliances[]` holds only {standard, version, ids} strings, all carried into `compliance`."""
    value = doc.get("compliances")
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
    raw: tuple[dict[str, Any], dict[str, Any] | None], doc: dict[str, Any], extra: dict[str, Any], taken: Trie
) -> dict[str, Any]:
    finding, resource = raw
    unmapped: dict[str, Any] = dict(extra)
    # Kept as sent (an empty `containers: []` stays): only what was mapped in full goes.
    if rest := Fields(finding, taken if finding is doc else both_spellings(taken)).rest(as_sent=True):
        unmapped["finding"] = rest
    if resource is not None and (rest := Fields(resource, _RESOURCE_TAKEN).rest(as_sent=True)):
        unmapped["resource"] = rest
    return unmapped
