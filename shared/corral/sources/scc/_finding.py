"""One SCC finding (already split from its envelope) to OCSF: lifecycle, finding_info, class-specific body.

`corral.sources.scc` documents the decisions; this module carries them out, one concern per
function. It reads the finding as a plain dict and records each key it maps in full in a `Fields`
record (`_LEAF` under the key, as `Fields.text` and `mark` would), so that `unmapped` is the
rest; the objects it maps in part stay whole and are read as sent, so no deeper path is recorded.
The text fields read from every finding are looked up and recorded in one pass (`take_texts`).
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf, traits
from corral.sources._core.reader import Trie
from corral.sources.scc import _cloud, _context, _details, _kube, _lifecycle
from corral.sources.scc._names import console_url, is_source_name
from corral.sources.scc._spelling import LEAF, both_spellings, inner, recorded, string, without
from corral.sources.scc._tables import (
    MISCONFIGURATION,
    OBSERVATION,
    POSTURE_VIOLATION,
    THREAT,
    TOXIC_COMBINATION,
    VULNERABILITY,
)

PRODUCT: Final = {"name": "Security Command Center", "vendor_name": "Google", "uid": "google.scc"}


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
_COMPLIANCE_KEYS: Final = frozenset({"standard", "version", "ids"})
_NO_IDS: Final[list[str]] = []

_ORCHESTRATORS: Final = {traits.GKE: _context.GKE_ORCHESTRATOR, traits.CLOUD_RUN: _context.CLOUD_RUN_ORCHESTRATOR}


_Texts = tuple[str, str | None, str | None, str | None, str | None, str | None, str | None]


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
    # What is mapped in full, as `Fields` records it: every key is one of the finding's own.
    taken: Trie = {"name": LEAF}
    resource_name, category, canonical, description, module, source_display, next_steps = _texts(doc, resource, taken)
    create_ms, modified, activity_id, status_id, state = _lifecycle.lifecycle(taken, doc, received_time)
    severity_id, vendor_severity = _lifecycle.severity(doc)
    provider = _cloud.provider(resource)
    cloud, project_id = _cloud.cloud(doc, resource, resource_name, provider)
    vuln = _vulnerability(doc, severity_id, vendor_severity) if "vulnerability" in doc else None
    class_uid = (
        ocsf.VULNERABILITY if vuln and scc_class == VULNERABILITY else _CLASS_UIDS.get(scc_class, ocsf.DETECTION)
    )
    kube = _kube.lists(doc["kubernetes"]) if "kubernetes" in doc else _kube.NO_KUBE
    service, classified = _traits(doc, resource, kube, resource_name, provider, scc_class)
    info: dict[str, Any] = {"uid": canonical or doc["name"]}
    feature = _info(info, taken, doc, (category, description, module, source_display), scc_class, project_id)
    if create_ms is not None:
        info["created_time"] = create_ms
    info["modified_time"] = modified
    info["traits"] = classified
    out = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity_id,
        time=modified,
        severity_id=severity_id,
        vendor_severity=vendor_severity,
        status_id=status_id,
        product=PRODUCT,
        delivery_id=delivery_id,
    )
    if feature:
        out["metadata"]["product"]["feature"] = feature  # into envelope's own copy: no second copy
    if category:
        out["message"] = category
    if status_id == ocsf.STATUS_SUPPRESSED and (detail := string(doc.get("muteInitiator"))):
        out["status_detail"] = detail
    out["finding_info"] = info
    out["cloud"] = cloud
    out["resources"] = resources = _context.resources(doc, resource, kube, resource_name or None, (provider, cloud))
    orchestrator = _ORCHESTRATORS.get(service)
    _body(out, taken, doc, kube, class_uid, scc_class, vuln, orchestrator, state != "INACTIVE", next_steps)
    if not resources:
        del out["resources"]
    if unmapped := _unmapped(raw, doc, extra, taken):
        out["unmapped"] = unmapped
    return out


def _texts(doc: dict[str, Any], resource: dict[str, Any], taken: Trie) -> _Texts:
    """Return the resource name ("" when SCC names none) and the finding's other texts, each recorded.

    They are the category, canonical name, description, module name, source display name and next
    steps, each None when not a non-empty string.
    """
    get = doc.get
    # The texts read from every finding, each recorded when it is a non-empty string (as
    # `Fields.text` records it). One by one with locals: a loop over the keys (`take_texts`) ran
    # more than twice the bytecode, and this is every finding's first step.
    if isinstance(value := get("findingClass"), str) and value:
        taken["findingClass"] = LEAF
    if isinstance(value := get("severity"), str) and value:
        taken["severity"] = LEAF
    resource_name: str = ""  # the affected resource's full name, "" when SCC names none
    if isinstance(value := get("resourceName"), str) and value:
        taken["resourceName"] = LEAF
        resource_name = value
    elif isinstance(value := resource.get("name"), str):
        resource_name = value
    if isinstance(category := get("category"), str) and category:
        taken["category"] = LEAF
    else:
        category = None
    if isinstance(canonical := get("canonicalName"), str) and canonical:
        taken["canonicalName"] = LEAF
    else:
        canonical = None
    if isinstance(description := get("description"), str) and description:
        taken["description"] = LEAF
    else:
        description = None
    if isinstance(module := get("moduleName"), str) and module:
        taken["moduleName"] = LEAF
    else:
        module = None
    if isinstance(source_display := get("parentDisplayName"), str) and source_display:
        taken["parentDisplayName"] = LEAF
    else:
        source_display = None
    if isinstance(next_steps := get("nextSteps"), str) and next_steps:
        taken["nextSteps"] = LEAF
    else:
        next_steps = None
    return resource_name, category, canonical, description, module, source_display, next_steps


def _traits(
    doc: dict[str, Any],
    resource: dict[str, Any],
    kube: _kube.Kube,
    resource_name: str,
    provider: str,
    scc_class: str,
) -> tuple[str, list[dict[str, Any]]]:
    """Return the container service and the `finding_info.traits` of the finding."""
    task = _TASKS.get(scc_class, traits.THREAT_DETECTION)
    kind = resource.get("type")
    kind = kind if isinstance(kind, str) else ""
    service = _service(kind, resource_name, kube is not _kube.NO_KUBE, provider)
    # Application for workloads (of a container service, outside hardening); else infrastructure
    # for nodes and VMs, platform for the rest.
    if (
        task != traits.HARDENING
        and service != traits.NO_SERVICE
        and (service == traits.CLOUD_RUN or _kube.has_workload(doc, kube))
    ):
        layer = traits.APPLICATION
    elif _kube.touches_node(kube, kind, resource_name):
        layer = traits.INFRASTRUCTURE
    else:
        layer = traits.PLATFORM
    return service, traits.classify(service, layer, task)


def _vulnerability(doc: dict[str, Any], severity_id: int, vendor_severity: object) -> dict[str, Any] | None:
    caption = ocsf.SEVERITY_NAMES[severity_id] if severity_id != 99 else str(vendor_severity)
    return _details.vulnerability(doc, caption)


def _info(
    info: dict[str, Any],
    taken: Trie,
    doc: dict[str, Any],
    texts: tuple[str | None, str | None, str | None, str | None],
    scc_class: str,
    project_id: str | None,
) -> dict[str, Any] | None:
    """Add to `info` (holding its `uid`) all of `finding_info` but times and traits; return the product `feature`.

    `texts` are the finding's category, description, module name and source display name, as read.
    """
    category, description, module, source_display = texts
    name = doc["name"]
    if info["uid"] != name:
        info["uid_alt"] = name
    if category:
        info["title"] = category
    if not description and "sourceProperties" in doc:
        description = string(_details.source_properties(doc).get("Explanation"))
    if description:
        info["desc"] = description
    info["types"] = [category, scc_class] if category and category != scc_class else [scc_class]
    if module or category:
        analytic: dict[str, Any] = {"type_id": 1, "type": "Rule", "uid": module or category}
        if category:
            analytic["name"] = category
        info["analytic"] = analytic
    external = doc.get("externalUri")
    if isinstance(external, str) and external.startswith(_HTTP):
        info["src_url"] = external
        taken["externalUri"] = LEAF
    else:
        info["src_url"] = console_url(name, project_id)
    if "mitreAttack" in doc:
        attacks, attacks_complete = _details.attacks(doc)
        if attacks_complete:
            taken["mitreAttack"] = LEAF
        if attacks:
            info["attacks"] = attacks
    if "toxicCombination" in doc and (related := _related(doc)):
        info["related_events"] = [{"uid": uid, "type": "Security Command Center finding"} for uid in related]
    if "securityMarks" in doc and (tags := _tags(doc)):
        info["tags"] = tags
    return _feature(taken, doc, source_display)


def _feature(taken: Trie, doc: dict[str, Any], source_display: str | None) -> dict[str, Any] | None:
    """Return the `metadata.product.feature` of the finding's source, else None."""
    if source_display is None:
        value = doc.get("sourceDisplayName")
        if isinstance(value, str) and value:
            source_display = value
            taken["sourceDisplayName"] = LEAF
    parent = doc.get("parent")
    if isinstance(parent, str) and parent and is_source_name(parent):
        taken["parent"] = LEAF
    else:
        parent = None
    if not (source_display or parent):
        return None
    feature = {"name": source_display} if source_display else {}
    if parent:
        feature["uid"] = parent
    return feature


