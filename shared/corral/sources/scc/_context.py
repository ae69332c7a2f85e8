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

import contextlib
import ipaddress
import re
from typing import Any, Final

from corral.sources._core import images
from corral.sources.scc._spelling import _SNAKE, EMPTY, camel, objects, string

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
_SHA256: Final = {"algorithm_id": 3, "algorithm": "SHA-256"}

Pairs = list[tuple[dict[str, Any], dict[str, Any]]]


def cluster_of(resource_name: str | None) -> tuple[str, str, str] | None:
    """Return (full name, location, cluster name) when a resource name lies in a GKE cluster."""
    match = _CLUSTER.match(resource_name) if resource_name else None
    return (match.group(1), match.group(2), match.group(3)) if match else None


def labels(obj: dict[str, Any]) -> list[str]:
    """Return SCC `Label` objects ({name, value}) as OCSF `name=value` strings."""
    found = []
    value = obj.get("labels")
    for label in value if isinstance(value, list) else ():
        if isinstance(label, dict) and isinstance(name := label.get("name"), str) and name:
            text = label.get("value")
            found.append(f"{name}={text}" if isinstance(text, str) else name)
    return found


def last_segment(path: str | None) -> str | None:
    """Return the last path segment of a resource name (`//x/projects/p/instances/i` -> `i`)."""
    if not path:
        return None
    return path.rstrip("/").rsplit("/", 1)[-1] or None


def _container(record: dict[str, Any], orchestrator: str | None) -> dict[str, Any] | None:
    name = record.get("name")
    if not (isinstance(name, str) and name):
        return None  # OCSF needs a container uid or name; SCC has no container id (the record stays in unmapped)
    if not _SNAKE.isdisjoint(record):
        record = camel(record)
    container: dict[str, Any] = {"name": name}
    if img := images.image(string(record.get("uri")), string(record.get("imageId"))):
        container["image"] = img
    if orchestrator:
        container["orchestrator"] = orchestrator
    if tags := labels(record):
        container["labels"] = tags
    return container


def _add(found: Pairs, seen: set[tuple[Any, ...]], container: dict[str, Any] | None, data: dict[str, Any]) -> None:
    if container is None:
        return
    img = container.get("image")
    key = (container["name"], tuple(img.items()) if img else None, data.get("pod"), data.get("namespace"))
    if key not in seen:
        seen.add(key)
        found.append((container, data))


def _data(**parts: str | None) -> dict[str, Any]:
    return {k: v for k, v in parts.items() if v}


def containers(finding: dict[str, Any], kubernetes: dict[str, Any], orchestrator: str | None) -> Pairs:
    """Return (OCSF container, context data) for every container the finding names, without repeats."""
    found: Pairs = []
    seen: set[tuple[Any, ...]] = set()
    for i, pod in enumerate(objects(kubernetes, "pods") if kubernetes else ()):
        for j, record in enumerate(objects(pod, "containers")):
            where = f"kubernetes.pods[{i}].containers[{j}]"
            data = _data(pod=string(pod.get("name")), namespace=string(pod.get("ns")), reported_in=where)
            _add(found, seen, _container(record, orchestrator), data)
    for i, obj in enumerate(objects(kubernetes, "objects") if kubernetes else ()):
        for j, record in enumerate(objects(obj, "containers")):
            where = f"kubernetes.objects[{i}].containers[{j}]"
            data = _data(
                workload=string(obj.get("name")),
                kind=string(obj.get("kind")),
                namespace=string(obj.get("ns")),
                reported_in=where,
            )
            _add(found, seen, _container(record, orchestrator), data)
    for i, record in enumerate(objects(finding, "containers")):
        _add(found, seen, _container(record, orchestrator), {"reported_in": f"containers[{i}]"})
    return found


def _integer(value: object) -> int | None:
    """An integer from a JSON number or a protobuf int64 string, else None."""
    if type(value) is str and value.isdigit() and value.isascii():
        return int(value)  # what SCC sends: a protobuf int64 as a string of digits
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _file(binary: dict[str, Any]) -> dict[str, Any] | None:
    path = binary.get("path")
    if not (isinstance(path, str) and path):
        return None
    file: dict[str, Any] = {"name": last_segment(path) or path, "path": path, "type_id": 1, "type": "Regular File"}
    sha256 = binary.get("sha256")
    # A hash of a prefix is not the file's hash; keep it out of `hashes` (it stays in unmapped).
    if isinstance(sha256, str) and sha256 and binary.get("partiallyHashed") is not True:
        file["hashes"] = [{**_SHA256, "value": sha256}]
    size = _integer(binary.get("size"))
    if size is not None and size >= 0:
        file["size"] = size
    return file


