"""What a GuardDuty finding is about: resources, evidences, classification, ATT&CK, remediation.

Container context is spread over several vendor objects depending on the protection plan
(EKS audit logs, Runtime Monitoring, ECS, malware scans, attack sequences); this module turns
each of them into OCSF `resources[]` and `evidences[]`, and decides the finding's classification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from corral import traits
from corral.errors import MalformedEventError
from corral.sources.guardduty_fields import Fields, timestamp_ms

# Tags AWS puts on EKS / ECS-managed instances; self-managed Kubernetes tags are not EKS.
_EKS_TAGS: Final = frozenset({"eks:cluster-name", "aws:eks:cluster-name", "eks:nodegroup-name"})
_ECS_TAGS: Final = frozenset({"AmazonECSManaged", "aws:ecs:clusterName", "aws:ecs:cluster-name"})

_ROLES: Final = {"TARGET": (1, "Target"), "ACTOR": (2, "Actor")}
_DIRECTIONS: Final = {"INBOUND": 1, "OUTBOUND": 2}
_SHA256: Final = 3
_VIRTUAL: Final = 6
_REGULAR_FILE: Final = 1

# ATT&CK Enterprise tactics by name, for attack-sequence indicators that name a tactic.
_TACTICS: Final = {
    "reconnaissance": "TA0043",
    "resourcedevelopment": "TA0042",
    "initialaccess": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilegeescalation": "TA0004",
    "defenseevasion": "TA0005",
    "credentialaccess": "TA0006",
    "discovery": "TA0007",
    "lateralmovement": "TA0008",
    "collection": "TA0009",
    "commandandcontrol": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}
_TACTIC_ID: Final = re.compile(r"^(TA\d{4})\s*-\s*(.+)$")
_TECHNIQUE: Final = re.compile(r"^(T\d{4})(\.\d{3})?\s*-\s*([^:]+?)(?:\s*:\s*(.+))?$")
_TACTIC_NAME_NOISE: Final = re.compile(r"[\s_-]")

_DOCS: Final = "https://docs.aws.amazon.com/guardduty/latest/ug/"
_FINDING_TYPES: Final = _DOCS + "guardduty_finding-types-active.html"
_REMEDIATION: Final = {
    "kubernetes": (
        "guardduty-remediate-kubernetes.html",
        "Review the Kubernetes user, workload and API call; revoke or rotate the credentials involved, "
        "remove unwanted workloads or role bindings, and restrict access to the cluster API.",
    ),
    "runtime": (
        "guardduty-remediate-runtime-monitoring.html",
        "Isolate the affected container, pod, task or instance, investigate the process and its image, "
        "and replace the workload from a known-good image.",
    ),
    "ecs": (
        "compromised-ecs.html",
        "Stop or isolate the affected ECS task, check its task definition and image for malicious content, "
        "and redeploy from a known-good image.",
    ),
    "container": (
        "remediate-compromised-standalone-container.html",
        "Isolate the affected container, preserve evidence, and rebuild it from a trusted image.",
    ),
    "ec2": (
        "compromised-ec2.html",
        "Isolate the instance, capture evidence (snapshots, memory), investigate how it was compromised, "
        "and replace it from a known-good image.",
    ),
    "credentials": (
        "compromised-creds.html",
        "Review the principal's recent activity, rotate or revoke the credentials, and remove any "
        "permissions or resources the attacker created.",
    ),
    "s3": (
        "compromised-s3.html",
        "Review the bucket's access policy and recent access, revoke unexpected access, and rotate the "
        "credentials involved.",
    ),
    "rds": (
        "guardduty-remediate-compromised-database-rds.html",
        "Review the database login activity, rotate the database user's password and restrict network access.",
    ),
    "lambda": (
        "remediate-lambda-protection-finding-types.html",
        "Review the function's code, layers and network activity, and redeploy it from a trusted source.",
    ),
    "other": (
        "guardduty_remediate.html",
        "Review the finding details and follow the GuardDuty remediation guidance for its resource type.",
    ),
}


_ORCHESTRATORS: Final = {traits.EKS: "EKS", traits.ECS_EC2: "ECS", traits.ECS_FARGATE: "ECS"}
_PROCESS_START: Final = "service.runtimeDetails.process.startTime"
_MAX_TAGS: Final = 1000


@dataclass(frozen=True, slots=True)
class Context:
    """The resource-dependent parts of one finding."""

    service: str
    layer: str
    resources: list[dict[str, Any]]
    evidences: list[dict[str, Any]]
    attacks: list[dict[str, Any]]
    remediation: dict[str, Any]


class Parts:
    """Views of the vendor objects a finding's context is read from (each may be missing)."""

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

    def __init__(self, fields: Fields) -> None:
        """Look up each object once, in the finding `fields` wraps."""
        self.resource = resource = fields.at("resource")
        self.service = service = fields.at("service")
        self.k8s = resource.at("kubernetesDetails")
        self.workload = self.k8s.at("kubernetesWorkloadDetails")
        self.eks = resource.at("eksClusterDetails")
        self.ecs = resource.at("ecsClusterDetails")
        self.task = self.ecs.at("taskDetails")
        self.container = resource.at("containerDetails")
        self.instance = resource.at("instanceDetails")
        self.access_key = resource.at("accessKeyDetails")
        self.action = service.at("action")
        self.runtime = service.at("runtimeDetails")
        self.sequence = service.at("detection", "sequence")


