"""The Defender for Cloud normalizer: fixtures in tests/events/azure/defender, written from Microsoft's docs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.ocsf import assert_valid, problems
from tests.support.strategies import JSON

from corral import envelopes, inventory, ocsf, traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import HealthSignal, Item, Skip
from corral.sources import defender

EVENTS = Path(__file__).resolve().parents[1] / "events" / "azure" / "defender"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RECEIVED = 1_772_323_200_000  # 2026-03-01T00:00:00Z, standing in for the Event Hubs enqueued time
FIXTURES = sorted(p.name for p in EVENTS.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def records(name: str) -> list[Any]:
    """Return the source documents in a fixture, unwrapped as the pipeline does."""
    found = list(envelopes.unwrap(load(name)))
    assert all(isinstance(item, Item) for item in found)
    return [item.doc for item in found if isinstance(item, Item)]


def normalized(doc: Any, delivery_id: str | None = "delivery-1") -> dict[str, Any]:
    result = defender.normalize(doc, delivery_id, received_time=RECEIVED)
    assert isinstance(result, dict), result
    assert_valid(result)
    return result


def finding(name: str, delivery_id: str | None = "delivery-1") -> dict[str, Any]:
    return normalized(load(name), delivery_id)


def classification(result: dict[str, Any]) -> tuple[str, str, str]:
    found = traits.read(result)
    return found["container_service"], found["layer"], found["task"]


def evidence_containers(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["container"] for e in result.get("evidences", []) if "container" in e]


def pascal(node: Any) -> Any:
    """Return `node` with every object key re-cased to PascalCase (as sub-assessments arrive)."""
    if isinstance(node, dict):
        return {(k[:1].upper() + k[1:]) if isinstance(k, str) else k: pascal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [pascal(v) for v in node]
    return node


# --- contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_record_is_recognized_and_valid(name: str) -> None:
    """Every record of every fixture is recognized and gives valid OCSF 1.8.0, or a Skip for secure scores."""
    for doc in records(name):
        assert defender.recognizes(doc)
        result = defender.normalize(doc, "delivery-1", received_time=RECEIVED)
        if isinstance(result, Skip):
            assert "securescores" in str(doc.get("type", "")).lower()
            continue
        assert isinstance(result, dict)
        assert problems(result) == []
        assert result["metadata"]["product"]["uid"] == "microsoft.defender_for_cloud"
        assert result["metadata"]["uid"] == "delivery-1"


def test_source_id_is_fixed() -> None:
    """The source id is the registry key others code against."""
    assert defender.SOURCE == "azure.defender"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"detail-type": "GuardDuty Finding", "detail": {}},
        {"type": "Microsoft.Compute/virtualMachines"},
        {"type": 7},
    ],
)
def test_recognizes_refuses_other_documents(doc: dict[str, Any]) -> None:
    """Documents that are not Defender records are not recognized."""
    assert defender.recognizes(doc) is False


def test_unknown_type_is_unsupported() -> None:
    """A Microsoft.Security record kind Corral does not read raises UnsupportedSourceError."""
    with pytest.raises(UnsupportedSourceError, match=r"microsoft\.security/pricings"):
        defender.normalize({"type": "Microsoft.Security/pricings", "id": "/subscriptions/x"})


def test_delivery_id_only_reaches_metadata_uid() -> None:
    """Two deliveries of one alert differ only in metadata.uid; the finding uid stays the vendor's."""
    first = finding("alert-k8s-privileged-container-aks.json", "eh-1")
    second = finding("alert-k8s-privileged-container-aks.json", "eh-2")
    assert first["metadata"]["uid"] == "eh-1"
    assert ocsf.identity(first) == ocsf.identity(second)
    first["metadata"].pop("uid")
    second["metadata"].pop("uid")
    assert first == second


# --- alerts --------------------------------------------------------------------------------------


