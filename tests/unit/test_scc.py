"""Google Security Command Center -> OCSF 1.8.0: the SCC normalizer, on synthetic deliveries."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.ocsf import assert_valid, problems
from tests.support.strategies import JSON

from corral import context, ocsf, traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import Skip
from corral.sources import scc

EVENTS = Path(__file__).resolve().parents[1] / "events" / "gcp" / "scc"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def unwrap(doc: Any) -> Iterator[tuple[Any, str | None]]:
    """Yield (document, Pub/Sub message id) from a push body, a CloudEvent or a ListFindings page."""
    if isinstance(doc, dict) and "listFindingsResults" in doc:
        for item in doc["listFindingsResults"]:
            yield item, None
        return
    if isinstance(doc, dict) and doc.get("specversion"):
        doc = doc["data"]
    if isinstance(doc, dict) and isinstance(doc.get("message"), dict):
        message = doc["message"]
        yield json.loads(base64.b64decode(message["data"])), message.get("messageId")
        return
    yield doc, None


def finding(name: str) -> dict[str, Any]:
    """Normalize the one document of a fixture file and return the OCSF finding."""
    [(doc, message_id)] = list(unwrap(load(name)))
    out = scc.normalize(doc, message_id)
    assert isinstance(out, dict)
    return out


ALL_FIXTURES = sorted(p.name for p in EVENTS.glob("*.json"))
FINDING_FIXTURES = [n for n in ALL_FIXTURES if not n.startswith("scc-error")]


@pytest.mark.parametrize("name", FINDING_FIXTURES)
def test_every_fixture_gives_valid_ocsf(name: str) -> None:
    """Every synthetic SCC delivery normalizes to a finding valid against OCSF 1.8.0 cloud+container."""
    for doc, message_id in unwrap(load(name)):
        assert scc.recognizes(doc)
        out = scc.normalize(doc, message_id)
        assert isinstance(out, dict)
        assert_valid(out)
        assert out["metadata"]["product"]["uid"] == "google.scc"


def test_base64_push_body_holds_the_readable_notification() -> None:
    """The Pub/Sub push fixture decodes to exactly the readable NotificationMessage fixture beside it."""
    [(doc, message_id)] = list(unwrap(load("ctd-added-binary-executed.pubsub-push.json")))
    assert doc == load("ctd-added-binary-executed.notification.json")
    assert message_id == "9000000000000001"


def test_delivery_id_goes_to_metadata_uid_only() -> None:
    """The Pub/Sub message id is metadata.uid and never the finding's identity."""
    out = finding("ctd-added-binary-executed.pubsub-push.json")
    assert out["metadata"]["uid"] == "9000000000000001"
    assert "9000000000000001" not in ocsf.identity(out)
    assert "uid" not in finding("ctd-added-binary-executed.notification.json")["metadata"]


def test_container_threat_on_gke_pod() -> None:
    """A Container Threat Detection finding keeps pod, container, image digest, processes and ATT&CK."""
    doc = load("ctd-added-binary-executed.notification.json")
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert out["class_uid"] == ocsf.DETECTION and out["is_alert"] is True
    assert out["severity_id"] == 5 and out["activity_id"] == ocsf.CREATE and out["status_id"] == ocsf.STATUS_NEW
    assert out["finding_info"]["uid"] == doc["finding"]["canonicalName"]
    assert out["finding_info"]["uid_alt"] == doc["finding"]["name"]
    assert out["cloud"]["account"]["uid"] == "corral-demo"
    assert out["cloud"]["project_uid"] == "987654321098"
    assert out["cloud"]["org"]["uid"] == "123456789012"
    ctx = context.container_context(out)
    pod = doc["finding"]["kubernetes"]["pods"][0]
    assert (ctx.cluster, ctx.namespace, ctx.pod) == ("shop-prod", pod["ns"], pod["name"])
    assert ctx.container == pod["containers"][0]["name"]
    assert ctx.image_digest == pod["containers"][0]["imageId"]
    assert ctx.image == pod["containers"][0]["uri"]
    assert ctx.orchestrator == "GKE"
    pids = [e["process"]["pid"] for e in out["evidences"] if "process" in e]
    assert pids == [4242, 4200]
    assert traits.read(out) == {"container_service": "GKE", "layer": "application", "task": "threat detection"}


