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

from corral.sources.scc import _kube
from corral.sources.scc._cloud import region_and_zone
from corral.sources.scc._kube import ROLE_AFFECTED, ROLE_RELATED, Kube, Pairs, dicts, last_segment
from corral.sources.scc._spelling import _SNAKE, EMPTY, camel

_CLUSTER: Final = re.compile(
    r"^(//container\.googleapis\.com/projects/[^/]+/(?:locations|zones)/([^/]+)/clusters/([^/]+))(?:/|$)"
)

_GKE_NAME: Final = "//container.googleapis.com/projects/"
_CLUSTER_KINDS: Final = ("locations", "zones")
GKE_ORCHESTRATOR: Final = "GKE"
CLOUD_RUN_ORCHESTRATOR: Final = "Cloud Run"
ROLE_TARGET: Final = 1
# An IPv4 address as `ipaddress` writes it (decimal octets, no leading zeros): it stays as sent.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def cluster_of(resource_name: str | None) -> tuple[str, str, str] | None:
    """Return (full name, location, cluster name) when a resource name lies in a GKE cluster.

    What `_CLUSTER` matches, by splitting on slashes: a quarter cheaper than the pattern, and most
    SCC findings are on GKE resources.
    """
    if not (resource_name and resource_name.startswith(_GKE_NAME)):
        return None
    # "", "", "container.googleapis.com", "projects", project, kind, location, "clusters", cluster[, rest]
    parts = resource_name.split("/", 9)
    if (
        len(parts) < 9
        or not parts[4]
        or parts[5] not in _CLUSTER_KINDS
        or not parts[6]
        or parts[7] != "clusters"
        or not parts[8]
    ):
        return None
    full = resource_name if len(parts) == 9 else resource_name[: -len(parts[9]) - 1]
    return full, parts[6], parts[8]


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
    """The OCSF file of an SCC `binary` (as sent: its one key with a snake_case spelling is read in both)."""
    path = binary.get("path")
    if not (isinstance(path, str) and path):
        return None
    # `last_segment(path) or path`, inlined: every process has a binary.
    name = path.rstrip("/").rsplit("/", 1)[-1] or path
    file: dict[str, Any] = {"name": name, "path": path, "type_id": 1, "type": "Regular File"}
    sha256 = binary.get("sha256")
    # A hash of a prefix is not the file's hash; keep it out of `hashes` (it stays in unmapped).
    if isinstance(sha256, str) and sha256:
        partial = binary["partiallyHashed"] if "partiallyHashed" in binary else binary.get("partially_hashed")
        if partial is not True:
            file["hashes"] = [{"algorithm_id": 3, "algorithm": "SHA-256", "value": sha256}]
    size = binary.get("size")
    size = int(size) if type(size) is str and size.isdigit() and size.isascii() else _integer(size)
    if size is not None and size >= 0:
        file["size"] = size
    return file


def _binary(record: dict[str, Any]) -> dict[str, Any]:
    binary = record.get("binary")
    return binary if isinstance(binary, dict) else EMPTY


def process(record: dict[str, Any]) -> dict[str, Any] | None:
    """Return an OCSF `process` for an SCC process, or None when it has no pid.

    `record` as sent or as `camel()` spells it: the keys read that have a snake_case spelling
    (`parentPid`, and `binary.partiallyHashed`) are read in both, as `camel()` would give them,
    so that a record is not copied only to rename them.
    """
    pid = record.get("pid")
    # What SCC sends, a protobuf int64 as a string of digits, is read here; anything else by `_integer`.
    pid = int(pid) if type(pid) is str and pid.isdigit() and pid.isascii() else _integer(pid)
    if pid is None:
        return None
    proc: dict[str, Any] = {}
    name = record.get("name")
    if isinstance(name, str) and name:
        proc["name"] = name
    proc["pid"] = pid
    args = record.get("args")
    args = [v for v in args if isinstance(v, str) and v] if isinstance(args, list) else None
    if args:
        # `args` are kept exactly as sent; joining them is for reading, the list stays in unmapped.
        proc["cmd_line"] = " ".join(args)
    binary = record.get("binary")
    if isinstance(binary, dict) and (file := _file(binary)):
        proc["file"] = file
        proc["path"] = file["path"]
    if "libraries" in record and (modules := _paths(record["libraries"])):
        proc["loaded_modules"] = modules
    parent_pid = record["parentPid"] if "parentPid" in record else record.get("parent_pid")
    parent_pid = (
        int(parent_pid)
        if type(parent_pid) is str and parent_pid.isdigit() and parent_pid.isascii()
        else _integer(parent_pid)
    )
    if parent_pid is not None:
        proc["parent_process"] = {"pid": parent_pid}
    return proc


