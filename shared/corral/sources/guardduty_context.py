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
from corral.ocsf import optional_timestamp_ms
from corral.sources.guardduty_fields import Fields, Path

RESOURCE: Final = ("resource",)
SERVICE: Final = ("service",)
K8S: Final = ("resource", "kubernetesDetails")
WORKLOAD: Final = (*K8S, "kubernetesWorkloadDetails")
EKS: Final = ("resource", "eksClusterDetails")
ECS: Final = ("resource", "ecsClusterDetails")
TASK: Final = (*ECS, "taskDetails")
CONTAINER: Final = ("resource", "containerDetails")
INSTANCE: Final = ("resource", "instanceDetails")
ACCESS_KEY: Final = ("resource", "accessKeyDetails")
ACTION: Final = ("service", "action")
RUNTIME: Final = ("service", "runtimeDetails")
SEQUENCE: Final = ("service", "detection", "sequence")

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


@dataclass(frozen=True, slots=True)
class Context:
    """The resource-dependent parts of one finding."""

    service: str
    layer: str
    resources: list[dict[str, Any]]
    evidences: list[dict[str, Any]]
    attacks: list[dict[str, Any]]
    remediation: dict[str, Any]


def context(fields: Fields, finding_type: str, region: str | None, partition: str | None) -> Context:
    """Return the resources, evidences, classification, ATT&CK and remediation of a finding."""
    service, layer, family = classify(fields, finding_type)
    orchestrator = {traits.EKS: "EKS", traits.ECS_EC2: "ECS", traits.ECS_FARGATE: "ECS"}.get(service)
    resources = _resources(fields, region, partition)
    evidences = _evidences(fields, orchestrator, region)
    path, desc = _REMEDIATION[family]
    remediation = {"desc": desc, "references": [_DOCS + path, _FINDING_TYPES]}
    return Context(service, layer, resources, evidences, _attacks(fields), remediation)


def classify(fields: Fields, finding_type: str) -> tuple[str, str, str]:
    """Return (container service, layer, remediation family) from the finding's shape."""
    family = _type_family(finding_type)
    rtype = fields.peek_text(*RESOURCE, "resourceType") or ""
    tags = _tag_keys(fields, (*INSTANCE, "tags"))
    if rtype == "AttackSequence" or finding_type.startswith("AttackSequence:"):
        return _sequence_class(fields, family)
    runtime = (
        fields.peek_text(*SERVICE, "featureName") == "RuntimeMonitoring"
        or family == "Runtime"
        or fields.mapping(*RUNTIME) is not None
    )
    has_eks = fields.mapping(*EKS) is not None or fields.mapping(*K8S) is not None
    has_ecs = fields.mapping(*ECS) is not None
    has_container = fields.mapping(*CONTAINER) is not None
    if runtime:
        if has_eks:
            return traits.EKS, traits.APPLICATION, "runtime"
        if has_ecs:
            return _ecs_service(fields), traits.APPLICATION, "runtime"
        layer = traits.APPLICATION if has_container else traits.INFRASTRUCTURE
        return _host_service(tags), layer, "runtime"
    if has_eks:
        return traits.EKS, traits.PLATFORM, "kubernetes"
    if has_ecs:
        return _ecs_service(fields), traits.INFRASTRUCTURE, "ecs"
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


def _sequence_class(fields: Fields, family: str) -> tuple[str, str, str]:
    if family == "EKS":
        return traits.EKS, traits.PLATFORM, "kubernetes"
    if family == "ECS":
        launch_types = {
            fields.peek_text(*SEQUENCE, "resources", i, "data", "ecsTask", "launchType")
            for i in fields.objects(*SEQUENCE, "resources")
        }
        service = traits.ECS_FARGATE if "FARGATE" in launch_types else traits.ECS_EC2
        return service, traits.APPLICATION, "ecs"
    if family == "S3":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "s3"
    if family == "EC2":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "ec2"
    return traits.NO_SERVICE, traits.PLATFORM, "credentials"


