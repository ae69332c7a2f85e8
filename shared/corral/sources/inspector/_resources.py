"""The resources of an Inspector finding: ECR images, EC2 instances and the clusters their tags name."""

from __future__ import annotations

from typing import Any, Final

from corral import traits
from corral.sources._core import images
from corral.sources._core.plain import LEAF, MISSING, Node, integer, optional_time, peek, sub, subs, text, texts

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


def resources(finding: Node) -> tuple[list[dict[str, Any]], str, str]:
    """Return the finding's resources and its (container service, layer)."""
    found: list[dict[str, Any]] = []
    service, layer = traits.NO_SERVICE, traits.INFRASTRUCTURE
    for item in subs(finding, "resources", limit=_MAX_ITEMS):
        details = sub(item, "details")
        image = sub(details, "awsEcrContainerImage")
        if image is not MISSING:
            found.append(_image(item, image))
            layer = traits.APPLICATION
        elif (instance := sub(details, "awsEc2Instance")) is not MISSING:
            resource, cluster, node_service = _instance(item, instance)
            found.append(resource)
            if cluster:
                found.append(cluster)
                service = node_service
        elif uid := text(item, "id"):
            found.append({"uid": uid, "type": text(item, "type"), **_placement(item)})
    return found, service, layer


def _image(item: Node, image: Node) -> dict[str, Any]:
    region, partition = peek(item, "region"), peek(item, "partition")
    registry, repository = text(image, "registry"), text(image, "repositoryName")
    reference = None
    if registry and repository:
        host = _ECR_HOSTS.get(partition or "aws", "amazonaws.com")
        reference = f"{registry}.dkr.ecr.{region}.{host}/{repository}" if region else f"{registry}/{repository}"
    tags = texts(image, "imageTags", _MAX_ITEMS)
    shape = images.image(reference, text(image, "imageHash"), tags[0] if tags else None) or {}
    resource_id = text(item, "id")
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
    if (count := integer(image, "inUseCount")) is not None:
        data["in_use_count"] = count
    for key, target in (("lastInUseAt", "last_in_use_at"), ("pushedAt", "pushed_at")):
        if (when := optional_time(image, key)) is not None:
            data[target] = when
    doc, taken = image
    for key in _IMAGE_TEXTS:
        value = doc.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            data[key] = value
    resource["data"] = data
    resource.update(_placement(item))
    return resource


def _instance(item: Node, instance: Node) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    resource: dict[str, Any] = {"uid": text(item, "id"), "type": "AWS::EC2::Instance", "role_id": 1}
    resource.update(_placement(item))
    tags = item[0].get("tags")
    tags = tags if isinstance(tags, dict) else {}
    pairs = [{"name": k, "value": v} for k, v in list(tags.items())[:_MAX_ITEMS] if isinstance(v, str) and v]
    if pairs:
        resource["tags"] = pairs
        if len(pairs) == len(tags):
            item[1]["tags"] = LEAF
    doc, taken = instance
    data = {}
    for key, target in _INSTANCE_TEXTS:
        value = doc.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            data[target] = value
    if data:
        resource["data"] = data
    for key, cluster_type, service in _CLUSTER_TAGS:
        name = tags.get(key)
        if isinstance(name, str) and name:
            cluster = {"name": name, "type": cluster_type, "role_id": 4, "role": "Related", **_placement(item)}
            return resource, cluster, service
    return resource, None, traits.NO_SERVICE


def _placement(item: Node) -> dict[str, Any]:
    placed = {}
    if region := text(item, "region"):
        placed["region"] = region
    if partition := text(item, "partition"):
        placed["cloud_partition"] = partition
    return placed
