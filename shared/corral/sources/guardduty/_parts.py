"""Views of the GuardDuty finding objects that its context is read from, each looked up once."""

from __future__ import annotations

from typing import Final

from corral.sources._core.reader import Fields

# The view of an object a finding does not have. Shared: a view of nothing never records
# anything (there is nothing in it to read), so it stays empty.
NOTHING: Final = Fields({}, {}).at("nothing")


class Parts:
    """Views of the vendor objects a finding's context is read from (each may be missing)."""

    __slots__ = (
        "access_key",
        "action",
        "container",
        "ecs",
        "eks",
        "fields",
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
        # Most findings have a few of these objects: a plain key test skips making views of the others.
        self.fields = fields
        doc = fields.doc
        self.resource = resource = fields.at("resource") if "resource" in doc else NOTHING
        self.service = service = fields.at("service") if "service" in doc else NOTHING
        found = resource.doc
        self.k8s = k8s = resource.at("kubernetesDetails") if "kubernetesDetails" in found else NOTHING
        self.workload = k8s.at("kubernetesWorkloadDetails") if "kubernetesWorkloadDetails" in k8s.doc else NOTHING
        self.eks = resource.at("eksClusterDetails") if "eksClusterDetails" in found else NOTHING
        self.ecs = ecs = resource.at("ecsClusterDetails") if "ecsClusterDetails" in found else NOTHING
        self.task = ecs.at("taskDetails") if "taskDetails" in ecs.doc else NOTHING
        self.container = resource.at("containerDetails") if "containerDetails" in found else NOTHING
        self.instance = resource.at("instanceDetails") if "instanceDetails" in found else NOTHING
        self.access_key = resource.at("accessKeyDetails") if "accessKeyDetails" in found else NOTHING
        found = service.doc
        self.action = service.at("action") if "action" in found else NOTHING
        self.runtime = service.at("runtimeDetails") if "runtimeDetails" in found else NOTHING
        self.sequence = service.at("detection", "sequence") if "detection" in found else NOTHING
