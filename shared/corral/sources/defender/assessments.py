"""Defender recommendations (`Microsoft.Security/assessments`) → OCSF Compliance Finding (2003).

Shapes: the continuous-export record (ARM resource, camelCase, plus
`assessmentEventDataEnrichment`/`securityEventDataEnrichment` with `action` Insert/Write/Delete
and `isSnapshot`), and REST / Resource Graph rows of the same resource (no enrichment, PascalCase
`resourceDetails`, extra `tenantId`/`subscriptionId`/`resourceGroup`). A row that nests one
sub-assessment in `additionalData.subAssessment` is a vulnerability, handled by
`subassessments`.

Decisions:

- Identity: `finding_info.uid` is the assessment resource id, lower-cased (Defender itself
  sends it in mixed casings over time). The assessment key (`name`) is the analytic uid.
- Lifecycle (status, activity, compliance status): see `_posture`. In short, Unhealthy is an
  open failure, Healthy closes it as Resolved, export `Delete` closes it as Deleted, and
  NotApplicable is Other with Defender's word and cause.
- `remediation.desc` is `metadata.remediationDescription` as sent (it holds HTML); a row
  without metadata has no remediation, rather than an invented one.
- `finding_info.src_url` is `https://` + `links.azurePortal` (sent without a scheme).
- The severity is `metadata.severity`; a row without metadata has severity Unknown (0).
- Container-image rows carry Kubernetes context in `additionalData` (cluster, namespace,
  controller, pod, image URI and digest): it fills `resources[]` and a container evidence.
  `additionalData` itself stays in `unmapped`, since most of it (CVE lists, counts) is not
  mapped.
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._values import consumed, listed, unmapped

LOG_NAME: Final = "SecurityRecommendation"
TYPE: Final = "microsoft.security/assessments"

_CONSUMED: Final = consumed(
    "id",
    "name",
    "type",
    "tenantId",
    "properties.displayName",
    "properties.status",
    "properties.resourceDetails.id",
    "properties.resourceDetails.source",
    "properties.resourceDetails.resourceName",
    "properties.metadata.displayName",
    "properties.metadata.description",
    "properties.metadata.severity",
    "properties.metadata.remediationDescription",
    "properties.metadata.categories",
    "properties.links.azurePortal",
)


def normalize(doc: Fields, delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Compliance Finding for one recommendation (assessment) record."""
    assessment_id = doc.first_text("id")
    if not assessment_id:
        raise MalformedEventError("id: missing or not a string")
    props = doc.view("properties")
    details = props.view("resourceDetails")
    meta = props.view("metadata")
    status = props.view("status")
    extra = props.view("additionalData")
    export = posture.enrichment(doc)
    resource_id = details.first_text("id") or _parent_resource(assessment_id)
    cloud, provider = common.resource_cloud(details, assessment_id)
    title = props.first_text("displayName") or meta.first_text("displayName")
    first = common.first_time(status, "firstEvaluationDate")
    changed = common.first_time(status, "statusChangeDate")
    time = common.require_time([changed, first], received_time, "assessment")
    code = status.first_text("code")
    status_id, activity_id, status_word, compliance_id, compliance_word = posture.lifecycle(code, export)
    severity_word = meta.get("severity")
    kubernetes = _kubernetes(extra, details)
    service, layer = _place(resource_id, title, extra, kubernetes)
    remediation = meta.first_text("remediationDescription")
    categories = [c for c in listed(meta, "categories") if isinstance(c, str) and c]

    finding = common.envelope(
        ocsf.COMPLIANCE,
        log_name=LOG_NAME,
        activity_id=activity_id,
        time=time,
        severity_id=common.severity_id(severity_word),
        vendor_severity=severity_word,
        status_id=status_id,
        status_word=status_word,
        delivery_id=delivery_id,
        tenant=doc.first_text("tenantId"),
    )
    resource = _resource(details, resource_id, provider)
    detail = _detail(status)
    status_name = compliance_word or ocsf.COMPLIANCE_NAMES[compliance_id]
    compliance = {"control": title, "status_id": compliance_id, "status": status_name, "status_code": code}
    compliance.update(status_detail=detail, category=", ".join(categories))
    finding.update(
        common.compact(
            {
                "message": title,
                "status_code": code,
                "status_detail": detail,
                "cloud": cloud,
                "finding_info": _info(doc, assessment_id, title, categories, first, changed, service, layer),
                "compliance": common.compact(compliance),
                "remediation": {"desc": remediation} if remediation else None,
                "resources": [resource, *kubernetes.get("resources", [])],
                "evidences": kubernetes.get("evidences"),
            }
        )
    )
    return common.finish(finding, unmapped(doc, _CONSUMED))


