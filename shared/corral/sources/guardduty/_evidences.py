"""GuardDuty evidences: processes, containers and their images, devices, API calls, connections, malware."""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf
from corral.sources._core import images
from corral.sources._core.plain import (
    ABSENT,
    LEAF,
    MISSING,
    Node,
    child_trie,
    optional_time,
    peek,
    sub,
    subs,
    text,
    texts_at,
    view,
)
from corral.sources._core.reader import Fields, _is_ip
from corral.sources.guardduty._actions import action_evidences
from corral.sources.guardduty._parts import Parts

_SHA256: Final = 3
_VIRTUAL: Final = 6
_REGULAR_FILE: Final = 1
_PROCESS_START: Final = "service.runtimeDetails.process.startTime"
_WORKLOAD_DATA: Final = (("namespace", "namespace"), ("name", "workload"))
_TASK_DATA: Final = (("arn", "task"), ("launchType", "launch_type"))
_MAX_CONTAINERS: Final = 1000  # as `subs` reads them
# Image shapes by (reference, digest), shared: never handed out, only copied.
_IMAGES: dict[tuple[str | None, str | None], dict[str, Any] | None] = {}
_MAX_IMAGES: Final = 4096
_UNSEEN: Final[Any] = object()
# (container, data) pairs, as the evidences take them.
_Described = list[tuple[dict[str, Any], dict[str, Any]]]
_Names = tuple[tuple[str, str], ...]  # (vendor key, OCSF name) pairs
_PROCESS_TEXTS: Final = ("executablePath", "executableSha256", "user", "parentUuid", "name", "uuid", "pwd")


def evidences(parts: Parts, orchestrator: str | None, region: str | None) -> list[dict[str, Any]]:
    """Return the finding's evidences, each without empty values (as OCSF wants them)."""
    containers = _containers(parts, orchestrator)
    device = _device(parts.instance, region) if parts.instance is not MISSING else None
    evidences: list[dict[str, Any]] = []
    process = _process(sub(parts.runtime, "process")) if "process" in parts.runtime[0] else None
    if process is not None:
        chosen = _process_container(containers)
        evidence: dict[str, Any] = {"process": process}
        if device is not None:
            evidence["device"] = device
        if chosen is not None:
            process["container"], evidence["data"] = chosen
            containers = [c for c in containers if c is not chosen]
        evidences.append(evidence)
        device = None
    for container, data in containers:
        evidence = {"container": container, "data": data}
        if device is not None:
            evidence["device"] = device
        evidences.append(evidence)
    if device is not None and not containers:
        evidences.append({"device": device})
    if parts.action is not MISSING:
        evidences += action_evidences(parts)
    service = parts.service[0]
    if "ebsVolumeScanDetails" in service or "malwareScanDetails" in service:
        evidences += _malware_evidences(view(parts.service))
    if parts.sequence is not MISSING:
        evidences += _sequence_container_evidences(parts.sequence, orchestrator)
    return evidences


