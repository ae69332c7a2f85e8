"""Container and resource context of an SCC finding: `resources[]` and `evidences[]`.

Where SCC carries it:
- the affected resource: `finding.resourceName` plus `resource{name, displayName, type, location}`;
- GKE: `kubernetes.pods[]` (ns, name, labels, containers), `kubernetes.nodes[]`, `nodePools[]`,
  `roles[]`, `bindings[]`, `objects[]` (kind, ns, name, containers);
- `containers[]` (Cloud Run and non-pod containers) with `{name, uri, imageId, labels, createTime}`;
- `processes[]` with `{name, pid, parentPid, args, binary{path, sha256, size}, libraries[]}`;
- `access` (the caller of an API method: principal, IP, service, method).

SCC does not say which process ran in which container. When the finding names exactly one
container, its processes carry it (`process.container`); otherwise each container becomes its own
evidence, paired with `data` that says where SCC reported it (OCSF rejects an evidence holding
only `container`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final

from corral.sources._core import images
from corral.sources.scc._read import compact, field, integer, labels, last_segment, mapping, mappings, text, texts

_CLUSTER: Final = re.compile(
    r"^(//container\.googleapis\.com/projects/[^/]+/(?:locations|zones)/([^/]+)/clusters/([^/]+))(?:/|$)"
)

# Compute Engine resources (VMs, and the firewalls and addresses around them) are infrastructure.
_VM_TYPES: Final = frozenset({"google.compute.Instance", "compute.googleapis.com/Instance"})
GKE_ORCHESTRATOR: Final = "GKE"
CLOUD_RUN_ORCHESTRATOR: Final = "Cloud Run"
ROLE_TARGET: Final = 1
ROLE_AFFECTED: Final = 3
ROLE_RELATED: Final = 4


def cluster_of(resource_name: str | None) -> tuple[str, str, str] | None:
    """Return (full name, location, cluster name) when a resource name lies in a GKE cluster."""
    match = _CLUSTER.match(resource_name or "")
    return (match.group(1), match.group(2), match.group(3)) if match else None


def image(uri: str | None, image_id: str | None) -> dict[str, Any] | None:
    """Return the OCSF `image` of a container: uid = digest (`imageId`), else the image reference.

    `uri` is the reference the workload was configured with (`repo/name:tag` or `repo/name@sha256:…`);
    it may be a mutable tag, which is why the digest, when SCC has it, is the uid.
    """
    return images.image(uri, image_id)


def _container(record: Mapping[str, Any], orchestrator: str | None) -> dict[str, Any] | None:
    name = text(record, "name")
    if not name:
        return None  # OCSF needs a container uid or name; SCC has no container id (the record stays in unmapped)
    img = image(text(record, "uri"), text(record, "imageId"))
    return compact(
        {
            "name": name,
            "image": img,
            "orchestrator": orchestrator,
            "labels": labels(record),
        }
    )


def containers(finding: Mapping[str, Any], orchestrator: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Return (OCSF container, context data) for every container the finding names, without repeats."""
    kubernetes = mapping(finding, "kubernetes")
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[Any, ...]] = set()

    def add(record: Mapping[str, Any], data: dict[str, Any]) -> None:
        container = _container(record, orchestrator)
        if container is None:
            return
        img = container.get("image")
        key = (container.get("name"), tuple(img.items()) if img else None, data.get("pod"), data.get("namespace"))
        if key not in seen:
            seen.add(key)
            found.append((container, compact(data)))

    for i, pod in enumerate(mappings(kubernetes, "pods")):
        for j, record in enumerate(mappings(pod, "containers")):
            data = {
                "pod": text(pod, "name"),
                "namespace": text(pod, "ns"),
                "reported_in": f"kubernetes.pods[{i}].containers[{j}]",
            }
            add(record, data)
    for i, obj in enumerate(mappings(kubernetes, "objects")):
        for j, record in enumerate(mappings(obj, "containers")):
            data = {
                "workload": text(obj, "name"),
                "kind": text(obj, "kind"),
                "namespace": text(obj, "ns"),
                "reported_in": f"kubernetes.objects[{i}].containers[{j}]",
            }
            add(record, data)
    for i, record in enumerate(mappings(finding, "containers")):
        add(record, {"reported_in": f"containers[{i}]"})
    return found


