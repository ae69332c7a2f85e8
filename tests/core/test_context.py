"""Container context: cluster, namespace, pod, container and image read from resources and evidences."""

from __future__ import annotations

from typing import Any

import pytest

from corral.context import ContainerContext, container_context

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("holder", ["evidence", "process", "device", "finding.device"])
def test_container_from_each_evidence_holder(holder: str) -> None:
    """The container is read from evidences[].container, .process.container, .device.container or device."""
    container = {"name": "app", "orchestrator": "Kubernetes", "image": {"name": "nginx", "tag": "1.25", "uid": DIGEST}}
    finding: dict[str, Any] = {}
    if holder == "evidence":
        finding["evidences"] = [{"container": container}]
    elif holder == "finding.device":
        finding["device"] = {"container": container}
    else:
        finding["evidences"] = [{holder: {"container": container}}]
    ctx = container_context(finding)
    name, tag = container["image"]["name"], container["image"]["tag"]
    assert (ctx.container, ctx.orchestrator, ctx.image, ctx.image_digest) == (
        container["name"],
        container["orchestrator"],
        f"{name}:{tag}",
        DIGEST,
    )


def test_resources_give_cluster_pod_and_namespace() -> None:
    """Cluster, pod and namespace come from resources by type; a resource's `namespace` field counts too."""
    finding = {
        "resources": [
            {"type": "Kubernetes Cluster", "name": "prod-eks", "uid": "arn:cluster"},
            {"type": "Kubernetes Pod", "name": "web-1", "namespace": "shop"},
        ]
    }
    ctx = container_context(finding)
    assert (ctx.cluster, ctx.pod, ctx.namespace) == ("prod-eks", "web-1", "shop")


def test_namespace_resource_and_uid_fallback() -> None:
    """A Namespace resource names the namespace; a resource without a name is named by its uid."""
    finding = {
        "resources": [
            {"type": "AKS cluster", "uid": "/subscriptions/s/clusters/c1"},
            {"type": "Kubernetes Namespace", "name": "kube-system"},
        ]
    }
    ctx = container_context(finding)
    assert (ctx.cluster, ctx.namespace) == ("/subscriptions/s/clusters/c1", "kube-system")


def test_first_value_wins() -> None:
    """When several resources or containers name something, the first one is kept."""
    finding = {
        "resources": [
            {"type": "Kubernetes Cluster", "name": "first"},
            {"type": "Kubernetes Cluster", "name": "second"},
            {"type": "Kubernetes Pod", "name": "pod-1"},
            {"type": "Kubernetes Pod", "name": "pod-2"},
        ],
        "evidences": [{"container": {"name": "c1"}}, {"container": {"name": "c2", "image": {"name": "redis"}}}],
    }
    ctx = container_context(finding)
    assert (ctx.cluster, ctx.pod, ctx.container, ctx.image) == ("first", "pod-1", "c1", "redis")


def test_container_image_resource() -> None:
    """Vulnerability findings name the image as a Container Image resource, its digest as the uid."""
    finding = {"resources": [{"type": "Container Image", "name": "registry/app:2.0", "uid": DIGEST}]}
    ctx = container_context(finding)
    assert (ctx.image, ctx.image_digest) == ("registry/app:2.0", DIGEST)
    assert not ctx.is_empty()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({"name": "nginx", "tag": "1.25"}, "nginx:1.25"),
        ({"name": "nginx:1.25", "tag": "1.25"}, "nginx:1.25"),
        ({"name": "nginx"}, "nginx"),
        ({"tag": "1.25"}, None),
        ({"name": "", "tag": "x"}, None),
    ],
)
def test_image_name_and_tag(image: dict[str, str], expected: str | None) -> None:
    """The image is `name:tag`, unless the name already carries a tag; no name, no image."""
    assert container_context({"evidences": [{"container": {"image": image}}]}).image == expected


def test_digest_only_from_sha256_uids() -> None:
    """Only a `sha256:` uid is a digest."""
    finding = {"evidences": [{"container": {"image": {"name": "app", "uid": "image-id-123"}}}]}
    assert container_context(finding).image_digest is None


@pytest.mark.parametrize(
    "finding",
    [
        {},
        {"resources": "not a list", "evidences": {"not": "a list"}},
        {"resources": [None, "x", 3], "evidences": [None, {"container": "x"}, {"process": []}]},
        {"device": {"container": None}},
        {"resources": [{"type": "Kubernetes Cluster", "name": ""}]},
    ],
)
def test_no_context(finding: dict[str, Any]) -> None:
    """Missing or malformed resources and evidences give an empty context, not an error."""
    ctx = container_context(finding)
    assert ctx == ContainerContext()
    assert ctx.is_empty()
