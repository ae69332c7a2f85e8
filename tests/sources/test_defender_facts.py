"""Defender for Cloud data facts: alert identity, Create for stateless reads, set-aside statuses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from corral import ocsf
from corral.normalize import normalize
from corral.sources import defender

EVENTS = Path(__file__).resolve().parents[1] / "events" / "azure" / "defender"
RECEIVED = 1_772_323_200_000


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def normalized(doc: Any) -> dict[str, Any]:
    result = defender.normalize(doc, "delivery-1", received_time=RECEIVED)
    assert isinstance(result, dict), result
    return result


def test_rest_alerts_sharing_a_system_alert_id_across_arm_ids_stay_apart() -> None:
    first = load("alert-rest-k8s-exposed-dashboard.dismissed.json")
    second = copy.deepcopy(first)
    shared = first["properties"]["systemAlertId"]
    second["name"] = "2516700000000000000_other-alert-resource"
    second["id"] = first["id"].rsplit("/", 1)[0] + "/" + second["name"]
    second["properties"]["alertType"] = "K8S_PrivilegedContainer"
    second["properties"]["severity"] = "High"
    one, two = normalized(first), normalized(second)
    assert ocsf.identity(one) != ocsf.identity(two)
    assert one["finding_info"]["uid"] == shared  # the usual row: the exported alert's id, so both shapes meet
    assert two["finding_info"]["uid"] == second["id"]
    assert two["finding_info"]["uid_alt"] == shared


def test_the_same_alert_at_two_arm_scopes_is_one_finding() -> None:
    first = load("alert-rest-k8s-exposed-dashboard.dismissed.json")
    second = copy.deepcopy(first)
    second["id"] = second["id"].replace("/resourceGroups/rg-shop-prod", "")
    assert ocsf.identity(normalized(first)) == ocsf.identity(normalized(second))


@pytest.mark.parametrize(
    "name", ["arg-result.data.json", "rest-list.value.json", "assessment-rest-aks-nodes-cve.nested-subassessment.json"]
)
def test_rest_and_resource_graph_rows_are_created_on_first_sighting(name: str) -> None:
    findings = [o.finding for o in normalize(load(name), received_time=RECEIVED) if o.finding is not None]
    assert findings
    # A stateless read states the record; closing ones (resolved, dismissed) stay Close.
    assert [f["activity_id"] for f in findings if f["activity_id"] != ocsf.CLOSE]
    assert all(f["activity_id"] in (ocsf.CREATE, ocsf.CLOSE) for f in findings)


def test_an_export_snapshot_is_still_an_update() -> None:
    finding = normalized(load("assessment-aws-eks-control-plane-logging.unhealthy.json"))
    assert finding["activity_id"] == ocsf.UPDATE


@pytest.mark.parametrize(("code", "cause"), [("NotApplicable", "OffByPolicy"), ("Exempt", "Waiver")])
def test_not_applicable_and_exempt_are_suppressed_with_the_reason(code: str, cause: str) -> None:
    doc = load("assessment-rest-container-app-managed-identity.notapplicable.json")
    doc["properties"]["status"].update(code=code, cause=cause, description="Set aside by the security team")
    finding = normalized(doc)
    assert (finding["status_id"], finding["status"]) == (ocsf.STATUS_SUPPRESSED, "Suppressed")
    assert finding["status_code"] == code
    assert cause in finding["status_detail"]
    assert finding["activity_id"] != ocsf.CLOSE  # set aside, not resolved
