"""The Kubernetes side of an SCC finding: its lists read once, its containers, its Kubernetes resources.

`kubernetes` holds `pods[]` (ns, name, labels, containers), `nodes[]`, `nodePools[]` (name,
nodes), `objects[]` (kind, group, ns, name, containers), `roles[]` and `bindings[]`; the finding
itself may carry `containers[]` (Cloud Run and non-pod containers) with `{name, uri, imageId,
labels}`. Each list is filtered to its objects once per finding (`lists`) and every reader
shares that.
"""

from __future__ import annotations

from typing import Any, Final

from corral.sources._core import images
from corral.sources.scc._spelling import _SNAKE, camel

Objects = list[dict[str, Any]]
Kube = tuple[Objects, Objects, Objects, Objects, Objects, Objects]
"""The objects of `kubernetes.pods`, `nodes`, `nodePools`, `objects`, `roles` and `bindings`."""
Pairs = list[tuple[dict[str, Any], dict[str, Any]]]

_NONE: Final[Objects] = []  # the objects of a missing list; never written
NO_KUBE: Final[Kube] = (_NONE, _NONE, _NONE, _NONE, _NONE, _NONE)
# Compute Engine resources (VMs, and the firewalls and addresses around them) are infrastructure.
_VM_TYPES: Final = frozenset({"google.compute.Instance", "compute.googleapis.com/Instance"})
ROLE_AFFECTED: Final = 3
ROLE_RELATED: Final = 4


def dicts(value: object) -> Objects:
    """Return the objects in a list (what SCC sends), skipping anything else; [] for a non-list."""
    if not isinstance(value, list):
        return _NONE
    return [item for item in value if isinstance(item, dict)]


def lists(kubernetes: object) -> Kube:
    """Return the objects of each list of the finding's `kubernetes` (NO_KUBE without one, or an empty one)."""
    if not isinstance(kubernetes, dict) or not kubernetes:
        return NO_KUBE
    get = (kubernetes if _SNAKE.isdisjoint(kubernetes) else camel(kubernetes)).get
    return (
        dicts(get("pods")),
        dicts(get("nodes")),
        dicts(get("nodePools")),
        dicts(get("objects")),
        dicts(get("roles")),
        dicts(get("bindings")),
    )


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


def _add(
    found: Pairs,
    seen: set[tuple[Any, ...]],
    record: dict[str, Any],
    orchestrator: str | None,
    data: dict[str, Any],
    where: tuple[str | None, str | None],
) -> None:
    """Add the OCSF container of an SCC container record with its context `data`, unless it is one already found.

    `where` is the (pod, namespace) of `data`, which the caller knows without looking them up again.
    """
    name = record.get("name")
    if not (isinstance(name, str) and name):
        return  # OCSF needs a container uid or name; SCC has no container id (the record stays in unmapped)
    container: dict[str, Any] = {"name": name}
    # `imageId` as `camel()` would give it (the only key read here that has a snake_case spelling),
    # without copying the record.
    uri, image_id = record.get("uri"), record["imageId"] if "imageId" in record else record.get("image_id")
    uri = uri if isinstance(uri, str) and uri else None
    image_id = image_id if isinstance(image_id, str) and image_id else None
    img = images.image(uri, image_id) if uri or image_id else None
    if img:
        container["image"] = img
    if orchestrator:
        container["orchestrator"] = orchestrator
    if "labels" in record and (tags := labels(record)):
        container["labels"] = tags
    key = (name, tuple(img.items()) if img else None, *where)
    if key not in seen:
        seen.add(key)
        found.append((container, data))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def containers(finding: dict[str, Any], kube: Kube, orchestrator: str | None) -> Pairs:
    """Return (OCSF container, context data) for every container the finding names, without repeats."""
    found: Pairs = []
    seen: set[tuple[Any, ...]] = set()
    for i, pod in enumerate(kube[0]):
        records = pod.get("containers")
        if not (isinstance(records, list) and records):
            continue
        # The pod's own texts, read once for all its containers.
        name, ns = _text(pod.get("name")), _text(pod.get("ns"))
        for j, record in enumerate(item for item in records if isinstance(item, dict)):
            data = {}
            if name:
                data["pod"] = name
            if ns:
                data["namespace"] = ns
            data["reported_in"] = f"kubernetes.pods[{i}].containers[{j}]"
            _add(found, seen, record, orchestrator, data, (name, ns))
    for i, obj in enumerate(kube[3]):
        records = obj.get("containers")
        if not (isinstance(records, list) and records):
            continue
        name, kind, ns = _text(obj.get("name")), _text(obj.get("kind")), _text(obj.get("ns"))
        for j, record in enumerate(item for item in records if isinstance(item, dict)):
            data = {}
            if name:
                data["workload"] = name
            if kind:
                data["kind"] = kind
            if ns:
                data["namespace"] = ns
            data["reported_in"] = f"kubernetes.objects[{i}].containers[{j}]"
            _add(found, seen, record, orchestrator, data, (None, ns))
    if "containers" in finding and (records := finding["containers"]) and isinstance(records, list):
        for i, record in enumerate(item for item in records if isinstance(item, dict)):
            _add(found, seen, record, orchestrator, {"reported_in": f"containers[{i}]"}, (None, None))
    return found


