"""Defender sub-assessments (container-image and VM CVEs) → OCSF Vulnerability Finding (2002).

A sub-assessment that names no vulnerability (an image Defender did not scan) is a Compliance
Finding (2003) instead: see the decisions below.

Sub-assessments (`Microsoft.Security/assessments/subAssessments`, the export's "security
findings") reach Event Hubs PascalCase with .NET `$type` keys or camelCase, and Resource Graph /
REST rows nest one under a recommendation's `additionalData.subAssessment`. The vulnerability
data has three generations, all read here:

- Microsoft Defender Vulnerability Management (`AzureContainerRegistryVulnerability`,
  `AzureRuntimeImageVulnerability`): `vulnerabilityDetails`, `softwareDetails`,
  `artifactDetails`, and the Kubernetes context (`kubernetesDetails`, `clusterDetails`,
  `kubernetesContext.workloads[].ownedResources[]`);
- Defender vulnerability management for servers (`ManagedAggregatedServerVulnerabilityTvm` for
  AKS nodes): one `cve` object, `aggregateServerResourceMetadata` naming the cluster;
- the older scanners (`ContainerRegistryVulnerability`, `ServerVulnerabilityAssessment`):
  `cve[]`, `cvss{version: {base}}`, `patchable`, `vendorReferences`, `repositoryName`,
  `imageDigest`.

Decisions:

- Identity: the sub-assessment resource id, lower-cased; the parent recommendation's id (also
  lower-cased, i.e. that Compliance Finding's uid) is linked in `finding_info.related_events`.
- One `vulnerabilities[]` entry per CVE named; a sub-assessment without a CVE (configuration
  checks) gets one entry with an `advisory` whose uid is Defender's vulnerability id
  (`properties.id`, e.g. a VA rule id), since OCSF wants exactly one of advisory, cve or cwe. A
  CWE goes into `cve.cwe`.
- A sub-assessment naming neither a CVE nor a vulnerability id carries no vulnerability: Defender
  sends one per running image it did not scan (`status` NotApplicable, cause "Unscanned",
  "Image not scanned" or "Image is not located in any of the supported container registries").
  A Vulnerability Finding needs at least one vulnerability, and its own GUID is no advisory id,
  so it is a Compliance Finding of the parent recommendation's control on that image, as a
  NotApplicable recommendation is (`assessments`): compliance status Other with Defender's word,
  status Suppressed with the cause as `status_detail`, the same identity, resources and traits,
  and no `vulnerabilities`. (Not a Skip: it is Defender's statement that an image running in the
  cluster has no vulnerability assessment, a coverage gap worth seeing.)
- Lifecycle as for recommendations (`_posture`): Unhealthy open, Healthy Resolved + Close,
  export Delete Deleted + Close, NotApplicable (e.g. "Unscanned") Suppressed with Defender's cause.
- Container context: Vulnerability Finding has no `evidences`, so everything is a resource:
  the image (uid = digest), the cluster, workloads, pods, and each running container (with
  its pod, workload and image in `data`).
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.records import NamedTuple
from corral.sources._core.folded import text
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._cves import vulnerabilities
from corral.sources.defender._records import DETAILS, RESOURCE, STATUS, Details, Status
from corral.sources.defender._services import placement
from corral.sources.defender._sub_fields import ARTIFACT, EXTRA, KUBE, NAMED, PROPS, Artifact, Extra, Named, Props
from corral.sources.defender._values import consumed, listed_value, time_of

LOG_NAME: Final = "SecurityFinding"
TYPE: Final = "microsoft.security/assessments/subassessments"

_IMAGE_TYPES: Final = frozenset(
    {"azurecontainerregistryvulnerability", "azureruntimeimagevulnerability", "containerregistryvulnerability"}
)
_CLUSTER_KINDS: Final = {"aks": traits.AKS, "eks": traits.EKS, "gke": traits.GKE}
_CLOUD_SERVICES: Final = {"aws": traits.EKS, "gcp": traits.GKE, "azure": traits.AKS}

_CONSUMED: Final = consumed(
    "id",
    "name",
    "type",
    "tenantId",
    "properties.id",
    "properties.displayName",
    "properties.status",
    "properties.remediation",
    "properties.description",
    "properties.timeGenerated",
    "properties.resourceDetails.id",
    "properties.resourceDetails.source",
    "properties.additionalData.assessedResourceType",
    "properties.additionalData.cvss",
    "properties.additionalData.patchable",
    "properties.additionalData.vendorReferences",
    "properties.additionalData.imageDigest",
    "properties.additionalData.repositoryName",
    "properties.additionalData.publishedTime",
    "properties.additionalData.cvssV30Score",
    "properties.additionalData.clusterDetails",
    "properties.additionalData.kubernetesDetails",
    "properties.additionalData.kubernetesContext",
    "properties.additionalData.artifactDetails.registryHost",
    "properties.additionalData.artifactDetails.repositoryName",
    "properties.additionalData.artifactDetails.digest",
    "properties.additionalData.vulnerabilityDetails.cveId",
    "properties.additionalData.vulnerabilityDetails.references",
    "properties.additionalData.vulnerabilityDetails.cvss",
    "properties.additionalData.vulnerabilityDetails.severity",
    "properties.additionalData.vulnerabilityDetails.publishedDate",
    "properties.additionalData.vulnerabilityDetails.lastModifiedDate",
    "properties.additionalData.vulnerabilityDetails.weaknesses",
    "properties.additionalData.softwareDetails.packageName",
    "properties.additionalData.softwareDetails.version",
    "properties.additionalData.softwareDetails.fixedVersion",
    "properties.additionalData.softwareDetails.patchable",
    "properties.additionalData.softwareDetails.vendor",
)
_PARENT_CONSUMED: Final = consumed("properties.additionalData.subAssessment")


def normalize(
    doc: dict[str, Any], delivery_id: str | None, received_time: int | None, parent: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return the Vulnerability (else Compliance, see `_compliance`) Finding of one sub-assessment in `parent`."""
    top = RESOURCE.read(doc)
    sub_id = text(top.id)
    if not sub_id:
        raise MalformedEventError("id: missing or not a string")
    outer = RESOURCE.read(parent) if parent is not None else None
    props = PROPS.read(top.properties)
    details = DETAILS.read(props.resource_details)
    status = STATUS.read(props.status)
    extra = EXTRA.read(props.additional_data)
    assessed = text(extra.assessed_resource_type)
    export = (outer or top).export()

    generated = time_of(props.time_generated, "timeGenerated")
    time = common.require_time([generated], received_time, "sub-assessment")
    code = text(status.code)
    status_id, activity_id, status_word, compliance_id, compliance_word = posture.lifecycle(code, export)

    resource_id = text(details.id)
    cloud, provider = common.resource_cloud(details, sub_id)
    context = _Context(extra, details)
    service, layer = _classify(assessed, resource_id, context)
    found = vulnerabilities(props, extra)
    finding = common.envelope(
        ocsf.VULNERABILITY if found else ocsf.COMPLIANCE,
        log_name=LOG_NAME,
        activity_id=activity_id,
        time=time,
        severity_id=common.severity_id(status.severity),
        vendor_severity=status.severity,
        status_id=status_id,
        status_word=status_word,
        delivery_id=delivery_id,
        tenant=text(top.tenant_id) or (text(outer.tenant_id) if outer is not None else None),
    )
    primary = _primary(resource_id, details, provider, context)
    info = _info(sub_id, props, assessed, generated)
    info["traits"] = traits.classify(service, layer, traits.VULNERABILITY_MANAGEMENT)
    finding.update(
        common.compact(
            {
                "message": text(props.display_name),
                "status_code": code,
                "status_detail": _detail(status),
                "cloud": cloud,
                "finding_info": info,
                "vulnerabilities": found,
                **({} if found else _compliance(props, status, compliance_id, compliance_word)),
                "resources": [*primary, *context.resources(), *context.containers()],
            }
        )
    )
    rest = _CONSUMED.rest(doc)
    if parent is not None:
        rest["parent_assessment"] = _PARENT_CONSUMED.rest(parent)
    return common.finish(finding, rest)


