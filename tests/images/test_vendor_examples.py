"""Per source, a vendor-documented example that carries running evidence yields *running*.

The Defender and SCC examples are the repository's fixtures (written from Microsoft's and Google's
documentation); each goes through the pipeline with the clock an hour after the finding's own time.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from corral import inventory, ocsf, priority
from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store
from tests.images.support import EVENTS, HOUR, assert_valid_declared, digest, fixture, registry_cve


def ingest_and_read(tmp_path: Path, relative: str) -> dict[str, object]:
    (finding,) = fixture(relative)
    store = open_store(f"sqlite:///{tmp_path / 'corral.db'}")
    pipeline = Pipeline(store, clock=lambda: ocsf.modified_time(finding) + HOUR)
    pipeline.ingest([Inbound(orjson.loads((EVENTS / relative).read_bytes()), ref=relative)])
    stored = store.get(ocsf.identity(finding))
    store.close()
    assert stored is not None
    return dict(stored.document)


@pytest.mark.parametrize(
    ("relative", "where"),
    [
        # Defender's running-image vulnerability assessment, with its Kubernetes context.
        ("azure/defender/subassessment-runtime-image-cve.camelcase.json", "image running in 1 workload on Azure"),
        # SCC: an Artifact Registry vulnerability of an image deployed to a GKE workload.
        ("gcp/scc/gke-image-cve.notification.json", "image running in 1 workload on GCP"),
        # Inspector: an ECR image in use (inUseCount, lastInUseAt).
        ("aws/inspector/ecr-image-package-vulnerability.eventbridge.json", "image running in 1 workload on AWS"),
    ],
)
def test_vendor_examples_with_running_evidence_are_running(tmp_path: Path, relative: str, where: str) -> None:
    document = ingest_and_read(tmp_path, relative)
    assert priority.read(document)[1] == "running"
    assert where in str(document["risk_details"])
    assert_valid_declared(document)


def test_defender_registry_scan_without_runtime_evidence_is_registry_only(tmp_path: Path) -> None:
    document = ingest_and_read(tmp_path, "azure/defender/subassessment-acr-image-cve.pascalcase.json")
    assert priority.read(document)[1] == "registry_only"


def test_inspector_names_every_tag_and_an_unused_image_is_registry_only(tmp_path: Path) -> None:
    (finding,) = fixture("aws/inspector/ecr-image-package-vulnerability.eventbridge.json")
    seen = inventory.observe(finding)
    assert sorted(n.tag for n in seen.names) == ["1.4.2", "latest"]
    assert {n.registry for n in seen.names} == {"111122223333.dkr.ecr.us-east-1.amazonaws.com"}
    unused = [f for f in fixture("aws/inspector/list-findings.findings.json") if inventory.observe(f).names]
    assert unused and all(inventory.observe(f).sightings == () for f in unused)


def test_inspector_ecr_image_in_use_is_running() -> None:
    """Inspector's `awsEcrContainerImage` (API reference): `inUseCount` ECS tasks or EKS pods, `lastInUseAt`."""
    finding = registry_cve(
        "inspector-1",
        digest("a"),
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/web",
        cloud="AWS",
        account="111122223333",
    )
    finding["resources"][0].update(
        {"type": "AWS::ECR::ContainerImage", "data": {"inUseCount": 3, "lastInUseAt": "2026-03-01T11:00:00Z"}}
    )
    seen = inventory.observe(finding)
    ((sighting),) = seen.sightings
    assert (sighting.cloud, sighting.account, sighting.source_time) == ("AWS", "111122223333", 1_772_362_800_000)
    where = priority.runtime(digest("a"), [(sighting, False)], [], now=sighting.source_time + HOUR, window_ms=24 * HOUR)
    assert where.context == "running"
    idle = dict(finding, resources=[{**finding["resources"][0], "data": {"inUseCount": 0}}])
    assert inventory.observe(idle).sightings == ()
