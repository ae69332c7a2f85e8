"""Views of the GuardDuty finding objects that its context is read from, each looked up once."""

from __future__ import annotations

from corral.sources._core.reader import Fields


class Parts:
    """Views of the vendor objects a finding's context is read from (each may be missing)."""

    __slots__ = (
        "access_key",
        "action",
        "container",
        "ecs",
        "eks",
        "instance",
        "k8s",
        "resource",
        "runtime",
        "sequence",
        "service",
        "task",
        "workload",
    )

    def __init__(self, fields: Fields) -> None:
        """Look up each object once, in the finding `fields` wraps."""
        self.resource = resource = fields.at("resource")
        self.service = service = fields.at("service")
        self.k8s = resource.at("kubernetesDetails")
        self.workload = self.k8s.at("kubernetesWorkloadDetails")
        self.eks = resource.at("eksClusterDetails")
        self.ecs = resource.at("ecsClusterDetails")
        self.task = self.ecs.at("taskDetails")
        self.container = resource.at("containerDetails")
        self.instance = resource.at("instanceDetails")
        self.access_key = resource.at("accessKeyDetails")
        self.action = service.at("action")
        self.runtime = service.at("runtimeDetails")
        self.sequence = service.at("detection", "sequence")
