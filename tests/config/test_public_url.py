"""A configured `public_url` links every chat message and SIEM record to the finding's page on the dashboard.

The link is checked end to end: one GuardDuty finding goes through the pipeline to every linking
sink, each pointed at its loopback counterpart, and each copy carries `<public_url>/findings/<id>`
with the id of the finding the store holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import config, ocsf, sinks
from corral.errors import ConfigError
from corral.pipeline import Inbound, Pipeline
from corral.sinks import syslog
from corral.sinks.base import Delivery
from corral.stores.base import finding_id
from tests.support.fake_http import FakeHTTPServer, Reply
from tests.support.fake_siem import BulkIndex, HecCollector

EVENT = Path(__file__).resolve().parents[1] / "events" / "aws" / "guardduty" / "ecs-fargate-runtime-reverseshell.json"
BASE = "https://corral.example.internal"
HEC_TOKEN = "0c8c1f43-hec-token"
ES_KEY = base64.b64encode(b"id:key").decode()


@pytest.fixture
def servers() -> Iterator[dict[str, FakeHTTPServer]]:
    """Loopback counterparts of Slack, Teams, HEC, Elasticsearch and a webhook receiver."""
    made = {
        "slack": FakeHTTPServer(Reply.text(200, "ok")),
        "teams": FakeHTTPServer(Reply(202)),
        "hec": FakeHTTPServer(HecCollector(HEC_TOKEN)),
        "elastic": FakeHTTPServer(BulkIndex(ES_KEY)),
        "webhook": FakeHTTPServer(Reply(200)),
    }
    for server in made.values():
        server.start()
    yield made
    for server in made.values():
        server.close()


def table(servers: dict[str, FakeHTTPServer], tmp_path: Path, **top: Any) -> dict[str, Any]:
    """A configuration sending every change to every linking sink."""
    sink_tables: dict[str, dict[str, Any]] = {
        "slack:soc": {"webhook_url_env": "SLACK_HOOK", "min_interval": 0},
        "teams:soc": {"webhook_url_env": "TEAMS_URL", "min_interval": 0},
        "splunk_hec:siem": {"url": servers["hec"].url, "token_env": "HEC_TOKEN"},
        "elastic:siem": {"url": servers["elastic"].url, "index": "findings", "api_key_env": "ES_KEY"},
        "webhook:soar": {"url": servers["webhook"].url + "/hook", "secret_env": "HOOK_SECRET"},
        "file:archive": {"path": str(tmp_path / "findings.jsonl")},
    }
    return {
        "store": f"sqlite:///{tmp_path / 'corral.db'}",
        **top,
        "sinks": sink_tables,
        "routes": [{"name": "all", "to": list(sink_tables), "samples": True}],
    }


ENV = {"HEC_TOKEN": HEC_TOKEN, "ES_KEY": ES_KEY, "HOOK_SECRET": "0123456789abcdef0123"}


def env_for(servers: dict[str, FakeHTTPServer]) -> dict[str, str]:
    """The secrets and capability URLs the sinks name."""
    return ENV | {"SLACK_HOOK": servers["slack"].url + "/services/T/B/x", "TEAMS_URL": servers["teams"].url + "/wf"}


def test_every_linking_sink_carries_the_findings_page(servers: dict[str, FakeHTTPServer], tmp_path: Path) -> None:
    """Slack button, Teams action, HEC event, Elastic document, webhook body and file line all link the page."""
    settings = config.parse(table(servers, tmp_path, public_url=BASE + "/"), "corral.toml")
    pipeline = Pipeline.from_settings(settings, env_for(servers))
    try:
        result = pipeline.ingest([Inbound(EVENT.read_bytes(), "event")])
    finally:
        pipeline.close()
    assert result.counts["failed"] == 0, result.errors
    line = json.loads((tmp_path / "findings.jsonl").read_text().splitlines()[0])
    link = f"{BASE}/findings/{finding_id(ocsf.identity(line['finding']))}"
    assert line["corral_url"] == link
    slack_message = servers["slack"].requests[0].json()
    buttons = [e for b in slack_message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {"Open in Corral": link}.items() <= {b["text"]["text"]: b["url"] for b in buttons}.items()
    card = servers["teams"].requests[0].json()["attachments"][0]["content"]
    assert {"type": "Action.OpenUrl", "title": "Open in Corral", "url": link} in card["actions"]
    hec_event = json.loads(servers["hec"].requests[0].body.decode().splitlines()[0])["event"]
    assert hec_event["corral_url"] == link
    document = json.loads(servers["elastic"].requests[0].body.decode().splitlines()[1])
    assert document["corral"]["url"] == link
    assert servers["webhook"].requests[0].json()["corral_url"] == link


def test_without_public_url_nothing_links(servers: dict[str, FakeHTTPServer], tmp_path: Path) -> None:
    """The records stay as they were when no public_url is configured."""
    settings = config.parse(table(servers, tmp_path), "corral.toml")
    pipeline = Pipeline.from_settings(settings, env_for(servers))
    try:
        pipeline.ingest([Inbound(EVENT.read_bytes(), "event")])
    finally:
        pipeline.close()
    assert "corral_url" not in (tmp_path / "findings.jsonl").read_text()
    assert b"Open in Corral" not in servers["slack"].requests[0].body
    assert b"/findings/" not in servers["hec"].requests[0].body


def test_a_sinks_own_public_url_wins(tmp_path: Path) -> None:
    """A sink may link elsewhere than the top-level default."""
    tables = {"file:a": {"path": str(tmp_path / "a.jsonl"), "public_url": "https://other.example/"}}
    [sink] = sinks.build_all(tables, {}, "corral.toml", BASE).values()
    finding = {"metadata": {"product": {"uid": "p"}}, "cloud": {"account": {"uid": "1"}}, "finding_info": {"uid": "f"}}
    [result] = sink.send([Delivery("file:a", "k1", "new", finding)])
    sink.close()
    assert result.ok
    line = json.loads((tmp_path / "a.jsonl").read_text())
    assert line["corral_url"] == f"https://other.example/findings/{finding_id(ocsf.identity(finding))}"


def test_syslog_structured_data_carries_the_link() -> None:
    """The syslog record names the page in its RFC 5424 structured data (corralUrl)."""
    finding = {
        "time": 1704164645123,
        "metadata": {"product": {"uid": "aws.guardduty", "name": "GuardDuty", "vendor_name": "AWS"}},
        "cloud": {"account": {"uid": "111122223333"}},
        "finding_info": {"uid": "f1"},
    }
    message = syslog.render(Delivery("syslog:x", "k1", "new", finding), public_url=BASE).decode()
    assert f'corralUrl="{BASE}/findings/{finding_id(ocsf.identity(finding))}"' in message


@pytest.mark.parametrize("value", ["ftp://corral.example", "http://corral.example", "https://corral.example/?a=1", 7])
def test_a_bad_public_url_is_a_mistake(value: object) -> None:
    """public_url must be an https base URL (http only on loopback), without query or fragment."""
    with pytest.raises(ConfigError, match=r"corral.toml: public_url"):
        config.parse({"public_url": value}, "corral.toml")