def context(fields: Fields, finding_type: str, region: str | None, partition: str | None) -> Context:
    """Return the resources, evidences, classification, ATT&CK and remediation of a finding."""
    parts = Parts(fields)
    service, layer, family = classify(parts, finding_type)
    orchestrator = _ORCHESTRATORS.get(service)
    resources = _resources(parts, region, partition)
    evidences = _evidences(parts, orchestrator, region)
    path, desc = _REMEDIATION[family]
    remediation = {"desc": desc, "references": [_DOCS + path, _FINDING_TYPES]}
    return Context(service, layer, resources, evidences, _attacks(parts.sequence), remediation)


def classify(parts: Parts, finding_type: str) -> tuple[str, str, str]:
    """Return (container service, layer, remediation family) from the finding's shape."""
    family = _type_family(finding_type)
    rtype = parts.resource.peek_text("resourceType") or ""
    tags = _tag_keys(parts.instance)
    if rtype == "AttackSequence" or finding_type.startswith("AttackSequence:"):
        return _sequence_class(parts.sequence, family)
    runtime = (
        parts.service.peek_text("featureName") == "RuntimeMonitoring" or family == "Runtime" or parts.runtime.exists
    )
    has_eks = parts.eks.exists or parts.k8s.exists
    has_ecs = parts.ecs.exists
    has_container = parts.container.exists
    if runtime:
        if has_eks:
            return traits.EKS, traits.APPLICATION, "runtime"
        if has_ecs:
            return _ecs_service(parts.task), traits.APPLICATION, "runtime"
        layer = traits.APPLICATION if has_container else traits.INFRASTRUCTURE
        return _host_service(tags), layer, "runtime"
    if has_eks:
        return traits.EKS, traits.PLATFORM, "kubernetes"
    if has_ecs:
        return _ecs_service(parts.task), traits.INFRASTRUCTURE, "ecs"
    if has_container or rtype == "Container":
        return _host_service(tags), traits.APPLICATION, "container"
    if rtype == "Instance":
        return _host_service(tags), traits.INFRASTRUCTURE, "ec2"
    if rtype in ("S3Bucket", "S3Object") or family == "S3":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "s3"
    if rtype == "AccessKey" or family.startswith("IAM"):
        return traits.NO_SERVICE, traits.PLATFORM, "credentials"
    if rtype.startswith("RDS") or family == "RDS":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "rds"
    if rtype == "Lambda" or family == "Lambda":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "lambda"
    return traits.NO_SERVICE, traits.INFRASTRUCTURE, "other"


