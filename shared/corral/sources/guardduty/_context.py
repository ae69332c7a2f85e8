"""What a GuardDuty finding is about: resources, evidences, classification, ATT&CK, remediation.

Container context is spread over several vendor objects depending on the protection plan
(EKS audit logs, Runtime Monitoring, ECS, malware scans, attack sequences); this module turns
each of them into OCSF `resources[]` and `evidences[]`, and decides the finding's classification.
"""

from __future__ import annotations

from typing import Any, Final

from corral import traits
from corral.records import NamedTuple
from corral.sources._core.plain import LEAF, MISSING, Node, child_trie, peek, sub, subs, text, view
from corral.sources.guardduty._attacks import attacks
from corral.sources.guardduty._evidences import evidences
from corral.sources.guardduty._parts import Parts

# Tags AWS puts on EKS / ECS-managed instances; self-managed Kubernetes tags are not EKS.
_EKS_TAGS: Final = frozenset({"eks:cluster-name", "aws:eks:cluster-name", "eks:nodegroup-name"})
_ECS_TAGS: Final = frozenset({"AmazonECSManaged", "aws:ecs:clusterName", "aws:ecs:cluster-name"})

_ROLES: Final = {"TARGET": (1, "Target"), "ACTOR": (2, "Actor")}

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

# (reference, text) by family: the reference joined once, not per finding.
_REMEDIATIONS: Final = {family: (_DOCS + path, desc) for family, (path, desc) in _REMEDIATION.items()}

_ORCHESTRATORS: Final = {traits.EKS: "EKS", traits.ECS_EC2: "ECS", traits.ECS_FARGATE: "ECS"}
_MAX_TAGS: Final = 1000
_SEQUENCE_RESOURCE_TEXTS: Final = (
    ("uid", "uid"),
    ("name", "name"),
    ("resourceType", "type"),
    ("region", "region"),
    ("cloudPartition", "cloud_partition"),
)
_TASK_DATA: Final = (
    ("launchType", "launch_type"),
    ("definitionArn", "definition_arn"),
    ("version", "version"),
    ("group", "group"),
)


class Context(NamedTuple):
    """The resource-dependent parts of one finding."""

    service: str
    layer: str
    resources: list[dict[str, Any]]
    evidences: list[dict[str, Any]]
    attacks: list[dict[str, Any]]
    remediation: dict[str, Any]


_new_context: Final = tuple.__new__


def context(parts: Parts, finding_type: str, region: str | None, partition: str | None) -> Context:
    """Return the resources, evidences, classification, ATT&CK and remediation of a finding."""
    service, layer, family = classify(parts, finding_type)
    orchestrator = _ORCHESTRATORS.get(service)
    resources = _resources(parts, region, partition)
    found = evidences(parts, orchestrator, region)
    reference, desc = _REMEDIATIONS[family]
    remediation = {"desc": desc, "references": [reference, _FINDING_TYPES]}
    sequence = parts.sequence
    named = attacks(sequence) if sequence is not MISSING else []  # only attack sequences name any
    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python function around it.
    return _new_context(Context, (service, layer, resources, found, named, remediation))


def classify(parts: Parts, finding_type: str) -> tuple[str, str, str]:
    """Return (container service, layer, remediation family) from the finding's shape."""
    family = _type_family(finding_type)
    rtype = peek(parts.resource, "resourceType") or ""
    tags = parts.instance[0]
    if rtype == "AttackSequence" or finding_type.startswith("AttackSequence:"):
        return _sequence_class(parts.sequence, family)
    runtime = (
        parts.service[0].get("featureName") == "RuntimeMonitoring"  # compared as sent: only a string is equal
        or family == "Runtime"
        or parts.runtime is not MISSING
    )
    has_eks = parts.eks is not MISSING or parts.k8s is not MISSING
    has_ecs = parts.ecs is not MISSING
    has_container = parts.container is not MISSING
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


