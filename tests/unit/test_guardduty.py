"""The GuardDuty normalizer: fixtures in tests/events/aws/guardduty, written from the GuardDuty docs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.ocsf import assert_valid
from tests.support.strategies import JSON

from corral import ocsf, traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import HealthSignal, Skip
from corral.sources import guardduty
from corral.sources.guardduty._casing import camel_finding, wire_name

EVENTS = Path(__file__).resolve().parents[1] / "events" / "aws" / "guardduty"
ACCOUNT = "111122223333"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def finding(name: str, delivery_id: str | None = None) -> dict[str, Any]:
    doc = load(name)
    result = guardduty.normalize(doc, delivery_id)
    assert isinstance(result, dict), result
    assert_valid(result)
    return result


def eks_runtime_event() -> tuple[dict[str, Any], str]:
    event = load("eks-runtime-newbinaryexecuted-eventbridge.json")
    return event["detail"], event["id"]


FINDING_FIXTURES = sorted(
    p.name
    for p in EVENTS.glob("*.json")
    if not p.name.startswith(("runtime-protection-", "cloudtrail-", "sqs-", "get-findings-"))
    and "eventbridge" not in p.name
)


def trait_values(result: dict[str, Any]) -> dict[str, str]:
    return traits.read(result)


# --- contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FINDING_FIXTURES)
def test_every_bare_fixture_is_valid_ocsf(name: str) -> None:
    """Each bare finding fixture normalizes to a valid OCSF 1.8.0 Detection Finding."""
    result = finding(name)
    assert result["class_uid"] == ocsf.DETECTION
    assert result["metadata"]["product"]["uid"] == guardduty.SOURCE
    assert result["cloud"]["account"]["uid"] == ACCOUNT


def test_eventbridge_detail_identity_and_delivery_id() -> None:
    """The finding ARN is the uid, the account is the finding's, and the bus id lands only in metadata.uid."""
    detail, event_id = eks_runtime_event()
    result = guardduty.normalize(detail, event_id)
    assert isinstance(result, dict)
    assert_valid(result)
    assert ocsf.identity(result) == (guardduty.SOURCE, ACCOUNT, detail["arn"])
    assert result["metadata"]["uid"] == event_id
    assert event_id not in json.dumps({k: v for k, v in result.items() if k != "metadata"})


def test_delivery_id_never_changes_identity() -> None:
    """Two deliveries of one finding differ only in metadata.uid."""
    detail, _ = eks_runtime_event()
    first = guardduty.normalize(detail, "delivery-1")
    second = guardduty.normalize(detail, "delivery-2")
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["metadata"].pop("uid") == "delivery-1"
    assert second["metadata"].pop("uid") == "delivery-2"
    assert first == second


def test_whole_finding_event_is_normalized_like_its_detail() -> None:
    """A whole "GuardDuty Finding" event gives the same finding as its detail with the event id."""
    event = load("eks-runtime-newbinaryexecuted-eventbridge.json")
    assert guardduty.normalize(event) == guardduty.normalize(event["detail"], event["id"])


def test_normalize_is_deterministic_and_does_not_modify_input() -> None:
    """Normalizing twice gives equal output and leaves the input untouched."""
    detail, event_id = eks_runtime_event()
    before = copy.deepcopy(detail)
    assert guardduty.normalize(detail, event_id) == guardduty.normalize(detail, event_id)
    assert detail == before


# --- times, activity, status ---------------------------------------------------------------------


def test_times_map_to_finding_info() -> None:
    """createdAt/updatedAt/eventFirstSeen/eventLastSeen become epoch-ms finding_info times; count is kept."""
    detail, _ = eks_runtime_event()
    info = finding("eks-runtime-newbinaryexecuted-update.json")["finding_info"]
    update = load("eks-runtime-newbinaryexecuted-update.json")
    assert info["created_time"] == ocsf.timestamp_ms(detail["createdAt"])
    assert info["modified_time"] == ocsf.timestamp_ms(update["updatedAt"])
    assert info["first_seen_time"] == ocsf.timestamp_ms(update["service"]["eventFirstSeen"])
    assert info["last_seen_time"] == ocsf.timestamp_ms(update["service"]["eventLastSeen"])