def _type_family(finding_type: str) -> str:
    # ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact
    _, _, rest = finding_type.partition(":")
    return rest.partition("/")[0]


def _sequence_class(sequence: Fields, family: str) -> tuple[str, str, str]:
    if family == "EKS":
        return traits.EKS, traits.PLATFORM, "kubernetes"
    if family == "ECS":
        launch_types = {r.peek_text("data", "ecsTask", "launchType") for r in sequence.objects("resources")}
        service = traits.ECS_FARGATE if "FARGATE" in launch_types else traits.ECS_EC2
        return service, traits.APPLICATION, "ecs"
    if family == "S3":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "s3"
    if family == "EC2":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "ec2"
    return traits.NO_SERVICE, traits.PLATFORM, "credentials"


def _ecs_service(task: Fields) -> str:
    return traits.ECS_FARGATE if task.peek_text("launchType") == "FARGATE" else traits.ECS_EC2


def _host_service(tag_keys: frozenset[str]) -> str:
    if tag_keys & _EKS_TAGS:
        return traits.EKS
    if tag_keys & _ECS_TAGS:
        return traits.ECS_EC2
    return traits.NO_SERVICE


def _tag_keys(owner: Fields) -> frozenset[str]:
    tags = owner.raw("tags")
    if not isinstance(tags, list):
        return frozenset()
    keys = (tag.get("key") for tag in tags[:_MAX_TAGS] if isinstance(tag, dict))
    return frozenset(key for key in keys if isinstance(key, str))


# --- resources -------------------------------------------------------------------------------


def _resources(parts: Parts, region: str | None, partition: str | None) -> list[dict[str, Any]]:
    role = _ROLES.get(parts.service.peek_text("resourceRole") or "")
    if role:
        parts.service.mark("resourceRole")
    resource = parts.resource
    found = [
        _resource(parts.eks, "AWS::EKS::Cluster", uid="arn"),
        _workload(parts.workload),
        _resource(parts.ecs, "AWS::ECS::Cluster", uid="arn"),
        _task(parts.task),
        _resource(parts.container, "Container", uid="id"),
        _resource(parts.instance, "AWS::EC2::Instance", uid="instanceId", name=None),
        _resource(parts.access_key, "AWS::IAM::AccessKey", uid="accessKeyId", name="userName"),
        _resource(resource.at("lambdaDetails"), "AWS::Lambda::Function", uid="functionArn", name="functionName"),
        _resource(
            resource.at("rdsDbInstanceDetails"),
            "AWS::RDS::DBInstance",
            uid="dbInstanceArn",
            name="dbInstanceIdentifier",
        ),
    ]
    for bucket in resource.objects("s3BucketDetails"):
        found.append(_resource(bucket, "AWS::S3::Bucket", uid="arn"))
    for volume in resource.at("ebsVolumeDetails").objects("scannedVolumeDetails"):
        found.append(_resource(volume, "AWS::EC2::Volume", uid="volumeArn", name=None))
    for item in parts.sequence.objects("resources"):
        found.append(_sequence_resource(item))
    resources = [r for r in found if r is not None]
    for r in resources:
        if role and r.get("type") != "Kubernetes Workload" and "role_id" not in r:
            r["role_id"], r["role"] = role
        r.setdefault("region", region)
        r.setdefault("cloud_partition", partition)
    if not resources:
        rtype = resource.text("resourceType")
        if rtype:
            resources.append({"name": rtype, "type": rtype, "region": region, "cloud_partition": partition})
    return resources