def test_attacker_text_is_kept_exactly() -> None:
    """Process names and arguments that look like markup reach OCSF byte for byte."""
    doc = load("ctd-added-binary-executed.notification.json")
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    proc = next(e["process"] for e in out["evidences"] if "process" in e)
    sent = doc["finding"]["processes"][0]
    assert proc["name"] == sent["name"]
    assert proc["file"]["path"] == sent["binary"]["path"]
    assert proc["cmd_line"] == " ".join(sent["args"])
    assert out["unmapped"]["finding"]["processes"] == doc["finding"]["processes"]


def test_mitre_enum_names_become_attack_ids() -> None:
    """UNIX_SHELL with its parent becomes one attack: TA0002 / T1059 / T1059.004; extra tactics stand alone."""
    out = finding("ctd-added-binary-executed.notification.json")
    attacks = out["finding_info"]["attacks"]
    assert attacks[0]["tactic"]["uid"] == "TA0002"
    assert attacks[0]["technique"]["uid"] == "T1059"
    assert attacks[0]["sub_technique"] == {"uid": "T1059.004", "name": "Unix Shell"}
    assert attacks[0]["version"] == "15"
    assert attacks[1]["tactic"]["uid"] == "TA0005" and "technique" not in attacks[1]
    assert len(attacks) == 2


def test_unknown_mitre_name_is_kept_by_name_without_an_id() -> None:
    """A technique name missing from the table stays as a name and the vendor object stays in unmapped."""
    doc = load("etd-k8s-rbac-change.notification.json")
    doc["finding"]["mitreAttack"]["primaryTechniques"] = ["SOMETHING_NEW"]
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert {"name": "SOMETHING_NEW"} in [a.get("technique") for a in out["finding_info"]["attacks"]]
    assert out["unmapped"]["finding"]["mitreAttack"] == doc["finding"]["mitreAttack"]
    assert_valid(out)


def test_cloud_run_threat() -> None:
    """A Cloud Run Threat Detection finding is classified Cloud Run and carries its container by digest."""
    out = finding("crtd-reverse-shell.cloudevent.json")
    assert traits.read(out)["container_service"] == "Cloud Run"
    ctx = context.container_context(out)
    assert ctx.orchestrator == "Cloud Run"
    assert ctx.image_digest == "sha256:" + "ab" * 32
    assert out["metadata"]["uid"] == "9000000000000002"


def test_gke_misconfiguration_is_a_failed_compliance_check() -> None:
    """An SHA misconfiguration is a 2003 with the category as control, standards and remediation."""
    out = finding("sha-legacy-authorization.listfindings-result.json")
    assert out["class_uid"] == ocsf.COMPLIANCE
    compliance = out["compliance"]
    assert compliance["control"] == "LEGACY_AUTHORIZATION_ENABLED"
    assert compliance["standards"] == ["cis-gke 1.5", "pci 3.2.1"]
    assert compliance["requirements"] == ["cis-gke 1.5 5.8.4", "pci 3.2.1 4.1", "pci 3.2.1 7.1.2"]
    assert compliance["status_id"] == ocsf.COMPLIANCE_FAIL
    assert out["remediation"]["desc"].startswith("Run `gcloud container clusters update")
    assert out["finding_info"]["src_url"].startswith("https://console.cloud.google.com/kubernetes/")
    assert traits.read(out) == {"container_service": "GKE", "layer": "platform", "task": "hardening"}
    assert out["unmapped"]["stateChange"] == "UNUSED"


def test_fixed_misconfiguration_passes_and_closes() -> None:
    """The same SHA finding turned INACTIVE is a Pass, status Resolved, activity Close, same identity."""
    active = finding("sha-legacy-authorization.listfindings-result.json")
    fixed = finding("sha-legacy-authorization.inactive.listfindings-result.json")
    assert ocsf.identity(fixed) == ocsf.identity(active)
    assert fixed["compliance"]["status_id"] == ocsf.COMPLIANCE_PASS
    assert (fixed["status_id"], fixed["activity_id"]) == (ocsf.STATUS_RESOLVED, ocsf.CLOSE)
    assert ocsf.modified_time(fixed) > ocsf.modified_time(active)


def test_old_sha_finding_without_class() -> None:
    """A 2021 notification without findingClass or resource is a 2003 built from its source properties."""
    out = finding("sha-node-pool-auto-upgrade.v1.notification.json")
    assert out["class_uid"] == ocsf.COMPLIANCE
    assert out["severity_id"] == 0
    assert out["cloud"]["account"]["uid"] == "corral-demo"
    assert out["compliance"]["standards"] == ["cis 1.0"]
    assert out["remediation"]["desc"] == "Enable auto-upgrade on the node pool."
    assert traits.read(out)["layer"] == "infrastructure"
    assert out["finding_info"]["src_url"].startswith(
        "https://console.cloud.google.com/security/command-center/findingsv2;name=organizations%2F123456789012%2F"
    )
    assert out["finding_info"]["src_url"].endswith("?organizationId=123456789012")