def _sequence_class(sequence: Node, family: str) -> tuple[str, str, str]:
    if family == "EKS":
        return traits.EKS, traits.PLATFORM, "kubernetes"
    if family == "ECS":
        launch_types = {r.peek_text("data", "ecsTask", "launchType") for r in view(sequence).objects("resources")}
        service = traits.ECS_FARGATE if "FARGATE" in launch_types else traits.ECS_EC2
        return service, traits.APPLICATION, "ecs"
    if family == "S3":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "s3"
    if family == "EC2":
        return traits.NO_SERVICE, traits.INFRASTRUCTURE, "ec2"
    return traits.NO_SERVICE, traits.PLATFORM, "credentials"


def _ecs_service(task: Node) -> str:
    return traits.ECS_FARGATE if task[0].get("launchType") == "FARGATE" else traits.ECS_EC2


def _host_service(instance: dict[str, Any]) -> str:
    """The container service an instance serves, by the tags AWS puts on EKS and ECS-managed ones."""
    tags = instance.get("tags")
    if not isinstance(tags, list):
        return traits.NO_SERVICE
    service = traits.NO_SERVICE
    for tag in tags[:_MAX_TAGS]:
        key = tag.get("key") if isinstance(tag, dict) else None
        if not isinstance(key, str):
            continue
        if key in _EKS_TAGS:
            return traits.EKS
        if key in _ECS_TAGS:
            service = traits.ECS_EC2
    return service


# --- resources -------------------------------------------------------------------------------


def _resources(parts: Parts, region: str | None, partition: str | None) -> list[dict[str, Any]]:
    role = _ROLES.get(peek(parts.service, "resourceRole") or "")
    if role:
        parts.service[1]["resourceRole"] = LEAF
    # What every resource of the finding's own gets last, in this order: a workload has its own role.
    place: dict[str, Any] = {}
    if region:
        place["region"] = region
    if partition:
        place["cloud_partition"] = partition
    stamp = {"role_id": role[0], "role": role[1], **place} if role else place
    resource = parts.resource
    resources: list[dict[str, Any]] = []
    if parts.eks is not MISSING and (found := _resource(parts.eks, "AWS::EKS::Cluster", "arn", "name", stamp)):
        resources.append(found)
    if parts.workload is not MISSING and (found := _workload(parts.workload, place)):
        resources.append(found)
    if parts.ecs is not MISSING and (found := _resource(parts.ecs, "AWS::ECS::Cluster", "arn", "name", stamp)):
        resources.append(found)
    if parts.task is not MISSING and (found := _task(parts.task, stamp)):
        resources.append(found)
    if parts.container is not MISSING and (found := _resource(parts.container, "Container", "id", "name", stamp)):
        resources.append(found)
    if parts.instance is not MISSING and (
        found := _resource(parts.instance, "AWS::EC2::Instance", "instanceId", None, stamp)
    ):
        resources.append(found)
    if parts.access_key is not MISSING and (
        found := _resource(parts.access_key, "AWS::IAM::AccessKey", "accessKeyId", "userName", stamp)
    ):
        resources.append(found)
    present = resource[0]
    if "lambdaDetails" in present:
        lambda_details = sub(resource, "lambdaDetails")
        if found := _resource(lambda_details, "AWS::Lambda::Function", "functionArn", "functionName", stamp):
            resources.append(found)
    if "rdsDbInstanceDetails" in present:
        rds = sub(resource, "rdsDbInstanceDetails")
        if found := _resource(rds, "AWS::RDS::DBInstance", "dbInstanceArn", "dbInstanceIdentifier", stamp):
            resources.append(found)
    if "s3BucketDetails" in present:
        for bucket in subs(resource, "s3BucketDetails"):
            if found := _resource(bucket, "AWS::S3::Bucket", "arn", "name", stamp):
                resources.append(found)
    if "ebsVolumeDetails" in present:
        for volume in subs(sub(resource, "ebsVolumeDetails"), "scannedVolumeDetails"):
            if found := _resource(volume, "AWS::EC2::Volume", "volumeArn", None, stamp):
                resources.append(found)
    # Attack-sequence resources say where they are themselves (or nothing).
    if parts.sequence is not MISSING:
        for item in subs(parts.sequence, "resources"):
            if (named := _sequence_resource(item)) is not None:
                if role and named.get("type") != "Kubernetes Workload":
                    named["role_id"], named["role"] = role
                resources.append(named)
    if not resources and (rtype := text(resource, "resourceType")):
        resources.append(_present({"name": rtype, "type": rtype, "region": region, "cloud_partition": partition}))
    return resources