def test_first_sighting_is_create_then_update_then_close() -> None:
    """Same arn: first version Create/New, later version Update/New, archived version Close/Archived."""
    detail, _ = eks_runtime_event()
    first = guardduty.normalize(detail)
    update = finding("eks-runtime-newbinaryexecuted-update.json")
    archived = finding("eks-runtime-newbinaryexecuted-archived.json")
    assert isinstance(first, dict)
    assert (first["activity_id"], first["status_id"]) == (ocsf.CREATE, ocsf.STATUS_NEW)
    assert (update["activity_id"], update["status_id"], update["count"]) == (ocsf.UPDATE, ocsf.STATUS_NEW, 2)
    assert (archived["activity_id"], archived["status_id"]) == (ocsf.CLOSE, ocsf.STATUS_ARCHIVED)
    assert ocsf.identity(first) == ocsf.identity(update) == ocsf.identity(archived)
    assert ocsf.modified_time(first) < ocsf.modified_time(update) < ocsf.modified_time(archived)


def test_equal_times_with_repeat_count_is_update() -> None:
    """createdAt == updatedAt but count > 1 is not a first sighting."""
    detail, _ = eks_runtime_event()
    detail["service"]["count"] = 3
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert result["activity_id"] == ocsf.UPDATE


def test_epoch_seconds_times_equal_iso_times() -> None:
    """Epoch-second float times give the same milliseconds as the ISO form of the same instants."""
    result = finding("ec2-eks-node-bitcointool-dns-epoch-seconds.json")
    doc = load("ec2-eks-node-bitcointool-dns-epoch-seconds.json")
    assert result["finding_info"]["created_time"] == int(doc["createdAt"] * 1000)
    assert result["time"] == result["finding_info"]["modified_time"] == int(doc["updatedAt"] * 1000)
    assert result["finding_info"]["last_seen_time"] == int(doc["service"]["eventLastSeen"] * 1000)


def test_plus_0000_offsets_parse() -> None:
    """Older findings' "+0000" offsets parse like "Z"."""
    detail, _ = eks_runtime_event()
    detail["createdAt"] = detail["updatedAt"] = "2017-11-01T21:31:05.542+0000"
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert result["time"] == ocsf.timestamp_ms("2017-11-01T21:31:05.542Z")


# --- severity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.0, 2), (3.9, 2), (4.0, 3), (6.9, 3), (7.0, 4), (8.9, 4), (9.0, 5), (10.0, 5), (5, 3)],
)
def test_severity_bands(value: float, expected: int) -> None:
    """GuardDuty's numeric bands map to Low/Medium/High/Critical."""
    detail, _ = eks_runtime_event()
    detail["severity"] = value
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert result["severity_id"] == expected
    assert result["severity"] == ocsf.SEVERITY_NAMES[expected]


@pytest.mark.parametrize("value", [0, 0.5, 11, 10.01, -3, "HIGH", True])
def test_severity_outside_table_is_other_with_raw_value(value: object) -> None:
    """A severity outside the table gives severity_id 99 with the raw value as `severity`."""
    detail, _ = eks_runtime_event()
    detail["severity"] = value
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert_valid(result)
    assert result["severity_id"] == 99
    assert result["severity"] == str(value)


def test_attack_sequence_is_critical_with_attacks_from_indicators() -> None:
    """An attack sequence (9.2) is Critical; its ATT&CK tactics and techniques come from its indicators."""
    result = finding("attacksequence-eks-compromisedcluster.json")
    assert result["severity_id"] == 5
    attacks = result["finding_info"]["attacks"]
    tactics = {a["tactic"]["uid"]: a["tactic"]["name"] for a in attacks if "tactic" in a}
    assert tactics == {"TA0002": "Execution", "TA0004": "Privilege Escalation", "TA0003": "Persistence"}
    techniques = {a["technique"]["uid"] for a in attacks if "technique" in a}
    assert techniques == {"T1609", "T1611", "T1053"}
    sub = next(a["sub_technique"] for a in attacks if "sub_technique" in a)
    assert sub == {"uid": "T1053.007", "name": "Container Orchestration Job"}
    assert trait_values(result)[traits.SERVICE] == traits.EKS


