"""What a sub-assessment's normalizer reads, as precompiled field maps (see `FieldMap`).

`additionalData` holds three generations of vulnerability data (see `subassessments`); one
record reads the keys of all three, each once.
"""

from __future__ import annotations

from typing import Any, Final

from corral.sources._core.folded import FieldMap, FieldRecord


class Props(FieldRecord):
    id: Any
    display_name: Any
    description: Any
    remediation: Any
    category: Any
    time_generated: Any
    resource_details: Any
    status: Any
    additional_data: Any


class Extra(FieldRecord):
    """`additionalData`."""

    assessed_resource_type: Any
    artifact_details: Any
    kubernetes_details: Any
    cluster_details: Any
    aggregate_server_resource_metadata: Any
    kubernetes_context: Any
    repository_name: Any
    image_digest: Any
    vulnerability_details: Any
    software_details: Any
    cve: Any
    vendor_references: Any
    cvss: Any
    cvss_v30_score: Any
    patchable: Any
    published_time: Any


class Artifact(FieldRecord):
    repository_name: Any
    registry_host: Any
    digest: Any


class Kube(FieldRecord):
    """`kubernetesDetails`, `clusterDetails` and `aggregateServerResourceMetadata` share one record."""

    cluster_resource_id: Any
    cluster_name: Any
    cluster_kind: Any
    cloud: Any
    namespace: Any
    pod_name: Any
    controller_name: Any
    controller_kind: Any
    container_name: Any
    managed_aggregate_resource_id: Any


class Named(FieldRecord):
    """A workload, owned resource or container of `kubernetesContext`."""

    namespace: Any
    name: Any
    kind: Any
    owned_resources: Any
    containers: Any
    workloads: Any


class Vulnerability(FieldRecord):
    """MDVM `vulnerabilityDetails`."""

    cve_id: Any
    references: Any
    cvss: Any
    severity: Any
    published_date: Any
    last_modified_date: Any
    weaknesses: Any
    exploitability_assessment: Any


class Software(FieldRecord):
    """MDVM `softwareDetails`."""

    package_name: Any
    version: Any
    fixed_version: Any
    vendor: Any
    patchable: Any
    fix_status: Any
    fix_reference: Any


class Tvm(FieldRecord):
    """The TVM-style `cve` object."""

    title: Any
    published_date: Any
    last_modified_date: Any
    cvss_score: Any
    cvss_version: Any
    cvss_vector_string: Any
    has_public_exploit: Any
    is_exploit_verified: Any
    is_exploit_in_kit: Any
    exploit_uris: Any


class Small(FieldRecord):
    """The one- and two-key objects: references, legacy CVEs, CWEs, CVSS scores, exploitability, fix reference."""

    title: Any
    link: Any
    id: Any
    url: Any
    cwe: Any
    base: Any
    base_score: Any
    cvss_vector_string: Any
    is_in_exploit_kit: Any
    exploit_steps_published: Any
    exploit_steps_verified: Any
    exploit_uris: Any


PROPS: Final = FieldMap(Props)
EXTRA: Final = FieldMap(Extra)
ARTIFACT: Final = FieldMap(Artifact)
KUBE: Final = FieldMap(Kube)
NAMED: Final = FieldMap(Named)
VULNERABILITY: Final = FieldMap(Vulnerability)
SOFTWARE: Final = FieldMap(Software)
TVM: Final = FieldMap(Tvm)
SMALL: Final = FieldMap(Small)
