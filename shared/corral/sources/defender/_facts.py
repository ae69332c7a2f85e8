"""What Defender for Cloud declares about itself: names, reporting window, home cloud, coverage cells."""

from __future__ import annotations

from typing import Final

from corral import traits
from corral.sources._core.source import Capability, Facts

SOURCE: Final = "azure.defender"

_INFRA, _PLAT, _APP = traits.INFRASTRUCTURE, traits.PLATFORM, traits.APPLICATION
_HARD, _VULN, _THREAT = traits.HARDENING, traits.VULNERABILITY_MANAGEMENT, traits.THREAT_DETECTION
_K8S: Final = (traits.AKS, traits.EKS, traits.GKE)

FACTS: Final = Facts(
    source=SOURCE,
    name="Microsoft Defender for Cloud",
    product_uid="microsoft.defender_for_cloud",
    home_cloud="Azure",
    window_minutes=8 * 24 * 60,
    why_window=(
        "Continuous export streams on change only, but the weekly snapshot re-sends every current alert "
        "and recommendation, so a subscription delivers at least weekly; one day of slack because "
        "Microsoft publishes no latency for the snapshot."
    ),
    # Defender for Containers covers AKS natively and EKS and GKE through its multicloud
    # connectors (sensor on the nodes, Kubernetes audit logs); it has no runtime sensor for
    # Container Apps or Function Apps.
    capabilities=(
        Capability(
            "Defender for Containers (runtime and Kubernetes audit)",
            SOURCE,
            _K8S,
            ((_INFRA, _THREAT), (_PLAT, _THREAT), (_APP, _THREAT)),
        ),
        Capability("Defender CSPM recommendations", SOURCE, _K8S, ((_INFRA, _HARD), (_PLAT, _HARD), (_APP, _HARD))),
        Capability(
            "Defender CSPM recommendations (PaaS)",
            SOURCE,
            (traits.CONTAINER_APPS, traits.FUNCTION_APPS),
            ((_PLAT, _HARD),),
        ),
        Capability(
            "Defender vulnerability assessment (registry and running images)",
            SOURCE,
            (*_K8S, traits.CONTAINER_APPS),
            ((_APP, _VULN),),
        ),
        Capability(
            "Defender vulnerability assessment (AKS nodes and Kubernetes version)",
            SOURCE,
            (traits.AKS,),
            ((_INFRA, _VULN), (_PLAT, _VULN)),
        ),
        Capability("Defender for App Service", SOURCE, (traits.FUNCTION_APPS,), ((_APP, _THREAT),)),
    ),
)
