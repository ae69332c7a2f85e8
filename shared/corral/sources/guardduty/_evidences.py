"""GuardDuty evidences: processes, containers and their images, devices, API calls, connections, malware."""

from __future__ import annotations

import math
from typing import Any, Final

from corral import ocsf
from corral.sources._core import images
from corral.sources._core.reader import Fields
from corral.sources.guardduty._parts import NOTHING, Parts

_DIRECTIONS: Final = {"INBOUND": 1, "OUTBOUND": 2}
_SHA256: Final = 3
_VIRTUAL: Final = 6
_REGULAR_FILE: Final = 1
_PROCESS_START: Final = "service.runtimeDetails.process.startTime"


def evidences(parts: Parts, orchestrator: str | None, region: str | None) -> list[dict[str, Any]]:
    """Return the finding's evidences, each without empty values (as OCSF wants them)."""
    containers = _containers(parts, orchestrator)
    device = _device(parts.instance, region)
    evidences: list[dict[str, Any]] = []
    process = _process(parts.runtime.at("process")) if "process" in parts.runtime.doc else None
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
    evidences += _action_evidences(parts)
    evidences += _malware_evidences(parts.service)
    if parts.sequence is not NOTHING:
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
    found = []
    cluster = parts.eks.peek_text("name") or parts.ecs.peek_text("name")
    workload, task, container = parts.workload, parts.task, parts.container
    if workload.exists:
        base = _given({"source": "kubernetesWorkloadDetails", "cluster": cluster})
        base.update(_given({"namespace": workload.peek_text("namespace"), "workload": workload.peek_text("name")}))
        found += _listed(workload.objects("containers"), "EKS", base)
    if task.exists:
        base = _given({"source": "ecsClusterDetails.taskDetails", "cluster": cluster})
        base.update(_given({"task": task.peek_text("arn"), "launch_type": task.peek_text("launchType")}))
        found += _listed(task.objects("containers"), "ECS", base)
    if container.exists:
        described = _container(container, orchestrator)
        data = {"source": "containerDetails", "cluster": cluster} if cluster else {"source": "containerDetails"}
        _settings(container, data)
        if described is not None:
            found.append((described, data))
    return found


