"""Every SIEM output carries the priority; chat messages of Vulnerability Findings show it and why."""

from __future__ import annotations

import orjson

from corral import inventory, priority
from corral.sinks import elastic, file, relay, sentinel, slack, splunk_hec, syslog, teams, webhook
from corral.sinks.base import Delivery
from tests.images.support import digest, registry_cve

FIELDS = ("priority_id", "priority", "risk_score", "risk_level_id", "risk_level", "risk_details")


def prioritized() -> dict[str, object]:
    finding = registry_cve("v1", digest("d"), "shopacr.azurecr.io/shop/web", severity_id=4, fix=True)
    seen = inventory.observe(finding)
    assert seen.vulnerable is not None
    where = priority.Runtime("running", workloads=(("GCP", "p", "gke", "shop", "web"),), clouds=("GCP",))
    return priority.apply(finding, priority.score(seen.vulnerable, where))


def carried(document: dict[str, object], finding: dict[str, object]) -> None:
    assert {k: document[k] for k in FIELDS} == {k: finding[k] for k in FIELDS}


def test_json_outputs_carry_the_priority_fields() -> None:
    finding = prioritized()
    delivery = Delivery("x:y", "k1", "reprioritized", finding)
    carried(orjson.loads(splunk_hec.render(delivery))["event"], finding)
    carried(orjson.loads(elastic.render(delivery, "corral").splitlines()[1]), finding)
    carried(orjson.loads(webhook.render(delivery))["finding"], finding)
    carried(orjson.loads(file.render(delivery))["finding"], finding)
    carried(orjson.loads(relay.render(delivery)), finding)
    carried(sentinel.render(delivery)["Finding"], finding)
    assert sentinel.render(delivery)["ChangeKind"] == "reprioritized"


def test_cef_carries_the_risk_score_and_priority() -> None:
    finding = prioritized()
    line = syslog.render(Delivery("syslog:x", "k1", "reprioritized", finding)).decode()
    assert f"cn1Label=riskScore cn1={finding['risk_score']}" in line
    assert f"cn2Label=priorityId cn2={finding['priority_id']}" in line
    assert "cs2=reprioritized" in line


def test_unprioritized_findings_have_no_priority_in_cef() -> None:
    finding = registry_cve("v1", digest("d"), "repo/app")
    assert "cn1Label" not in syslog.render(Delivery("syslog:x", "k1", "new", finding)).decode()


def test_chat_messages_show_the_priority_and_why() -> None:
    finding = prioritized()

    for text in (
        orjson.dumps(slack.render(finding, "reprioritized")).decode(),
        orjson.dumps(teams.render(finding, "reprioritized")).decode(),
    ):
        assert "Reprioritized" in text
        assert "Priority" in text
        assert f"{finding['priority']} ({finding['risk_score']}): high-severity vulnerability; image running" in text
