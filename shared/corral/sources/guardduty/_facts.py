"""What GuardDuty declares about itself: names, reporting window, home cloud, coverage cells."""

from __future__ import annotations

from typing import Final

from corral import traits
from corral.sources._core.source import Capability, Facts
from corral.sources.guardduty._finding import SOURCE

_INFRA, _PLAT, _APP = traits.INFRASTRUCTURE, traits.PLATFORM, traits.APPLICATION
FACTS: Final = Facts(
    source=SOURCE,
    name="Amazon GuardDuty",
    product_uid=SOURCE,
    home_cloud="AWS",
    window_minutes=7 * 60,
    why_window=(
        "GuardDuty re-publishes every active finding at its publishing frequency, six hours by default "
        "(FindingPublishingFrequency SIX_HOURS), so an account with any active finding delivers at least "
        "every 6 h; one hour of slack covers EventBridge retries. Accounts with a 15-minute or 1-hour "
        "frequency can lower the window."
    ),
    # Threat detection only; AWS vulnerability findings come from Inspector.
    capabilities=(
        Capability(
            "GuardDuty foundational (VPC Flow Logs, DNS, CloudTrail)",
            SOURCE,
            (traits.EKS, traits.ECS_EC2),
            ((_INFRA, traits.THREAT_DETECTION),),
        ),
        Capability("GuardDuty EKS Protection (audit logs)", SOURCE, (traits.EKS,), ((_PLAT, traits.THREAT_DETECTION),)),
        Capability(
            "GuardDuty Runtime Monitoring for EKS",
            SOURCE,
            (traits.EKS,),
            ((_INFRA, traits.THREAT_DETECTION), (_APP, traits.THREAT_DETECTION)),
        ),
        Capability(
            "GuardDuty Runtime Monitoring for ECS",
            SOURCE,
            (traits.ECS_EC2, traits.ECS_FARGATE),
            ((_APP, traits.THREAT_DETECTION),),
        ),
    ),
)