def _paths(libraries: object) -> list[str]:
    return [p for lib in dicts(libraries) if isinstance(p := lib.get("path"), str) and p]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _access_evidence(access: dict[str, Any]) -> dict[str, Any] | None:
    get = access.get
    principal = _text(get("principalEmail")) or _text(get("principalSubject"))
    method = _text(get("methodName"))
    ip = _text(get("callerIp"))
    evidence: dict[str, Any] = {}
    if principal:
        evidence["actor"] = {"user": {"name": principal}}
    if method:
        service = _text(get("serviceName"))
        evidence["api"] = {"operation": method, "service": {"name": service}} if service else {"operation": method}
    if ip and _CANONICAL_IPV4.fullmatch(ip):
        evidence["src_endpoint"] = {"ip": ip}
    elif ip and ":" in ip:  # any other valid address is IPv6 text (`ipaddress` is slow to refuse the rest)
        with contextlib.suppress(ValueError):
            evidence["src_endpoint"] = {"ip": str(ipaddress.ip_address(ip))}
    return evidence or None


def evidences(finding: dict[str, Any], found: Pairs) -> list[dict[str, Any]]:
    """Return the evidences of a Detection or Compliance Finding: processes, containers, API access."""
    single = found[0][0] if len(found) == 1 else None
    result: list[dict[str, Any]] = []
    attached = False
    for record in dicts(finding["processes"]) if "processes" in finding else ():
        proc = process(record)  # reads both spellings itself: the record is not copied
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
    if isinstance(access, dict) and (
        evidence := _access_evidence(access if _SNAKE.isdisjoint(access) else camel(access))
    ):
        result.append(evidence)
    return result


def _main_resource(
    resource: dict[str, Any],
    uid: str | None,
    cluster: tuple[str, str, str] | None,
    finding: dict[str, Any],
    provider: str,
    cloud: dict[str, Any],
) -> dict[str, Any]:
    get = resource.get
    main: dict[str, Any] = {}
    if uid:
        main["uid"] = uid
    name = get("displayName")
    if not (isinstance(name, str) and name):
        name = _text(finding.get("assetDisplayName")) or last_segment(uid)
    if name:
        main["name"] = name
    kind = get("type")
    if not (isinstance(kind, str) and kind):
        kind = "container.googleapis.com/Cluster" if cluster and uid and cluster[0] == uid.rstrip("/") else None
    if kind:
        main["type"] = kind
    location = get("location")
    if isinstance(location, str) and location:
        if provider == "GCP":
            # SCC's `location` of a zonal resource is its zone: the top-level `cloud` split this
            # same location of this same resource (`region_and_zone(location, uid or "")`).
            region, zone = cloud["region"], cloud.get("zone")
        else:
            region, zone = location, None
        main["region"] = region
        if zone:
            main["zone"] = zone
    main["provider"] = provider
    main["role_id"] = ROLE_TARGET
    main["role"] = "Target"
    return main


def resources(
    finding: dict[str, Any],
    resource: dict[str, Any],
    kube: Kube,
    uid: str | None,
    place: tuple[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Return the affected resource `uid`, its GKE cluster, and the Kubernetes objects SCC names.

    `place` is the resource's provider and the finding's `cloud` (worked out from the same resource).
    """
    provider = place[0]
    cluster = cluster_of(uid)
    main = _main_resource(resource, uid, cluster, finding, provider, place[1])
    result = [main] if "uid" in main or "name" in main else []
    if cluster and cluster[0] != uid:
        region, zone = region_and_zone(cluster[1], cluster[0])  # a zonal cluster's location is its zone
        related: dict[str, Any] = {"uid": cluster[0], "name": cluster[2], "type": "container.googleapis.com/Cluster"}
        related["region"] = region
        if zone:
            related["zone"] = zone
        related["provider"] = provider  # set one by one: `update(**kwargs)` builds a dict to copy from
        related["role_id"] = ROLE_RELATED
        related["role"] = "Related"
        result.append(related)
    _kube.resources(result, kube, cluster[0] if cluster else None)
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
        entry["role_id"] = ROLE_AFFECTED
        entry["role"] = "Affected"
        result.append(entry)
    return result
