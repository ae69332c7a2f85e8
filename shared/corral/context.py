"""Read a finding's container context (cluster, namespace, pod, container, image) from OCSF.

Normalizers put container context where OCSF has room for it: `resources[]` (cluster, pod,
namespace) and `evidences[]` (`container`, `process.container`, `device.container`). Every
consumer (store columns, chat messages, the dashboard) reads it through this one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral.records import NamedTuple  # typing.NamedTuple, built without its per-field checks

# Findings are plain dicts: testing for `dict` first spares the ABC check that `Mapping` costs.
_MAPPING: Final = (dict, Mapping)


# A NamedTuple, not a dataclass: every cold start builds it (see corral.records).
class ContainerContext(NamedTuple):
    """The container context of one finding; None where the source did not say."""

    cluster: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    image: str | None = None
    image_digest: str | None = None
    orchestrator: str | None = None

    def is_empty(self) -> bool:
        """True when the finding carries no container context at all."""
        return not any((self.cluster, self.namespace, self.pod, self.container, self.image, self.image_digest))


def _containers(finding: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    evidences = finding.get("evidences")
    for evidence in evidences if isinstance(evidences, list) else ():
        if not isinstance(evidence, _MAPPING):
            continue
        for holder in (evidence, evidence.get("process"), evidence.get("device")):
            if isinstance(holder, _MAPPING):
                container = holder.get("container")
                if isinstance(container, _MAPPING):
                    found.append(container)
    device = finding.get("device")
    if isinstance(device, _MAPPING) and isinstance(device.get("container"), _MAPPING):
        found.append(device["container"])
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def container_context(finding: Mapping[str, Any]) -> ContainerContext:
    """Return the first cluster, namespace, pod, container and image the finding names."""
    # Every finding passes here once per store write and once per inventory observation: one pass
    # over the resources, no intermediate lists.
    cluster = namespace = pod = image = digest = None
    resources = finding.get("resources")
    for resource in resources if isinstance(resources, list) else ():
        if not isinstance(resource, _MAPPING):
            continue
        kind = str(resource.get("type", "")).lower()
        name = _text(resource.get("name"))
        uid = _text(resource.get("uid"))
        namespace = namespace or _text(resource.get("namespace"))
        if cluster is None and "cluster" in kind:
            cluster = name or uid
        elif pod is None and "pod" in kind:
            pod = name or uid
        elif namespace is None and "namespace" in kind:
            namespace = name or uid
        if kind == "container image":
            # Vulnerability Findings have no evidences: the image is a resource of its own.
            digest = digest or (uid if uid and uid.startswith("sha256:") else None)
            image = image or name
    container = orchestrator = None
    for found in _containers(finding):
        container = container or _text(found.get("name"))
        orchestrator = orchestrator or _text(found.get("orchestrator"))
        img = found.get("image")
        if isinstance(img, _MAPPING):
            name = _text(img.get("name"))
            tag = _text(img.get("tag"))
            image = image or (f"{name}:{tag}" if name and tag and ":" not in name else name)
            uid = _text(img.get("uid"))
            if digest is None and uid and uid.startswith("sha256:"):
                digest = uid
    return ContainerContext(cluster, namespace, pod, container, image, digest, orchestrator)