def _resource(base: Fields, rtype: str, *, uid: str, name: str | None = "name") -> dict[str, Any] | None:
    if not base.exists:
        return None
    resource = {
        "uid": base.text(uid),
        "name": base.text(name) if name else None,
        "type": rtype,
        "tags": _tags(base),
    }
    if rtype == "AWS::EC2::Instance":
        resource["zone"] = base.text("availabilityZone")
    return resource if resource["uid"] or resource["name"] else None


def _workload(workload: Fields) -> dict[str, Any] | None:
    if not workload.exists:
        return None
    kind = workload.text("type")
    resource = {
        "uid": workload.text("uid"),
        "name": workload.text("name"),
        "namespace": workload.text("namespace"),
        "type": "Kubernetes Workload",
        "data": {"kind": kind} if kind else None,
        "role_id": 1,
        "role": "Target",
    }
    return resource if resource["uid"] or resource["name"] else None


def _task(task: Fields) -> dict[str, Any] | None:
    if not task.exists:
        return None
    data = {
        "launch_type": task.text("launchType"),
        "definition_arn": task.text("definitionArn"),
        "version": task.text("version"),
        "group": task.text("group"),
    }
    resource = {
        "uid": task.text("arn"),
        "type": "AWS::ECS::Task",
        "tags": _tags(task),
        "data": {k: v for k, v in data.items() if v},
    }
    return resource if resource["uid"] else None


def _sequence_resource(base: Fields) -> dict[str, Any] | None:
    resource = {
        "uid": base.text("uid"),
        "name": base.text("name"),
        "type": base.text("resourceType"),
        "region": base.text("region"),
        "cloud_partition": base.text("cloudPartition"),
        "namespace": base.at("data", "kubernetesWorkload").text("namespace"),
        "tags": _tags(base),
    }
    return resource if resource["uid"] or resource["name"] else None


def _tags(owner: Fields) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    items = owner.raw("tags")
    if not isinstance(items, list):
        return tags
    for i, tag in enumerate(items[:_MAX_TAGS]):
        if not isinstance(tag, dict):
            continue
        key, value = tag.get("key"), tag.get("value")
        # OCSF key_value_object needs a value; tags with an empty value stay in `unmapped`.
        if isinstance(key, str) and key and isinstance(value, str) and value:
            owner.mark("tags", i)
            tags.append({"name": key, "value": value})
    return tags


# --- evidences -------------------------------------------------------------------------------


def _evidences(parts: Parts, orchestrator: str | None, region: str | None) -> list[dict[str, Any]]:
    containers = _containers(parts, orchestrator)
    device = _device(parts.instance, region)
    evidences: list[dict[str, Any]] = []
    process = _process(parts.runtime.at("process"))
    if process is not None:
        chosen = _process_container(containers)
        data = None
        if chosen is not None:
            process["container"], data = chosen
            containers = [c for c in containers if c is not chosen]
        evidences.append({"process": process, "device": device, "data": data})
        device = None
    for container, data in containers:
        evidences.append({"container": container, "data": data, "device": device})
    if device is not None and not containers:
        evidences.append({"device": device})
    evidences += _action_evidences(parts)
    evidences += _malware_evidences(parts.service)
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
    workload, task = parts.workload, parts.task
    for item in workload.objects("containers"):
        data = {
            "source": "kubernetesWorkloadDetails",
            "cluster": cluster,
            "namespace": workload.peek_text("namespace"),
            "workload": workload.peek_text("name"),
            "security_context": item.take("securityContext"),
            "volume_mounts": item.take("volumeMounts"),
        }
        found.append((_container(item, "EKS"), data))
    for item in task.objects("containers"):
        data = {
            "source": "ecsClusterDetails.taskDetails",
            "cluster": cluster,
            "task": task.peek_text("arn"),
            "launch_type": task.peek_text("launchType"),
            "security_context": item.take("securityContext"),
            "volume_mounts": item.take("volumeMounts"),
        }
        found.append((_container(item, "ECS"), data))
    container = parts.container
    if container.exists:
        data = {
            "source": "containerDetails",
            "cluster": cluster,
            "security_context": container.take("securityContext"),
            "volume_mounts": container.take("volumeMounts"),
        }
        found.append((_container(container, orchestrator), data))
    return [(c, {k: v for k, v in d.items() if v is not None}) for c, d in found if c is not None]