def test_aks_alert_resolves_the_entity_graph_into_container_context() -> None:
    """A K8S_ alert's $id/$ref graph yields the container, its image digest, pod UID, and cluster/namespace/pod."""
    doc = load("alert-k8s-privileged-container-aks.json")
    result = normalized(doc)
    assert result["finding_info"]["uid"] == doc["SystemAlertId"]
    assert result["finding_info"]["src_url"] == doc["AlertUri"]
    assert result["finding_info"]["types"] == ["K8S_PrivilegedContainer"]
    [container] = evidence_containers(result)
    image = doc["Entities"][4]["Image"]["ImageId"]
    assert container["name"] == "app"
    assert container["uid"] == "containerd://9c8b7a6f5e4d"
    assert container["image"]["uid"] == image.split("@")[1]
    assert container["image"]["name"] == "shopacr.azurecr.io/shop/web"
    assert container["orchestrator"] == "AKS"
    assert container["pod_uuid"] == doc["Entities"][3]["Uid"]
    kinds = {(r.get("type"), r.get("name")) for r in result["resources"]}
    assert ("Microsoft.ContainerService/managedClusters", "aks-shop") in kinds
    assert ("Kubernetes Namespace", "shop") in kinds
    assert ("Kubernetes Pod", "web-6f7d9c") in kinds
    assert result["cloud"]["account"] == {"uid": SUBSCRIPTION, "type_id": 13, "type": "Azure Subscription"}
    assert result["cloud"]["region"] == "westeurope"
    assert result["metadata"]["product"]["feature"] == {"name": "Containers"}
    assert classification(result) == (traits.AKS, traits.PLATFORM, traits.THREAT_DETECTION)
    assert result["finding_info"]["attacks"] == [{"tactic": {"uid": "TA0004", "name": "Privilege Escalation"}}]
    assert result["is_alert"] is True


def test_entity_references_fill_a_field_only_with_an_entity_of_its_type() -> None:
    """A `$ref` landing on an entity of another Type fills nothing; a matching one still does.

    Microsoft's alert entities: a pod's `Namespace` is a K8s-namespace entity, a container's `Pod`
    a K8s-pod and its `Image` a container-image. Here `$id` 2 is sent first as an account (the first
    `$id` wins, as in stitched sample alerts) and the container's image reference names an ip.
    """
    result = normalized(load("alert-k8s-entity-refs-of-another-type.json"))
    [pod] = [r for r in result["resources"] if r["type"] == "Kubernetes Pod"]
    uid = "6b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    assert pod == {"uid": uid, "name": "api-7d9f4c-xk2lp", "type": "Kubernetes Pod", "role_id": 1}  # no namespace
    [container] = evidence_containers(result)
    assert "image" not in container  # the ip entity is not an image
    assert container["pod_uuid"] == pod["uid"]  # the pod reference is a pod: kept
    assert not any(r.get("namespace") == "deploy-bot" for r in result["resources"])


def test_alert_times_are_epoch_milliseconds_from_the_vendor_fields() -> None:
    """TimeGenerated, Start/EndTimeUtc and ProcessingEndTime map to created, first/last seen and modified."""
    doc = load("alert-k8s-privileged-container-aks.json")
    info = normalized(doc)["finding_info"]
    assert info["created_time"] == ocsf.timestamp_ms(doc["TimeGenerated"])
    assert info["first_seen_time"] == ocsf.timestamp_ms(doc["StartTimeUtc"])
    assert info["last_seen_time"] == ocsf.timestamp_ms(doc["EndTimeUtc"])
    assert info["modified_time"] == ocsf.timestamp_ms(doc["ProcessingEndTime"])


@pytest.mark.parametrize(
    ("name", "status", "activity"),
    [
        ("alert-k8s-privileged-container-aks.json", "New", "Create"),
        ("alert-k8s-privileged-container-aks.inprogress.json", "In Progress", "Update"),
        ("alert-k8s-privileged-container-aks.resolved.json", "Resolved", "Close"),
        ("alert-rest-k8s-exposed-dashboard.dismissed.json", "Suppressed", "Close"),
    ],
)
def test_alert_status_drives_status_and_activity(name: str, status: str, activity: str) -> None:
    """Active/InProgress/Resolved/Dismissed map to New+Create, In Progress+Update, Resolved+Close, Suppressed+Close."""
    result = finding(name)
    assert (result["status"], result["activity_name"]) == (status, activity)


def test_alert_versions_share_one_identity() -> None:
    """The new, in-progress and resolved deliveries of one alert are one finding."""
    names = ["", ".inprogress", ".resolved"]
    identities = {ocsf.identity(finding(f"alert-k8s-privileged-container-aks{n}.json")) for n in names}
    assert len(identities) == 1