def _k8s(
    kind: str, uid: str | None, name: object, ns: object, role_id: int, role: str, tags: list[str] | None = None
) -> dict[str, Any] | None:
    name = _text(name)
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


def _pods_and_nodes(result: list[dict[str, Any]], kube: Kube, cluster_uid: str | None) -> None:
    for pod in kube[0]:
        ns, name = _text(pod.get("ns")), _text(pod.get("name"))
        uid = f"{cluster_uid}/k8s/namespaces/{ns}/pods/{name}" if cluster_uid and ns and name else None
        if entry := _k8s("Kubernetes Pod", uid, name, ns, ROLE_AFFECTED, "Affected", labels(pod)):
            result.append(entry)
    pools = kube[2]
    for pool in pools:
        if entry := _k8s("GKE Node Pool", None, pool.get("name"), None, ROLE_AFFECTED, "Affected"):
            result.append(entry)
    for node in kube[1] + [n for p in pools for n in dicts(p.get("nodes"))]:
        uid = _text(node.get("name"))
        if entry := _k8s("Kubernetes Node", uid, last_segment(uid), None, ROLE_AFFECTED, "Affected"):
            result.append(entry)


def _objects(result: list[dict[str, Any]], kube: Kube) -> None:
    for obj in kube[3]:
        kind = _text(obj.get("kind"))
        entry = _k8s(
            f"Kubernetes {kind}" if kind else "Kubernetes Object",
            None,
            obj.get("name"),
            obj.get("ns"),
            ROLE_AFFECTED,
            "Affected",
        )
        if entry and (group := _text(obj.get("group"))):
            entry["group"] = {"name": group}
        if entry:
            result.append(entry)
    for role in kube[4]:
        kind = "Kubernetes ClusterRole" if role.get("kind") == "CLUSTER_ROLE" else "Kubernetes Role"
        if entry := _k8s(kind, None, role.get("name"), role.get("ns"), ROLE_RELATED, "Related"):
            result.append(entry)
    for binding in kube[5]:
        if entry := _k8s(
            "Kubernetes RoleBinding", None, binding.get("name"), binding.get("ns"), ROLE_RELATED, "Related"
        ):
            result.append(entry)


def resources(result: list[dict[str, Any]], kube: Kube, cluster_uid: str | None) -> None:
    """Add the Kubernetes objects SCC names (pods, node pools, nodes, objects, roles, bindings) to `result`."""
    if kube is not NO_KUBE:
        _pods_and_nodes(result, kube, cluster_uid)
        _objects(result, kube)


def touches_node(kube: Kube, kind: str, name: str) -> bool:
    """True when the finding concerns a GKE node or VM rather than the cluster or a workload."""
    return bool(
        kube[1] or kube[2] or kind in _VM_TYPES or name.startswith("//compute.googleapis.com/") or "/nodePools/" in name
    )


def _any_object(value: object) -> bool:
    """True when `value` is a list holding an object (`bool(dicts(value))`, without building the list)."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                return True
    return False


def has_workload(finding: dict[str, Any], kube: Kube) -> bool:
    """True when the finding names a container, a pod, or a process."""
    if ("containers" in finding and _any_object(finding["containers"])) or (
        "processes" in finding and _any_object(finding["processes"])
    ):
        return True
    return bool(kube[0]) or any(_any_object(obj.get("containers")) for obj in kube[3])
