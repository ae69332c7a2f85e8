"""Who secures what, per container service, and which sources can see it: the coverage matrix's data.

Kept as literal tables in this one module so that a reviewer can check every cell against the
provider's shared-responsibility model without reading code. Rows are the eight container
services of `corral.traits`; each row is three layers (infrastructure, platform, application) by
three tasks (hardening, vulnerability management, threat detection).

"Provider" means the cloud provider operates and secures that part and offers the customer no
control over it (so there is nothing for the customer to monitor); "customer" means the customer
configures, patches or watches it, even where the provider supplies the tooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from corral import traits

Owner = Literal["customer", "provider"]
CUSTOMER: Final[Owner] = "customer"
PROVIDER: Final[Owner] = "provider"
C: Final = CUSTOMER
P: Final = PROVIDER

Row = tuple[tuple[Owner, Owner, Owner], tuple[Owner, Owner, Owner], tuple[Owner, Owner, Owner]]
"""Three layers (infrastructure, platform, application) of three tasks (hardening, vulnerability
management, threat detection), in the order of `traits.LAYERS` and `traits.TASKS`."""

RESPONSIBILITY: Final[dict[str, Row]] = {
    # EKS: AWS runs the control plane (API server, etcd) on its own hosts; the worker nodes
    # (EC2, their AMI, kubelet configuration) are the customer's, so the infrastructure layer as
    # Corral sees it is the customer's. Cluster configuration (RBAC, endpoint access, add-ons,
    # Kubernetes version upgrades) and workloads are the customer's ("Amazon EKS Best Practices:
    # shared responsibility model").
    traits.EKS: (
        (C, C, C),  # infrastructure: worker nodes
        (C, C, C),  # platform: cluster configuration, RBAC, version upgrades, audit log
        (C, C, C),  # application: images, pods, runtime
    ),
    # ECS on EC2: the ECS control plane is AWS's, but the container instances (EC2, ECS agent,
    # AMI patching) are the customer's, as are task definitions, IAM roles and images.
    traits.ECS_EC2: (
        (C, C, C),
        (C, C, C),
        (C, C, C),
    ),
    # ECS on Fargate: AWS runs, patches and watches the hosts, the kernel and the container
    # runtime (Fargate platform versions); the customer owns task definitions, IAM and network
    # configuration, and the images and processes it runs ("AWS Fargate security
    # considerations", ECS best practices).
    traits.ECS_FARGATE: (
        (P, P, P),  # infrastructure: the Fargate fleet
        (C, P, C),  # platform: task configuration is the customer's; the platform version is patched by AWS
        (C, C, C),
    ),
    # AKS: Microsoft runs the managed control plane; node pools (VM scale sets, node image
    # upgrades), cluster configuration and workloads are the customer's ("Shared responsibility
    # in AKS": Microsoft ships node image patches, the customer applies them).
    traits.AKS: (
        (C, C, C),
        (C, C, C),
        (C, C, C),
    ),
    # Azure Container Apps: serverless; Microsoft runs the underlying Kubernetes environment,
    # its nodes and their patching. The customer owns app configuration (ingress, identity,
    # secrets) and the images and code it deploys.
    traits.CONTAINER_APPS: (
        (P, P, P),
        (C, P, C),
        (C, C, C),
    ),
    # Azure Function Apps (containerised, on Premium, Dedicated or Container Apps hosting): the
    # hosting platform and its OS are Microsoft's (PaaS model of "Shared responsibility in the
    # cloud"); app settings, identity, network restrictions and the function code or image are
    # the customer's.
    traits.FUNCTION_APPS: (
        (P, P, P),
        (C, P, C),
        (C, C, C),
    ),
    # GKE Standard: Google runs the control plane; nodes (node pools, auto-upgrade settings),
    # cluster configuration and workloads are the customer's ("GKE shared responsibility model").
    traits.GKE: (
        (C, C, C),
        (C, C, C),
        (C, C, C),
    ),
    # Cloud Run: fully managed; Google runs, patches and watches the sandboxed infrastructure
    # and the serving platform. The customer owns service configuration (IAM, ingress, service
    # account) and the container image and its runtime behaviour.
    traits.CLOUD_RUN: (
        (P, P, P),
        (C, P, C),
        (C, C, C),
    ),
}


def owner(service: str, layer: str, task: str) -> Owner:
    """Return who is responsible for one cell.

    Example:
        >>> owner(traits.ECS_FARGATE, traits.INFRASTRUCTURE, traits.HARDENING)
        'provider'
    """
    return RESPONSIBILITY[service][traits.LAYERS.index(layer)][traits.TASKS.index(task)]


@dataclass(frozen=True, slots=True)
class Capability:
    """A detector, offered by one Corral source, that can produce findings for some cells."""

    name: str
    source: str
    services: tuple[str, ...]
    cells: tuple[tuple[str, str], ...]
    """(layer, task) pairs the detector reports on, for each of `services`."""


_INFRA, _PLAT, _APP = traits.INFRASTRUCTURE, traits.PLATFORM, traits.APPLICATION
_HARD, _VULN, _THREAT = traits.HARDENING, traits.VULNERABILITY_MANAGEMENT, traits.THREAT_DETECTION

CAPABILITIES: Final[tuple[Capability, ...]] = (
    # GuardDuty is threat detection only; hardening and vulnerability findings on AWS come from
    # Security Hub and Inspector, which Corral does not ingest, unless Defender or SCC watch AWS.
    Capability(
        "GuardDuty foundational (VPC Flow Logs, DNS, CloudTrail)",
        "aws.guardduty",
        (traits.EKS, traits.ECS_EC2),
        ((_INFRA, _THREAT),),
    ),
    Capability("GuardDuty EKS Protection (audit logs)", "aws.guardduty", (traits.EKS,), ((_PLAT, _THREAT),)),
    Capability(
        "GuardDuty Runtime Monitoring for EKS", "aws.guardduty", (traits.EKS,), ((_INFRA, _THREAT), (_APP, _THREAT))
    ),
    Capability(
        "GuardDuty Runtime Monitoring for ECS",
        "aws.guardduty",
        (traits.ECS_EC2, traits.ECS_FARGATE),
        ((_APP, _THREAT),),
    ),
    # Defender for Containers covers AKS natively and EKS and GKE through its multicloud
    # connectors (sensor on the nodes, Kubernetes audit logs); it has no runtime sensor for
    # Container Apps or Function Apps.
    Capability(
        "Defender for Containers (runtime and Kubernetes audit)",
        "azure.defender",
        (traits.AKS, traits.EKS, traits.GKE),
        ((_INFRA, _THREAT), (_PLAT, _THREAT), (_APP, _THREAT)),
    ),
    Capability(
        "Defender CSPM recommendations",
        "azure.defender",
        (traits.AKS, traits.EKS, traits.GKE),
        ((_INFRA, _HARD), (_PLAT, _HARD), (_APP, _HARD)),
    ),
    Capability(
        "Defender CSPM recommendations (PaaS)",
        "azure.defender",
        (traits.CONTAINER_APPS, traits.FUNCTION_APPS),
        ((_PLAT, _HARD),),
    ),
    Capability(
        "Defender vulnerability assessment (registry and running images)",
        "azure.defender",
        (traits.AKS, traits.EKS, traits.GKE, traits.CONTAINER_APPS),
        ((_APP, _VULN),),
    ),
    Capability(
        "Defender vulnerability assessment (AKS nodes and Kubernetes version)",
        "azure.defender",
        (traits.AKS,),
        ((_INFRA, _VULN), (_PLAT, _VULN)),
    ),
    Capability("Defender for App Service", "azure.defender", (traits.FUNCTION_APPS,), ((_APP, _THREAT),)),
    Capability("SCC Container Threat Detection", "gcp.scc", (traits.GKE,), ((_INFRA, _THREAT), (_APP, _THREAT))),
    Capability("SCC Event Threat Detection (GKE audit logs)", "gcp.scc", (traits.GKE,), ((_PLAT, _THREAT),)),
    # GKE security posture's workload configuration audit reports pod-level misconfigurations
    # (privileged containers, host namespaces) into SCC, beside Security Health Analytics.
    Capability(
        "SCC Security Health Analytics and GKE security posture",
        "gcp.scc",
        (traits.GKE,),
        ((_INFRA, _HARD), (_PLAT, _HARD), (_APP, _HARD)),
    ),
    Capability(
        "SCC vulnerability findings (GKE workload scanning, Artifact Analysis)",
        "gcp.scc",
        (traits.GKE, traits.CLOUD_RUN),
        ((_APP, _VULN),),
    ),
    Capability(
        "SCC GKE security posture (node OS and Kubernetes version vulnerabilities)",
        "gcp.scc",
        (traits.GKE,),
        ((_INFRA, _VULN), (_PLAT, _VULN)),
    ),
    Capability("Cloud Run Threat Detection", "gcp.scc", (traits.CLOUD_RUN,), ((_APP, _THREAT),)),
    Capability("SCC Enterprise multicloud posture (AWS)", "gcp.scc", (traits.EKS,), ((_PLAT, _HARD),)),
)


def capabilities(service: str, layer: str, task: str) -> tuple[Capability, ...]:
    """Return the detectors able to report on one cell."""
    return tuple(c for c in CAPABILITIES if service in c.services and (layer, task) in c.cells)