def _info(sub_id: str, props: Props, assessed: str | None, generated: int | None) -> dict[str, Any]:
    parent_id = _parent_id(sub_id)
    analytic = {"type_id": 1, "type": "Rule", "uid": assessed, "name": assessed} if assessed else None
    return common.compact(
        {
            "uid": sub_id.lower(),
            "uid_alt": text(props.id),
            "title": text(props.display_name),
            "desc": text(props.description),
            "types": [t for t in (assessed, text(props.category)) if t and t != "N/A"],
            "analytic": analytic,
            "modified_time": generated,
            "related_events": [{"uid": parent_id.lower(), "type": "Recommendation"}] if parent_id else None,
            "src_url": common.recommendation_link(parent_id),
        }
    )


def _primary(
    resource_id: str | None, details: Details, provider: str | None, context: _Context
) -> list[dict[str, Any]]:
    """Return the assessed resource, unless it is the image (listed by the context)."""
    if not resource_id or (not resource_id.startswith("/") and context.image):
        # Running-image records send the image reference as `resourceDetails.id`, while
        # `resourceName`/`resourceType` describe the cluster (`nativeResourceId`).
        return []
    if not resource_id.startswith("/"):
        return [common.compact({"uid": resource_id, "name": resource_id, "provider": provider, "role_id": 1})]
    return [
        common.compact(
            {
                "uid": resource_id,
                "name": text(details.resource_name) or common.last_segment(resource_id),
                "type": common.arm_type(resource_id) or text(details.resource_type),
                "provider": provider,
                "role_id": 1,
            }
        )
    ]