def _body(
    out: dict[str, Any],
    taken: Trie,
    doc: dict[str, Any],
    kube: _kube.Kube,
    class_uid: int,
    scc_class: str,
    vuln: dict[str, Any] | None,
    orchestrator: str | None,
    active: bool,
    next_steps: str | None,
) -> None:
    """Add what the class carries: vulnerabilities and images, or evidences, remediation, compliance."""
    if next_steps:
        remediation: dict[str, Any] | None = {"desc": next_steps}
    else:
        remediation = _details.remediation(doc, None) if "sourceProperties" in doc else None
    # Most findings name no container, process or caller: the readers of each are skipped then.
    found = _kube.containers(doc, kube, orchestrator) if kube is not _kube.NO_KUBE or "containers" in doc else []
    if class_uid == ocsf.VULNERABILITY and vuln is not None:
        if remediation:
            vuln["remediation"] = remediation
        out["vulnerabilities"] = [vuln]
        out["resources"] += _context.image_resources(found)
        return
    if (found or "processes" in doc or "access" in doc) and (evidences := _context.evidences(doc, found)):
        out["evidences"] = evidences
    if remediation:
        out["remediation"] = remediation
    if class_uid == ocsf.COMPLIANCE:
        out["compliance"] = _details.compliance(doc, active=active)
        if _compliances_clean(doc):
            taken["compliances"] = LEAF
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
    for c in value:
        if not (isinstance(c, dict) and _COMPLIANCE_KEYS.issuperset(c)):
            return False
        if not (isinstance(c.get("standard", ""), str) and isinstance(c.get("version", ""), str)):
            return False
        ids = c.get("ids", _NO_IDS)
        if not isinstance(ids, list):
            return False
        for i in ids:
            if not isinstance(i, str):
                return False
    return True


def _unmapped(
    raw: tuple[dict[str, Any], dict[str, Any] | None], doc: dict[str, Any], extra: dict[str, Any], taken: Trie
) -> dict[str, Any]:
    finding, resource = raw
    unmapped: dict[str, Any] = dict(extra)
    # Kept as sent (an empty `containers: []` stays): only what was mapped in full goes. Every key
    # recorded is a top-level one, so `Fields.rest(as_sent=True)` is the object without them.
    if finding is doc:
        # Every key recorded is one of the finding's own (read from it): a copy less those keys is
        # `without()`, in the order sent, and costs a third less than filtering every key sent.
        rest: dict[Any, Any] = dict(finding)
        for key in taken:
            del rest[key]
    else:
        rest = without(finding, both_spellings(taken))
    if rest:
        unmapped["finding"] = rest
    if resource is not None:
        # `without(resource, _RESOURCE_TAKEN)`: a copy less the few mapped keys it has, rather
        # than a filter over every key sent.
        rest = dict(resource)
        for key in _RESOURCE_TAKEN:
            if key in rest:
                del rest[key]
        if rest:
            unmapped["resource"] = rest
    return unmapped