def _binary(record: dict[str, Any]) -> dict[str, Any]:
    binary = record.get("binary")
    if not isinstance(binary, dict):
        return EMPTY
    return binary if _SNAKE.isdisjoint(binary) else camel(binary)


def process(record: dict[str, Any]) -> dict[str, Any] | None:
    """Return an OCSF `process` for an SCC process (as `camel()` spells it), or None when it has no pid."""
    pid = _integer(record.get("pid"))
    if pid is None:
        return None
    binary = _binary(record)
    proc: dict[str, Any] = {}
    if name := string(record.get("name")):
        proc["name"] = name
    proc["pid"] = pid
    args = record.get("args")
    args = [v for v in args if isinstance(v, str) and v] if isinstance(args, list) else None
    if args:
        # `args` are kept exactly as sent; joining them is for reading, the list stays in unmapped.
        proc["cmd_line"] = " ".join(args)
    if file := _file(binary):
        proc["file"] = file
        proc["path"] = file["path"]
    if modules := [p for lib in objects(record, "libraries") if (p := string(lib.get("path")))]:
        proc["loaded_modules"] = modules
    if (parent_pid := _integer(record.get("parentPid"))) is not None:
        proc["parent_process"] = {"pid": parent_pid}
    return proc


def _access_evidence(access: dict[str, Any]) -> dict[str, Any] | None:
    principal = string(access.get("principalEmail")) or string(access.get("principalSubject"))
    method = string(access.get("methodName"))
    ip = string(access.get("callerIp"))
    evidence: dict[str, Any] = {}
    if principal:
        evidence["actor"] = {"user": {"name": principal}}
    if method:
        service = string(access.get("serviceName"))
        evidence["api"] = {"operation": method, "service": {"name": service}} if service else {"operation": method}
    if ip:
        with contextlib.suppress(ValueError):
            evidence["src_endpoint"] = {"ip": str(ipaddress.ip_address(ip))}
    return evidence or None


def evidences(finding: dict[str, Any], found: Pairs) -> list[dict[str, Any]]:
    """Return the evidences of a Detection or Compliance Finding: processes, containers, API access."""
    single = found[0][0] if len(found) == 1 else None
    result: list[dict[str, Any]] = []
    attached = False
    for sent in objects(finding, "processes"):
        record = sent if _SNAKE.isdisjoint(sent) else camel(sent)
        proc = process(record)
        if proc is None:
            if file := _file(_binary(record)):
                result.append({"file": file})
            continue
        if single is not None:
            proc["container"] = single
            attached = True
        result.append({"process": proc})
    for container, data in found:
        if not (attached and container is single):
            result.append({"container": container, "data": data or {"reported_in": "containers"}})
    access = finding.get("access")
    if isinstance(access, dict) and (evidence := _access_evidence(camel(access))):
        result.append(evidence)
    return result


def _main_resource(
    resource: dict[str, Any],
    uid: str | None,
    cluster: tuple[str, str, str] | None,
    finding: dict[str, Any],
    provider: str,
) -> dict[str, Any]:
    main: dict[str, Any] = {}
    if uid:
        main["uid"] = uid
    if name := string(resource.get("displayName")) or string(finding.get("assetDisplayName")) or last_segment(uid):
        main["name"] = name
    kind = string(resource.get("type"))
    if kind is None and cluster and uid and cluster[0] == uid.rstrip("/"):
        kind = "container.googleapis.com/Cluster"
    if kind:
        main["type"] = kind
    if location := string(resource.get("location")):
        main["region"] = location
    main.update(provider=provider, role_id=ROLE_TARGET, role="Target")
    return main


def _k8s(
    kind: str, uid: str | None, name: object, ns: object, role_id: int, role: str, tags: list[str] | None = None
) -> dict[str, Any] | None:
    name = string(name)
    if not uid and not name:
        return None
    entry: dict[str, Any] = {}
    if uid:
        entry["uid"] = uid
    if name:
        entry["name"] = name
    entry["type"] = kind
    if isinstance(ns, str) and ns:
        entry["namespace"] = ns
    if tags:
        entry["labels"] = tags
    entry["role_id"] = role_id
    entry["role"] = role
    return entry