def test_alert_on_an_aws_cluster_takes_the_aws_account() -> None:
    """An alert on an EKS cluster behind a multicloud connector describes the AWS account, region and service."""
    result = finding("alert-k8s-node-reverse-shell-eks-multicloud.json")
    assert result["cloud"]["provider"] == "AWS"
    assert result["cloud"]["account"] == {"uid": "111122223333", "type_id": 10, "type": "AWS Account"}
    assert result["cloud"]["region"] == "us-east-1"
    uids = [r.get("uid") for r in result["resources"]]
    assert "arn:aws:eks:us-east-1:111122223333:cluster/payments" in uids
    assert any("securityConnectors/aws-prod" in str(uid) for uid in uids)
    [container] = evidence_containers(result)
    assert container["orchestrator"] == "EKS"
    assert container["image"]["tag"] == "1.4.2"
    assert classification(result) == (traits.EKS, traits.APPLICATION, traits.THREAT_DETECTION)
    tactics = [a["tactic"]["uid"] for a in result["finding_info"]["attacks"]]
    assert tactics == ["TA0002", "TA0011"]


def test_remediation_steps_sent_as_a_json_string_are_decoded() -> None:
    """RemediationSteps holding a JSON-encoded list becomes one line per step."""
    result = finding("alert-k8s-node-reverse-shell-eks-multicloud.json")
    assert result["remediation"]["desc"] == "Isolate the pod.\nRotate the credentials the pod could read."


def test_rest_alert_reads_camel_case_properties() -> None:
    """The ARM alert shape gives the same mapping: uid from systemAlertId, ARM id as uid_alt, techniques."""
    doc = load("alert-rest-k8s-exposed-dashboard.dismissed.json")
    result = normalized(doc)
    assert result["finding_info"]["uid"] == doc["name"]
    assert result["finding_info"]["uid_alt"] == doc["id"]
    assert result["cloud"]["region"] == "westeurope"
    assert {"technique": {"uid": "T1133"}} in result["finding_info"]["attacks"]
    assert {"tactic": {"uid": "TA0001", "name": "Initial Access"}} in result["finding_info"]["attacks"]
    assert result["severity_id"] == 4


def test_non_tactic_intent_stays_unmapped_and_attacker_text_is_kept() -> None:
    """Intent PreAttack invents no tactic and stays in unmapped; entity text is kept byte for byte."""
    result = finding("alert-keyvault-unusual-access-preattack.json")
    assert "attacks" not in result["finding_info"]
    assert result["unmapped"]["Intent"] == "PreAttack"
    names = [e["data"].get("Name") for e in result["evidences"]]
    assert "<script>alert(1)</script>" in names
    assert classification(result) == (traits.NO_SERVICE, traits.PLATFORM, traits.THREAT_DETECTION)
    assert result["remediation"]["desc"] == "Review the vault's access policies."


def test_alert_unmapped_keeps_what_was_not_mapped_and_drops_what_was() -> None:
    """ExtendedProperties and IsIncident are kept in unmapped; mapped keys are not repeated there."""
    doc = load("alert-k8s-privileged-container-aks.json")
    unmapped = normalized(doc)["unmapped"]
    assert unmapped["ExtendedProperties"] == doc["ExtendedProperties"]
    assert unmapped["IsIncident"] is False
    assert "AlertDisplayName" not in unmapped
    assert "Entities" not in unmapped


def test_unknown_alert_status_and_severity_keep_the_vendor_words() -> None:
    """A status or severity outside Defender's vocabulary maps to 99 with the raw value."""
    doc = load("alert-k8s-privileged-container-aks.json")
    doc["Status"], doc["Severity"] = "Escalated", "Severe"
    result = normalized(doc)
    assert (result["status_id"], result["status"]) == (99, "Escalated")
    assert (result["severity_id"], result["severity"]) == (99, "Severe")


# --- recommendations -----------------------------------------------------------------------------


def test_recommendation_lifecycle_unhealthy_healthy_delete() -> None:
    """Unhealthy opens a failure, Healthy resolves and closes it, export Delete closes it as Deleted."""
    steps = [finding(f"assessment-aks-authorized-ip-ranges.{s}.json") for s in ("unhealthy", "healthy", "delete")]
    assert [(r["status"], r["activity_name"]) for r in steps] == [
        ("New", "Create"),
        ("Resolved", "Close"),
        ("Deleted", "Close"),
    ]
    assert [r["compliance"]["status"] for r in steps] == ["Fail", "Pass", "Pass"]
    assert len({ocsf.identity(r) for r in steps}) == 1