def _container(base: Fields, orchestrator: str | None) -> dict[str, Any] | None:
    image = _image(base)
    uid, name = base.text("id"), base.text("name")
    if not (uid or name):
        name = image["name"] if image else None
    if not (uid or name):
        return None
    return {
        "uid": uid,
        "name": name,
        "runtime": base.text("containerRuntime"),
        "orchestrator": orchestrator,
        "image": image,
    }


def _image(base: Fields) -> dict[str, Any] | None:
    ref = base.text("image")
    digest = base.text("imageUid")
    if not ref:
        return {"uid": digest} if digest else None
    image = parse_image(ref)
    if digest:
        image["uid"] = digest
    return image


def parse_image(ref: str) -> dict[str, Any]:
    """Split an image reference `repo[:tag][@digest]`; `uid` is the digest, else the reference.

    Example:
        >>> parse_image("registry.example/shop/web:1.2@sha256:ab")
        {'uid': 'sha256:ab', 'name': 'registry.example/shop/web', 'tag': '1.2'}
    """
    name, _, digest = ref.partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return {"uid": digest or ref, "name": name or ref, "tag": tag}


def _device(instance: Fields, region: str | None) -> dict[str, Any] | None:
    instance_id = instance.peek_text("instanceId")
    if not instance_id:
        return None
    interfaces = instance.objects("networkInterfaces", limit=1)
    return {
        "type_id": _VIRTUAL,
        "type": "Virtual",
        "uid": instance_id,
        "instance_uid": instance_id,
        "region": region,
        "ip": interfaces[0].ip("privateIpAddress") if interfaces else None,
    }


def _process(base: Fields) -> dict[str, Any] | None:
    if not base.exists:
        return None
    name = base.text("name")
    path = base.text("executablePath")
    sha256 = base.text("executableSha256")
    file = None
    if path:
        file = {
            "name": path.rsplit("/", 1)[-1] or path,
            "path": path,
            "type_id": _REGULAR_FILE,
            "hashes": [{"algorithm_id": _SHA256, "algorithm": "SHA-256", "value": sha256}] if sha256 else None,
        }
    user, user_id = base.text("user"), base.integer("userId")
    process = {
        "name": name,
        "pid": base.integer("pid"),
        "uid": base.text("uuid"),
        "file": file,
        "user": {"name": user, "uid": str(user_id) if user_id is not None else None} if user or user_id else None,
        "namespace_pid": base.integer("namespacePid"),
        "working_directory": base.text("pwd"),
        "created_time": _optional_time(base, "startTime"),
        "parent_process": {"uid": parent} if (parent := base.text("parentUuid")) else None,
    }
    if process["pid"] is None and process["uid"] is None:
        return None
    return process


def _optional_time(base: Fields, key: str) -> int | None:
    raw = base.raw(key)
    if raw is None or raw == "":
        return None
    try:
        value = timestamp_ms(raw, _PROCESS_START)
    except MalformedEventError:
        return None  # an odd nested time stays in `unmapped` rather than failing the finding
    base.mark(key)
    return value


def _action_evidences(parts: Parts) -> list[dict[str, Any]]:
    found = []
    action = parts.action
    k8s = action.at("kubernetesApiCallAction")
    if k8s.exists:
        found.append(_kubernetes_call(parts.k8s.at("kubernetesUserDetails"), k8s))
    api = action.at("awsApiCallAction")
    if api.exists:
        found.append(_aws_call(parts.access_key, api))
    net = action.at("networkConnectionAction")
    if net.exists:
        found.append(_connection(net))
    if domain := action.at("dnsRequestAction").text("domain"):
        found.append({"query": {"hostname": domain}})
    for probe in action.at("portProbeAction").objects("portProbeDetails", limit=20):
        remote = _endpoint(probe.at("remoteIpDetails"), None)
        local = _endpoint(probe.at("localIpDetails"), probe.at("localPortDetails"))
        found.append({"src_endpoint": remote, "dst_endpoint": local})
    return found