def _pods(result: list[dict[str, Any]], kubernetes: dict[str, Any], cluster_uid: str | None) -> None:
    for pod in objects(kubernetes, "pods"):
        ns, name = string(pod.get("ns")), string(pod.get("name"))
        uid = f"{cluster_uid}/k8s/namespaces/{ns}/pods/{name}" if cluster_uid and ns and name else None
        if entry := _k8s("Kubernetes Pod", uid, name, ns, ROLE_AFFECTED, "Affected", labels(pod)):
            result.append(entry)


def _nodes(result: list[dict[str, Any]], kubernetes: dict[str, Any]) -> None:
    pools = objects(kubernetes, "nodePools")
    for pool in pools:
        if entry := _k8s("GKE Node Pool", None, pool.get("name"), None, ROLE_AFFECTED, "Affected"):
            result.append(entry)
    for node in objects(kubernetes, "nodes") + [n for p in pools for n in objects(p, "nodes")]:
        uid = string(node.get("name"))
        if entry := _k8s("Kubernetes Node", uid, last_segment(uid), None, ROLE_AFFECTED, "Affected"):
            result.append(entry)


def _objects(result: list[dict[str, Any]], kubernetes: dict[str, Any]) -> None:
    for obj in objects(kubernetes, "objects"):
        kind = string(obj.get("kind"))
        entry = _k8s(
            f"Kubernetes {kind}" if kind else "Kubernetes Object",
            None,
            obj.get("name"),
            obj.get("ns"),
            ROLE_AFFECTED,
            "Affected",
        )
        if entry and (group := string(obj.get("group"))):
            entry["group"] = {"name": group}
        if entry:
            result.append(entry)
    for role in objects(kubernetes, "roles"):
        kind = "Kubernetes ClusterRole" if role.get("kind") == "CLUSTER_ROLE" else "Kubernetes Role"
        if entry := _k8s(kind, None, role.get("name"), role.get("ns"), ROLE_RELATED, "Related"):
            result.append(entry)
    for binding in objects(kubernetes, "bindings"):
        if entry := _k8s(
            "Kubernetes RoleBinding", None, binding.get("name"), binding.get("ns"), ROLE_RELATED, "Related"
        ):
            result.append(entry)


def resources(
    finding: dict[str, Any], resource: dict[str, Any], kubernetes: dict[str, Any], uid: str | None, provider: str
) -> list[dict[str, Any]]:
    """Return the affected resource `uid`, its GKE cluster, and the Kubernetes objects SCC names."""
    cluster = cluster_of(uid)
    main = _main_resource(resource, uid, cluster, finding, provider)
    result = [main] if "uid" in main or "name" in main else []
    if cluster and cluster[0] != uid:
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
    if kubernetes:
        _pods(result, kubernetes, cluster[0] if cluster else None)
        _nodes(result, kubernetes)
        _objects(result, kubernetes)
    return result


def image_resources(found: Pairs) -> list[dict[str, Any]]:
    """Return each container image as a resource; Vulnerability Findings have no `evidences`."""
    result = []
    seen = set()
    for container, data in found:
        img = container.get("image")
        if not isinstance(img, dict) or img["uid"] in seen:
            continue
        seen.add(img["uid"])
        entry = {"uid": img["uid"]}
        if name := img.get("name"):
            entry["name"] = name
        entry["type"] = "Container Image"
        if namespace := data.get("namespace"):
            entry["namespace"] = namespace
        if tag := img.get("tag"):
            entry["labels"] = [f"tag={tag}"]
        entry["data"] = {"container": container["name"], **data}
        entry.update(role_id=ROLE_AFFECTED, role="Affected")
        result.append(entry)
    return result


def touches_node(kubernetes: dict[str, Any], kind: str, name: str) -> bool:
    """True when the finding concerns a GKE node or VM rather than the cluster or a workload."""
    return bool(
        (kubernetes and (objects(kubernetes, "nodes") or objects(kubernetes, "nodePools")))
        or kind in _VM_TYPES
        or name.startswith("//compute.googleapis.com/")
        or "/nodePools/" in name
    )


def has_workload(finding: dict[str, Any], kubernetes: dict[str, Any]) -> bool:
    """True when the finding names a container, a pod, or a process."""
    if objects(finding, "containers") or objects(finding, "processes"):
        return True
    return bool(kubernetes) and (
        bool(objects(kubernetes, "pods")) or any(objects(obj, "containers") for obj in objects(kubernetes, "objects"))
    )
