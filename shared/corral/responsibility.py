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

import functools
from typing import Final, Literal

from corral import sources, traits
from corral.sources._core.source import Capability

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


@functools.cache
def capabilities(service: str, layer: str, task: str) -> tuple[Capability, ...]:
    """Return the detectors able to report on one cell.

    Which detectors can serve which cells is each source's own declaration (its `FACTS`), read on
    first use: importing this module loads no source, so a command that draws no matrix loads none.
    The declarations never change in a process: each cell's answer is worked out once.
    """
    return tuple(c for c in sources.CAPABILITIES if service in c.services and (layer, task) in c.cells)
