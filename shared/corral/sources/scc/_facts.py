"""What Security Command Center declares about itself: names, reporting window, home cloud, coverage cells."""

from __future__ import annotations

from typing import Final

from corral import traits
from corral.sources._core.source import Capability, Facts

SOURCE: Final = "gcp.scc"

_INFRA, _PLAT, _APP = traits.INFRASTRUCTURE, traits.PLATFORM, traits.APPLICATION
_HARD, _VULN, _THREAT = traits.HARDENING, traits.VULNERABILITY_MANAGEMENT, traits.THREAT_DETECTION

FACTS: Final = Facts(
    source=SOURCE,
    name="Google Security Command Center",
    product_uid="google.scc",
    home_cloud="GCP",
    window_minutes=24 * 60,
    why_window=(
        "Notifications are near real time with no re-publication of unchanged findings, so only activity "
        "bounds silence; a day matches how often an organization with container workloads sees new or "
        "updated findings, and is the documented default to tune."
    ),
    capabilities=(
        Capability("SCC Container Threat Detection", SOURCE, (traits.GKE,), ((_INFRA, _THREAT), (_APP, _THREAT))),
        Capability("SCC Event Threat Detection (GKE audit logs)", SOURCE, (traits.GKE,), ((_PLAT, _THREAT),)),
        # GKE security posture's workload configuration audit reports pod-level misconfigurations
        # (privileged containers, host namespaces) into SCC, beside Security Health Analytics.
        Capability(
            "SCC Security Health Analytics and GKE security posture",
            SOURCE,
            (traits.GKE,),
            ((_INFRA, _HARD), (_PLAT, _HARD), (_APP, _HARD)),
        ),
        Capability(
            "SCC vulnerability findings (GKE workload scanning, Artifact Analysis)",
            SOURCE,
            (traits.GKE, traits.CLOUD_RUN),
            ((_APP, _VULN),),
        ),
        Capability(
            "SCC GKE security posture (node OS and Kubernetes version vulnerabilities)",
            SOURCE,
            (traits.GKE,),
            ((_INFRA, _VULN), (_PLAT, _VULN)),
        ),
        Capability("Cloud Run Threat Detection", SOURCE, (traits.CLOUD_RUN,), ((_APP, _THREAT),)),
        Capability("SCC Enterprise multicloud posture (AWS)", SOURCE, (traits.EKS,), ((_PLAT, _HARD),)),
    ),
)
