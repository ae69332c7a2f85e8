"""The resources of an Inspector finding: ECR images, EC2 instances and the clusters their tags name.

Read as plain dicts with locals, recording into the finding's trie what the `plain` readers
(`text`, `texts`, `integer`, `optional_time`, `sub`, `subs`) would; a trie node is made only where
something is recorded below it (an empty node and a missing one leave the same `unmapped`).
"""

from __future__ import annotations

from typing import Any, Final

from corral import traits
from corral.sources._core import images
from corral.sources._core.plain import LEAF, Node, optional_time
from corral.sources._core.reader import Trie
from corral.sources.inspector._read import child, texts

# Tags AWS puts on EKS nodes and ECS container instances, naming their cluster.
_CLUSTER_TAGS: Final = (
    ("eks:cluster-name", "AWS::EKS::Cluster", traits.EKS),
    ("aws:eks:cluster-name", "AWS::EKS::Cluster", traits.EKS),
    ("aws:ecs:clusterName", "AWS::ECS::Cluster", traits.ECS_EC2),
)
_ECR_HOSTS: Final = {"aws-cn": "amazonaws.com.cn"}
_MAX_ITEMS: Final = 100
_IMAGE_TEXTS: Final = ("architecture", "platform", "author")
_INSTANCE_TEXTS: Final = (("imageId", "image_id"), ("type", "instance_type"), ("platform", "platform"))
_IMAGE_TIMES: Final = (("lastInUseAt", "last_in_use_at"), ("pushedAt", "pushed_at"))


def resources(finding: Node) -> tuple[list[dict[str, Any]], str, str]:
    """Return the finding's resources and its (container service, layer)."""
    found: list[dict[str, Any]] = []
    service, layer = traits.NO_SERVICE, traits.INFRASTRUCTURE
    items = finding[0].get("resources")
    if not isinstance(items, list) or not items:
        return found, service, layer
    listed = child(finding[1], "resources")
    for i, item in enumerate(items[:_MAX_ITEMS]):
        if not isinstance(item, dict):
            continue
        taken = listed[i] = {}  # `child(listed, i)`: each item's node is made here, once
        details = item.get("details")
        if isinstance(details, dict):
            image = details.get("awsEcrContainerImage")
            if isinstance(image, dict):
                found.append(_image(item, taken, image, child(child(taken, "details"), "awsEcrContainerImage")))
                layer = traits.APPLICATION
                continue
            instance = details.get("awsEc2Instance")
            if isinstance(instance, dict):
                resource, cluster, node_service = _instance(item, taken, instance, child(taken, "details"))
                found.append(resource)
                if cluster:
                    found.append(cluster)
                    service = node_service
                continue
        uid = item.get("id")
        if isinstance(uid, str) and uid:
            taken["id"] = LEAF
            kind = item.get("type")
            if isinstance(kind, str) and kind:
                taken["type"] = LEAF
            else:
                kind = None
            found.append({"uid": uid, "type": kind, **_placement(item, taken)})
    return found, service, layer


def _image(item: dict[str, Any], taken: Trie, image: dict[str, Any], image_taken: Trie) -> dict[str, Any]:
    get = image.get
    region, partition = item.get("region"), item.get("partition")  # not recorded: `_placement` does
    region = region if isinstance(region, str) and region else None
    partition = partition if isinstance(partition, str) and partition else None
    registry, repository = get("registry"), get("repositoryName")
    if isinstance(registry, str) and registry:
        image_taken["registry"] = LEAF
    else:
        registry = None
    if isinstance(repository, str) and repository:
        image_taken["repositoryName"] = LEAF
    else:
        repository = None
    reference = None
    if registry and repository:
        host = _ECR_HOSTS.get(partition or "aws", "amazonaws.com")
        reference = f"{registry}.dkr.ecr.{region}.{host}/{repository}" if region else f"{registry}/{repository}"
    tags = texts(get("imageTags"), image_taken, "imageTags")
    digest = get("imageHash")
    if isinstance(digest, str) and digest:
        image_taken["imageHash"] = LEAF
    else:
        digest = None
    shape = images.image(reference, digest, tags[0] if tags else None) or {}
    resource_id = item.get("id")
    if isinstance(resource_id, str) and resource_id:
        taken["id"] = LEAF
    else:
        resource_id = None
    resource: dict[str, Any] = {"uid": shape.get("uid") or resource_id, "type": "Container Image", "role_id": 1}
    if "name" in shape:
        resource["name"] = shape["name"]
    if tags:
        resource["labels"] = [f"tag={tag}" for tag in tags]
    data: dict[str, Any] = {}
    if resource_id is not None:
        data["resource_id"] = resource_id
    if repository is not None:
        data["repository"] = repository
    if registry is not None:
        data["registry"] = registry
    count = get("inUseCount")  # `plain.integer`
    if isinstance(count, int) and not isinstance(count, bool):
        image_taken["inUseCount"] = LEAF
        data["in_use_count"] = count
    for key, target in _IMAGE_TIMES:
        if key in image and (when := optional_time((image, image_taken), key)) is not None:
            data[target] = when
    for key in _IMAGE_TEXTS:
        value = get(key)
        if isinstance(value, str) and value:
            image_taken[key] = LEAF
            data[key] = value
    resource["data"] = data
    resource.update(_placement(item, taken))
    return resource


def _instance(
    item: dict[str, Any], taken: Trie, instance: dict[str, Any], details: Trie
) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    uid = item.get("id")
    if isinstance(uid, str) and uid:
        taken["id"] = LEAF
    else:
        uid = None
    resource: dict[str, Any] = {"uid": uid, "type": "AWS::EC2::Instance", "role_id": 1}
    placed = _placement(item, taken)
    resource.update(placed)
    tags = item.get("tags")
    tags = tags if isinstance(tags, dict) else {}
    pairs = [{"name": k, "value": v} for k, v in list(tags.items())[:_MAX_ITEMS] if isinstance(v, str) and v]
    if pairs:
        resource["tags"] = pairs
        if len(pairs) == len(tags):
            taken["tags"] = LEAF
    data = {}
    below: Trie | None = None
    for key, target in _INSTANCE_TEXTS:
        value = instance.get(key)
        if isinstance(value, str) and value:
            if below is None:
                below = child(details, "awsEc2Instance")
            below[key] = LEAF
            data[target] = value
    if data:
        resource["data"] = data
    for key, cluster_type, service in _CLUSTER_TAGS:
        name = tags.get(key)
        if isinstance(name, str) and name:
            cluster = {"name": name, "type": cluster_type, "role_id": 4, "role": "Related", **placed}
            return resource, cluster, service
    return resource, None, traits.NO_SERVICE


def _placement(item: dict[str, Any], taken: Trie) -> dict[str, Any]:
    """The resource's `region` and `cloud_partition`, each recorded."""
    placed = {}
    region = item.get("region")
    if isinstance(region, str) and region:
        taken["region"] = LEAF
        placed["region"] = region
    partition = item.get("partition")
    if isinstance(partition, str) and partition:
        taken["partition"] = LEAF
        placed["cloud_partition"] = partition
    return placed