def _kubernetes_call(user: Fields, base: Fields) -> dict[str, Any]:
    groups = [{"name": g} for g in user.texts("groups")]
    username, user_uid = user.text("username"), user.text("uid")
    source_ips = base.ips("sourceIPs")
    remote = _endpoint(base.at("remoteIpDetails"), None)
    src = remote or ({"ip": source_ips[0]} if source_ips else None)
    request_uri = base.text("requestUri")
    code = base.integer("statusCode")
    verb = base.text("verb")
    return {
        "api": {"operation": verb, "response": {"code": code} if code is not None else None} if verb else None,
        "http_request": {
            "url": {"path": request_uri} if request_uri else None,
            "user_agent": base.text("userAgent"),
        },
        "src_endpoint": src,
        "actor": {"user": {"name": username, "uid": user_uid, "groups": groups}} if username or user_uid else None,
        "data": _data(base, ("namespace", "resource", "subresource", "resourceName", "parameters")),
    }


def _aws_call(key: Fields, base: Fields) -> dict[str, Any]:
    user = {
        "name": key.peek_text("userName"),
        "uid": key.text("principalId"),
        "type": key.text("userType"),
        "credential_uid": key.peek_text("accessKeyId"),
    }
    operation = base.text("api")
    service_name = base.text("serviceName")
    return {
        "api": {"operation": operation, "service": {"name": service_name} if service_name else None}
        if operation
        else None,
        "src_endpoint": _endpoint(base.at("remoteIpDetails"), None),
        "actor": {"user": user} if user["name"] or user["uid"] else None,
        "data": _data(base, ("callerType", "errorCode", "userAgent")),
    }


def _connection(base: Fields) -> dict[str, Any]:
    direction = base.peek_text("connectionDirection") or ""
    direction_id = _DIRECTIONS.get(direction, 0)
    if direction_id:
        base.mark("connectionDirection")
    remote = _endpoint(base.at("remoteIpDetails"), base.at("remotePortDetails"))
    local = _endpoint(base.at("localIpDetails"), base.at("localPortDetails"))
    src, dst = (local, remote) if direction_id == 2 else (remote, local)
    return {
        "connection_info": {"direction_id": direction_id, "protocol_name": base.text("protocol")},
        "src_endpoint": src,
        "dst_endpoint": dst,
    }


def _endpoint(address: Fields, ports: Fields | None) -> dict[str, Any] | None:
    ip = address.ip("ipAddressV4") or address.ip("ipAddressV6")
    port = ports.port("port") if ports else None
    service = ports.peek_text("portName") if ports else None
    if ip is None and not service:
        return None
    if service and ports:
        ports.mark("portName")
    if ip is None:
        return {"port": port, "svc_name": service}
    city, country = address.at("city").text("cityName"), address.at("country").text("countryCode")
    organization = address.at("organization")
    asn = organization.raw("asn")
    asn_number = int(asn) if isinstance(asn, str) and asn.isdigit() and len(asn) < 11 else None
    if asn_number is not None:
        organization.mark("asn")
    location = None
    if city or country:
        geo = address.at("geoLocation")
        location = {"city": city, "country": country, "lat": geo.number("lat"), "long": geo.number("lon")}
    return {
        "ip": ip,
        "port": port,
        "svc_name": service,
        "location": location,
        "autonomous_system": {"number": asn_number, "name": organization.text("asnOrg")},
        "isp": organization.text("isp"),
    }


def _data(base: Fields, names: tuple[str, ...]) -> dict[str, Any] | None:
    data = {name: value for name in names if (value := base.text(name))}
    return data or None