def test_no_attack_is_invented_from_the_threat_purpose() -> None:
    """A finding whose type starts with "Execution:" but carries no ATT&CK data gets no attacks."""
    detail, _ = eks_runtime_event()
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert "attacks" not in result["finding_info"]


# --- finding_info, product, cloud ----------------------------------------------------------------


def test_finding_info_text_link_and_analytic() -> None:
    """Title and description are kept as sent; types/analytic are the type; src_url is the console link."""
    detail, _ = eks_runtime_event()
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    info = result["finding_info"]
    assert info["title"] == detail["title"] and info["desc"] == detail["description"]
    assert info["types"] == [detail["type"]]
    assert info["analytic"] == {"uid": detail["type"], "name": detail["type"], "type_id": 1, "type": "Rule"}
    assert info["src_url"] == (
        f"https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId={detail['id']}"
    )
    assert result["metadata"]["product"]["feature"] == {"name": "RuntimeMonitoring"}
    assert result["cloud"] == {
        "provider": "AWS",
        "region": "us-east-1",
        "cloud_partition": "aws",
        "account": {"uid": ACCOUNT, "type_id": 10, "type": "AWS Account"},
    }


def test_remediation_links_to_guardduty_docs() -> None:
    """Remediation has text and a link to the GuardDuty remediation page for the finding's family."""
    runtime = finding("eks-runtime-newbinaryexecuted-update.json")["remediation"]
    audit = finding("eks-audit-privilegedcontainer.json")["remediation"]
    assert runtime["desc"] and runtime["references"][0].endswith("guardduty-remediate-runtime-monitoring.html")
    assert audit["references"][0].endswith("guardduty-remediate-kubernetes.html")