def test_recommendation_fields() -> None:
    """Identity is the lower-cased assessment id; link gets a scheme; HTML remediation is kept as sent."""
    doc = load("assessment-aks-authorized-ip-ranges.unhealthy.json")
    result = normalized(doc)
    assert result["finding_info"]["uid"] == doc["id"].lower()
    assert result["finding_info"]["src_url"] == "https://" + doc["properties"]["links"]["azurePortal"]
    assert result["remediation"]["desc"] == doc["properties"]["metadata"]["remediationDescription"]
    assert result["severity"] == "High"
    assert result["compliance"]["control"] == doc["properties"]["displayName"]
    assert result["resources"][0]["uid"] == doc["properties"]["resourceDetails"]["id"]
    assert result["metadata"]["tenant_uid"] == doc["tenantId"]
    assert classification(result) == (traits.AKS, traits.PLATFORM, traits.HARDENING)
    assert result["unmapped"]["properties"]["metadata"]["userImpact"] == "Low"
    assert "displayName" not in result["unmapped"]["properties"]


def test_not_applicable_recommendation_is_suppressed_with_its_cause() -> None:
    """NotApplicable is Suppressed with the reason; compliance Other (not a pass, not a warning)."""
    result = finding("assessment-rest-container-app-managed-identity.notapplicable.json")
    assert (result["compliance"]["status_id"], result["compliance"]["status"]) == (99, "NotApplicable")
    assert (result["status_id"], result["status"]) == (ocsf.STATUS_SUPPRESSED, "Suppressed")
    assert result["status_detail"]
    assert result["compliance"]["status_detail"] == "Exempt: Exempted by policy"
    assert classification(result) == (traits.CONTAINER_APPS, traits.PLATFORM, traits.HARDENING)


def test_recommendation_on_an_aws_resource_takes_the_aws_account() -> None:
    """resourceDetails source Aws gives cloud AWS, account and region from the ARN; a snapshot is an Update."""
    result = finding("assessment-aws-eks-control-plane-logging.unhealthy.json")
    assert result["cloud"]["provider"] == "AWS"
    assert result["cloud"]["account"]["uid"] == "111122223333"
    assert result["cloud"]["region"] == "us-east-1"
    assert result["activity_name"] == "Update"
    assert classification(result)[0] == traits.EKS


def test_function_app_recommendation_is_classified_by_kind() -> None:
    """A Microsoft.Web/sites resource with kind functionapp is an Azure Function App."""
    doc = load("assessment-aks-authorized-ip-ranges.unhealthy.json")
    site = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Web/sites/orders"
    doc["properties"]["resourceDetails"]["id"] = site
    doc["properties"]["displayName"] = "CORS should not allow every resource to access your apps"
    doc["properties"]["additionalData"] = {"kind": "functionapp,linux"}
    assert classification(normalized(doc))[0] == traits.FUNCTION_APPS
    doc["properties"]["additionalData"] = {"kind": "app"}
    assert classification(normalized(doc))[0] == traits.NO_SERVICE


# --- regulatory compliance -----------------------------------------------------------------------


def test_regulatory_compliance_result() -> None:
    """Standard and control come from the id; Failed is Fail and open; Passed is Pass and closed."""
    failed = finding("regulatory-compliance-aks-rbac.failed.json")
    passed = finding("regulatory-compliance-aks-rbac.passed.json")
    assert failed["compliance"]["standards"] == ["CIS-Azure-Kubernetes-Service-Benchmark-1.0"]
    assert failed["compliance"]["control"] == "5.1.1"
    assert (failed["compliance"]["status"], failed["status"], failed["activity_name"]) == ("Fail", "New", "Update")
    assert (passed["compliance"]["status"], passed["status"], passed["activity_name"]) == ("Pass", "Resolved", "Close")
    assert ocsf.identity(failed) == ocsf.identity(passed)
    assert failed["severity_id"] == 0
    assert classification(failed)[0] == traits.AKS


def test_unsupported_compliance_state_is_other() -> None:
    """Unsupported is compliance Other with the vendor word, and the resource counts stay in unmapped."""
    result = finding("regulatory-compliance-storage-encryption.unsupported.json")
    assert (result["compliance"]["status_id"], result["compliance"]["status"]) == (99, "Unsupported")
    assert result["unmapped"]["properties"]["skippedResources"] == 0
    assert classification(result)[0] == traits.NO_SERVICE