def _present(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without its None values (the others are non-empty strings or numbers)."""
    return {key: value for key, value in obj.items() if value is not None}


def _resource(node: Node, rtype: str, uid: str, name: str | None, stamp: dict[str, Any]) -> dict[str, Any] | None:
    """The resource at `node` (None when it names none), `stamp` added last."""
    doc, taken = node
    found_uid = doc.get(uid)
    if isinstance(found_uid, str) and found_uid:
        taken[uid] = LEAF
        resource: dict[str, Any] = {"uid": found_uid}
    else:
        resource = {}
    if name:
        value = doc.get(name)
        if isinstance(value, str) and value:
            taken[name] = LEAF
            resource["name"] = value
    tags = _tags(node) if "tags" in doc else None
    zone = text(node, "availabilityZone") if rtype == "AWS::EC2::Instance" else None
    if not resource:
        return None
    resource["type"] = rtype
    if tags:
        resource["tags"] = tags
    if zone:
        resource["zone"] = zone
    resource.update(stamp)
    return resource


def _workload(node: Node, place: dict[str, Any]) -> dict[str, Any] | None:
    doc, taken = node
    kind = text(node, "type")
    uid, name, namespace = doc.get("uid"), doc.get("name"), doc.get("namespace")
    resource: dict[str, Any] = {}
    if isinstance(uid, str) and uid:
        taken["uid"] = LEAF
        resource["uid"] = uid
    if isinstance(name, str) and name:
        taken["name"] = LEAF
        resource["name"] = name
    if isinstance(namespace, str) and namespace:
        taken["namespace"] = LEAF
        resource["namespace"] = namespace
    if "uid" not in resource and "name" not in resource:  # a namespace alone names no workload
        return None
    resource["type"] = "Kubernetes Workload"
    if kind:
        resource["data"] = {"kind": kind}
    resource["role_id"] = 1
    resource["role"] = "Target"
    resource.update(place)
    return resource


def _task(node: Node, stamp: dict[str, Any]) -> dict[str, Any] | None:
    doc, taken = node
    uid = text(node, "arn")
    tags = _tags(node) if "tags" in doc else None
    data = {}
    for key, target in _TASK_DATA:
        value = doc.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            data[target] = value
    if not uid:
        return None
    resource: dict[str, Any] = {"uid": uid, "type": "AWS::ECS::Task"}
    if tags:
        resource["tags"] = tags
    if data:
        resource["data"] = data
    resource.update(stamp)
    return resource


def _sequence_resource(node: Node) -> dict[str, Any] | None:
    doc, taken = node
    resource: dict[str, Any] = {}
    for key, target in _SEQUENCE_RESOURCE_TEXTS:
        value = doc.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            resource[target] = value
    if "data" in doc and (namespace := text(sub(sub(node, "data"), "kubernetesWorkload"), "namespace")):
        resource["namespace"] = namespace
    if "tags" in doc and (tags := _tags(node)):
        resource["tags"] = tags
    return resource if "uid" in resource or "name" in resource else None


def _tags(node: Node) -> list[dict[str, str]]:
    doc, taken = node
    tags: list[dict[str, str]] = []
    items = doc.get("tags")
    if not isinstance(items, list):
        return tags
    for tag in items if len(items) <= _MAX_TAGS else items[:_MAX_TAGS]:
        if isinstance(tag, dict):
            key, value = tag.get("key"), tag.get("value")
            # OCSF key_value_object needs a value; tags with an empty value stay in `unmapped`.
            if isinstance(key, str) and key and isinstance(value, str) and value:
                tags.append({"name": key, "value": value})
    if len(tags) == len(items):
        taken["tags"] = LEAF  # every tag mapped (the usual case): one mark for the list rather than one per tag
    elif tags:
        below = child_trie(taken, "tags")
        for i, tag in enumerate(items[:_MAX_TAGS]):
            if isinstance(tag, dict) and _is_tag(tag.get("key"), tag.get("value")):
                below[i] = LEAF
    return tags


def _is_tag(key: object, value: object) -> bool:
    return isinstance(key, str) and bool(key) and isinstance(value, str) and bool(value)
