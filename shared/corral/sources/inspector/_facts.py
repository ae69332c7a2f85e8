"""What Amazon Inspector declares about itself: names, reporting window, home cloud, coverage cells."""

from __future__ import annotations

from typing import Final

from corral import traits
from corral.sources._core.source import Capability, Facts

SOURCE: Final = "aws.inspector2"

_VULN: Final = traits.VULNERABILITY_MANAGEMENT

FACTS: Final = Facts(
    source=SOURCE,
    name="Amazon Inspector",
    product_uid=SOURCE,
    home_cloud="AWS",
    window_minutes=25 * 60,
    why_window=(
        "Inspector sends an event whenever a finding is created or changes, and rescans the resources in "
        "scope whenever new vulnerabilities are published, which for an account running workloads means "
        "findings change more than daily; 25 h is a bet on that activity, like every window, and is "
        "configurable."
    ),
    capabilities=(
        # Package scanning of the EC2 worker nodes and container instances (SSM agent or agentless);
        # the node's cluster comes from its EKS or ECS tags.
        Capability(
            "Inspector EC2 scanning (EKS nodes, ECS container instances)",
            SOURCE,
            (traits.EKS, traits.ECS_EC2),
            ((traits.INFRASTRUCTURE, _VULN),),
        ),
        # ECR image scanning, on push and continuously while the image is in use.
        Capability(
            "Inspector ECR image scanning",
            SOURCE,
            (traits.EKS, traits.ECS_EC2, traits.ECS_FARGATE),
            ((traits.APPLICATION, _VULN),),
        ),
    ),
)
