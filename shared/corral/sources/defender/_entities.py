"""A Defender alert's entity graph: `$id`/`$ref` resolved, each entity one evidence, containers and pods read."""

from __future__ import annotations

import re
from typing import Any, Final

from corral import ocsf
from corral.sources._core.folded import FieldMap, FieldRecord, spellings, text
from corral.sources.defender import _common as common
from corral.sources.defender._values import listed_value

_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NONE: Final[dict[str, Any]] = {}  # what an unresolvable reference points at; never written


class _Entity(FieldRecord):
    """What is read of any entity (the graph's own keys are exact: `$id`, `$ref`)."""

    type: Any
    name: Any
    cloud_resource: Any
    platform: Any
    uid: Any
    pod_uid: Any
    namespace: Any
    container_id: Any
    image: Any
    pod: Any


class _Resource(FieldRecord):
    """A cluster's `CloudResource`."""

    resource_id: Any
    azure_id: Any
    azure_resource_id: Any
    amazon_resource_id: Any
    full_resource_name: Any
    resource_name: Any
    resource_type: Any


class _Image(FieldRecord):
    image_id: Any
    image_name: Any
    digest: Any
    digest_image: Any
    image_digest: Any


class _Foreign(FieldRecord):
    """An `aws-resource`/`gcp-resource` entity, or an alert's AWS/GCP resource identifier."""

    amazon_resource_id: Any
    aws_resource_id: Any
    resource_arn: Any
    arn: Any
    account_id: Any
    aws_account_id: Any
    region: Any
    location: Any
    resource_id: Any
    project_id: Any
    gcp_project_id: Any
    project_number: Any
    full_resource_name: Any
    related_azure_resource_ids: Any
    resource_name: Any
    name: Any
    resource_type: Any


_ENTITY: Final = FieldMap(_Entity)
_READ: Final = frozenset({"k8s-cluster", "k8s-namespace", "k8s-pod", "container"})  # the kinds read further
# What each reference field may point at, by the target's `Type` (lower-cased), as Microsoft's alert
# entities define them (a pod's namespace is a namespace entity, a container's pod a pod, its image a
# container image; a cluster's `CloudResource` the resource in its cloud). A `$ref` that lands on an
# entity of another Type (stitched sample alerts reuse `$id`s) fills nothing.
_NAMESPACE: Final = frozenset({"k8s-namespace"})
_POD: Final = frozenset({"k8s-pod"})
_CONTAINER_IMAGE: Final = frozenset({"container-image"})
_CLOUD_RESOURCE: Final = frozenset({"azure-resource", "aws-resource", "gcp-resource"})
_shared_prune: Final = ocsf.shared_prune
_IDS: Final = (str, int)  # what a `$ref` may be (a tuple: `str | int` would be built on every test)
_SCALARS: Final = frozenset({int, float, bool})  # never null nor empty (as `ocsf.shared_prune` has it)
_RESOURCE: Final = FieldMap(_Resource)
_IMAGE: Final = FieldMap(_Image)
_FOREIGN: Final = FieldMap(_Foreign)

Foreign = tuple[str, str | None, str | None, dict[str, Any], set[str]]
"""(provider, account, region, resource, related Azure ids, lower-cased) of an AWS or GCP resource."""


def _first(*values: object) -> str | None:
    for value in values:
        if value is not None and isinstance(value, str) and value:
            return value
    return None