def _listed(
    items: list[Fields], orchestrator: str, base: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for item in items:
        data = base.copy()
        _settings(item, data)
        described = _container(item, orchestrator)
        if described is not None:
            found.append((described, data))
    return found


def _settings(item: Fields, data: dict[str, Any]) -> None:
    """Add a container's security context and volume mounts, as sent but without empty values."""
    for key, target in (("securityContext", "security_context"), ("volumeMounts", "volume_mounts")):
        value = item.take(key)
        if value is None or value == "":
            continue
        kind = type(value)
        kept = ocsf.shared_prune(value) if kind is dict or kind is list else value
        if kept is value or kept:
            data[target] = kept


def _given(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without its None values (built here: no other value is empty)."""
    return {key: value for key, value in obj.items() if value is not None}


def _container(base: Fields, orchestrator: str | None) -> dict[str, Any] | None:
    image = images.image(base.text("image"), base.text("imageUid"))
    uid, name = base.text("id"), base.text("name")
    container: dict[str, Any] = {}
    if uid:
        container["uid"] = uid
    if name:
        container["name"] = name
    elif image is not None and not uid:
        container["name"] = image["name"]
    elif not uid:
        return None
    if runtime := base.text("containerRuntime"):
        container["runtime"] = runtime
    if orchestrator:
        container["orchestrator"] = orchestrator
    if image is not None:
        container["image"] = image
    return container


def _device(instance: Fields, region: str | None) -> dict[str, Any] | None:
    instance_id = instance.peek_text("instanceId")
    if not instance_id:
        return None
    interfaces = instance.objects("networkInterfaces", limit=1)
    device = {"type_id": _VIRTUAL, "type": "Virtual", "uid": instance_id, "instance_uid": instance_id}
    if region:
        device["region"] = region
    if interfaces and (ip := interfaces[0].ip("privateIpAddress")):
        device["ip"] = ip
    return device


def _process(base: Fields) -> dict[str, Any] | None:
    if not base.exists:
        return None
    path = base.text("executablePath")
    sha256 = base.text("executableSha256")
    user, user_id = base.text("user"), base.integer("userId")
    parent = base.text("parentUuid")
    process = _given(
        {
            "name": base.text("name"),
            "pid": base.integer("pid"),
            "uid": base.text("uuid"),
            "file": _file(path.rsplit("/", 1)[-1] or path, path, sha256) if path else None,
            "user": _given({"name": user, "uid": str(user_id) if user_id is not None else None})
            if user or user_id
            else None,
            "namespace_pid": base.integer("namespacePid"),
            "working_directory": base.text("pwd"),
            "created_time": base.optional_time("startTime", _PROCESS_START),
            "parent_process": {"uid": parent} if parent else None,
        }
    )
    return process if "pid" in process or "uid" in process else None


def _action_evidences(parts: Parts) -> list[dict[str, Any]]:
    found = []
    action = parts.action
    present = action.doc
    if "kubernetesApiCallAction" in present and (k8s := action.at("kubernetesApiCallAction")).exists:
        found.append(_kubernetes_call(parts.k8s.at("kubernetesUserDetails"), k8s))
    if "awsApiCallAction" in present and (api := action.at("awsApiCallAction")).exists:
        found.append(_aws_call(parts.access_key, api))
    if "networkConnectionAction" in present and (net := action.at("networkConnectionAction")).exists:
        found.append(_connection(net))
    if "dnsRequestAction" in present and (domain := action.at("dnsRequestAction").text("domain")):
        found.append({"query": {"hostname": domain}})
    if "portProbeAction" in present:
        for probe in action.at("portProbeAction").objects("portProbeDetails", limit=20):
            remote = _endpoint(probe.at("remoteIpDetails"), None)
            local = _endpoint(probe.at("localIpDetails"), probe.at("localPortDetails"))
            found.append(_given({"src_endpoint": remote, "dst_endpoint": local}))
    return [evidence for evidence in found if evidence]


def _kubernetes_call(user: Fields, base: Fields) -> dict[str, Any]:
    groups = [{"name": g} for g in user.texts("groups")]
    username, user_uid = user.text("username"), user.text("uid")
    source_ips = base.ips("sourceIPs")
    remote = _endpoint(base.at("remoteIpDetails"), None)
    request_uri = base.text("requestUri")
    code = base.integer("statusCode")
    verb = base.text("verb")
    agent = base.text("userAgent")
    data = _data(base, ("namespace", "resource", "subresource", "resourceName", "parameters"))
    call: dict[str, Any] = {}
    if verb:
        call["api"] = {"operation": verb, "response": {"code": code}} if code is not None else {"operation": verb}
    if request_uri or agent:
        call["http_request"] = _given({"url": {"path": request_uri} if request_uri else None, "user_agent": agent})
    if src := remote or ({"ip": source_ips[0]} if source_ips else None):
        call["src_endpoint"] = src
    if username or user_uid:
        call["actor"] = {"user": _given({"name": username, "uid": user_uid, "groups": groups or None})}
    if data:
        call["data"] = data
    return call


def _aws_call(key: Fields, base: Fields) -> dict[str, Any]:
    user = _given(
        {
            "name": key.peek_text("userName"),
            "uid": key.text("principalId"),
            "type": key.text("userType"),
            "credential_uid": key.peek_text("accessKeyId"),
        }
    )
    operation = base.text("api")
    service_name = base.text("serviceName")
    return _given(
        {
            "api": _given({"operation": operation, "service": {"name": service_name} if service_name else None})
            if operation
            else None,
            "src_endpoint": _endpoint(base.at("remoteIpDetails"), None),
            "actor": {"user": user} if "name" in user or "uid" in user else None,
            "data": _data(base, ("callerType", "errorCode", "userAgent")),
        }
    )


def _connection(base: Fields) -> dict[str, Any]:
    direction = base.peek_text("connectionDirection") or ""
    direction_id = _DIRECTIONS.get(direction, 0)
    if direction_id:
        base.mark("connectionDirection")
    remote = _endpoint(base.at("remoteIpDetails"), base.at("remotePortDetails"))
    local = _endpoint(base.at("localIpDetails"), base.at("localPortDetails"))
    src, dst = (local, remote) if direction_id == 2 else (remote, local)
    return _given(
        {
            "connection_info": _given({"direction_id": direction_id, "protocol_name": base.text("protocol")}),
            "src_endpoint": src,
            "dst_endpoint": dst,
        }
    )


def _endpoint(address: Fields, ports: Fields | None) -> dict[str, Any] | None:
    ip = address.ip("ipAddressV4") or address.ip("ipAddressV6")
    port = ports.port("port") if ports else None
    service = ports.peek_text("portName") if ports else None
    if ip is None and not service:
        return None
    if service and ports:
        ports.mark("portName")
    if ip is None:
        return _given({"port": port, "svc_name": service})
    # GuardDuty fills the geolocation of addresses it cannot place (private ones) with
    # placeholders: city and organization UNKNOWN, latitude and longitude 0.0, ASN 0. They are
    # no location, so they stay out of OCSF (and in `unmapped`, as sent).
    doc = address.doc
    city = _known(address, doc, "city", "cityName")
    country = _known(address, doc, "country", "countryCode")
    organization = doc.get("organization")
    asn = organization.get("asn") if isinstance(organization, dict) else None
    asn_number = int(asn) if isinstance(asn, str) and asn.isdigit() and len(asn) < 11 and int(asn) else None
    if asn_number is not None:
        address.mark("organization", "asn")
    endpoint: dict[str, Any] = {"ip": ip}
    if port is not None:
        endpoint["port"] = port
    if service:
        endpoint["svc_name"] = service
    if city or country:
        endpoint["location"] = _location(address, doc, city, country)
    system = _given({"number": asn_number, "name": _known(address, doc, "organization", "asnOrg")})
    if system:
        endpoint["autonomous_system"] = system
    if isp := _known(address, doc, "organization", "isp"):
        endpoint["isp"] = isp
    return endpoint


def _location(address: Fields, doc: dict[str, Any], city: str | None, country: str | None) -> dict[str, Any]:
    location = _given({"city": city, "country": country})
    geo = doc.get("geoLocation")
    if not isinstance(geo, dict):
        return location
    lat, lon = geo.get("lat"), geo.get("lon")
    if lat == 0 and lon == 0:
        return location
    for key, target in (("lat", "lat"), ("lon", "long")):
        value = geo.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            address.mark("geoLocation", key)
            location[target] = float(value)
    return location


def _known(address: Fields, doc: dict[str, Any], parent: str, key: str) -> str | None:
    """The text at `parent.key` unless it is GuardDuty's UNKNOWN placeholder (then not recorded)."""
    node = doc.get(parent)
    value = node.get(key) if isinstance(node, dict) else None
    if not isinstance(value, str) or not value or value.upper() == "UNKNOWN":
        return None
    address.mark(parent, key)
    return value


def _data(base: Fields, names: tuple[str, ...]) -> dict[str, Any] | None:
    data = {name: value for name in names if (value := base.text(name))}
    return data or None


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


def _sequence_container_evidences(sequence: Fields, orchestrator: str | None) -> list[dict[str, Any]]:
    found = []
    for item in sequence.objects("resources"):
        if item.peek_text("resourceType") != "CONTAINER":
            continue
        view = item.at("data", "container")
        image = images.image(view.text("image"), view.text("imageUid"))
        uid, name = item.peek_text("uid"), item.peek_text("name")
        if not (uid or name):
            continue
        container = _given({"uid": uid, "name": name, "orchestrator": orchestrator, "image": image})
        found.append({"container": container, "data": {"sequence_resource": uid or name}})
    return found