def test_unmapped_keeps_every_unmapped_vendor_field() -> None:
    """Vendor fields that are not mapped stay in `unmapped` with their values; mapped ones are not repeated."""
    result = finding("eks-audit-privilegedcontainer.json")
    unmapped = result["unmapped"]
    assert unmapped["service"]["detectorId"] == load("eks-audit-privilegedcontainer.json")["service"]["detectorId"]
    assert unmapped["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["hostPID"] is True
    assert unmapped["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["volumes"][0]["hostPath"] == {
        "path": "/"
    }
    assert unmapped["severity"] == 5
    assert "arn" not in unmapped and "title" not in unmapped


def test_attacker_controlled_text_is_kept_exactly() -> None:
    """User agents, process names and titles with odd characters come through byte for byte."""
    detail, _ = eks_runtime_event()
    odd = "kubectl/1.0 <script>alert(1)</script> \u202e\u0000 ${jndi:ldap://x}"
    detail["title"] = odd
    detail["service"]["runtimeDetails"]["process"]["name"] = odd
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    assert result["finding_info"]["title"] == odd
    assert result["evidences"][0]["process"]["name"] == odd


# --- container context and classification --------------------------------------------------------


def test_eks_runtime_container_context() -> None:
    """The EKS runtime process carries its container (image digest as uid) and the node as device."""
    detail, _ = eks_runtime_event()
    result = guardduty.normalize(detail)
    assert isinstance(result, dict)
    evidence = result["evidences"][0]
    container = evidence["process"]["container"]
    expected = detail["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["containers"][0]
    assert container["uid"] == expected["id"] and container["name"] == expected["name"]
    assert container["orchestrator"] == "EKS" and container["runtime"] == "containerd"
    assert container["image"]["uid"] == expected["image"].split("@")[1]
    assert container["image"]["tag"] == "1.4.2"
    assert "pod_uuid" not in container
    assert evidence["device"]["instance_uid"] == detail["resource"]["instanceDetails"]["instanceId"]
    workload = next(r for r in result["resources"] if r["type"] == "Kubernetes Workload")
    assert workload["namespace"] == "shop"
    assert trait_values(result) == {
        traits.SERVICE: traits.EKS,
        traits.LAYER: traits.APPLICATION,
        traits.TASK: traits.THREAT_DETECTION,
    }


def test_eks_audit_finding_is_platform_with_api_evidence() -> None:
    """An EKS audit-log finding is (EKS, platform); its API call, user and privileged container are evidence."""
    result = finding("eks-audit-privilegedcontainer.json")
    assert trait_values(result)[traits.LAYER] == traits.PLATFORM
    api = next(e for e in result["evidences"] if "api" in e)
    assert api["api"]["operation"] == "create"
    assert api["http_request"]["url"]["path"] == "/api/v1/namespaces/default/pods"
    assert api["actor"]["user"]["name"] == "dev-alice"
    assert api["src_endpoint"]["ip"] == "203.0.113.25"
    container = next(e for e in result["evidences"] if "container" in e)
    assert container["container"]["image"] == {
        "uid": "docker.io/library/alpine:3.19",
        "name": "docker.io/library/alpine",
        "tag": "3.19",
    }
    assert container["data"]["security_context"] == {"privileged": True}


@pytest.mark.parametrize(
    ("name", "service", "layer"),
    [
        ("ecs-fargate-runtime-reverseshell.json", traits.ECS_FARGATE, traits.APPLICATION),
        ("ec2-eks-node-bitcointool-dns.json", traits.EKS, traits.INFRASTRUCTURE),
        ("s3-policy-bucketpublicaccessgranted.json", traits.NO_SERVICE, traits.INFRASTRUCTURE),
        ("attacksequence-eks-compromisedcluster.json", traits.EKS, traits.PLATFORM),
    ],
)
def test_classification_table(name: str, service: str, layer: str) -> None:
    """Service and layer follow the finding's resource shape."""
    values = trait_values(finding(name))
    assert (values[traits.SERVICE], values[traits.LAYER], values[traits.TASK]) == (
        service,
        layer,
        traits.THREAT_DETECTION,
    )


def test_ecs_on_ec2_when_launch_type_is_not_fargate() -> None:
    """An ECS runtime finding without launchType FARGATE is ECS on EC2."""
    doc = load("ecs-fargate-runtime-reverseshell.json")
    doc["resource"]["ecsClusterDetails"]["taskDetails"]["launchType"] = "EC2"
    result = guardduty.normalize(doc)
    assert isinstance(result, dict)
    assert trait_values(result)[traits.SERVICE] == traits.ECS_EC2


def test_ecs_fargate_task_and_connection() -> None:
    """The ECS task is a resource with its launch type; an outbound connection has the remote as destination."""
    result = finding("ecs-fargate-runtime-reverseshell.json")
    task = next(r for r in result["resources"] if r["type"] == "AWS::ECS::Task")
    assert task["data"]["launch_type"] == "FARGATE"
    assert result["evidences"][0]["process"]["container"]["orchestrator"] == "ECS"
    connection = next(e for e in result["evidences"] if "connection_info" in e)
    assert connection["connection_info"]["direction_id"] == 2
    assert connection["dst_endpoint"]["ip"] == "198.51.100.77" and connection["dst_endpoint"]["port"] == 4444


def test_sample_findings_are_marked() -> None:
    """additionalInfo.sample true marks the finding as a sample; others are not."""
    assert traits.is_sample(finding("eks-discovery-toripcaller-sample.json"))
    assert not traits.is_sample(finding("eks-audit-privilegedcontainer.json"))


# --- other shapes ---------------------------------------------------------------------------------


def test_pascalcase_get_findings_equals_camelcase() -> None:
    """A boto3 GetFindings element normalizes like the camelCase finding it came from."""
    pascal = load("get-findings-pascalcase.json")["Findings"][0]
    assert guardduty.recognizes(pascal)
    from_sdk = guardduty.normalize(pascal)
    from_api = guardduty.normalize(load("eks-audit-privilegedcontainer.json"))
    assert isinstance(from_sdk, dict) and isinstance(from_api, dict)
    assert_valid(from_sdk)
    sdk_unmapped, api_unmapped = from_sdk.pop("unmapped"), from_api.pop("unmapped")
    assert from_sdk == from_api
    assert sdk_unmapped["service"] == api_unmapped["service"]


@pytest.mark.parametrize(
    ("sdk", "wire"),
    [
        ("AccountId", "accountId"),
        ("SourceIps", "sourceIPs"),
        ("HostIPC", "hostIPC"),
        ("Latitude", "lat"),
        ("Code", "productCodeId"),
    ],
)
def test_wire_names(sdk: str, wire: str) -> None:
    """SDK member names convert to their wire names, including the renamed ones."""
    assert wire_name(sdk) == wire


def test_data_keyed_maps_keep_their_keys() -> None:
    """Keys of affectedResources are data and are not re-cased."""
    doc = camel_finding({"Service": {"Action": {"AwsApiCallAction": {"AffectedResources": {"AWS::IAM::Role": "r"}}}}})
    assert doc["service"]["action"]["awsApiCallAction"]["affectedResources"] == {"AWS::IAM::Role": "r"}


def test_sqs_batch_records_normalize() -> None:
    """EventBridge events inside SQS record bodies give a finding and a health signal."""
    results = []
    for record in load("sqs-batch-eventbridge.json")["Records"]:
        event = json.loads(record["body"])
        assert guardduty.recognizes(event)
        results.append(guardduty.normalize(event))
    assert isinstance(results[0], dict)
    assert_valid(results[0])
    assert results[0]["metadata"]["uid"] == json.loads(load("sqs-batch-eventbridge.json")["Records"][0]["body"])["id"]
    assert isinstance(results[1], HealthSignal) and not results[1].healthy


def test_cloudtrail_event_is_skipped() -> None:
    """An "AWS API Call via CloudTrail" event from aws.guardduty is recognized and skipped."""
    event = load("cloudtrail-api-call-negative.json")
    assert guardduty.recognizes(event)
    assert guardduty.normalize(event) == Skip("CloudTrail API call, not a finding")


def test_runtime_protection_unhealthy_eks() -> None:
    """A Runtime Protection Unhealthy event is an unhealthy EKS health signal at lastUpdatedAt."""
    event = load("runtime-protection-unhealthy-eks.json")
    signal = guardduty.normalize(event)
    assert isinstance(signal, HealthSignal)
    assert (signal.source, signal.account_uid, signal.service, signal.healthy) == (
        guardduty.SOURCE,
        ACCOUNT,
        traits.EKS,
        False,
    )
    assert signal.time == ocsf.timestamp_ms(event["detail"]["lastUpdatedAt"])
    assert signal.region == "us-east-1"
    assert "shop-prod" in signal.detail and "Agent not reporting" in signal.detail


def test_runtime_protection_healthy_ecs_fargate() -> None:
    """A Runtime Protection Healthy event for an ECS cluster with Fargate details is healthy ECS on Fargate."""
    signal = guardduty.normalize(load("runtime-protection-healthy-ecs-fargate.json"))
    assert isinstance(signal, HealthSignal)
    assert (signal.service, signal.healthy, signal.region) == (traits.ECS_FARGATE, True, "eu-west-1")


def test_other_guardduty_event_types_are_unsupported() -> None:
    """Another detail-type from aws.guardduty raises UnsupportedSourceError naming it."""
    event = load("runtime-protection-healthy-ecs-fargate.json")
    event["detail-type"] = "GuardDuty Malware Protection Object Scan Result"
    with pytest.raises(UnsupportedSourceError, match="Malware Protection Object Scan Result"):
        guardduty.normalize(event)


# --- recognition and errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "detail": {}},
        {"SystemAlertId": "x", "AlertType": "K8S_PrivilegedContainer", "VendorName": "Microsoft"},
        {
            "notificationConfigName": "organizations/1/notificationConfigs/c",
            "finding": {"name": "organizations/1/sources/2/findings/3"},
        },
        {"schemaVersion": "2.0", "arn": "arn:aws:securityhub:us-east-1:111122223333:finding/x"},
        {},
    ],
)
def test_foreign_documents_are_not_recognized(doc: dict[str, Any]) -> None:
    """Security Hub, Defender and SCC documents are not GuardDuty's."""
    assert not guardduty.recognizes(doc)