def test_zonal_resource_location_is_split_into_region_and_zone() -> None:
    """SCC's `resource.location` of a zonal GKE node pool is a zone: each resource gets region and zone.

    GCP zones are named `<region>-<letter>` (us-central1-a lies in us-central1); OCSF
    resource_details has `region` and `zone` (cloud profile), split as the top-level `cloud` is.
    """
    out = finding("gke-zonal-node-pool.finding.json")
    assert (out["cloud"]["region"], out["cloud"]["zone"]) == ("us-central1", "us-central1-a")
    pool, cluster = out["resources"]
    assert (pool["name"], pool["region"], pool["zone"]) == ("default-pool", "us-central1", "us-central1-a")
    assert (cluster["name"], cluster["region"], cluster["zone"]) == ("edge", "us-central1", "us-central1-a")
    regional = finding("gke-image-cve.notification.json")  # a regional cluster: no zone is invented
    assert [(r.get("region"), "zone" in r) for r in regional["resources"][:1]] == [("europe-west1", False)]


def test_container_image_cve_is_a_vulnerability_finding() -> None:
    """A VULNERABILITY with a CVE is a 2002 with CVSS, package, fix and the image as a resource."""
    out = finding("gke-image-cve.pubsub-push.json")
    assert out["class_uid"] == ocsf.VULNERABILITY
    [vuln] = out["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2024-12797"
    vector = "AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N"
    assert vuln["cve"]["cvss"] == [{"version": "3", "base_score": 7.4, "vector_string": vector}]
    assert vuln["affected_packages"][0]["name"] == "openssl"
    assert vuln["affected_packages"][0]["fixed_in_version"] == "3.4.1-1"
    assert vuln["is_fix_available"] is True and vuln["is_exploit_available"] is False
    images = [r for r in out["resources"] if r.get("type") == "Container Image"]
    assert [i["uid"] for i in images] == ["sha256:" + "3f" * 32]
    assert traits.read(out) == {"container_service": "GKE", "layer": "application", "task": "vulnerability management"}


def test_cvssv3_metrics_give_version_3_and_no_invented_minor_version() -> None:
    """Google's `Cvssv3` is "CVSS version 3": its eight base metrics, sent one by one, with no vector.

    The version is what Google states, "3"; the vector is the metrics alone, without the
    "CVSS:3.1/" (or "CVSS:3.0/") label that would claim a minor version; a metric missing gives
    the score alone, since a partial vector would misstate the score's basis.
    """
    out = finding("vm-os-cve-cvssv3-metrics.finding.json")
    [cvss] = out["vulnerabilities"][0]["cve"]["cvss"]
    assert cvss == {"version": "3", "base_score": 7.8, "vector_string": "AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}
    doc = load("vm-os-cve-cvssv3-metrics.finding.json")
    del doc["finding"]["vulnerability"]["cve"]["cvssv3"]["scope"]
    out = scc.normalize(doc, None)
    assert isinstance(out, dict)
    assert out["vulnerabilities"][0]["cve"]["cvss"] == [{"version": "3", "base_score": 7.8}]


def test_vulnerability_without_cve_is_a_detection() -> None:
    """A VULNERABILITY without a CVE (web scanner) is a 2004 tagged for vulnerability management."""
    out = finding("wss-xss-no-cve.finding.json")
    assert out["class_uid"] == ocsf.DETECTION
    assert "VULNERABILITY" in out["finding_info"]["types"]
    assert traits.read(out)["task"] == "vulnerability management"
    assert out["unmapped"]["finding"]["sourceProperties"]["vulnerableUrl"].endswith("<script>alert(1)</script>")


def test_observation_is_not_an_alert() -> None:
    """An OBSERVATION is a 2004 with is_alert false; an invalid caller IP is left out, not invented."""
    out = finding("etd-sa-self-investigation.observation.finding.json")
    assert out["class_uid"] == ocsf.DETECTION and out["is_alert"] is False
    assert out["cloud"]["account"]["uid"] == "987654321098"
    assert not any("src_endpoint" in e for e in out.get("evidences", []))
    assert out["unmapped"]["finding"]["access"]["callerIp"] == "not-an-ip"


def test_toxic_combination_links_its_findings() -> None:
    """A TOXIC_COMBINATION lists its related findings in related_events and keeps the exposure score."""
    doc = load("toxic-combination-gke.notification.json")
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    related = [e["uid"] for e in out["finding_info"]["related_events"]]
    assert related == doc["finding"]["toxicCombination"]["relatedFindings"]
    assert out["is_alert"] is False
    assert out["unmapped"]["finding"]["toxicCombination"]["attackExposureScore"] == 18.5


def test_lifecycle_create_update_suppress_close() -> None:
    """One finding moves Create -> Update -> Suppressed (not closed) -> Close, keeping its identity."""
    first = finding("ctd-added-binary-executed.notification.json")
    updated = finding("ctd-added-binary-executed.updated.notification.json")
    muted = finding("ctd-added-binary-executed.muted.notification.json")
    closed = finding("ctd-added-binary-executed.inactive.notification.json")
    assert len({ocsf.identity(f) for f in (first, updated, muted, closed)}) == 1
    assert [f["activity_id"] for f in (first, updated, muted, closed)] == [
        ocsf.CREATE,
        ocsf.UPDATE,
        ocsf.UPDATE,
        ocsf.CLOSE,
    ]
    assert [f["status_id"] for f in (first, updated, muted, closed)] == [
        ocsf.STATUS_NEW,
        ocsf.STATUS_NEW,
        ocsf.STATUS_SUPPRESSED,
        ocsf.STATUS_RESOLVED,
    ]
    assert muted["status_detail"] == "organizations/123456789012/muteConfigs/known-miner-test"
    assert muted["unmapped"]["finding"]["mute"] == "MUTED"
    assert ocsf.modified_time(first) < ocsf.modified_time(updated) < ocsf.modified_time(closed)


def test_nanosecond_event_time_is_milliseconds() -> None:
    """A nanosecond eventTime becomes epoch milliseconds, truncated."""
    out = finding("ctd-added-binary-executed.notification.json")
    assert out["time"] == out["finding_info"]["modified_time"] == ocsf.timestamp_ms("2026-03-02T10:15:30.123Z")


def test_scc_error_is_skipped() -> None:
    """An SCC_ERROR finding is recognized and skipped, not turned into a security finding."""
    doc = load("scc-error-api-disabled.notification.json")
    assert scc.recognizes(doc)
    assert scc.normalize(doc) == Skip("SCC_ERROR finding, not a security finding")


def test_aws_resource_takes_the_aws_account() -> None:
    """A finding on an AWS resource has provider AWS and the AWS account, not the Google project."""
    out = finding("aws-eks-public-endpoint.notification.json")
    assert out["cloud"]["provider"] == "AWS"
    assert out["cloud"]["account"] == {
        "uid": "210987654321",
        "type_id": 10,
        "type": "AWS Account",
        "name": "payments-prod",
    }
    assert out["cloud"]["org"]["uid"] == "o-abcde12345"
    assert traits.read(out)["container_service"] == "EKS"


@pytest.mark.parametrize(
    ("raw", "severity_id", "caption"),
    [("CRITICAL", 5, "Critical"), ("LOW", 2, "Low"), ("SEVERITY_UNSPECIFIED", 0, "Unknown"), ("SEVERE", 99, "SEVERE")],
)
def test_severity_table(raw: str, severity_id: int, caption: str) -> None:
    """SCC severities map through the fixed table; anything else is 99 with the raw value."""
    doc = load("etd-k8s-rbac-change.notification.json")
    doc["finding"]["severity"] = raw
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert (out["severity_id"], out["severity"]) == (severity_id, caption)


def test_unmapped_keeps_sourceproperties_whole_and_drops_nothing() -> None:
    """Every vendor key not mapped in full is in unmapped; sourceProperties keeps its shape."""
    doc = load("ctd-added-binary-executed.notification.json")
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    left = out["unmapped"]["finding"]
    assert left["sourceProperties"] == doc["finding"]["sourceProperties"]
    mapped_in_full = {
        "name",
        "canonicalName",
        "category",
        "description",
        "eventTime",
        "createTime",
        "severity",
        "state",
        "findingClass",
        "parentDisplayName",
        "parent",
        "resourceName",
        "mitreAttack",
        "nextSteps",
    }
    assert set(doc["finding"]) - mapped_in_full == set(left)
    assert out["unmapped"]["notificationConfigName"] == doc["notificationConfigName"]
    assert out["unmapped"]["resource"]["gcpMetadata"] == doc["resource"]["gcpMetadata"]


def test_keyvalue_list_source_properties_are_read() -> None:
    """sourceProperties published as a {key, value} list still feed remediation and stay as sent."""
    doc = load("sha-node-pool-auto-upgrade.v1.notification.json")
    props = doc["finding"]["sourceProperties"]
    doc["finding"]["sourceProperties"] = [{"key": k, "value": v} for k, v in props.items()]
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert out["remediation"]["desc"] == props["Recommendation"]
    assert out["compliance"]["standards"] == ["cis 1.0"]
    assert out["unmapped"]["finding"]["sourceProperties"] == doc["finding"]["sourceProperties"]


def test_bare_finding_and_notification_give_the_same_identity() -> None:
    """The bare Finding, the ListFindings item and the NotificationMessage name the same finding alike."""
    doc = load("etd-k8s-rbac-change.notification.json")
    as_message = scc.normalize(doc)
    as_item = scc.normalize({"finding": doc["finding"], "resource": doc["resource"]})
    as_bare = scc.normalize(doc["finding"])
    assert isinstance(as_message, dict) and isinstance(as_item, dict) and isinstance(as_bare, dict)
    assert ocsf.identity(as_message) == ocsf.identity(as_item) == ocsf.identity(as_bare)


def test_unset_times_are_malformed() -> None:
    """A finding whose times are all unset (1970-01-01) is rejected with a reason naming the fields."""
    doc = load("etd-k8s-rbac-change.notification.json")
    doc["finding"]["eventTime"] = doc["finding"]["createTime"] = "1970-01-01T00:00:00Z"
    with pytest.raises(MalformedEventError, match="eventTime or createTime"):
        scc.normalize(doc)


def test_invalid_event_time_falls_back_to_create_time() -> None:
    """An eventTime that is not a time is kept in unmapped and createTime orders the finding."""
    doc = load("etd-k8s-rbac-change.notification.json")
    doc["finding"]["eventTime"] = "2026-03-05T07:30:00-070057Z"
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert out["time"] == ocsf.timestamp_ms(doc["finding"]["createTime"])
    assert out["unmapped"]["finding"]["eventTime"] == doc["finding"]["eventTime"]


def test_missing_name_is_malformed() -> None:
    """A finding without a name is rejected with a one-line reason."""
    doc = load("etd-k8s-rbac-change.notification.json")
    del doc["finding"]["name"]
    with pytest.raises(MalformedEventError, match="SCC finding has no name"):
        scc.normalize(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"detail-type": "GuardDuty Finding", "detail": {}},
        {"name": "12345", "properties": {}},
        {"finding": {"name": "not/a/finding"}},
        {"Findings": []},
    ],
)
def test_other_documents_are_not_recognized(doc: dict[str, Any]) -> None:
    """Documents of other sources, and look-alikes, are not SCC's."""
    assert scc.recognizes(doc) is False


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*path, i))
    return found


