"""Minimal valid OCSF findings for the store tests, and a writer that other processes can run."""

from __future__ import annotations

from typing import Any

from corral import ocsf, traits
from corral.stores import open_store

BASE_TIME = 1_717_000_000_000
"""2024-05-29, epoch ms: every test time is an offset from here."""

PRODUCTS = {"AWS": "aws.guardduty", "Azure": "azure.defender", "GCP": "gcp.scc"}


def make_finding(
    uid: str = "finding-1",
    *,
    modified: int = BASE_TIME,
    cloud: str = "AWS",
    account: str = "111122223333",
    region: str = "us-east-1",
    class_uid: int = ocsf.DETECTION,
    severity_id: int = 3,
    status_id: int = ocsf.STATUS_NEW,
    activity_id: int = ocsf.CREATE,
    title: str = "Unexpected binary executed in a container",
    finding_type: str = "Execution:Runtime/NewBinaryExecuted",
    service: str = traits.EKS,
    layer: str = traits.PLATFORM,
    task: str = traits.THREAT_DETECTION,
    cluster: str = "prod-eks",
    namespace: str = "payments",
    image: str = "nginx:1.25",
    image_digest: str | None = None,
    delivery_id: str | None = None,
    extra_traits: list[dict[str, Any]] | None = None,
) -> ocsf.Finding:
    """Return one OCSF 1.8.0 finding; every argument is a column the store indexes."""
    product = PRODUCTS[cloud]
    finding = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity_id,
        time=modified,
        severity_id=severity_id,
        status_id=status_id,
        product={"uid": product, "name": product.split(".")[1], "vendor_name": cloud},
        delivery_id=delivery_id,
    )
    name, _, tag = image.rpartition(":")
    image_obj: dict[str, Any] = {"name": name or image, **({"tag": tag} if name else {})}
    if image_digest:
        image_obj["uid"] = image_digest
    finding.update(
        {
            "message": title,
            "cloud": ocsf.cloud(cloud, account, region),
            "finding_info": {
                "uid": uid,
                "title": title,
                "types": [finding_type],
                "created_time": BASE_TIME,
                "modified_time": modified,
                "traits": traits.classify(service, layer, task) + (extra_traits or []),
            },
            "resources": [
                {
                    "type": "Kubernetes Cluster",
                    "name": cluster,
                    "uid": f"arn:aws:eks:{region}:{account}:cluster/{cluster}",
                },
                {"type": "Kubernetes Pod", "name": f"{uid}-pod", "namespace": namespace},
            ],
            "evidences": [{"container": {"name": "app", "image": image_obj}}],
        }
    )
    return finding


def write_versions(url: str, uids: list[str], versions: int, order_seed: int) -> list[tuple[str, int, str]]:
    """Open the store at `url` and upsert every version of every finding, in increasing order.

    Each step is one batch holding version `v` of all `uids`, shuffled by `order_seed`, so that
    concurrent writers lock their keys in different orders. Returns (uid, version, change kind).
    """
    import random

    shuffler = random.Random(order_seed)
    store = open_store(url)
    done: list[tuple[str, int, str]] = []
    try:
        for version in range(versions):
            batch_uids = list(uids)
            shuffler.shuffle(batch_uids)
            batch = [make_finding(uid, modified=BASE_TIME + version, severity_id=1 + version % 5) for uid in batch_uids]
            changes = store.upsert(batch, now=BASE_TIME + 1_000 + version)
            done += [(c.key[2], version, c.kind) for c in changes]
    finally:
        store.close()
    return done
