"""What one normalized finding says about images: names, runtime evidence, exposure, vulnerabilities."""

from __future__ import annotations

import pytest

from corral import inventory, ocsf
from tests.images.support import RECEIVED, digest, fixture, registry_cve, runtime_alert

D = digest("d")


def test_defender_running_image_assessment_is_runtime_evidence_with_its_kubernetes_context() -> None:
    (finding,) = fixture("azure/defender/subassessment-runtime-image-cve.camelcase.json")
    seen = inventory.observe(finding)
    assert [(s.cloud, s.cluster, s.namespace, s.workload) for s in seen.sightings] == [
        ("Azure", "aks-shop", "shop", "web-6f7d9c")
    ]
    assert seen.sightings[0].exact
    assert seen.vulnerable is not None
    assert seen.vulnerable.image == seen.sightings[0].image
    assert seen.vulnerable.cves == ("CVE-2026-1111",)
    assert seen.vulnerable.exploit is True


def test_scc_gke_image_vulnerability_deployed_to_a_workload_is_runtime_evidence() -> None:
    (finding,) = fixture("gcp/scc/gke-image-cve.notification.json")
    seen = inventory.observe(finding)
    assert [(s.cluster, s.namespace, s.workload) for s in seen.sightings] == [("shop-prod", "shop", "checkout")]
    assert [(n.repository, n.tag, n.registry) for n in seen.names] == [
        ("europe-docker.pkg.dev/corral-demo/shop/checkout", "1.4.2", "europe-docker.pkg.dev")
    ]


def test_defender_registry_scan_names_the_image_but_never_saw_it_running() -> None:
    (finding,) = fixture("azure/defender/subassessment-acr-image-cve.pascalcase.json")
    seen = inventory.observe(finding)
    assert seen.sightings == ()
    assert seen.vulnerable is not None and seen.vulnerable.image.startswith("sha256:")
    assert [n.repository for n in seen.names] == ["shopacr.azurecr.io/shop/web"]


@pytest.mark.parametrize(
    "relative",
    [
        "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json",
        "gcp/scc/ctd-added-binary-executed.notification.json",
        "azure/defender/alert-k8s-privileged-container-aks.json",
        "gcp/scc/crtd-reverse-shell.notification.json",
    ],
)
def test_runtime_threat_findings_name_the_running_image_by_digest(relative: str) -> None:
    (finding,) = fixture(relative)
    seen = inventory.observe(finding)
    assert seen.sightings and all(s.exact for s in seen.sightings)
    assert all(s.reporter == inventory.reporter(ocsf.identity(finding)) for s in seen.sightings)


def test_guardduty_without_a_digest_keeps_repository_and_tag() -> None:
    (finding,) = fixture("aws/guardduty/ecs-fargate-runtime-reverseshell.json")
    (sighting,) = inventory.observe(finding).sightings
    assert sighting.image == "111122223333.dkr.ecr.eu-west-1.amazonaws.com/payments/api:2025.04.30"
    assert not sighting.exact
    assert (sighting.cluster, sighting.workload) == ("payments", "api")


def test_defender_attack_path_from_the_internet_exposes_the_pod() -> None:
    (finding,) = fixture("azure/defender/attackpath-legacy-internet-exposed-pod.json")
    (exposure,) = inventory.observe(finding).exposures
    assert (exposure.cluster, exposure.namespace, exposure.workload, exposure.active) == (
        "aks-shop",
        "shop",
        "web-6f7d9c",
        True,
    )
    (closed,) = fixture("azure/defender/attackpath-legacy-internet-exposed-pod.delete.json")
    assert not inventory.observe(closed).exposures[0].active


def test_exposure_names_a_workload_or_its_pods() -> None:
    exposure = inventory.Exposure("Azure", "a", "aks", "shop", "web-6f7d9c", "r", 1)
    same = inventory.Sighting(D, "Azure", "a", "aks", "shop", "web-6f7d9c", "r", 1)
    assert exposure.names(same)
    assert not exposure.names(inventory.Sighting(D, "Azure", "a", "aks", "other", "web-6f7d9c", "r", 1))
    assert not exposure.names(inventory.Sighting(D, "Azure", "a", "aks", "shop", "", "r", 1))


def test_built_findings_round_trip() -> None:
    cve = registry_cve("v1", D, "shopacr.azurecr.io/shop/web", tag="2.0", exploit=True)
    seen = inventory.observe(cve)
    assert seen.vulnerable is not None
    assert (seen.vulnerable.severity_id, seen.vulnerable.exploit, seen.vulnerable.fix, seen.vulnerable.open) == (
        4,
        True,
        True,
        True,
    )
    assert seen.names[0].reference == "shopacr.azurecr.io/shop/web:2.0"
    alert = runtime_alert("a1", {"name": "shopacr.azurecr.io/shop/web", "tag": "2.0"}, seen=RECEIVED)
    (sighting,) = inventory.observe(alert).sightings
    assert sighting.image == "shopacr.azurecr.io/shop/web:2.0"
    assert sighting.workload == "checkout-7d9c5b6f4-k2x8q"


@pytest.mark.parametrize(
    ("name", "tag", "expected"),
    [
        ("nginx:1.25", None, ("nginx", "1.25")),
        ("localhost:5000/app", "v1", ("localhost:5000/app", "v1")),
        ("host:5000/app:v2", None, ("host:5000/app", "v2")),
        ("repo/app@sha256:" + "a" * 64, None, ("repo/app", "")),
    ],
)
def test_split_reference(name: str, tag: str | None, expected: tuple[str, str]) -> None:
    assert inventory.split_reference(name, tag) == expected


def test_findings_without_images_say_nothing() -> None:
    (finding,) = fixture("aws/guardduty/s3-policy-bucketpublicaccessgranted.json")
    assert inventory.observe(finding).is_empty()
