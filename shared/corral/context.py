"""Read a finding's container context (cluster, namespace, pod, container, image) from OCSF.

Normalizers put container context where OCSF has room for it: `resources[]` (cluster, pod,
namespace) and `evidences[]` (`container`, `process.container`, `device.container`). Every
consumer (store columns, chat messages, the dashboard) reads it through this one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from corral.records import NamedTuple  # typing.NamedTuple, built without its per-field checks


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


def _mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # Plain dicts and None (an absent `process`, `device`) are the common answers: neither
    # reaches the ABC check that `Mapping` costs.
    return value is not None and (type(value) is dict or isinstance(value, Mapping))


def _containers(finding: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    evidences = finding.get("evidences")
    for evidence in evidences if isinstance(evidences, list) else ():
        if not _mapping(evidence):
            continue
        for holder in (evidence, evidence.get("process"), evidence.get("device")):
            if _mapping(holder) and _mapping(container := holder.get("container")):
                found.append(container)
    device = finding.get("device")
    if _mapping(device) and _mapping(container := device.get("container")):
        found.append(container)
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# Which of cluster, pod, namespace and container image a resource `type` names, by its text:
# findings repeat a handful of types, so each is lowered and searched once.
_KINDS: dict[str, tuple[bool, bool, bool, bool]] = {}
_KINDS_MAX: Final = 256


def _kind(value: object) -> tuple[bool, bool, bool, bool]:
    kind = str(value).lower()
    flags = ("cluster" in kind, "pod" in kind, "namespace" in kind, kind == "container image")
    if type(value) is str and len(_KINDS) < _KINDS_MAX:
        _KINDS[value] = flags
    return flags


def container_context(finding: Mapping[str, Any]) -> ContainerContext:
    """Return the first cluster, namespace, pod, container and image the finding names."""
    # Every finding passes here once per store write and once per inventory observation: one pass
    # over the resources, no intermediate lists.
    cluster = namespace = pod = image = digest = None
    resources = finding.get("resources")
    for resource in resources if isinstance(resources, list) else ():
        if not _mapping(resource):
            continue
        kind = resource.get("type", "")
        flags = _KINDS.get(kind) if type(kind) is str else None
        is_cluster, is_pod, is_namespace, is_image = flags or _kind(kind)
        if namespace is None:
            namespace = _text(resource.get("namespace"))
        if cluster is None and is_cluster:
            cluster = _text(resource.get("name")) or _text(resource.get("uid"))
        elif pod is None and is_pod:
            pod = _text(resource.get("name")) or _text(resource.get("uid"))
        elif namespace is None and is_namespace:
            namespace = _text(resource.get("name")) or _text(resource.get("uid"))
        if is_image:
            # Vulnerability Findings have no evidences: the image is a resource of its own.
            uid = _text(resource.get("uid"))
            digest = digest or (uid if uid and uid.startswith("sha256:") else None)
            image = image or _text(resource.get("name"))
    container = orchestrator = None
    for found in _containers(finding):
        # Each field keeps the first value found: later containers are read only for the rest.
        if container is None:
            container = _text(found.get("name"))
        if orchestrator is None:
            orchestrator = _text(found.get("orchestrator"))
        img = found.get("image")
        if (image is None or digest is None) and _mapping(img):
            if image is None:
                name = _text(img.get("name"))
                tag = _text(img.get("tag"))
                image = f"{name}:{tag}" if name and tag and ":" not in name else name
            uid = _text(img.get("uid"))
            if digest is None and uid and uid.startswith("sha256:"):
                digest = uid
    return ContainerContext(cluster, namespace, pod, container, image, digest, orchestrator)