SAMPLES = [doc for name in FINDING_FIXTURES for doc, _ in unwrap(load(name))]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A fixture with one field removed or replaced by another JSON value."""
    doc = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON)
    return doc


def _normalize_or_reject(doc: Any) -> None:
    assert isinstance(scc.recognizes(doc), bool)
    try:
        out = scc.normalize(doc)
    except (MalformedEventError, UnsupportedSourceError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    if isinstance(out, dict):
        assert problems(out) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_never_crashes(doc: Any) -> None:
    """Any JSON value gives a finding, a skip or a MalformedEventError, never another exception."""
    _normalize_or_reject(doc)
    _normalize_or_reject({"finding": doc})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_fixtures_never_crash_and_stay_valid(doc: Any) -> None:
    """Fixtures with a field removed or retyped still give valid OCSF or a one-line MalformedEventError."""
    _normalize_or_reject(doc)


@pytest.mark.parametrize(("level", "severity_id"), [("High", 4), ("Low", 2), ("critical", 5), ("Bogus", 0)])
@pytest.mark.parametrize("absent", [None, "SEVERITY_UNSPECIFIED"])
def test_a_finding_from_before_severity_keeps_its_source_s_level(
    level: str, severity_id: int, absent: str | None
) -> None:
    """Security Health Analytics findings of 2019 carry their severity only as sourceProperties.SeverityLevel."""
    [(doc, message_id)] = list(unwrap(load("ctd-added-binary-executed.notification.json")))
    doc = copy.deepcopy(doc)
    if absent is None:
        doc["finding"].pop("severity", None)
    else:
        doc["finding"]["severity"] = absent
    doc["finding"]["sourceProperties"] = {"SeverityLevel": level, "ScannerName": "PUBLIC_BUCKET_ACL"}
    out = scc.normalize(doc, message_id)
    assert isinstance(out, dict)
    assert out["severity_id"] == severity_id
    assert out["unmapped"]["finding"]["sourceProperties"]["SeverityLevel"] == level  # kept as sent