def _ecs_service(fields: Fields) -> str:
    return traits.ECS_FARGATE if fields.peek_text(*TASK, "launchType") == "FARGATE" else traits.ECS_EC2


def _host_service(tag_keys: frozenset[str]) -> str:
    if tag_keys & _EKS_TAGS:
        return traits.EKS
    if tag_keys & _ECS_TAGS:
        return traits.ECS_EC2
    return traits.NO_SERVICE


def _tag_keys(fields: Fields, path: Path) -> frozenset[str]:
    keys = (fields.raw(*path, i, "key") for i in fields.objects(*path))
    return frozenset(key for key in keys if isinstance(key, str))


# --- resources -------------------------------------------------------------------------------


def _resources(fields: Fields, region: str | None, partition: str | None) -> list[dict[str, Any]]:
    role = _ROLES.get(fields.peek_text(*SERVICE, "resourceRole") or "")
    if role:
        fields.mark(*SERVICE, "resourceRole")
    found = [
        _resource(fields, EKS, "AWS::EKS::Cluster", uid="arn"),
        _workload(fields),
        _resource(fields, ECS, "AWS::ECS::Cluster", uid="arn"),
        _task(fields),
        _resource(fields, CONTAINER, "Container", uid="id"),
        _resource(fields, INSTANCE, "AWS::EC2::Instance", uid="instanceId", name=None),
        _resource(fields, ACCESS_KEY, "AWS::IAM::AccessKey", uid="accessKeyId", name="userName"),
        _resource(
            fields, ("resource", "lambdaDetails"), "AWS::Lambda::Function", uid="functionArn", name="functionName"
        ),
        _resource(
            fields,
            ("resource", "rdsDbInstanceDetails"),
            "AWS::RDS::DBInstance",
            uid="dbInstanceArn",
            name="dbInstanceIdentifier",
        ),
    ]
    for i in fields.objects("resource", "s3BucketDetails"):
        found.append(_resource(fields, ("resource", "s3BucketDetails", i), "AWS::S3::Bucket", uid="arn"))
    for i in fields.objects("resource", "ebsVolumeDetails", "scannedVolumeDetails"):
        base = ("resource", "ebsVolumeDetails", "scannedVolumeDetails", i)
        found.append(_resource(fields, base, "AWS::EC2::Volume", uid="volumeArn", name=None))
    for i in fields.objects(*SEQUENCE, "resources"):
        found.append(_sequence_resource(fields, (*SEQUENCE, "resources", i)))
    resources = [r for r in found if r is not None]
    for resource in resources:
        if role and resource.get("type") != "Kubernetes Workload" and "role_id" not in resource:
            resource["role_id"], resource["role"] = role
        resource.setdefault("region", region)
        resource.setdefault("cloud_partition", partition)
    if not resources:
        rtype = fields.text(*RESOURCE, "resourceType")
        if rtype:
            resources.append({"name": rtype, "type": rtype, "region": region, "cloud_partition": partition})
    return resources


def _resource(fields: Fields, base: Path, rtype: str, *, uid: str, name: str | None = "name") -> dict[str, Any] | None:
    if fields.mapping(*base) is None:
        return None
    resource = {
        "uid": fields.text(*base, uid),
        "name": fields.text(*base, name) if name else None,
        "type": rtype,
        "tags": _tags(fields, (*base, "tags")),
    }
    if rtype == "AWS::EC2::Instance":
        resource["zone"] = fields.text(*base, "availabilityZone")
    return resource if resource["uid"] or resource["name"] else None


def _workload(fields: Fields) -> dict[str, Any] | None:
    if fields.mapping(*WORKLOAD) is None:
        return None
    kind = fields.text(*WORKLOAD, "type")
    resource = {
        "uid": fields.text(*WORKLOAD, "uid"),
        "name": fields.text(*WORKLOAD, "name"),
        "namespace": fields.text(*WORKLOAD, "namespace"),
        "type": "Kubernetes Workload",
        "data": {"kind": kind} if kind else None,
        "role_id": 1,
        "role": "Target",
    }
    return resource if resource["uid"] or resource["name"] else None


