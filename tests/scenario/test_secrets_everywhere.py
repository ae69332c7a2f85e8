"""A canary secret, configured for every secret-bearing sink, leaks nowhere Corral writes.

The sinks fail in every way a platform can (400, 429, 500, a refused connection), so the secrets
travel through every error path; then the whole SQLite store (findings, ledger rows, dead letters,
history) and every log record are searched for the canary.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import config
from corral.pipeline import Inbound, Pipeline
from tests.support.fake_http import FakeHTTPServer, Reply, refused_url

EVENTS = Path(__file__).resolve().parents[1] / "events"
CANARY = "c4n4ry-7f3a9d2e-never-print-me"


@pytest.fixture
def servers() -> Iterator[dict[str, FakeHTTPServer]]:
    """One loopback endpoint per platform, each refusing or failing our calls."""
    made = {
        "slack": FakeHTTPServer(Reply.json(200, {"ok": False, "error": "invalid_auth"})),
        "teams": FakeHTTPServer(Reply.text(400, f"bad request for {CANARY}")),  # an echoing server
        "hec": FakeHTTPServer(Reply.json(429, {"text": "Server is busy", "code": 9}, headers={"Retry-After": "1"})),
        "webhook": FakeHTTPServer(Reply(500)),
        "elastic": FakeHTTPServer(Reply.json(401, {"error": f"bad api key {CANARY}"})),
    }
    for server in made.values():
        server.start()
    yield made
    for server in made.values():
        server.close()


def test_no_secret_in_store_ledger_dead_letter_or_logs(
    servers: dict[str, FakeHTTPServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Failing sinks configured with a canary secret: the canary is in no log record and no byte of the store."""
    env = {
        "SLACK_TOKEN": f"xoxb-{CANARY}",
        "TEAMS_URL": f"{servers['teams'].url}/workflows/{CANARY}?sig={CANARY}",
        "HEC_TOKEN": CANARY,
        "HOOK_SECRET": CANARY,
        "HOOK_URL": f"{servers['webhook'].url}/hooks/{CANARY}",
        "ELASTIC_KEY": base64.b64encode(CANARY.encode()).decode(),
    }
    store = tmp_path / "corral.db"
    settings = config.parse(
        {
            "store": f"sqlite:///{store}",
            "sinks": {
                "slack:soc": {
                    "kind": "slack",
                    "token_env": "SLACK_TOKEN",
                    "channel": "C1",
                    "api_url": servers["slack"].url + "/api/",
                    "min_interval": 0,
                },
                "teams:soc": {"kind": "teams", "webhook_url_env": "TEAMS_URL", "min_interval": 0},
                "splunk_hec:siem": {"kind": "splunk_hec", "url": servers["hec"].url, "token_env": "HEC_TOKEN"},
                "webhook:soar": {"kind": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"},
                "elastic:siem": {
                    "kind": "elastic",
                    "url": servers["elastic"].url,
                    "index": "findings",
                    "api_key_env": "ELASTIC_KEY",
                },
                "webhook:gone": {"kind": "webhook", "url": refused_url("/hook"), "secret_env": "HOOK_SECRET"},
            },
            "routes": [
                {
                    "name": "all",
                    "to": ["slack:soc", "teams:soc", "splunk_hec:siem", "webhook:soar", "elastic:siem", "webhook:gone"],
                    "on": ["new", "updated", "escalated", "reopened", "closed"],
                }
            ],
        },
        "canary.toml",
    )
    caplog.set_level(logging.DEBUG)
    pipeline = Pipeline.from_settings(settings, env)
    try:
        deliveries = [Inbound(p.read_bytes(), str(p)) for p in sorted(EVENTS.rglob("*.json"))]
        result = pipeline.ingest(deliveries)
        pipeline.redrive()
        summary = pipeline.store.ledger_summary()
        letters = pipeline.store.dead_letters(limit=1000)
    finally:
        pipeline.close()
    assert result.counts["new"] >= 30
    assert all(server.requests for server in servers.values()), "every sink must have been called"
    states = {state for (_, state) in summary.counts}
    assert {"pending", "dead"} <= states, summary.counts
    assert any(letter.source and letter.source.startswith("elastic") for letter in letters)
    for record in caplog.records:
        assert CANARY not in record.getMessage(), record.getMessage()
        assert CANARY not in str(record.args)
    for part in sorted(tmp_path.glob("corral.db*")):
        assert CANARY.encode() not in part.read_bytes(), part.name
    for letter in letters:
        assert CANARY not in letter.reason and CANARY.encode() not in letter.raw