@pytest.mark.parametrize(("field", "reason"), [("type", "no type"), ("updatedAt", None)])
def test_missing_required_fields_raise_malformed(field: str, reason: str | None) -> None:
    """A finding without type, or without any time, is malformed, with a reason naming the field."""
    detail, _ = eks_runtime_event()
    del detail[field]
    if reason is None:  # createdAt still orders the finding
        assert isinstance(guardduty.normalize(detail), dict)
        del detail["createdAt"]
        reason = "no updatedAt"
    with pytest.raises(MalformedEventError, match=reason):
        guardduty.normalize(detail)


def test_identity_falls_back_to_the_id_and_the_arn_account() -> None:
    """Without accountId the ARN's account is used; without arn the finding id; without both it is malformed."""
    detail, _ = eks_runtime_event()
    arn_account = detail["arn"].split(":")[4]
    del detail["accountId"]
    finding = guardduty.normalize(detail)
    assert isinstance(finding, dict)
    assert finding["cloud"]["account"]["uid"] == arn_account
    del detail["arn"]
    finding = guardduty.normalize(detail)
    assert isinstance(finding, dict)
    assert finding["finding_info"]["uid"] == detail["id"]
    assert finding["cloud"]["account"]["uid"] == guardduty.UNKNOWN_ACCOUNT
    del detail["id"]
    with pytest.raises(MalformedEventError, match="no arn and no id"):
        guardduty.normalize(detail)