def _task(fields: Fields) -> dict[str, Any] | None:
    if fields.mapping(*TASK) is None:
        return None
    data = {
        "launch_type": fields.text(*TASK, "launchType"),
        "definition_arn": fields.text(*TASK, "definitionArn"),
        "version": fields.text(*TASK, "version"),
        "group": fields.text(*TASK, "group"),
    }
    resource = {
        "uid": fields.text(*TASK, "arn"),
        "type": "AWS::ECS::Task",
        "tags": _tags(fields, (*TASK, "tags")),
        "data": {k: v for k, v in data.items() if v},
    }
    return resource if resource["uid"] else None


def _sequence_resource(fields: Fields, base: Path) -> dict[str, Any] | None:
    resource = {
        "uid": fields.text(*base, "uid"),
        "name": fields.text(*base, "name"),
        "type": fields.text(*base, "resourceType"),
        "region": fields.text(*base, "region"),
        "cloud_partition": fields.text(*base, "cloudPartition"),
        "namespace": fields.text(*base, "data", "kubernetesWorkload", "namespace"),
        "tags": _tags(fields, (*base, "tags")),
    }
    return resource if resource["uid"] or resource["name"] else None


def _tags(fields: Fields, path: Path) -> list[dict[str, str]]:
    tags = []
    for i in fields.objects(*path):
        key, value = fields.peek_text(*path, i, "key"), fields.peek_text(*path, i, "value")
        # OCSF key_value_object needs a value; tags with an empty value stay in `unmapped`.
        if key and value:
            fields.mark(*path, i)
            tags.append({"name": key, "value": value})
    return tags


# --- evidences -------------------------------------------------------------------------------


def _evidences(fields: Fields, orchestrator: str | None, region: str | None) -> list[dict[str, Any]]:
    containers = _containers(fields, orchestrator)
    device = _device(fields, region)
    evidences: list[dict[str, Any]] = []
    process = _process(fields)
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
    evidences += _action_evidences(fields)
    evidences += _malware_evidences(fields)
    evidences += _sequence_container_evidences(fields, orchestrator)
    return evidences


