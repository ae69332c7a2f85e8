"""Read a finding's container context (cluster, namespace, pod, container, image) from OCSF.

Normalizers put container context where OCSF has room for it: `resources[]` (cluster, pod,
namespace) and `evidences[]` (`container`, `process.container`, `device.container`). Every
consumer (store columns, chat messages, the dashboard) reads it through this one function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple


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


def _containers(finding: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for evidence in _dicts(finding.get("evidences")):
        for holder in (evidence, evidence.get("process"), evidence.get("device")):
            if isinstance(holder, Mapping) and isinstance(holder.get("container"), Mapping):
                yield holder["container"]
    device = finding.get("device")
    if isinstance(device, Mapping) and isinstance(device.get("container"), Mapping):
        yield device["container"]


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def container_context(finding: Mapping[str, Any]) -> ContainerContext:
    """Return the first cluster, namespace, pod, container and image the finding names."""
    cluster = namespace = pod = None
    for resource in _dicts(finding.get("resources")):
        kind = str(resource.get("type", "")).lower()
        name = _text(resource.get("name")) or _text(resource.get("uid"))
        namespace = namespace or _text(resource.get("namespace"))
        if cluster is None and "cluster" in kind:
            cluster = name
        elif pod is None and "pod" in kind:
            pod = name
        elif namespace is None and "namespace" in kind:
            namespace = name
    container = image = digest = orchestrator = None
    for resource in _dicts(finding.get("resources")):
        # Vulnerability Findings have no evidences: the image is a resource of its own.
        if str(resource.get("type", "")).lower() == "container image":
            uid = _text(resource.get("uid"))
            digest = digest or (uid if uid and uid.startswith("sha256:") else None)
            image = image or _text(resource.get("name"))
    for found in _containers(finding):
        container = container or _text(found.get("name"))
        orchestrator = orchestrator or _text(found.get("orchestrator"))
        img = found.get("image")
        if isinstance(img, Mapping):
            name = _text(img.get("name"))
            tag = _text(img.get("tag"))
            image = image or (f"{name}:{tag}" if name and tag and ":" not in name else name)
            uid = _text(img.get("uid"))
            if digest is None and uid and uid.startswith("sha256:"):
                digest = uid
    return ContainerContext(cluster, namespace, pod, container, image, digest, orchestrator)
