"""Which container service (and layer) a Defender resource belongs to, from its ARM id."""

from __future__ import annotations

import functools
from typing import Final

from corral import traits
from corral.sources.defender._common import AKS_TYPE, arm_type, last_segment

Placement = tuple[str, str]
"""(container service, layer) as `corral.traits` names them."""

# Keyed on the lower-cased ARM type. Cluster objects are platform; what Defender models as
# `securityentitydata` below a cluster (a running container or its image) is application.
_BY_TYPE: Final[dict[str, Placement]] = {
    AKS_TYPE: (traits.AKS, traits.PLATFORM),
    AKS_TYPE + "/securityentitydata": (traits.AKS, traits.APPLICATION),
    AKS_TYPE + "/agentpools": (traits.AKS, traits.INFRASTRUCTURE),
    "microsoft.app/containerapps": (traits.CONTAINER_APPS, traits.PLATFORM),
    "microsoft.app/jobs": (traits.CONTAINER_APPS, traits.PLATFORM),
    "microsoft.app/managedenvironments": (traits.CONTAINER_APPS, traits.PLATFORM),
}

# Multicloud resources appear as `securityConnectors/<c>/securityentitydata/<name>`; the name
# starts with the cloud's own kind of resource.
_CONNECTOR_PREFIXES: Final[tuple[tuple[str, Placement], ...]] = (
    ("aws-eks", (traits.EKS, traits.PLATFORM)),
    ("eks-", (traits.EKS, traits.PLATFORM)),
    ("gcp-clusters", (traits.GKE, traits.PLATFORM)),
    ("gke-", (traits.GKE, traits.PLATFORM)),
)


@functools.lru_cache(maxsize=8192)  # pure, on ids that repeat (see `_common`)
def placement(resource_id: str | None, kind: str | None = None) -> Placement | None:
    """Return the container service and layer of an ARM resource, or None for other resources.

    `kind` is the App Service kind (`additionalData.kind`), which tells Function Apps apart.
    """
    found = (arm_type(resource_id) or "").lower()
    if found in _BY_TYPE:
        return _BY_TYPE[found]
    name = (last_segment(resource_id) or "").lower()
    if found == "microsoft.web/sites" and "functionapp" in (kind or "").lower():
        return (traits.FUNCTION_APPS, traits.PLATFORM)
    if found.startswith("microsoft.compute/virtualmachinescalesets") and _aks_node_pool(resource_id):
        return (traits.AKS, traits.INFRASTRUCTURE)
    if found == "microsoft.security/securityconnectors/securityentitydata":
        for prefix, where in _CONNECTOR_PREFIXES:
            if name.startswith(prefix):
                return where
    return None


def _aks_node_pool(resource_id: str | None) -> bool:
    # AKS names its node-pool scale sets `aks-<pool>-<n>-vmss`, in the `MC_...` node group.
    lowered = (resource_id or "").lower()
    parts = lowered.split("/")
    if "virtualmachinescalesets" not in parts:
        return False
    name = parts[parts.index("virtualmachinescalesets") + 1] if parts[-1] != "virtualmachinescalesets" else ""
    return name.startswith("aks-") or "/resourcegroups/mc_" in lowered