def _process_container(
    containers: list[tuple[dict[str, Any], dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    # Only the container GuardDuty names as the resource, or the only one, ran the process.
    for pair in containers:
        if pair[1].get("source") == "containerDetails":
            return pair
    return containers[0] if len(containers) == 1 else None


def _containers(parts: Parts, orchestrator: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    workload, task, container = parts.workload, parts.task, parts.container
    if workload is MISSING and task is MISSING and container is MISSING:
        return found
    cluster = peek(parts.eks, "name") or peek(parts.ecs, "name")
    if workload is not MISSING and "containers" in workload[0]:
        _listed(workload, "EKS", _base("kubernetesWorkloadDetails", cluster, workload[0], _WORKLOAD_DATA), found)
    if task is not MISSING and "containers" in task[0]:
        _listed(task, "ECS", _base("ecsClusterDetails.taskDetails", cluster, task[0], _TASK_DATA), found)
    if container is not MISSING:
        data = {"source": "containerDetails", "cluster": cluster} if cluster else {"source": "containerDetails"}
        _settings(container, data)
        if (described := _container(container, orchestrator)) is not None:
            found.append((described, data))
    return found


def _base(source: str, cluster: str | None, owner: dict[str, Any], names: _Names) -> dict[str, Any]:
    """The `data` every container of a workload or task shares: where it was listed, and in what."""
    base = {"source": source, "cluster": cluster} if cluster else {"source": source}
    for key, target in names:
        value = owner.get(key)
        if isinstance(value, str) and value:
            base[target] = value
    return base


def _listed(owner: Node, orchestrator: str, base: dict[str, Any], found: _Described) -> None:
    """Add the containers listed in `owner` (`subs(owner, "containers")`, read in the same pass)."""
    items = owner[0]["containers"]
    if not isinstance(items, list):
        return
    below = child_trie(owner[1], "containers")
    for i, item in enumerate(items[:_MAX_CONTAINERS]):
        if not isinstance(item, dict):
            continue
        taken = below.get(i)
        if taken is None:
            taken = below[i] = {}
        elif taken is LEAF:
            taken = {}
        data = base.copy()
        node = (item, taken)
        if "securityContext" in item or "volumeMounts" in item:
            _settings(node, data)
        if (described := _container(node, orchestrator)) is not None:
            found.append((described, data))


def _settings(item: Node, data: dict[str, Any]) -> None:
    """Add a container's security context and volume mounts, as sent but without empty values."""
    doc, taken = item
    for key, target in (("securityContext", "security_context"), ("volumeMounts", "volume_mounts")):
        value = doc.get(key)
        if value is None:
            continue
        taken[key] = LEAF
        if value == "":
            continue
        kind = type(value)
        kept = ocsf.shared_prune(value) if kind is dict or kind is list else value
        if kept is value or kept:
            data[target] = kept


def _given(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without its None values (built here: no other value is empty)."""
    return {key: value for key, value in obj.items() if value is not None}


def _container(node: Node, orchestrator: str | None) -> dict[str, Any] | None:
    # texts_at(node, ("image", "imageUid", "id", "name")), inlined: one per container listed.
    doc, taken = node
    reference = doc.get("image")
    if isinstance(reference, str) and reference:
        taken["image"] = LEAF
    else:
        reference = None
    digest = doc.get("imageUid")
    if isinstance(digest, str) and digest:
        taken["imageUid"] = LEAF
    else:
        digest = None
    uid = doc.get("id")
    if isinstance(uid, str) and uid:
        taken["id"] = LEAF
    else:
        uid = None
    name = doc.get("name")
    if isinstance(name, str) and name:
        taken["name"] = LEAF
    else:
        name = None
    image = _image(reference, digest) if reference or digest else None
    container: dict[str, Any] = {}
    if uid:
        container["uid"] = uid
    if name:
        container["name"] = name
    elif image is not None and not uid:
        container["name"] = image["name"]
    elif not uid:
        return None
    runtime = doc.get("containerRuntime")  # read only for a container there is
    if isinstance(runtime, str) and runtime:
        taken["containerRuntime"] = LEAF
        container["runtime"] = runtime
    if orchestrator:
        container["orchestrator"] = orchestrator
    if image is not None:
        container["image"] = image
    return container


def _image(reference: str | None, digest: str | None) -> dict[str, Any] | None:
    """`images.image(reference, digest)`, each pair parsed once: a deployment runs a bounded set of images."""
    key = (reference, digest)
    shape = _IMAGES.get(key, _UNSEEN)
    if shape is _UNSEEN:
        shape = images.image(reference, digest)
        if len(_IMAGES) < _MAX_IMAGES:
            _IMAGES[key] = shape
    return None if shape is None else shape.copy()  # each finding its own: callers may add to it


def _device(instance: Node, region: str | None) -> dict[str, Any] | None:
    instance_id = peek(instance, "instanceId")
    if not instance_id:
        return None
    device = {"type_id": _VIRTUAL, "type": "Virtual", "uid": instance_id, "instance_uid": instance_id}
    if region:
        device["region"] = region
    interfaces = instance[0].get("networkInterfaces")
    first = interfaces[0] if isinstance(interfaces, list) and interfaces else None
    if isinstance(first, dict):  # the first interface's address: the instance's own
        ip = first.get("privateIpAddress")
        if _is_ip(ip):
            child_trie(child_trie(instance[1], "networkInterfaces"), 0)["privateIpAddress"] = LEAF
            device["ip"] = ip
    return device


def _process(node: Node) -> dict[str, Any] | None:
    doc, taken = node
    if doc is ABSENT:
        return None
    found = texts_at(node, _PROCESS_TEXTS)
    # The integers `Fields.integer` would read, inlined: pid, userId, namespacePid.
    pid = doc.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool):
        taken["pid"] = LEAF
    else:
        pid = None
    user_id = doc.get("userId")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        taken["userId"] = LEAF
    else:
        user_id = None
    namespace_pid = doc.get("namespacePid")
    if isinstance(namespace_pid, int) and not isinstance(namespace_pid, bool):
        taken["namespacePid"] = LEAF
    else:
        namespace_pid = None
    process: dict[str, Any] = {}
    get = found.get
    if name := get("name"):
        process["name"] = name
    if pid is not None:
        process["pid"] = pid
    if uuid := get("uuid"):
        process["uid"] = uuid
    if path := get("executablePath"):
        process["file"] = _file(path.rsplit("/", 1)[-1] or path, path, get("executableSha256"))
    user = get("user")
    if user or user_id:  # a user id 0 alone names nobody
        owner = {"name": user} if user else {}
        if user_id is not None:
            owner["uid"] = str(user_id)
        process["user"] = owner
    if namespace_pid is not None:
        process["namespace_pid"] = namespace_pid
    if pwd := get("pwd"):
        process["working_directory"] = pwd
    if "startTime" in doc and (started := optional_time(node, "startTime", _PROCESS_START)) is not None:
        process["created_time"] = started
    if parent := get("parentUuid"):
        process["parent_process"] = {"uid": parent}
    return process if pid is not None or uuid else None


def _malware_evidences(service: Fields) -> list[dict[str, Any]]:
    found = []
    present = service.doc
    if "ebsVolumeScanDetails" in present:
        found += _volume_threats(service.at("ebsVolumeScanDetails", "scanDetections", "threatDetectedByName"))
    if "malwareScanDetails" not in present:
        return found
    for threat in service.at("malwareScanDetails").objects("threats", limit=50):
        threat_name = threat.text("name")
        for item in threat.objects("itemPaths", limit=50):
            file = _scanned_file(item, "nestedItemPath", None)
            if file:
                found.append({"file": file, "data": {"threat_name": threat_name}} if threat_name else {"file": file})
    return found


def _volume_threats(detections: Fields) -> list[dict[str, Any]]:
    found = []
    for threat in detections.objects("threatNames", limit=50):
        threat_name = threat.text("name")
        for item in threat.objects("filePaths", limit=50):
            file = _scanned_file(item, "filePath", "fileName")
            if file:
                data = _given({"threat_name": threat_name, "volume": item.text("volumeArn")})
                found.append({"file": file, "data": data} if data else {"file": file})
    return found


def _scanned_file(base: Fields, path_key: str, name_key: str | None) -> dict[str, Any] | None:
    path = base.text(path_key)
    name = (base.text(name_key) if name_key else None) or (path.rsplit("/", 1)[-1] if path else None)
    sha256 = base.text("hash") if name else None
    return _file(name, path, sha256) if name else None


def _file(name: str, path: str | None, sha256: str | None) -> dict[str, Any]:
    file: dict[str, Any] = {"name": name}
    if path:
        file["path"] = path
    file["type_id"] = _REGULAR_FILE
    if sha256:
        file["hashes"] = [{"algorithm_id": _SHA256, "algorithm": "SHA-256", "value": sha256}]
    return file


def _sequence_container_evidences(sequence: Node, orchestrator: str | None) -> list[dict[str, Any]]:
    found = []
    for item in subs(sequence, "resources"):
        if item[0].get("resourceType") != "CONTAINER":
            continue
        view = sub(sub(item, "data"), "container")
        image = images.image(text(view, "image"), text(view, "imageUid"))
        uid, name = peek(item, "uid"), peek(item, "name")
        if not (uid or name):
            continue
        container = _given({"uid": uid, "name": name, "orchestrator": orchestrator, "image": image})
        found.append({"container": container, "data": {"sequence_resource": uid or name}})
    return found