def _compliance(props: Props, status: Status, status_id: int, word: str | None) -> dict[str, Any]:
    """`compliance` and `remediation` of a sub-assessment naming no vulnerability (an unscanned image).

    It states the parent recommendation's control on that resource (see the module's decisions).
    """
    name = word or ocsf.COMPLIANCE_NAMES[status_id]
    found = {
        "control": text(props.display_name),
        "status_id": status_id,
        "status": name,
        "status_code": text(status.code),
    }
    remediation = text(props.remediation)
    return {
        "compliance": common.compact({**found, "status_detail": _detail(status)}),
        "remediation": {"desc": remediation} if remediation else None,
    }


def _detail(status: Status) -> str | None:
    cause, description = text(status.cause), text(status.description)
    if cause and description:
        return f"{cause}: {description}"
    return cause or description


def _parent_id(sub_id: str) -> str | None:
    at = sub_id.lower().rfind("/subassessments/")
    return sub_id[:at] if at > 0 else None


def _classify(assessed: str | None, resource_id: str | None, context: _Context) -> tuple[str, str]:
    kind = (assessed or "").lower()
    if kind in _IMAGE_TYPES:
        if context.has_kubernetes():
            return context.service(), traits.APPLICATION
        return traits.NO_SERVICE, traits.APPLICATION
    if context.cluster_id or kind.startswith("managedaggregated"):
        return context.service(), traits.INFRASTRUCTURE
    found = placement(resource_id)
    if found:
        return found
    if kind.startswith("sql"):
        return traits.NO_SERVICE, traits.APPLICATION
    return traits.NO_SERVICE, traits.INFRASTRUCTURE


class _Workload(NamedTuple):
    """One `kubernetesContext.workloads[]` entry: its own names and, per owned resource, its containers."""

    namespace: str | None
    name: str | None
    kind: str | None
    owned: list[tuple[str | None, str | None, list[str]]]  # (name, kind, container names)


def _workloads(context: object) -> list[_Workload]:
    found = []
    for workload in _named(NAMED.read(context).workloads):
        owned = [
            (text(item.name), text(item.kind), [name for c in _named(item.containers) if (name := text(c.name))])
            for item in _named(workload.owned_resources)
        ]
        found.append(_Workload(text(workload.namespace), text(workload.name), text(workload.kind), owned))
    return found


def _named(value: object) -> list[Named]:
    return [NAMED.read(item) for item in listed_value(value) if isinstance(item, dict)]