def foreign_resource(entity: object, provider: str) -> Foreign:
    """Return (provider, account, region, resource, related Azure ids) of an AWS or GCP resource entity."""
    e = _FOREIGN.read(entity)
    arn = _first(e.amazon_resource_id, e.aws_resource_id, e.resource_arn, e.arn)
    arn_parts = arn.split(":") if arn and arn.startswith("arn:") else []
    if provider == "AWS":
        account = _first(e.account_id, e.aws_account_id) or (arn_parts[4] if len(arn_parts) > 5 else None)
        region = _first(e.region, e.location) or (arn_parts[3] if len(arn_parts) > 5 else None)
        uid = arn or text(e.resource_id)
    else:
        account = _first(e.project_id, e.gcp_project_id, e.project_number)
        region = _first(e.location, e.region)
        uid = _first(e.full_resource_name, e.resource_id)
    related = {r.lower() for r in listed_value(e.related_azure_resource_ids) if isinstance(r, str)}
    resource = common.compact(
        {
            "uid": uid,
            "name": _first(e.resource_name, e.name),
            "type": text(e.resource_type),
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
        index: dict[str, dict[str, Any]] = {}
        self._index = index
        self._clean = self._index_ids(entities)
        self.all: list[tuple[dict[str, Any], str | None, str]] = []  # (entity, its `Type` as sent, lower-cased)
        self._by_kind: dict[str, list[_Entity]] = {}
        self._records: dict[int, _Entity] = {}  # by id() of the entity read, as pods and namespaces are met again
        self._kinds: dict[int, str] = {}  # each entity's lower-cased `Type` by id(), for `resolve`
        self._cluster_resources: list[tuple[_Entity, _Resource]] | None = None
        # The entities in document order, each once: those listed (or referenced from the list),
        # then those only nested inside others (an `aws-resource` can be sent solely as a
        # cluster's `CloudResource`); indexed nodes hold no `$ref`.
        # By id(), in the order first met: `setdefault` both tests and adds in one call.
        chosen: dict[int, dict[str, Any]] = {}
        for entity in entities:
            if type(entity) is not dict and not isinstance(entity, dict):
                continue
            node = entity
            if "$ref" in node:
                ref = node["$ref"]
                node = index.get(str(ref)) if isinstance(ref, _IDS) else None  # type: ignore[assignment]
            if node:
                chosen.setdefault(id(node), node)
        for node in index.values():
            if "Type" in node:
                chosen.setdefault(id(node), node)
        # Each one's Type, and the record of those read further: one loop, not a method call each.
        found = self.all
        by_kind = self._by_kind
        records = self._records
        kinds = self._kinds
        for node in chosen.values():
            name = node.get(spellings(node).get("type"))  # type: ignore[arg-type]
            name = name if isinstance(name, str) and name else None
            kind = kinds[id(node)] = name.lower() if name else ""
            found.append((node, name, kind))
            if kind in _READ:
                record = records[id(node)] = _ENTITY.read(node)
                if kind in by_kind:
                    by_kind[kind].append(record)
                else:
                    by_kind[kind] = [record]

    def _index_ids(self, entities: list[Any]) -> bool:
        """Index the `$id`s; return True when nothing in the graph is null or empty.

        Such a graph (the usual one) is what `shared_prune` gives back unchanged, node by node, so
        the evidences need not prune it again.
        """
        # Depth-first in document order (children pushed reversed), without recursion; only
        # objects and lists can hold an entity. Exact types: the graph comes from a JSON decoder.
        index = self._index
        clean = True
        stack: list[Any] = []
        push = stack.append
        for node in reversed(entities):
            if type(node) is dict or type(node) is list:
                push(node)
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
            for child in reversed(children):
                kind = type(child)
                if kind is str:
                    if not child:
                        clean = False
                elif kind is dict or kind is list:
                    if child:
                        push(child)
                    else:
                        clean = False
                elif kind not in _SCALARS and (child is None or child == ""):
                    clean = False  # what `shared_prune` drops, by its own test
        return clean

    def _target(self, node: object) -> dict[str, Any] | None:
        if not isinstance(node, dict):
            return None
        if "$ref" in node:
            ref = node["$ref"]
            return self._index.get(str(ref)) if isinstance(ref, _IDS) else None
        return node

    def resolve(self, node: object, kinds: frozenset[str] | None = None) -> dict[str, Any]:
        """Return the entity `node` refers to (itself, or the target of its `$ref`; {} for none).

        With `kinds`, an entity whose `Type` is sent and is none of them is no answer either ({}).
        """
        target = self._target(node)
        if target is None:
            return _NONE
        if kinds is not None:
            known = self._kinds.get(id(target))  # an entity's Type is known already
            if known is None:
                kind = target.get(spellings(target).get("type"))  # type: ignore[arg-type]
                known = kind.lower() if isinstance(kind, str) and kind else ""
            if known and known not in kinds:
                return _NONE
        return target

    def of_type(self, kind: str) -> list[_Entity]:
        """Return the entities whose `Type` is `kind` (lower-case), in document order."""
        return self._by_kind.get(kind, [])

    def has_containers(self) -> bool:
        """True when the graph names a container or a pod."""
        return "container" in self._by_kind or "k8s-pod" in self._by_kind

    def cluster_ids(self) -> list[str]:
        """Return the ARM ids of the clusters the graph names."""
        found: list[str] = []
        for _, resource in self._clusters():
            rid = _first(resource.resource_id, resource.azure_id, resource.azure_resource_id)
            if rid:
                found.append(rid)
        return found

    def _clusters(self) -> list[tuple[_Entity, _Resource]]:
        """The clusters with their `CloudResource` read, once (ids and resources both want it)."""
        found = self._cluster_resources
        if found is None:
            clusters = self.of_type("k8s-cluster")
            found = self._cluster_resources = [
                (c, _RESOURCE.read(self.resolve(c.cloud_resource, _CLOUD_RESOURCE))) for c in clusters
            ]
        return found

    def platform(self) -> str | None:
        """Return the cluster platform the graph states (AKS, EKS, GKE, Arc...)."""
        for cluster in self.of_type("k8s-cluster"):
            if found := text(cluster.platform):
                return found
        return None

    def foreign(self) -> list[Foreign]:
        """Return the AWS and GCP resources the graph names."""
        return [
            foreign_resource(node, "AWS" if kind == "aws-resource" else "GCP")
            for node, _, kind in self.all
            if kind in ("aws-resource", "gcp-resource")
        ]

    def _namespace_name(self, node: object) -> str | None:
        namespace = self.resolve(node, _NAMESPACE)
        return text(self._read(namespace).name) if namespace else (node if isinstance(node, str) and node else None)

    def _read(self, node: dict[str, Any]) -> _Entity:
        found = self._records.get(id(node))
        return _ENTITY.read(node) if found is None else found

    def resources(self) -> list[dict[str, Any]]:
        """Return clusters, namespaces and pods as OCSF resources."""
        found: list[dict[str, Any]] = []
        for cluster, r in self._clusters():
            rid = _first(r.resource_id, r.azure_id, r.azure_resource_id, r.amazon_resource_id, r.full_resource_name)
            name = text(r.resource_name) or text(cluster.name)
            if rid:
                kind = common.arm_type(rid) or text(r.resource_type) or "Kubernetes Cluster"
                found.append({**common.arm_resource(rid, name=name, role_id=1), "type": kind})
            elif name:
                found.append({"name": name, "type": "Kubernetes Cluster", "role_id": 1})
        for namespace in self.of_type("k8s-namespace"):
            if name := text(namespace.name):
                found.append({"name": name, "type": "Kubernetes Namespace", "role_id": 1})
        for pod in self.of_type("k8s-pod"):
            if name := text(pod.name):
                resource = {
                    "uid": _first(pod.uid, pod.pod_uid),
                    "name": name,
                    "namespace": self._namespace_name(pod.namespace),
                    "type": "Kubernetes Pod",
                    "role_id": 1,
                }
                found.append(common.compact(resource))
        return found

    def evidences(self, orchestrator: str) -> list[dict[str, Any]]:
        """Return one evidence per entity, with `container` filled for container entities."""
        containers = iter(self._by_kind.get("container", ()))
        clean = self._clean
        found = []
        for node, name, kind in self.all:
            evidence: dict[str, Any] = {"name": name} if name else {}
            # The entity as sent, shared when nothing in it needs pruning.
            data = node if clean else _shared_prune(node)
            if data:
                evidence["data"] = data
            if kind == "container":
                container = self._container(next(containers), orchestrator)
                if container:
                    evidence["container"] = container
            if evidence:
                found.append(evidence)
        return found

    def _container(self, entity: _Entity, orchestrator: str) -> dict[str, Any] | None:
        name = text(entity.name)
        uid = text(entity.container_id)
        if not name and not uid:
            return None
        i = _IMAGE.read(self.resolve(entity.image, _CONTAINER_IMAGE))
        image = common.image_ref(_first(i.image_id, i.image_name), _first(i.digest, i.digest_image, i.image_digest))
        pod = self._read(self.resolve(entity.pod, _POD))
        pod_uid = _first(pod.uid, pod.pod_uid)
        return common.compact(
            {
                "name": name,
                "uid": uid,
                "image": image.ocsf() if image else None,
                "orchestrator": orchestrator,
                "pod_uuid": pod_uid if is_uuid(pod_uid) else None,
            }
        )