@pytest.mark.parametrize(
    "name", ["regulatory-compliance-aks-rbac.failed.json", "attackpath-legacy-internet-exposed-pod.json"]
)
def test_records_without_a_time_need_the_received_time(name: str) -> None:
    """A record with no time of its own takes received_time, and is refused without one."""
    with pytest.raises(MalformedEventError, match="received_time"):
        defender.normalize(load(name), "d")
    assert finding(name)["time"] == RECEIVED


# --- sub-assessments -----------------------------------------------------------------------------


def test_pascal_case_registry_image_cve() -> None:
    """A PascalCase $type registry sub-assessment gives one vulnerability per CVE, CVSS, fix and the image."""
    doc = load("subassessment-acr-image-cve.pascalcase.json")
    result = normalized(doc)
    assert result["class_uid"] == ocsf.VULNERABILITY
    assert result["finding_info"]["uid"] == doc["Id"].lower()
    vulns = result["vulnerabilities"]
    assert [v["cve"]["uid"] for v in vulns] == ["CVE-2026-0001", "CVE-2026-0002"]
    assert vulns[0]["cve"]["cvss"] == [
        {"version": "3.0", "base_score": 7.5, "vector_string": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}
    ]
    assert vulns[0]["is_fix_available"] is True
    assert "https://security-tracker.debian.org/tracker/DSA-0000-1" in vulns[0]["references"]
    digest = doc["Properties"]["AdditionalData"]["ImageDigest"]
    images = [r for r in result["resources"] if r.get("type") == "Container Image"]
    assert images == [{"uid": digest, "name": "shop/web", "type": "Container Image", "role_id": 1}]
    parent = doc["Id"].lower().rsplit("/subassessments/", 1)[0]
    assert result["finding_info"]["related_events"] == [{"uid": parent, "type": "Recommendation"}]
    assert classification(result) == (traits.NO_SERVICE, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)