def test_bad_time_raises_malformed_naming_the_field() -> None:
    """An unparseable updatedAt is malformed, naming updatedAt."""
    detail, _ = eks_runtime_event()
    detail["updatedAt"] = "yesterday"
    with pytest.raises(MalformedEventError, match="updatedAt"):
        guardduty.normalize(detail)


# --- robustness ------------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.append((*prefix, i))
            found += _paths(value, (*prefix, i))
    return found


ALL_FIXTURES = sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith(("sqs-", "get-findings-")))


def _check(doc: Any) -> None:
    assert guardduty.recognizes(doc) in (True, False)
    try:
        result = guardduty.normalize(doc, "d")
    except (MalformedEventError, UnsupportedSourceError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    if isinstance(result, dict):
        assert_valid(result)
    else:
        assert isinstance(result, Skip | HealthSignal)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(doc=st.dictionaries(st.text(max_size=15), JSON, max_size=6))
def test_arbitrary_json_objects_raise_only_documented_errors(doc: dict[str, Any]) -> None:
    """Any JSON object gives a valid result or MalformedEventError/UnsupportedSourceError."""
    _check(doc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_mutated_fixtures_raise_only_documented_errors(data: st.DataObject) -> None:
    """Fixtures with fields removed or replaced by other JSON types never raise anything else."""
    doc = copy.deepcopy(load(data.draw(st.sampled_from(ALL_FIXTURES))))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
    _check(doc)


@given(value=JSON)
def test_non_objects_are_malformed_and_never_recognized(value: Any) -> None:
    """A JSON value that is not an object is never recognized and is malformed."""
    if isinstance(value, dict):
        return
    assert not guardduty.recognizes(value)
    with pytest.raises(MalformedEventError):
        guardduty.normalize(value)


def test_the_console_link_goes_to_the_detector_s_region() -> None:
    """A finding from a global service event may name another region than its detector's: the link uses the ARN's."""
    detail, event_id = eks_runtime_event()
    detail = copy.deepcopy(detail)
    arn = detail["arn"].split(":")
    arn[3] = "us-east-2"
    detail["arn"], detail["region"] = ":".join(arn), "us-east-1"
    result = guardduty.normalize(detail, event_id)
    assert isinstance(result, dict)
    assert result["cloud"]["region"] == "us-east-1"
    assert result["finding_info"]["src_url"].startswith(
        "https://us-east-2.console.aws.amazon.com/guardduty/home?region=us-east-2#"
    )
