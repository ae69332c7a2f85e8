"""The GuardDuty finding objects that its context is read from, each looked up once."""

from __future__ import annotations

from typing import Any, Final

from corral.sources._core.plain import LEAF, MISSING, Node, sub
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
        # Most findings have a few of these objects: one pass over the names finds those there are.
        self.k8s, self.eks, self.ecs, self.container, self.instance, self.access_key = _objects(resource, _RESOURCE)
        self.workload = sub(self.k8s, "kubernetesWorkloadDetails") if self.k8s is not MISSING else MISSING
        self.task = sub(self.ecs, "taskDetails") if self.ecs is not MISSING else MISSING
        self.action, self.runtime = _objects(service, _SERVICE)
        self.sequence = _sequence(service) if "detection" in service[0] else MISSING


_RESOURCE: Final = (
    "kubernetesDetails",
    "eksClusterDetails",
    "ecsClusterDetails",
    "containerDetails",
    "instanceDetails",
    "accessKeyDetails",
)
_SERVICE: Final = ("action", "runtimeDetails")


def _objects(node: Node, keys: tuple[str, ...]) -> list[Node]:
    """The node of the object at each of `keys` (`sub` of each), MISSING for those that are none."""
    doc, taken = node
    found = []
    for key in keys:
        value = doc.get(key)
        if not isinstance(value, dict):
            found.append(MISSING)
            continue
        child = taken.get(key)
        if child is None:
            child = taken[key] = {}
        elif child is LEAF:
            child = {}
        found.append((value, child))
    return found


def _sequence(service: Node) -> Node:
    # Fields.at("detection", "sequence"): the trie node of `detection` is made even without a sequence.
    detection = sub(service, "detection")
    return sub(detection, "sequence") if detection is not MISSING else MISSING