def test_camel_case_running_image_cve_with_kubernetes_context() -> None:
    """An MDVM running-image CVE carries package, fix, CWE, exploit flag, and where the image runs."""
    result = finding("subassessment-runtime-image-cve.camelcase.json")
    [vuln] = result["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2026-1111"
    assert vuln["cve"]["cwe"] == {"uid": "CWE-122"}
    assert vuln["cve"]["cvss"][0]["base_score"] == 9.8
    assert vuln["affected_packages"] == [
        {"name": "libexample", "version": "2.3.0-1", "fixed_in_version": "2.4.1-1", "vendor_name": "debian"}
    ]
    assert vuln["is_exploit_available"] is True
    assert result["severity_id"] == 5
    containers = [r for r in result["resources"] if r.get("type") == "Kubernetes Container"]
    assert [(c["name"], c["namespace"], c["data"]["pod"]) for c in containers] == [("app", "shop", "web-6f7d9c-abcde")]
    assert containers[0]["data"]["image"]["uid"].startswith("sha256:7a6b")
    assert any(r.get("type") == "Microsoft.ContainerService/managedClusters" for r in result["resources"])
    assert classification(result) == (traits.AKS, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)


def test_exploit_flag_is_set_only_on_evidence_of_an_exploit() -> None:
    """`is_exploit_available` is True when Defender says an exploit exists, else unset, never False.

    Microsoft's MDVM sub-assessment reference (ExploitabilityAssessment): isInExploitKit "Is part of
    the exploit kit", exploitStepsPublished, exploitStepsVerified, exploitUris. Not in a kit, steps
    not published nor verified, no link: that is no evidence either way, not "no exploit exists".
    """
    name = "subassessment-acr-image-cve-no-exploit-evidence.json"
    doc = load(name)
    result = normalized(doc)
    [vuln] = result["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2026-5555"
    assert "is_exploit_available" not in vuln
    observed = inventory.observe(result).vulnerable
    assert observed is not None and observed.exploit is None  # what priority reads: no exploit points

    assessment = doc["properties"]["additionalData"]["vulnerabilityDetails"]["exploitabilityAssessment"]
    for evidence in ({"exploitStepsVerified": True}, {"exploitUris": ["https://example.org/exploit/CVE-2026-5555"]}):
        mutated = copy.deepcopy(doc)
        mutated["properties"]["additionalData"]["vulnerabilityDetails"]["exploitabilityAssessment"] = {
            **assessment,
            **evidence,
        }
        assert normalized(mutated)["vulnerabilities"][0]["is_exploit_available"] is True, evidence

    # The newer shape's isVerified / isPubliclyDisclosed are not defined by Microsoft's reference.
    mutated = copy.deepcopy(doc)
    mutated["properties"]["additionalData"]["vulnerabilityDetails"]["exploitabilityAssessment"] = {
        "isVerified": True,
        "isPubliclyDisclosed": True,
        "isInExploitKit": False,
    }
    assert "is_exploit_available" not in normalized(mutated)["vulnerabilities"][0]


def test_tvm_exploit_flags_false_leave_the_flag_unset() -> None:
    """A TVM `cve` with hasPublicExploit, isExploitVerified and isExploitInKit all false sets nothing."""
    doc = load("assessment-rest-aks-nodes-cve.nested-subassessment.json")
    cve = doc["properties"]["additionalData"]["subAssessment"]["properties"]["additionalData"]["cve"]
    cve.update(hasPublicExploit=False, isExploitVerified=False, isExploitInKit=False)
    assert "is_exploit_available" not in normalized(doc)["vulnerabilities"][0]
    cve["isExploitVerified"] = True  # "Exploit is verified to work"
    assert normalized(doc)["vulnerabilities"][0]["is_exploit_available"] is True


def test_casing_does_not_change_the_finding() -> None:
    """The same sub-assessment in camelCase and PascalCase normalizes to the same finding (bar unmapped)."""
    doc = load("subassessment-runtime-image-cve.camelcase.json")
    camel, upper = normalized(doc), normalized(pascal(doc))
    camel.pop("unmapped")
    upper.pop("unmapped")
    assert camel == upper


def test_vm_cve_is_not_a_container_finding() -> None:
    """A server CVE on a plain VM is service none, infrastructure."""
    result = finding("subassessment-vm-server-cve.json")
    assert result["vulnerabilities"][0]["cve"]["uid"] == "CVE-2026-2222"
    assert classification(result) == (traits.NO_SERVICE, traits.INFRASTRUCTURE, traits.VULNERABILITY_MANAGEMENT)


def test_rest_row_nesting_a_node_cve_is_the_sub_assessment() -> None:
    """A REST assessment row nesting a sub-assessment gives that vulnerability; the parent goes to unmapped."""
    doc = load("assessment-rest-aks-nodes-cve.nested-subassessment.json")
    result = normalized(doc)
    nested = doc["properties"]["additionalData"]["subAssessment"]
    assert result["finding_info"]["uid"] == nested["id"].lower()
    [vuln] = result["vulnerabilities"]
    assert vuln["cve"]["uid"] == "CVE-2026-3333"
    assert vuln["cve"]["cvss"][0]["base_score"] == 7.8
    assert vuln["is_exploit_available"] is True
    assert result["unmapped"]["parent_assessment"]["properties"]["displayName"] == doc["properties"]["displayName"]
    assert classification(result) == (traits.AKS, traits.INFRASTRUCTURE, traits.VULNERABILITY_MANAGEMENT)


def test_unscanned_image_is_a_not_applicable_compliance_finding_without_vulnerabilities() -> None:
    """An image Defender did not scan (NotApplicable, cause Unscanned) names no vulnerability.

    Microsoft's sub-assessment reference: `properties.id` is the "Vulnerability ID"; an unscanned
    running image has none (nor a CVE). No `vulnerabilities[]` entry is invented from its GUID: it
    is a Compliance Finding like a NotApplicable recommendation, Suppressed with Defender's cause.
    """
    doc = load("subassessment-runtime-image-unscanned.notapplicable.json")
    result = normalized(doc)
    assert result["class_uid"] == ocsf.COMPLIANCE
    assert "vulnerabilities" not in result
    assert "advisory" not in json.dumps(result)
    assert (result["status_id"], result["status"]) == (ocsf.STATUS_SUPPRESSED, "Suppressed")
    assert result["compliance"] == {
        "status_id": 99,
        "status": "NotApplicable",
        "status_code": "NotApplicable",
        "status_detail": "Unscanned: Image not scanned",
    }
    assert result["finding_info"]["uid"] == doc["id"].lower()
    parent = doc["id"].lower().rsplit("/subassessments/", 1)[0]
    assert result["finding_info"]["related_events"] == [{"uid": parent, "type": "Recommendation"}]
    images = [r for r in result["resources"] if r.get("type") == "Container Image"]
    assert [(i["uid"], i["name"]) for i in images] == [
        (doc["properties"]["additionalData"]["artifactDetails"]["digest"], "registry.example.com/tools/sidecar")
    ]
    assert classification(result) == (traits.AKS, traits.APPLICATION, traits.VULNERABILITY_MANAGEMENT)
    assert inventory.observe(result).vulnerable is None  # no vulnerable image for priority to rank

    # The same sub-assessment nested in a REST / Resource Graph recommendation row.
    nested = {k: v for k, v in doc.items() if not k.endswith("EventDataEnrichment")}
    row = {
        "type": "Microsoft.Security/assessments",
        "id": parent,
        "name": parent.rsplit("/", 1)[1],
        "properties": {
            "displayName": "Azure running container images should have vulnerabilities resolved",
            "status": {"code": "NotApplicable", "cause": "Unscanned", "description": "Image not scanned"},
            "additionalData": {"subAssessment": nested},
        },
    }
    from_row = normalized(row)
    assert from_row["class_uid"] == ocsf.COMPLIANCE and "vulnerabilities" not in from_row
    assert ocsf.identity(from_row) == ocsf.identity(result)


def test_sub_assessment_without_a_cve_gets_an_advisory() -> None:
    """A configuration sub-assessment names no CVE: its vulnerability is an advisory with Defender's id."""
    doc = load("subassessment-vm-server-cve.json")
    doc["properties"]["additionalData"] = {"assessedResourceType": "GeneralVulnerability"}
    doc["properties"]["displayName"] = doc["properties"]["description"] = "Ensure a kernel module is disabled"
    [vuln] = normalized(doc)["vulnerabilities"]
    assert "cve" not in vuln
    assert vuln["advisory"]["uid"] == doc["properties"]["id"]


# --- attack paths --------------------------------------------------------------------------------


def test_legacy_attack_path_graph() -> None:
    """A legacy CSPM path gives attack_graph nodes and edges, is not an alert, and links its recommendations."""
    doc = load("attackpath-legacy-internet-exposed-pod.json")
    result = normalized(doc)
    info = result["finding_info"]
    assert result["class_uid"] == ocsf.DETECTION
    assert result["is_alert"] is False
    assert info["types"][0] == "Attack Path"
    graph = info["attack_graph"]
    assert [n["uid"] for n in graph["nodes"]] == ["e-internet", "e-pod", "e-container"]
    assert [(e["source"], e["target"], e["relation"]) for e in graph["edges"]] == [
        ("e-internet", "e-pod", "Is exposed to"),
        ("e-pod", "e-container", "Contains"),
    ]
    assessment = doc["properties"]["assessments"]["e-container"][0]
    assert info["related_events"] == [{"uid": assessment.lower(), "type": "Recommendation"}]
    target = [r for r in result["resources"] if r["role_id"] == 1]
    assert [r["name"] for r in target] == ["app"]
    assert result["remediation"]["desc"] == doc["properties"]["manualRemediationSteps"]
    assert classification(result) == (traits.AKS, traits.APPLICATION, traits.HARDENING)


def test_attack_path_that_disappears_is_closed() -> None:
    """An exported Delete of an attack path closes it as Deleted, same identity."""
    live = finding("attackpath-legacy-internet-exposed-pod.json")
    gone = finding("attackpath-legacy-internet-exposed-pod.delete.json")
    assert (gone["status"], gone["activity_name"]) == ("Deleted", "Close")
    assert ocsf.identity(live) == ocsf.identity(gone)


def test_exposure_management_attack_path() -> None:
    """The Exposure-Management shape: risk level Critical, entry/target nodes, step edges, MITRE entries."""
    result = finding("attackpath-exposure-management-critical.json")
    assert (result["severity_id"], result["severity"]) == (5, "Critical")
    graph = result["finding_info"]["attack_graph"]
    assert {n["uid"] for n in graph["nodes"]} == {"n1", "n2", "n3"}
    assert [(e["source"], e["target"]) for e in graph["edges"]] == [("n1", "n2"), ("n2", "n3")]
    assert result["finding_info"]["attacks"] == [
        {"tactic": {"uid": "TA0001", "name": "Initial Access"}},
        {"technique": {"uid": "T1190"}},
        {"tactic": {"uid": "TA0006", "name": "Credential Access"}},
        {"technique": {"uid": "T1552"}, "sub_technique": {"uid": "T1552.001"}},
    ]
    assert result["activity_name"] == "Create"
    assert result["unmapped"]["properties"]["riskFactors"] == ["Internet exposure", "Sensitive data"]


# --- skips and delivery shapes -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["securescore-ascscore.json", "securescorecontrol-enable-mfa.json"])
def test_secure_scores_are_skipped(name: str) -> None:
    """Secure score and secure-score-control records are not findings."""
    assert defender.normalize(load(name)) == Skip("secure score, not a finding")


def test_event_hub_array_body() -> None:
    """A JSON array body holds several records of different kinds, each normalized on its own."""
    results = [defender.normalize(doc, received_time=RECEIVED) for doc in records("eventhub-body.array.json")]
    kinds = [r["class_uid"] if isinstance(r, dict) else r.__class__.__name__ for r in results]
    assert kinds == [2004, 2003, "Skip", 2002]


@pytest.mark.parametrize(
    ("name", "classes"), [("arg-result.data.json", [2003, 2004]), ("rest-list.value.json", [2004, 2002])]
)
def test_resource_graph_and_rest_lists(name: str, classes: list[int]) -> None:
    """Resource Graph `data` and REST `value` lists unwrap to rows normalized like exported records."""
    assert [normalized(doc)["class_uid"] for doc in records(name)] == classes


def test_keys_read_case_insensitively_first_spelling_wins() -> None:
    """A key sent in two casings reads as the first one; `unmapped` keeps every other field either way."""
    (doc,) = records("assessment-aks-authorized-ip-ranges.unhealthy.json")
    twice = {"ID": "/subscriptions/x/not-this-one", **doc}
    assert normalized(twice)["finding_info"]["uid"] == "/subscriptions/x/not-this-one"
    props = {**doc["properties"], "Extra": 1, "extra": 2}
    unmapped = normalized({**doc, "properties": props})["unmapped"]
    assert unmapped["properties"]["Extra"] == 1
    assert unmapped["properties"]["extra"] == 2
    assert "displayName" not in unmapped["properties"]


# --- robustness ----------------------------------------------------------------------------------

SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "Microsoft.Security/assessments",
                "microsoft.security/assessments/subassessments",
                "Microsoft.Security/attackPaths",
                "Microsoft.Security/Locations/alerts",
                "Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/regulatoryComplianceAssessments",
            ]
        ),
        "id": st.sampled_from([f"/subscriptions/{SUBSCRIPTION}/x", "nope"]) | JSON,
        "SystemAlertId": JSON,
        "AlertType": JSON,
        "properties": JSON,
        "Entities": JSON,
    },
)
RECORDS = [doc for name in FIXTURES for doc in records(name)]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += [(*prefix, key), *paths(value, (*prefix, key))]
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += [(*prefix, i), *paths(value, (*prefix, i))]
    return found


