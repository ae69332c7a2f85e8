"""Amazon Inspector (v2): fixtures in tests/events/aws/inspector, written from Inspector's documented examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from corral import ocsf, traits
from corral.coverage import Observations, matrix
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.normalize import normalize
from corral.records import HealthSignal
from corral.sources import inspector
from tests.support.ocsf import assert_valid

EVENTS = Path(__file__).resolve().parents[1] / "events" / "aws" / "inspector"
DIGEST = "sha256:6f1d0a7bdf0ad1a2f6c3b8e6d4c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def outcome(doc: Any) -> Any:
    [result] = list(normalize(doc))
    assert result.error is None, result.error
    if result.finding is not None:
        assert_valid(result.finding)
        return result.finding
    return result.signal


def ecr_finding() -> dict[str, Any]:
    return outcome(load("ecr-image-package-vulnerability.eventbridge.json"))


def test_ecr_image_finding_is_a_vulnerability_finding_with_the_image() -> None:
    finding = ecr_finding()
    assert (finding["class_uid"], finding["activity_id"], finding["severity_id"]) == (ocsf.VULNERABILITY, 1, 4)
    assert finding["finding_info"]["uid"].startswith("arn:aws:inspector2:us-east-1:111122223333:finding/")
    assert finding["metadata"]["product"]["uid"] == "aws.inspector2"
    [image] = finding["resources"]
    assert image["type"] == "Container Image"
    assert image["uid"] == DIGEST
    assert image["name"] == "111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/web"
    assert image["labels"] == ["tag=1.4.2", "tag=latest"]
    assert image["data"]["repository"] == "shop/web"
    assert image["data"]["in_use_count"] == 3
    assert image["data"]["last_in_use_at"] == 1_772_445_520_000  # 2026-03-02T09:58:40Z


def test_ecr_image_finding_carries_cve_cvss_package_and_fix() -> None:
    [vuln] = ecr_finding()["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2026-10001"
    assert [c["base_score"] for c in vuln["cve"]["cvss"]] == [8.8, 6.8]
    assert vuln["cve"]["cvss"][0]["vector_string"].startswith("CVSS:3.1/")
    [package] = vuln["affected_packages"]
    assert (package["name"], package["version"], package["fixed_in_version"]) == (
        "libexample",
        "1.2.2",
        "1.2.3-1+deb12u1",
    )
    assert vuln["is_fix_available"] is True
    assert vuln["is_exploit_available"] is True
    assert vuln["remediation"]["desc"].startswith("Upgrade libexample")


def test_no_fixed_version_is_not_a_fixed_in_version() -> None:
    """Inspector writes `fixedInVersion: NotAvailable` when no fix exists: that is no version to report."""
    doc = load("ecr-image-package-vulnerability.eventbridge.json")
    details = doc["detail"]["packageVulnerabilityDetails"]
    details["vulnerablePackages"][0]["fixedInVersion"] = "NotAvailable"
    doc["detail"]["fixAvailable"] = "NO"
    [vuln] = outcome(doc)["vulnerabilities"]
    [package] = vuln["affected_packages"]
    assert "fixed_in_version" not in package and vuln["is_fix_available"] is False
    unmapped = outcome(doc)["unmapped"]
    assert "NotAvailable" in json.dumps(unmapped)


def test_what_is_not_mapped_stays_in_unmapped() -> None:
    unmapped = ecr_finding()["unmapped"]
    assert unmapped["inspectorScore"] == 8.8
    assert "findingArn" not in unmapped


@pytest.mark.parametrize("tag", ["eks:cluster-name", "aws:eks:cluster-name"])
def test_ec2_package_finding_on_an_eks_node_carries_its_cluster(tag: str) -> None:
    event = load("ec2-eks-node-package-vulnerability.eventbridge.json")
    tags = event["detail"]["resources"][0]["tags"]
    tags[tag] = tags.pop("eks:cluster-name")
    finding = outcome(event)
    instance, cluster = finding["resources"]
    assert (instance["uid"], instance["type"]) == ("i-0a1b2c3d4e5f60718", "AWS::EC2::Instance")
    assert (cluster["name"], cluster["type"]) == ("shop-prod", "AWS::EKS::Cluster")
    assert traits.read(finding) == {
        traits.SERVICE: traits.EKS,
        traits.LAYER: traits.INFRASTRUCTURE,
        traits.TASK: traits.VULNERABILITY_MANAGEMENT,
    }


def test_the_member_account_wins_over_the_delegated_administrators_envelope() -> None:
    finding = outcome(load("ec2-eks-node-package-vulnerability.eventbridge.json"))
    assert finding["cloud"]["account"]["uid"] == "444455556666"  # envelope account: 999988887777
    assert finding["cloud"]["region"] == "eu-west-1"
    assert finding["activity_id"] == ocsf.UPDATE  # updated after it was first observed


def test_list_findings_items_ecs_node_closed_and_suppressed_advisory() -> None:
    closed, suppressed = (outcome(doc) for doc in load("list-findings.findings.json"))
    assert (closed["activity_id"], closed["status_id"]) == (ocsf.CLOSE, ocsf.STATUS_RESOLVED)
    assert closed["resources"][1]["name"] == "orders"
    assert closed["resources"][1]["type"] == "AWS::ECS::Cluster"
    assert traits.read(closed)[traits.SERVICE] == traits.ECS_EC2
    assert closed["vulnerabilities"][0]["is_fix_available"] is False
    assert suppressed["status_id"] == ocsf.STATUS_SUPPRESSED
    [vuln] = suppressed["vulnerabilities"]
    assert vuln["advisory"] == {"uid": "GHSA-xxxx-yyyy-zzzz"}
    assert "cve" not in vuln
    assert vuln["affected_packages"][0]["path"] == "app/server"
    assert suppressed["resources"][0]["data"]["in_use_count"] == 0


def test_coverage_event_becomes_a_health_signal() -> None:
    signal = outcome(load("coverage-ec2-inactive.eventbridge.json"))
    assert isinstance(signal, HealthSignal)
    assert (signal.source, signal.account_uid, signal.healthy) == ("aws.inspector2", "444455556666", False)
    assert signal.service == traits.NO_SERVICE  # an instance id alone names no container service
    assert signal.detail == "Inspector PACKAGE scanning of i-0a1b2c3d4e5f60718: INACTIVE (UNMANAGED_EC2_INSTANCE)"
    assert signal.time == 1_772_524_800_123


def test_scan_event_becomes_a_healthy_signal() -> None:
    signal = outcome(load("scan-ecr-initial-scan-complete.eventbridge.json"))
    assert isinstance(signal, HealthSignal)
    assert signal.healthy is True
    assert DIGEST in signal.detail


def test_a_finding_without_its_arn_is_malformed() -> None:
    doc = copy.deepcopy(load("list-findings.findings.json")[0])
    del doc["awsAccountId"]
    with pytest.raises(MalformedEventError, match="awsAccountId"):
        inspector.normalize(doc)


def test_other_inspector_events_are_unsupported() -> None:
    event = load("scan-ecr-initial-scan-complete.eventbridge.json")
    event["detail-type"] = "Inspector2 Auto Enable"
    with pytest.raises(UnsupportedSourceError):
        inspector.normalize(event)


def test_coverage_matrix_counts_inspector_for_aws_vulnerability_management() -> None:
    finding = outcome(load("ec2-eks-node-package-vulnerability.eventbridge.json"))
    now = finding["time"] + 60_000
    cell = (traits.EKS, traits.INFRASTRUCTURE, traits.VULNERABILITY_MANAGEMENT)
    observed = Observations(
        now=now,
        window_ms=3_600_000,
        latest={(*cell, "aws.inspector2"): finding["time"]},
        reporting={"aws.inspector2": frozenset({"AWS"})},
    )
    result = matrix(observed).cell(*cell)
    assert result.state == "covered"
    assert "Inspector EC2 scanning (EKS nodes, ECS container instances)" in result.sources
    app = matrix(observed).cell(traits.ECS_FARGATE, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)
    assert "Inspector ECR image scanning" in app.sources


def test_a_whole_list_findings_response_gives_each_finding() -> None:
    response = {"findings": load("list-findings.findings.json"), "nextToken": "opaque-token"}
    outcomes = list(normalize(response))
    assert [o.error for o in outcomes] == [None, None]
    assert all(o.finding is not None and o.source == "aws.inspector2" for o in outcomes)


@pytest.mark.parametrize(
    "sent",
    ["Mar 2, 2026, 10:20:11 AM", "Mon Mar 02 10:20:11.731 UTC 2026", "Mon Mar 02 10:20:11 UTC 2026"],
    ids=["2023-style", "2024-style", "2024-style-no-fraction"],
)
def test_inspector_s_text_times_are_read_as_utc(sent: str) -> None:
    """EventBridge findings carried "Mar 20, 2023, 6:08:05 PM", later "Thu Jun 20 01:47:55.779 UTC 2024"."""
    event = load("ecr-image-package-vulnerability.eventbridge.json")
    for key in ("firstObservedAt", "lastObservedAt", "updatedAt"):
        event["detail"][key] = sent
    [outcome] = normalize(event)
    assert outcome.finding is not None, outcome.error
    expected = 1772446811731 if ".731" in sent else 1772446811000
    assert outcome.finding["time"] == expected
    assert outcome.finding["finding_info"]["created_time"] == expected
