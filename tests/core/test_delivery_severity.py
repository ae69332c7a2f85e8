"""An escalation's chat message names both severities: the pipeline carries the replaced version's.

Two versions of one finding go through the whole pipeline (normalize, store, route, ledger,
deliver) to loopback Slack and Teams endpoints; the second message reads "High → Critical". The
ledger keeps the previous severity, so a message sent later by a redrive says the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from corral import config
from corral.pipeline import Inbound, Pipeline
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.fake_http import FakeHTTPServer, Reply

SLACK, TEAMS = "slack:soc", "teams:soc"
NOW = BASE_TIME + 3_600_000


@pytest.fixture
def servers() -> Iterator[dict[str, FakeHTTPServer]]:
    """A Slack Web API and a Teams workflow endpoint that accept every message."""
    slack = FakeHTTPServer(Reply.json(200, {"ok": True, "ts": "1717000000.000100"}))
    teams = FakeHTTPServer(Reply(202))
    with slack, teams:
        yield {SLACK: slack, TEAMS: teams}


def pipeline(tmp_path: Path, servers: dict[str, FakeHTTPServer], clock: list[int]) -> Pipeline:
    settings = config.parse(
        {
            "store": f"sqlite:///{tmp_path / 'corral.db'}",
            "sinks": {
                SLACK: {
                    "token_env": "SLACK_TOKEN",
                    "channel": "C0SOC",
                    "api_url": servers[SLACK].url + "/api/",
                    "min_interval": 0,
                },
                TEAMS: {"webhook_url_env": "TEAMS_URL", "min_interval": 0},
            },
            "routes": [{"name": "chat", "to": [SLACK, TEAMS]}],
        },
        "severity.toml",
    )
    env = {"SLACK_TOKEN": "xoxb-test-token", "TEAMS_URL": servers[TEAMS].url + "/workflow"}
    built = Pipeline.from_settings(settings, env)
    return Pipeline(built.store, built.router, built.sinks, clock=lambda: clock[0], settings=settings)


def texts(server: FakeHTTPServer) -> list[str]:
    """Every request body, as text with its JSON escapes undone."""
    return [orjson.dumps(request.json()).decode() for request in server.requests]


@pytest.mark.parametrize("first_attempt_fails", [False, True])
def test_an_escalation_names_the_previous_and_the_new_severity(
    tmp_path: Path, servers: dict[str, FakeHTTPServer], first_attempt_fails: bool
) -> None:
    """High, then Critical: the second Slack message and Teams card read "Escalated High → Critical"."""
    clock = [NOW]
    pipe = pipeline(tmp_path, servers, clock)
    try:
        pipe.ingest([Inbound(make_finding("esc", severity_id=4), ref="high")])
        if first_attempt_fails:
            servers[SLACK].push(Reply.json(500, {"ok": False, "error": "internal_error"}))
            servers[TEAMS].push(Reply(503))
        critical = make_finding("esc", severity_id=5, modified=BASE_TIME + 60_000)
        assert pipe.ingest([Inbound(critical, ref="critical")]).counts["escalated"] == 1
        if first_attempt_fails:
            # Sent later from the ledger alone, the message still knows what the severity was.
            clock[0] += 3_600_000
            assert pipe.redrive()["delivered"] == 2
    finally:
        pipe.close()
    for sink in (SLACK, TEAMS):
        sent = texts(servers[sink])
        assert len(sent) == (3 if first_attempt_fails else 2), sink
        assert "High → Critical" not in sent[0], sink
        assert "Escalated High → Critical" in sent[-1], (sink, sent[-1][:400])