def check_contract(doc: Any) -> None:
    """normalize returns a valid finding or a Skip, or raises a permanent error; recognizes answers a bool."""
    assert isinstance(defender.recognizes(doc), bool)
    try:
        result = defender.normalize(doc, "d", received_time=RECEIVED)
    except (MalformedEventError, UnsupportedSourceError) as exc:
        assert "unexpected shape" not in str(exc)
        assert "\n" not in str(exc)
        return
    assert not isinstance(result, HealthSignal)
    if not isinstance(result, Skip):
        assert problems(result) == []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(JSON, SHAPED))
def test_arbitrary_json_never_crashes(doc: Any) -> None:
    """Arbitrary JSON values, and dicts shaped like Defender records, never raise anything but permanent errors."""
    check_contract(doc)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_mutated_fixtures_never_crash(data: st.DataObject) -> None:
    """Fixture records with one field removed or replaced by another JSON type still honour the contract."""
    doc = copy.deepcopy(data.draw(st.sampled_from(RECORDS)))
    path = data.draw(st.sampled_from(paths(doc)))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    check_contract(doc)


def test_each_record_kind_names_the_module_that_declares_its_type() -> None:
    """The lazily imported mappers are registered under the ARM type each one declares."""
    import importlib

    from corral.sources import defender

    for kind, name in defender._BY_TYPE.items():
        assert kind == importlib.import_module(f"corral.sources.defender.{name}").TYPE
    assert defender._ASSESSMENT in defender._BY_TYPE