def _resource(details: Fields, resource_id: str | None, provider: str | None) -> dict[str, Any]:
    return common.compact(
        {
            "uid": resource_id,
            "name": details.first_text("resourceName") or common.last_segment(resource_id),
            "type": common.arm_type(resource_id) or details.first_text("resourceType"),
            "provider": provider,
            "role_id": 1,
        }
    )


def _place(resource_id: str | None, title: str | None, extra: Fields, kubernetes: dict[str, Any]) -> tuple[str, str]:
    service, layer = posture.place(resource_id, title, extra.first_text("kind"))
    if kubernetes and service == traits.NO_SERVICE:
        return traits.AKS, traits.APPLICATION
    return service, layer


def _info(
    doc: Fields,
    assessment_id: str,
    title: str | None,
    categories: list[str],
    first: int | None,
    changed: int | None,
    service: str,
    layer: str,
) -> dict[str, Any]:
    props = doc.view("properties")
    info = {
        "uid": assessment_id.lower(),
        "uid_alt": assessment_id if assessment_id != assessment_id.lower() else None,
        "title": title,
        "desc": props.view("metadata").first_text("description"),
        "types": categories,
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": doc.first_text("name"), "name": title}),
        "created_time": first,
        "first_seen_time": first,
        "modified_time": changed,
        "src_url": common.https(props.view("links").first_text("azurePortal"))
        or common.recommendation_link(assessment_id),
        "traits": traits.classify(service, layer, traits.HARDENING),
    }
    return common.compact(info)


def _detail(status: Fields) -> str | None:
    cause, description = status.first_text("cause"), status.first_text("description")
    if cause and description:
        return f"{cause}: {description}"
    return cause or description


def _parent_resource(assessment_id: str) -> str | None:
    marker = "/providers/microsoft.security/assessments/"
    at = assessment_id.lower().rfind(marker)
    return assessment_id[:at] or None if at > 0 else None


def _kubernetes(extra: Fields, details: Fields) -> dict[str, Any]:
    """Return resources and a container evidence from a container-image row's additionalData."""
    cluster_id = extra.first_text("K8sClusterId")
    pod = extra.first_text("PodName")
    namespace = extra.first_text("Namespace")
    image = common.image_ref(extra.first_text("ImageUri"), extra.first_text("Digest"))
    if not (cluster_id or pod or image):
        return {}
    resources: list[dict[str, Any]] = []
    if cluster_id:
        resources.append(common.arm_resource(cluster_id, name=extra.first_text("K8sClusterName"), role_id=4))
    if extra.first_text("ControllerName"):
        kind = (extra.first_text("ControllerType") or "controller").title()
        resources.append(
            common.compact(
                {
                    "name": extra.first_text("ControllerName"),
                    "namespace": namespace,
                    "type": f"Kubernetes {kind}",
                    "role_id": 4,
                }
            )
        )
    if pod:
        resources.append(common.compact({"name": pod, "namespace": namespace, "type": "Kubernetes Pod", "role_id": 4}))
    if image:
        resources.append({"uid": image.ocsf()["uid"], "name": image.name, "type": "Container Image", "role_id": 1})
    evidences: list[dict[str, Any]] = []
    orchestrator = "AKS" if cluster_id and "/managedclusters/" in cluster_id.lower() else "Kubernetes"
    name = details.first_text("resourceName")
    if name:
        container = {"name": name, "image": image.ocsf() if image else None, "orchestrator": orchestrator}
        data = {"cluster": extra.first_text("K8sClusterName"), "namespace": namespace, "pod": pod}
        evidences.append(common.compact({"container": common.compact(container), "data": common.compact(data)}))
    return {"resources": resources, "evidences": evidences}
