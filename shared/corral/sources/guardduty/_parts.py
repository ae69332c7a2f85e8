"""The GuardDuty finding objects that its context is read from, each looked up once."""

from __future__ import annotations

from typing import Any

from corral.sources._core.plain import MISSING, Node, sub
from corral.sources._core.reader import Trie


class Parts:
    """Nodes (object, trie node) of the vendor objects a finding's context is read from (each may be MISSING)."""

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

    def __init__(self, doc: dict[str, Any], taken: Trie) -> None:
        """Look up each object once, in the finding `doc` recording into `taken`."""
        finding = (doc, taken)
        self.resource = resource = sub(finding, "resource") if "resource" in doc else MISSING
        self.service = service = sub(finding, "service") if "service" in doc else MISSING
        # Most findings have a few of these objects: a test for the name is all an absent one costs.
        present = resource[0]
        self.k8s = k8s = sub(resource, "kubernetesDetails") if "kubernetesDetails" in present else MISSING
        self.eks = sub(resource, "eksClusterDetails") if "eksClusterDetails" in present else MISSING
        self.ecs = ecs = sub(resource, "ecsClusterDetails") if "ecsClusterDetails" in present else MISSING
        self.container = sub(resource, "containerDetails") if "containerDetails" in present else MISSING
        self.instance = sub(resource, "instanceDetails") if "instanceDetails" in present else MISSING
        self.access_key = sub(resource, "accessKeyDetails") if "accessKeyDetails" in present else MISSING
        self.workload = sub(k8s, "kubernetesWorkloadDetails") if "kubernetesWorkloadDetails" in k8s[0] else MISSING
        self.task = sub(ecs, "taskDetails") if "taskDetails" in ecs[0] else MISSING
        present = service[0]
        self.action = sub(service, "action") if "action" in present else MISSING
        self.runtime = sub(service, "runtimeDetails") if "runtimeDetails" in present else MISSING
        self.sequence = _sequence(service) if "detection" in present else MISSING


def _sequence(service: Node) -> Node:
    # Fields.at("detection", "sequence"): the trie node of `detection` is made even without a sequence.
    detection = sub(service, "detection")
    return sub(detection, "sequence") if detection is not MISSING else MISSING
