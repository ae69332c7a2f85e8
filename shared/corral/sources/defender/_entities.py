"""A Defender alert's entity graph: `$id`/`$ref` resolved, each entity one evidence, containers and pods read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from corral import ocsf
from corral.sources._core.folded import Folded
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender._values import EMPTY, listed

_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def foreign_resource(entity: Fields, provider: str) -> tuple[str, str | None, str | None, dict[str, Any], set[str]]:
    """Return (provider, account, region, resource, related Azure ids) of an AWS or GCP resource entity."""
    arn = entity.first_text("AmazonResourceId", "AwsResourceId", "ResourceArn", "Arn")
    arn_parts = arn.split(":") if arn and arn.startswith("arn:") else []
    if provider == "AWS":
        account = entity.first_text("AccountId", "AwsAccountId") or (arn_parts[4] if len(arn_parts) > 5 else None)
        region = entity.first_text("Region", "Location") or (arn_parts[3] if len(arn_parts) > 5 else None)
        uid = arn or entity.first_text("ResourceId")
    else:
        account = entity.first_text("ProjectId", "GcpProjectId", "ProjectNumber")
        region = entity.first_text("Location", "Region")
        uid = entity.first_text("FullResourceName", "ResourceId")
    related = {r.lower() for r in listed(entity, "RelatedAzureResourceIds") if isinstance(r, str)}
    resource = common.compact(
        {
            "uid": uid,
            "name": entity.first_text("ResourceName", "Name"),
            "type": entity.first_text("ResourceType"),
            "provider": provider,
            "region": region,
            "role_id": 1,
        }
    )
    return provider, account, region, resource, related


def is_uuid(text: str | None) -> bool:
    """True when `text` is a canonical UUID (what OCSF `uuid_t` accepts)."""
    return bool(text and _UUID.match(text))


class Entities:
    """The alert's entity graph with `$ref`s resolved; each entity visited once."""

    def __init__(self, entities: list[Any]) -> None:
        self._index: dict[str, dict[str, Any]] = {}
        self._views: dict[int, Fields] = {}
        self._index_ids(entities)
        # The listed entities first, then those only nested inside others (an `aws-resource`
        # can be sent solely as a cluster's `CloudResource`).
        nested = [node for node in self._index.values() if "Type" in node]
        seen: set[int] = set()
        self.all: list[Fields] = []
        self._names: list[str | None] = []  # each entity's `Type` as sent
        self._kinds: list[str] = []  # and lower-cased
        self._by_kind: dict[str, list[Fields]] = {}
        for entity in [*entities, *nested]:
            node = self._target(entity)
            if node and id(node) not in seen:
                seen.add(id(node))
                view = self._views[id(node)] = Folded(node, {})
                self.all.append(view)
                name = view.first_text("Type")
                kind = name.lower() if name else ""
                self._names.append(name)
                self._kinds.append(kind)
                self._by_kind.setdefault(kind, []).append(view)

    def _index_ids(self, entities: list[Any]) -> None:
        # Depth-first in document order (children pushed reversed), without recursion; only
        # objects and lists can hold an entity. Exact types: the graph comes from a JSON decoder.
        index = self._index
        stack: list[Any] = [node for node in reversed(entities) if type(node) is dict or type(node) is list]
        while stack:
            node = stack.pop()
            if type(node) is dict:
                ref_id = node.get("$id")
                if ref_id is not None and "$ref" not in node and (type(ref_id) is str or type(ref_id) is int):
                    # Stitched sample alerts reuse `$id`s; the first one as sent wins.
                    index.setdefault(str(ref_id), node)
                children: Any = node.values()
            else:
                children = node
            stack += [child for child in reversed(children) if type(child) is dict or type(child) is list]

    def _view(self, node: dict[str, Any]) -> Fields:
        found = self._views.get(id(node))
        if found is None:
            found = self._views[id(node)] = Folded(node, {})
        return found

    def _target(self, node: object) -> dict[str, Any] | None:
        if not isinstance(node, dict):
            return None
        if "$ref" in node:
            ref = node["$ref"]
            return self._index.get(str(ref)) if isinstance(ref, str | int) else None
        return node

    def resolve(self, node: object) -> Fields:
        """Return the entity `node` refers to (itself, or the target of its `$ref`)."""
        target = self._target(node)
        return EMPTY if target is None else self._view(target)

    def of_type(self, *kinds: str) -> list[Fields]:
        """Return the entities whose `Type` is one of `kinds` (lower-case), in document order."""
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        return [entity for entity, kind in zip(self.all, self._kinds, strict=True) if kind in kinds]

    def has_containers(self) -> bool:
        """True when the graph names a container or a pod."""
        return "container" in self._by_kind or "k8s-pod" in self._by_kind

    def cluster_ids(self) -> list[str]:
        """Return the ARM ids of the clusters the graph names."""
        found: list[str] = []
        for cluster in self.of_type("k8s-cluster"):
            resource = self.resolve(cluster.get("CloudResource"))
            rid = resource.first_text("ResourceId", "AzureID", "AzureResourceId")
            if rid:
                found.append(rid)
        return found

    def platform(self) -> str | None:
        """Return the cluster platform the graph states (AKS, EKS, GKE, Arc...)."""
        for cluster in self.of_type("k8s-cluster"):
            if cluster.first_text("Platform"):
                return cluster.first_text("Platform")
        return None

    def foreign(self) -> list[tuple[str, str | None, str | None, dict[str, Any], set[str]]]:
        """Return the AWS and GCP resources the graph names."""
        return [
            foreign_resource(entity, "AWS" if kind == "aws-resource" else "GCP")
            for entity, kind in zip(self.all, self._kinds, strict=True)
            if kind in ("aws-resource", "gcp-resource")
        ]

    def _namespace_name(self, node: object) -> str | None:
        namespace = self.resolve(node)
        return namespace.first_text("Name") if namespace.doc else (node if isinstance(node, str) and node else None)

    def resources(self) -> list[dict[str, Any]]:
        """Return clusters, namespaces and pods as OCSF resources."""
        found: list[dict[str, Any]] = []
        for cluster in self.of_type("k8s-cluster"):
            resource = self.resolve(cluster.get("CloudResource"))
            rid = resource.first_text(
                "ResourceId", "AzureID", "AzureResourceId", "AmazonResourceId", "FullResourceName"
            )
            name = resource.first_text("ResourceName") or cluster.first_text("Name")
            if rid:
                kind = common.arm_type(rid) or resource.first_text("ResourceType") or "Kubernetes Cluster"
                found.append({**common.arm_resource(rid, name=name, role_id=1), "type": kind})
            elif name:
                found.append({"name": name, "type": "Kubernetes Cluster", "role_id": 1})
        for namespace in self.of_type("k8s-namespace"):
            if namespace.first_text("Name"):
                found.append({"name": namespace.first_text("Name"), "type": "Kubernetes Namespace", "role_id": 1})
        for pod in self.of_type("k8s-pod"):
            if pod.first_text("Name"):
                uid = pod.first_text("Uid", "PodUid")
                found.append(
                    common.compact(
                        {
                            "uid": uid,
                            "name": pod.first_text("Name"),
                            "namespace": self._namespace_name(pod.get("Namespace")),
                            "type": "Kubernetes Pod",
                            "role_id": 1,
                        }
                    )
                )
        return found

    def evidences(self, orchestrator: str) -> Iterator[dict[str, Any]]:
        """Yield one evidence per entity, with `container` filled for container entities."""
        for entity, name, kind in zip(self.all, self._names, self._kinds, strict=True):
            evidence: dict[str, Any] = {"name": name} if name else {}
            data = ocsf.prune(entity.doc)
            if data:
                evidence["data"] = data
            if kind == "container":
                container = self._container(entity, orchestrator)
                if container:
                    evidence["container"] = container
            if evidence:
                yield evidence

    def _container(self, entity: Fields, orchestrator: str) -> dict[str, Any] | None:
        name = entity.first_text("Name")
        uid = entity.first_text("ContainerId")
        if not name and not uid:
            return None
        image_entity = self.resolve(entity.get("Image"))
        image = common.image_ref(
            image_entity.first_text("ImageId", "ImageName"),
            image_entity.first_text("Digest", "DigestImage", "ImageDigest"),
        )
        pod = self.resolve(entity.get("Pod"))
        pod_uid = pod.first_text("Uid", "PodUid")
        return common.compact(
            {
                "name": name,
                "uid": uid,
                "image": image.ocsf() if image else None,
                "orchestrator": orchestrator,
                "pod_uuid": pod_uid if is_uuid(pod_uid) else None,
            }
        )