def _malware_evidences(service: Fields) -> list[dict[str, Any]]:
    found = []
    detections = service.at("ebsVolumeScanDetails", "scanDetections", "threatDetectedByName")
    for threat in detections.objects("threatNames", limit=50):
        threat_name = threat.text("name")
        for item in threat.objects("filePaths", limit=50):
            file = _file(item, "filePath", "fileName")
            if file:
                found.append({"file": file, "data": {"threat_name": threat_name, "volume": item.text("volumeArn")}})
    for threat in service.at("malwareScanDetails").objects("threats", limit=50):
        threat_name = threat.text("name")
        for item in threat.objects("itemPaths", limit=50):
            file = _file(item, "nestedItemPath", None)
            if file:
                found.append({"file": file, "data": {"threat_name": threat_name}})
    return found


def _file(base: Fields, path_key: str, name_key: str | None) -> dict[str, Any] | None:
    path = base.text(path_key)
    name = (base.text(name_key) if name_key else None) or (path.rsplit("/", 1)[-1] if path else None)
    if not name:
        return None
    sha256 = base.text("hash")
    return {
        "name": name,
        "path": path,
        "type_id": _REGULAR_FILE,
        "hashes": [{"algorithm_id": _SHA256, "algorithm": "SHA-256", "value": sha256}] if sha256 else None,
    }


def _sequence_container_evidences(sequence: Fields, orchestrator: str | None) -> list[dict[str, Any]]:
    found = []
    for item in sequence.objects("resources"):
        if item.peek_text("resourceType") != "CONTAINER":
            continue
        image = _image(item.at("data", "container"))
        uid, name = item.peek_text("uid"), item.peek_text("name")
        if not (uid or name):
            continue
        container = {"uid": uid, "name": name, "orchestrator": orchestrator, "image": image}
        found.append({"container": container, "data": {"sequence_resource": uid or name}})
    return found


# --- ATT&CK ------------------------------------------------------------------------------------


def _attacks(sequence: Fields) -> list[dict[str, Any]]:
    """ATT&CK tactics/techniques that attack sequences name; GuardDuty gives none elsewhere."""
    attacks: list[dict[str, Any]] = []
    seen: set[str] = set()
    indicators = sequence.objects("sequenceIndicators")
    for signal in sequence.objects("signals"):
        indicators += signal.objects("signalIndicators")
    for indicator in indicators:
        parse = _PARSERS.get(indicator.peek_text("key") or "")
        if parse is None:
            continue
        values = indicator.raw("values")
        if not isinstance(values, list):
            continue
        parsed = [parse(v) if isinstance(v, str) else None for v in values]
        for value, attack in zip(values, parsed, strict=True):
            if attack is not None and value not in seen:
                seen.add(value)
                attacks.append(attack)
        if all(a is not None for a in parsed):
            indicator.mark("values")
            indicator.mark("key")
    return attacks


def _tactic(value: str) -> dict[str, Any] | None:
    match = _TACTIC_ID.match(value.strip())
    if match:
        return {"tactic": {"uid": match.group(1), "name": match.group(2)}}
    uid = _TACTICS.get(_TACTIC_NAME_NOISE.sub("", value).lower())
    return {"tactic": {"uid": uid, "name": value}} if uid else None


def _technique(value: str) -> dict[str, Any] | None:
    match = _TECHNIQUE.match(value.strip())
    if not match:
        # A bare technique name is what the source says; no id is invented for it.
        return {"technique": {"name": value}} if value.strip() else None
    uid, sub, name, sub_name = match.groups()
    attack: dict[str, Any] = {"technique": {"uid": uid, "name": name}}
    if sub:
        attack["sub_technique"] = {"uid": uid + sub, "name": sub_name or name}
    return attack


_PARSERS: Final = {"ATTACK_TACTIC": _tactic, "ATTACK_TECHNIQUE": _technique}