def _process_container(
    containers: list[tuple[dict[str, Any], dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    # Only the container GuardDuty names as the resource, or the only one, ran the process.
    for pair in containers:
        if pair[1].get("source") == "containerDetails":
            return pair
    return containers[0] if len(containers) == 1 else None


def _containers(fields: Fields, orchestrator: str | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    cluster = fields.peek_text(*EKS, "name") or fields.peek_text(*ECS, "name")
    for i in fields.objects(*WORKLOAD, "containers"):
        base = (*WORKLOAD, "containers", i)
        data = {
            "source": "kubernetesWorkloadDetails",
            "cluster": cluster,
            "namespace": fields.peek_text(*WORKLOAD, "namespace"),
            "workload": fields.peek_text(*WORKLOAD, "name"),
            "security_context": fields.take(*base, "securityContext"),
            "volume_mounts": fields.take(*base, "volumeMounts"),
        }
        found.append((_container(fields, base, "EKS"), data))
    for i in fields.objects(*TASK, "containers"):
        base = (*TASK, "containers", i)
        data = {
            "source": "ecsClusterDetails.taskDetails",
            "cluster": cluster,
            "task": fields.peek_text(*TASK, "arn"),
            "launch_type": fields.peek_text(*TASK, "launchType"),
            "security_context": fields.take(*base, "securityContext"),
            "volume_mounts": fields.take(*base, "volumeMounts"),
        }
        found.append((_container(fields, base, "ECS"), data))
    if fields.mapping(*CONTAINER) is not None:
        data = {
            "source": "containerDetails",
            "cluster": cluster,
            "security_context": fields.take(*CONTAINER, "securityContext"),
            "volume_mounts": fields.take(*CONTAINER, "volumeMounts"),
        }
        found.append((_container(fields, CONTAINER, orchestrator), data))
    return [(c, {k: v for k, v in d.items() if v is not None}) for c, d in found if c is not None]


def _container(fields: Fields, base: Path, orchestrator: str | None) -> dict[str, Any] | None:
    image = _image(fields, base)
    uid, name = fields.text(*base, "id"), fields.text(*base, "name")
    if not (uid or name):
        name = image["name"] if image else None
    if not (uid or name):
        return None
    return {
        "uid": uid,
        "name": name,
        "runtime": fields.text(*base, "containerRuntime"),
        "orchestrator": orchestrator,
        "image": image,
    }


def _image(fields: Fields, base: Path) -> dict[str, Any] | None:
    ref = fields.text(*base, "image")
    digest = fields.text(*base, "imageUid")
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


def _device(fields: Fields, region: str | None) -> dict[str, Any] | None:
    instance_id = fields.peek_text(*INSTANCE, "instanceId")
    if not instance_id:
        return None
    return {
        "type_id": _VIRTUAL,
        "type": "Virtual",
        "uid": instance_id,
        "instance_uid": instance_id,
        "region": region,
        "ip": fields.ip(*INSTANCE, "networkInterfaces", 0, "privateIpAddress"),
    }


def _process(fields: Fields) -> dict[str, Any] | None:
    base = (*RUNTIME, "process")
    if fields.mapping(*base) is None:
        return None
    name = fields.text(*base, "name")
    path = fields.text(*base, "executablePath")
    sha256 = fields.text(*base, "executableSha256")
    file = None
    if path:
        file = {
            "name": path.rsplit("/", 1)[-1] or path,
            "path": path,
            "type_id": _REGULAR_FILE,
            "hashes": [{"algorithm_id": _SHA256, "algorithm": "SHA-256", "value": sha256}] if sha256 else None,
        }
    user, user_id = fields.text(*base, "user"), fields.integer(*base, "userId")
    process = {
        "name": name,
        "pid": fields.integer(*base, "pid"),
        "uid": fields.text(*base, "uuid"),
        "file": file,
        "user": {"name": user, "uid": str(user_id) if user_id is not None else None} if user or user_id else None,
        "namespace_pid": fields.integer(*base, "namespacePid"),
        "working_directory": fields.text(*base, "pwd"),
        "created_time": _optional_time(fields, (*base, "startTime")),
        "parent_process": {"uid": parent} if (parent := fields.text(*base, "parentUuid")) else None,
    }
    if process["pid"] is None and process["uid"] is None:
        return None
    return process


def _optional_time(fields: Fields, path: Path) -> int | None:
    try:
        value = optional_timestamp_ms(fields.raw(*path), ".".join(map(str, path)))
    except MalformedEventError:
        return None  # an odd nested time stays in `unmapped` rather than failing the finding
    if value is not None:
        fields.mark(*path)
    return value


def _action_evidences(fields: Fields) -> list[dict[str, Any]]:
    found = []
    k8s = (*ACTION, "kubernetesApiCallAction")
    if fields.mapping(*k8s) is not None:
        found.append(_kubernetes_call(fields, k8s))
    api = (*ACTION, "awsApiCallAction")
    if fields.mapping(*api) is not None:
        found.append(_aws_call(fields, api))
    net = (*ACTION, "networkConnectionAction")
    if fields.mapping(*net) is not None:
        found.append(_connection(fields, net))
    dns = (*ACTION, "dnsRequestAction")
    if domain := fields.text(*dns, "domain"):
        found.append({"query": {"hostname": domain}})
    probes = (*ACTION, "portProbeAction", "portProbeDetails")
    for i in fields.objects(*probes, limit=20):
        remote = _endpoint(fields, (*probes, i, "remoteIpDetails"), None)
        local = _endpoint(fields, (*probes, i, "localIpDetails"), (*probes, i, "localPortDetails"))
        found.append({"src_endpoint": remote, "dst_endpoint": local})
    return found


def _kubernetes_call(fields: Fields, base: Path) -> dict[str, Any]:
    user = (*K8S, "kubernetesUserDetails")
    groups = [{"name": g} for g in fields.texts(*user, "groups")]
    username, user_uid = fields.text(*user, "username"), fields.text(*user, "uid")
    source_ips = fields.ips(*base, "sourceIPs")
    remote = _endpoint(fields, (*base, "remoteIpDetails"), None)
    src = remote or ({"ip": source_ips[0]} if source_ips else None)
    request_uri = fields.text(*base, "requestUri")
    code = fields.integer(*base, "statusCode")
    verb = fields.text(*base, "verb")
    return {
        "api": {"operation": verb, "response": {"code": code} if code is not None else None} if verb else None,
        "http_request": {
            "url": {"path": request_uri} if request_uri else None,
            "user_agent": fields.text(*base, "userAgent"),
        },
        "src_endpoint": src,
        "actor": {"user": {"name": username, "uid": user_uid, "groups": groups}} if username or user_uid else None,
        "data": _data(fields, base, ("namespace", "resource", "subresource", "resourceName", "parameters")),
    }


def _aws_call(fields: Fields, base: Path) -> dict[str, Any]:
    key = ACCESS_KEY
    user = {
        "name": fields.peek_text(*key, "userName"),
        "uid": fields.text(*key, "principalId"),
        "type": fields.text(*key, "userType"),
        "credential_uid": fields.peek_text(*key, "accessKeyId"),
    }
    operation = fields.text(*base, "api")
    service_name = fields.text(*base, "serviceName")
    return {
        "api": {"operation": operation, "service": {"name": service_name} if service_name else None}
        if operation
        else None,
        "src_endpoint": _endpoint(fields, (*base, "remoteIpDetails"), None),
        "actor": {"user": user} if user["name"] or user["uid"] else None,
        "data": _data(fields, base, ("callerType", "errorCode", "userAgent")),
    }


def _connection(fields: Fields, base: Path) -> dict[str, Any]:
    direction = fields.peek_text(*base, "connectionDirection") or ""
    direction_id = _DIRECTIONS.get(direction, 0)
    if direction_id:
        fields.mark(*base, "connectionDirection")
    remote = _endpoint(fields, (*base, "remoteIpDetails"), (*base, "remotePortDetails"))
    local = _endpoint(fields, (*base, "localIpDetails"), (*base, "localPortDetails"))
    src, dst = (local, remote) if direction_id == 2 else (remote, local)
    return {
        "connection_info": {"direction_id": direction_id, "protocol_name": fields.text(*base, "protocol")},
        "src_endpoint": src,
        "dst_endpoint": dst,
    }


def _endpoint(fields: Fields, ip_base: Path, port_base: Path | None) -> dict[str, Any] | None:
    ip = fields.ip(*ip_base, "ipAddressV4") or fields.ip(*ip_base, "ipAddressV6")
    port = fields.port(*port_base, "port") if port_base else None
    service = fields.peek_text(*port_base, "portName") if port_base else None
    if ip is None and not service:
        return None
    if service and port_base:
        fields.mark(*port_base, "portName")
    if ip is None:
        return {"port": port, "svc_name": service}
    city, country = fields.text(*ip_base, "city", "cityName"), fields.text(*ip_base, "country", "countryCode")
    asn = fields.raw(*ip_base, "organization", "asn")
    asn_number = int(asn) if isinstance(asn, str) and asn.isdigit() and len(asn) < 11 else None
    if asn_number is not None:
        fields.mark(*ip_base, "organization", "asn")
    return {
        "ip": ip,
        "port": port,
        "svc_name": service,
        "location": {
            "city": city,
            "country": country,
            "lat": fields.number(*ip_base, "geoLocation", "lat"),
            "long": fields.number(*ip_base, "geoLocation", "lon"),
        }
        if city or country
        else None,
        "autonomous_system": {"number": asn_number, "name": fields.text(*ip_base, "organization", "asnOrg")},
        "isp": fields.text(*ip_base, "organization", "isp"),
    }


def _data(fields: Fields, base: Path, names: tuple[str, ...]) -> dict[str, Any] | None:
    data = {name: value for name in names if (value := fields.text(*base, name))}
    return data or None


def _malware_evidences(fields: Fields) -> list[dict[str, Any]]:
    found = []
    names = ("service", "ebsVolumeScanDetails", "scanDetections", "threatDetectedByName", "threatNames")
    for i in fields.objects(*names, limit=50):
        threat = fields.text(*names, i, "name")
        for j in fields.objects(*names, i, "filePaths", limit=50):
            base = (*names, i, "filePaths", j)
            file = _file(fields, base, "filePath", "fileName")
            if file:
                found.append({"file": file, "data": {"threat_name": threat, "volume": fields.text(*base, "volumeArn")}})
    threats = ("service", "malwareScanDetails", "threats")
    for i in fields.objects(*threats, limit=50):
        threat = fields.text(*threats, i, "name")
        for j in fields.objects(*threats, i, "itemPaths", limit=50):
            file = _file(fields, (*threats, i, "itemPaths", j), "nestedItemPath", None)
            if file:
                found.append({"file": file, "data": {"threat_name": threat}})
    return found


def _file(fields: Fields, base: Path, path_key: str, name_key: str | None) -> dict[str, Any] | None:
    path = fields.text(*base, path_key)
    name = (fields.text(*base, name_key) if name_key else None) or (path.rsplit("/", 1)[-1] if path else None)
    if not name:
        return None
    sha256 = fields.text(*base, "hash")
    return {
        "name": name,
        "path": path,
        "type_id": _REGULAR_FILE,
        "hashes": [{"algorithm_id": _SHA256, "algorithm": "SHA-256", "value": sha256}] if sha256 else None,
    }


def _sequence_container_evidences(fields: Fields, orchestrator: str | None) -> list[dict[str, Any]]:
    found = []
    for i in fields.objects(*SEQUENCE, "resources"):
        base = (*SEQUENCE, "resources", i)
        if fields.peek_text(*base, "resourceType") != "CONTAINER":
            continue
        image = _image(fields, (*base, "data", "container"))
        uid, name = fields.peek_text(*base, "uid"), fields.peek_text(*base, "name")
        if not (uid or name):
            continue
        container = {"uid": uid, "name": name, "orchestrator": orchestrator, "image": image}
        found.append({"container": container, "data": {"sequence_resource": uid or name}})
    return found


# --- ATT&CK ------------------------------------------------------------------------------------


def _attacks(fields: Fields) -> list[dict[str, Any]]:
    """ATT&CK tactics/techniques that attack sequences name; GuardDuty gives none elsewhere."""
    attacks: list[dict[str, Any]] = []
    seen: set[str] = set()
    lists: list[Path] = [(*SEQUENCE, "sequenceIndicators")]
    lists += [(*SEQUENCE, "signals", i, "signalIndicators") for i in fields.objects(*SEQUENCE, "signals")]
    for path in lists:
        for i in fields.objects(*path):
            key = fields.peek_text(*path, i, "key")
            parse = {"ATTACK_TACTIC": _tactic, "ATTACK_TECHNIQUE": _technique}.get(key or "")
            if parse is None:
                continue
            values = fields.raw(*path, i, "values")
            if not isinstance(values, list):
                continue
            parsed = [parse(v) if isinstance(v, str) else None for v in values]
            for value, attack in zip(values, parsed, strict=True):
                if attack is not None and value not in seen:
                    seen.add(value)
                    attacks.append(attack)
            if all(a is not None for a in parsed):
                fields.mark(*path, i, "values")
                fields.mark(*path, i, "key")
    return attacks


def _tactic(value: str) -> dict[str, Any] | None:
    match = _TACTIC_ID.match(value.strip())
    if match:
        return {"tactic": {"uid": match.group(1), "name": match.group(2)}}
    uid = _TACTICS.get(re.sub(r"[\s_-]", "", value).lower())
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