class _Context:
    """The image, cluster, workloads, pods and containers a sub-assessment names (each read once)."""

    def __init__(self, extra: Extra, details: Details) -> None:
        artifact = ARTIFACT.read(extra.artifact_details)
        kube = KUBE.read(extra.kubernetes_details)
        cluster = KUBE.read(extra.cluster_details)
        aggregate = KUBE.read(extra.aggregate_server_resource_metadata)
        native = text(details.native_resource_id)
        self.cluster_id = (
            text(cluster.cluster_resource_id)
            or text(kube.cluster_resource_id)
            or text(aggregate.managed_aggregate_resource_id)
            or (native if native and "/managedclusters/" in native.lower() else None)
        )
        self.cluster_name = text(cluster.cluster_name) or text(kube.cluster_name)
        self.has_kube = isinstance(extra.kubernetes_details, dict) and bool(extra.kubernetes_details)
        self.cluster_kind, self.cloud = text(kube.cluster_kind), text(kube.cloud)
        self.namespace, self.pod = text(kube.namespace), text(kube.pod_name)
        self.controller, self.controller_kind = text(kube.controller_name), text(kube.controller_kind)
        self.container = text(kube.container_name)
        self.image = _image(extra, artifact, details)
        self.image_ocsf = self.image.ocsf() if self.image else None
        self.workloads = _workloads(extra.kubernetes_context)

    def has_kubernetes(self) -> bool:
        """True when Defender says where in Kubernetes the image runs."""
        return bool(self.cluster_id or self.has_kube or self.workloads)

    def service(self) -> str:
        """Return the Kubernetes service the context names (AKS unless it says otherwise)."""
        kind = (self.cluster_kind or "").lower()
        if kind in _CLUSTER_KINDS:
            return _CLUSTER_KINDS[kind]
        return _CLOUD_SERVICES.get((self.cloud or "azure").lower(), traits.AKS)

    def orchestrator(self) -> str:
        """Return the orchestrator for container objects."""
        if self.cluster_kind:
            return self.cluster_kind
        return "AKS" if self.cluster_id and "/managedclusters/" in self.cluster_id.lower() else "Kubernetes"

    def resources(self) -> list[dict[str, Any]]:
        """Return the image, the cluster, the workloads and the pods as resources."""
        found: list[dict[str, Any]] = []
        if self.image and self.image_ocsf:
            found.append(
                {"uid": self.image_ocsf["uid"], "name": self.image.name, "type": "Container Image", "role_id": 1}
            )
        if self.cluster_id:
            found.append(common.arm_resource(self.cluster_id, name=self.cluster_name, role_id=4))
        if self.controller:
            title = (self.controller_kind or "controller").title()
            found.append(_k8s(self.controller, f"Kubernetes {title}", self.namespace))
        if self.pod:
            found.append(_k8s(self.pod, "Kubernetes Pod", self.namespace))
        for workload in self.workloads:
            if workload.name:
                found.append(_k8s(workload.name, f"Kubernetes {workload.kind or 'Workload'}", workload.namespace))
            for owned, owned_kind, _ in workload.owned:
                if owned:
                    found.append(_k8s(owned, f"Kubernetes {owned_kind or 'Pod'}", workload.namespace))
        return found

    def containers(self) -> list[dict[str, Any]]:
        """Return one resource per running container of the image.

        Vulnerability Finding has no `evidences`, and the node running a container is not
        named, so a `device` would be invented: the containers are resources, with the pod,
        workload and image in `data`.
        """
        found: list[dict[str, Any]] = []
        if self.container:
            data = {"cluster": self.cluster_name, "namespace": self.namespace, "pod": self.pod}
            data["controller"] = self.controller
            found.append(self._container(self.container, data))
        for workload in self.workloads:
            for owned, _, names in workload.owned:
                for name in names:
                    data = {"cluster": self.cluster_name, "namespace": workload.namespace, "workload": workload.name}
                    data["pod"] = owned
                    found.append(self._container(name, data))
        return found

    def _container(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        data = common.compact({**data, "image": self.image_ocsf, "orchestrator": self.orchestrator()})
        resource = {"name": name, "type": "Kubernetes Container", "namespace": data.get("namespace"), "role_id": 1}
        return common.compact({**resource, "data": data})


def _k8s(name: str | None, kind: str, namespace: str | None) -> dict[str, Any]:
    return common.compact({"name": name, "type": kind, "namespace": namespace, "role_id": 4})


def _image(extra: Extra, artifact: Artifact, details: Details) -> common.ImageRef | None:
    repository = text(artifact.repository_name) or text(extra.repository_name)
    host = text(artifact.registry_host)
    digest = text(artifact.digest) or text(extra.image_digest)
    resource_id = text(details.id)
    from_id = common.image_ref(resource_id) if resource_id and not resource_id.startswith("/") else None
    name = "/".join(p for p in (host, repository) if p) if repository else None
    if name:
        return common.image_ref(name, digest)
    if from_id:
        return common.ImageRef(from_id.name, from_id.tag, digest or from_id.digest)
    return common.image_ref(None, digest) or (common.image_ref(host, None) if host and digest else None)