def _file(path: str | None, record: Mapping[str, Any]) -> dict[str, Any] | None:
    if not path:
        return None
    sha256 = text(record, "sha256")
    # A hash of a prefix is not the file's hash; keep it out of `hashes` (it stays in unmapped).
    partial = field(record, "partiallyHashed") is True
    hashes = [{"algorithm_id": 3, "algorithm": "SHA-256", "value": sha256}] if sha256 and not partial else []
    size = integer(field(record, "size"))
    return compact(
        {
            "name": last_segment(path) or path,
            "path": path,
            "type_id": 1,
            "type": "Regular File",
            "hashes": hashes,
            "size": size if size is not None and size >= 0 else None,
        }
    )


def process(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return an OCSF `process` for an SCC process, or None when it has no pid (OCSF needs one)."""
    pid = integer(field(record, "pid"))
    if pid is None:
        return None
    binary = mapping(record, "binary")
    args = texts(record, "args")
    parent_pid = integer(field(record, "parentPid"))
    return compact(
        {
            "name": text(record, "name"),
            "pid": pid,
            # `args` are kept exactly as sent; joining them is for reading, the list stays in unmapped.
            "cmd_line": " ".join(args) if args else None,
            "file": _file(text(binary, "path"), binary),
            "path": text(binary, "path"),
            "loaded_modules": [p for lib in mappings(record, "libraries") if (p := text(lib, "path"))],
            "parent_process": {"pid": parent_pid} if parent_pid is not None else None,
        }
    )


def _api(operation: str, service: str | None) -> dict[str, Any]:
    return {"operation": operation, "service": {"name": service}} if service else {"operation": operation}


def _access_evidence(access: Mapping[str, Any]) -> dict[str, Any] | None:
    principal = text(access, "principalEmail") or text(access, "principalSubject")
    method = text(access, "methodName")
    ip = text(access, "callerIp")
    try:
        ip = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        ip = None
    evidence = compact(
        {
            "actor": {"user": {"name": principal}} if principal else None,
            "api": _api(method, text(access, "serviceName")) if method else None,
            "src_endpoint": {"ip": ip} if ip else None,
        }
    )
    return evidence or None


def evidences(finding: Mapping[str, Any], orchestrator: str | None) -> list[dict[str, Any]]:
    """Return the evidences of a Detection or Compliance Finding: processes, containers, API access."""
    found = containers(finding, orchestrator)
    single = found[0][0] if len(found) == 1 else None
    result: list[dict[str, Any]] = []
    attached = False
    for record in mappings(finding, "processes"):
        proc = process(record)
        if proc is None:
            binary = mapping(record, "binary")
            file = _file(text(binary, "path"), binary)
            if file:
                result.append({"file": file})
            continue
        if single is not None:
            proc["container"] = single
            attached = True
        result.append({"process": proc})
    for container, data in found:
        if not (attached and container is single):
            result.append({"container": container, "data": data or {"reported_in": "containers"}})
    access = _access_evidence(mapping(finding, "access"))
    if access:
        result.append(access)
    return result


def _main_resource(finding: Mapping[str, Any], resource: Mapping[str, Any], provider: str) -> dict[str, Any]:
    uid = text(finding, "resourceName") or text(resource, "name")
    kind = text(resource, "type")
    cluster = cluster_of(uid)
    if kind is None and cluster and uid and cluster[0] == uid.rstrip("/"):
        kind = "container.googleapis.com/Cluster"
    location = text(resource, "location")
    return compact(
        {
            "uid": uid,
            "name": text(resource, "displayName") or text(finding, "assetDisplayName") or last_segment(uid),
            "type": kind,
            "region": location,
            "provider": provider,
            "role_id": ROLE_TARGET,
            "role": "Target",
        }
    )


def resources(finding: Mapping[str, Any], resource: Mapping[str, Any], provider: str) -> list[dict[str, Any]]:
    """Return the affected resource, its GKE cluster, and the Kubernetes objects SCC names."""
    main = _main_resource(finding, resource, provider)
    result = [main] if main.get("uid") or main.get("name") else []
    cluster = cluster_of(main.get("uid"))
    if cluster and cluster[0] != main.get("uid"):
        result.append(
            {
                "uid": cluster[0],
                "name": cluster[2],
                "type": "container.googleapis.com/Cluster",
                "region": cluster[1],
                "provider": provider,
                "role_id": ROLE_RELATED,
                "role": "Related",
            }
        )
    cluster_uid = cluster[0] if cluster else None
    kubernetes = mapping(finding, "kubernetes")
    for pod in mappings(kubernetes, "pods"):
        ns, name = text(pod, "ns"), text(pod, "name")
        uid = f"{cluster_uid}/k8s/namespaces/{ns}/pods/{name}" if cluster_uid and ns and name else None
        result.append(_k8s("Kubernetes Pod", uid, name, ns, tags=labels(pod), role_id=ROLE_AFFECTED))
    for pool in mappings(kubernetes, "nodePools"):
        result.append(_k8s("GKE Node Pool", None, text(pool, "name"), None, role_id=ROLE_AFFECTED))
    nodes = mappings(kubernetes, "nodes") + [n for p in mappings(kubernetes, "nodePools") for n in mappings(p, "nodes")]
    for node in nodes:
        uid = text(node, "name")
        result.append(_k8s("Kubernetes Node", uid, last_segment(uid), None, role_id=ROLE_AFFECTED))
    for obj in mappings(kubernetes, "objects"):
        kind = text(obj, "kind")
        entry = _k8s(
            f"Kubernetes {kind}" if kind else "Kubernetes Object",
            None,
            text(obj, "name"),
            text(obj, "ns"),
            role_id=ROLE_AFFECTED,
        )
        if entry and text(obj, "group"):
            entry["group"] = {"name": text(obj, "group")}
        result.append(entry)
    for role in mappings(kubernetes, "roles"):
        kind = "Kubernetes ClusterRole" if text(role, "kind") == "CLUSTER_ROLE" else "Kubernetes Role"
        result.append(_k8s(kind, None, text(role, "name"), text(role, "ns"), role_id=ROLE_RELATED))
    for binding in mappings(kubernetes, "bindings"):
        result.append(
            _k8s("Kubernetes RoleBinding", None, text(binding, "name"), text(binding, "ns"), role_id=ROLE_RELATED)
        )
    return [r for r in result if r and (r.get("uid") or r.get("name"))]


def _k8s(
    kind: str, uid: str | None, name: str | None, ns: str | None, *, tags: list[str] | None = None, role_id: int
) -> dict[str, Any]:
    if not uid and not name:
        return {}
    return compact(
        {
            "uid": uid,
            "name": name,
            "type": kind,
            "namespace": ns,
            "labels": tags or [],
            "role_id": role_id,
            "role": {ROLE_AFFECTED: "Affected", ROLE_RELATED: "Related"}.get(role_id),
        }
    )


def image_resources(finding: Mapping[str, Any], orchestrator: str | None) -> list[dict[str, Any]]:
    """Return each container image as a resource; Vulnerability Findings have no `evidences`."""
    result = []
    seen = set()
    for container, data in containers(finding, orchestrator):
        img = container.get("image")
        if not isinstance(img, dict) or img["uid"] in seen:
            continue
        seen.add(img["uid"])
        result.append(
            compact(
                {
                    "uid": img["uid"],
                    "name": img.get("name"),
                    "type": "Container Image",
                    "namespace": data.get("namespace"),
                    "labels": [f"tag={img['tag']}"] if img.get("tag") else [],
                    "data": {"container": container.get("name"), **data},
                    "role_id": ROLE_AFFECTED,
                    "role": "Affected",
                }
            )
        )
    return result


def touches_node(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> bool:
    """True when the finding concerns a GKE node or VM rather than the cluster or a workload."""
    kubernetes = mapping(finding, "kubernetes")
    kind = text(resource, "type") or ""
    name = text(finding, "resourceName") or text(resource, "name") or ""
    return bool(
        mappings(kubernetes, "nodes")
        or mappings(kubernetes, "nodePools")
        or kind in _VM_TYPES
        or name.startswith("//compute.googleapis.com/")
        or "/nodePools/" in name
    )


def has_workload(finding: Mapping[str, Any]) -> bool:
    """True when the finding names a container, a pod, or a process."""
    kubernetes = mapping(finding, "kubernetes")
    return bool(
        mappings(finding, "containers") or mappings(kubernetes, "pods") or mappings(finding, "processes")
    ) or any(mappings(obj, "containers") for obj in mappings(kubernetes, "objects"))
