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
from corral.sources._core.folded import FieldMap, FieldRecord, text
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._records import DETAILS, RESOURCE, STATUS, Details, Resource, Status
from corral.sources.defender._values import consumed, listed_value, time_of

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


class _Props(FieldRecord):
    display_name: Any
    resource_details: Any
    metadata: Any
    status: Any
    additional_data: Any
    links: Any


class _Meta(FieldRecord):
    display_name: Any
    description: Any
    severity: Any
    remediation_description: Any
    categories: Any


class _Extra(FieldRecord):
    """A container-image row's `additionalData`: its Kubernetes context."""

    kind: Any
    k8s_cluster_id: Any
    k8s_cluster_name: Any
    pod_name: Any
    namespace: Any
    image_uri: Any
    digest: Any
    controller_name: Any
    controller_type: Any


class _Links(FieldRecord):
    azure_portal: Any


_PROPS: Final = FieldMap(_Props)
_META: Final = FieldMap(_Meta)
_EXTRA: Final = FieldMap(_Extra)
_LINKS: Final = FieldMap(_Links)


def normalize(doc: dict[str, Any], delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Compliance Finding for one recommendation (assessment) record."""
    top = RESOURCE.read(doc)
    assessment_id = text(top.id)
    if not assessment_id:
        raise MalformedEventError("id: missing or not a string")
    props = _PROPS.read(top.properties)
    details = DETAILS.read(props.resource_details)
    meta = _META.read(props.metadata)
    status = STATUS.read(props.status)
    extra = _EXTRA.read(props.additional_data)
    resource_id = text(details.id) or _parent_resource(assessment_id)
    cloud, provider = common.resource_cloud(details, assessment_id)
    title = text(props.display_name) or text(meta.display_name)
    first = time_of(status.first_evaluation_date, "firstEvaluationDate")
    changed = time_of(status.status_change_date, "statusChangeDate")
    time = common.require_time([changed, first], received_time, "assessment")
    code = text(status.code)
    status_id, activity_id, status_word, compliance_id, compliance_word = posture.lifecycle(code, top.export())
    severity_word = meta.severity
    kubernetes = _kubernetes(extra, details)
    service, layer = _place(resource_id, title, extra, kubernetes)
    categories = [c for c in listed_value(meta.categories) if isinstance(c, str) and c]

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
        tenant=text(top.tenant_id),
    )
    detail = _detail(status)
    status_name = compliance_word or ocsf.COMPLIANCE_NAMES[compliance_id]
    compliance = {"control": title, "status_id": compliance_id, "status": status_name, "status_code": code}
    compliance.update(status_detail=detail, category=", ".join(categories))
    info = _info(top, assessment_id, title, categories, first, changed)
    info.update(desc=text(meta.description), src_url=_link(props, assessment_id))
    info["traits"] = traits.classify(service, layer, traits.HARDENING)
    finding.update(
        common.compact(
            {
                "message": title,
                "status_code": code,
                "status_detail": detail,
                "cloud": cloud,
                "finding_info": common.compact(info),
                "compliance": common.compact(compliance),
                "remediation": {"desc": remediation} if (remediation := text(meta.remediation_description)) else None,
                "resources": [_resource(details, resource_id, provider), *kubernetes.get("resources", [])],
                "evidences": kubernetes.get("evidences"),
            }
        )
    )
    return common.finish(finding, _CONSUMED.rest(doc))


def _resource(details: Details, resource_id: str | None, provider: str | None) -> dict[str, Any]:
    return common.compact(
        {
            "uid": resource_id,
            "name": text(details.resource_name) or common.last_segment(resource_id),
            "type": common.arm_type(resource_id) or text(details.resource_type),
            "provider": provider,
            "role_id": 1,
        }
    )


def _place(resource_id: str | None, title: str | None, extra: _Extra, kubernetes: dict[str, Any]) -> tuple[str, str]:
    service, layer = posture.place(resource_id, title, text(extra.kind))
    if kubernetes and service == traits.NO_SERVICE:
        return traits.AKS, traits.APPLICATION
    return service, layer


def _info(
    top: Resource,
    assessment_id: str,
    title: str | None,
    categories: list[str],
    first: int | None,
    changed: int | None,
) -> dict[str, Any]:
    return {
        "uid": assessment_id.lower(),
        "uid_alt": assessment_id if assessment_id != assessment_id.lower() else None,
        "title": title,
        "desc": None,
        "types": categories,
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": text(top.name), "name": title}),
        "created_time": first,
        "first_seen_time": first,
        "modified_time": changed,
    }


def _link(props: _Props, assessment_id: str) -> str | None:
    portal = text(_LINKS.read(props.links).azure_portal)
    return common.https(portal) or common.recommendation_link(assessment_id)


def _detail(status: Status) -> str | None:
    cause, description = text(status.cause), text(status.description)
    if cause and description:
        return f"{cause}: {description}"
    return cause or description


def _parent_resource(assessment_id: str) -> str | None:
    marker = "/providers/microsoft.security/assessments/"
    at = assessment_id.lower().rfind(marker)
    return assessment_id[:at] or None if at > 0 else None


def _kubernetes(extra: _Extra, details: Details) -> dict[str, Any]:
    """Return resources and a container evidence from a container-image row's additionalData."""
    cluster_id = text(extra.k8s_cluster_id)
    pod = text(extra.pod_name)
    namespace = text(extra.namespace)
    image = common.image_ref(text(extra.image_uri), text(extra.digest))
    if not (cluster_id or pod or image):
        return {}
    resources: list[dict[str, Any]] = []
    cluster_name = text(extra.k8s_cluster_name)
    if cluster_id:
        resources.append(common.arm_resource(cluster_id, name=cluster_name, role_id=4))
    if controller := text(extra.controller_name):
        kind = (text(extra.controller_type) or "controller").title()
        resources.append(
            common.compact({"name": controller, "namespace": namespace, "type": f"Kubernetes {kind}", "role_id": 4})
        )
    if pod:
        resources.append(common.compact({"name": pod, "namespace": namespace, "type": "Kubernetes Pod", "role_id": 4}))
    if image:
        resources.append({"uid": image.ocsf()["uid"], "name": image.name, "type": "Container Image", "role_id": 1})
    evidences: list[dict[str, Any]] = []
    orchestrator = "AKS" if cluster_id and "/managedclusters/" in cluster_id.lower() else "Kubernetes"
    name = text(details.resource_name)
    if name:
        container = {"name": name, "image": image.ocsf() if image else None, "orchestrator": orchestrator}
        data = {"cluster": cluster_name, "namespace": namespace, "pod": pod}
        evidences.append(common.compact({"container": common.compact(container), "data": common.compact(data)}))
    return {"resources": resources, "evidences": evidences}
