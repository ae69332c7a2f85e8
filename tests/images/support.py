"""Findings for the image tests: the repository's vendor-documented fixtures, normalized, and small builders."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

from corral import ocsf, traits
from corral.normalize import normalize
from tests.support import ocsf as ocsf_support

EVENTS = Path(__file__).resolve().parents[1] / "events"
RECEIVED = 1_772_323_200_000  # 2026-03-01T00:00:00Z
HOUR = 3_600_000


def fixture(relative: str) -> list[dict[str, Any]]:
    """Return the findings one fixture under tests/events normalizes to."""
    doc = json.loads((EVENTS / relative).read_text())
    found = [o.finding for o in normalize(doc, "", "delivery-1", RECEIVED)]
    return [f for f in found if f is not None]


def digest(char: str) -> str:
    """A made-up sha256 digest of one repeated hex character."""
    return "sha256:" + char * 64


def registry_cve(
    uid: str,
    image: str,
    repository: str,
    *,
    tag: str = "1.0",
    severity_id: int = 4,
    cve: str = "CVE-2026-0001",
    modified: int = RECEIVED,
    exploit: bool | None = None,
    fix: bool | None = True,
    cloud: str = "Azure",
    account: str = "00000000-0000-0000-0000-000000000000",
    status_id: int = ocsf.STATUS_NEW,
) -> dict[str, Any]:
    """A Vulnerability Finding for an image in a registry, shaped like Defender's ACR sub-assessment."""
    products = {"Azure": "microsoft.defender_for_cloud", "GCP": "google.scc", "AWS": "aws.inspector2"}
    finding = ocsf.envelope(
        class_uid=ocsf.VULNERABILITY,
        activity_id=ocsf.CREATE,
        time=modified,
        severity_id=severity_id,
        status_id=status_id,
        product={"uid": products[cloud], "name": products[cloud], "vendor_name": cloud},
        delivery_id=None,
    )
    finding.update(
        {
            "message": f"{cve} in {repository}",
            "cloud": ocsf.cloud(cloud, account, None),
            "finding_info": {
                "uid": uid,
                "title": f"{cve} in {repository}",
                "modified_time": modified,
                "traits": traits.classify(traits.NO_SERVICE, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT),
            },
            "vulnerabilities": [
                {
                    "title": cve,
                    "severity": ocsf.SEVERITY_NAMES[severity_id],
                    "cve": {"uid": cve},
                    **({} if exploit is None else {"is_exploit_available": exploit}),
                    **({} if fix is None else {"is_fix_available": fix}),
                }
            ],
            "resources": [
                {"uid": image, "name": repository, "type": "Container Image", "labels": [f"tag={tag}"], "role_id": 1}
            ],
        }
    )
    return finding


def runtime_alert(
    uid: str,
    image: dict[str, Any],
    *,
    seen: int,
    cluster: str = "shop-prod",
    namespace: str = "shop",
    pod: str = "checkout-7d9c5b6f4-k2x8q",
    cloud: str = "GCP",
    account: str = "corral-demo",
) -> dict[str, Any]:
    """A runtime Detection Finding naming the running container's image, shaped like SCC Container Threat Detection."""
    products = {"GCP": "google.scc", "AWS": "aws.guardduty", "Azure": "microsoft.defender_for_cloud"}
    finding = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=ocsf.CREATE,
        time=seen,
        severity_id=4,
        status_id=ocsf.STATUS_NEW,
        product={"uid": products[cloud], "name": products[cloud], "vendor_name": cloud},
        delivery_id=None,
    )
    finding.update(
        {
            "message": "Added binary executed",
            "cloud": ocsf.cloud(cloud, account, None),
            "finding_info": {
                "uid": uid,
                "title": "Added binary executed",
                "modified_time": seen,
                "traits": traits.classify(traits.GKE, traits.APPLICATION, traits.THREAT_DETECTION),
            },
            "resources": [
                {
                    "uid": f"//container.googleapis.com/clusters/{cluster}",
                    "name": cluster,
                    "type": "google.container.Cluster",
                },
                {"name": pod, "type": "Kubernetes Pod", "namespace": namespace},
            ],
            "evidences": [{"process": {"name": "sh", "pid": 7, "container": {"name": "app", "image": image}}}],
        }
    )
    return finding


@functools.cache
def _validator(class_uid: int, profiles: tuple[str, ...]) -> Callable[[Any], Any]:
    schema = ocsf_support._generator().get_class_schema(ocsf_support.CLASS_SCHEMA_NAMES[class_uid], list(profiles))
    return fastjsonschema.compile(ocsf_support._escape_dollar_in_patterns(schema))


def assert_valid_declared(finding: dict[str, Any]) -> None:
    """Fail unless `finding` is valid OCSF 1.8.0 for the profiles it declares in `metadata.profiles`."""
    profiles = tuple(sorted(finding["metadata"]["profiles"]))
    try:
        _validator(finding["class_uid"], profiles)(finding)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise AssertionError(f"schema ({', '.join(profiles)}): {exc.message}") from None
    issues = [p for p in ocsf_support.problems(finding) if not p.startswith("schema:")]
    assert not issues, "\n".join(issues)
