"""No sink that carries a credential follows a redirect: a 3xx is a failure that says why.

Each sink is pointed at a loopback endpoint that answers every request with a redirect to a
second loopback server (another origin: another port); that server must receive nothing, and
the sink's result must name the redirect and hold no secret.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from corral.sinks import elastic, relay, sentinel, slack, splunk_hec, teams, webhook
from corral.sinks.base import Sink
from tests.support.fake_http import FakeHTTPServer, Reply, TlsFiles, make_tls
from tests.support.sinks import numbered

SECRET = "s3cr3t-0f-the-sink-redirect-canary"
RULE = "dcr-00112233445566778899aabbccddeeff"


class StaticToken:
    """Entra ID stand-in: the bearer token the Sentinel sink must not hand on."""

    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        """Return the canary as the token."""
        return AccessToken(SECRET, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate for the https endpoints (Sentinel insists on TLS)."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def elsewhere() -> Iterator[FakeHTTPServer]:
    """The other origin a redirect points to; it must never hear from a sink."""
    with FakeHTTPServer(Reply(200, b'{"ok": true, "ts": "1.2"}')) as server:
        yield server


def redirector(target: str, status: int = 302, tls: TlsFiles | None = None) -> FakeHTTPServer:
    """A server answering every request with `status` and `Location: target`."""
    return FakeHTTPServer(Reply(status, b"", {"Location": target}), tls=tls)


Build = Callable[[str, TlsFiles], Sink]

SINKS: dict[str, Build] = {
    "slack-bot": lambda url, _tls: slack.from_config(
        "slack:soc",
        {"token_env": "T", "channel": "C1", "api_url": url + "/api/", "min_interval": 0},
        {"T": f"xoxb-{SECRET}"},
    ),
    "slack-webhook": lambda url, _tls: slack.from_config(
        "slack:hook", {"webhook_url_env": "H", "min_interval": 0}, {"H": f"{url}/services/{SECRET}"}
    ),
    "teams": lambda url, _tls: teams.from_config(
        "teams:soc", {"webhook_url_env": "H", "min_interval": 0}, {"H": f"{url}/workflows/x?sig={SECRET}"}
    ),
    "splunk_hec": lambda url, _tls: splunk_hec.from_config(
        "splunk_hec:siem", {"url": url, "token_env": "T"}, {"T": SECRET}
    ),
    "elastic": lambda url, _tls: elastic.from_config(
        "elastic:siem",
        {"url": url, "index": "findings", "api_key_env": "K"},
        {"K": base64.b64encode(SECRET.encode()).decode()},
    ),
    "webhook": lambda url, _tls: webhook.from_config(
        "webhook:soar", {"url_env": "U", "secret_env": "S"}, {"U": f"{url}/hook/{SECRET}", "S": SECRET}
    ),
    "sentinel": lambda url, tls: sentinel.from_config(
        "sentinel:soc",
        {"endpoint": url, "rule_id": RULE, "ca_file": str(tls.cert), "timeout": 3},
        {},
        credential=StaticToken(),
    ),
}
TLS_ONLY = {"sentinel"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("name", sorted(SINKS))
def test_cross_origin_redirect_is_a_failure_and_sends_nothing_there(
    name: str, status: int, elsewhere: FakeHTTPServer, tls: TlsFiles
) -> None:
    """The sink reports the redirect (status, target origin, why) and the other origin gets no request."""
    with redirector(elsewhere.url + "/steal", status, tls if name in TLS_ONLY else None) as hop:
        sink = SINKS[name](hop.url, tls)
        try:
            results = sink.send(numbered(sink.id, 1))
        finally:
            sink.close()
    [result] = results
    assert not result.ok and result.permanent
    error = result.error or ""
    assert f"HTTP {status} redirect to {elsewhere.url} not followed" in error
    assert "another origin" in error
    assert SECRET not in error
    assert len(hop.requests) == 1
    assert elsewhere.requests == []


@pytest.mark.parametrize("name", ["slack-bot", "splunk_hec", "webhook"])
def test_same_origin_redirect_is_not_followed_either(name: str, tls: TlsFiles) -> None:
    """A redirect within the configured origin fails too, asking for the configured URL to be fixed."""
    with FakeHTTPServer() as hop:
        hop.default = Reply(302, b"", {"Location": "/moved"})
        sink = SINKS[name](hop.url, tls)
        [result] = sink.send(numbered(sink.id, 1))
        sink.close()
    assert not result.ok and "fix the configured URL" in (result.error or "")
    assert len(hop.requests) == 1


def test_sqs_relay_does_not_follow_a_redirect(elsewhere: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore does not follow redirects: the signed SQS request stays with the configured endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with redirector(elsewhere.url + "/steal") as hop:
        sink = relay.from_config(
            "relay:hub",
            {"queue_url": f"{hop.url}/1/q", "region": "eu-west-1", "endpoint_url": hop.url, "timeout": 2},
            {},
        )
        [result] = sink.send(numbered("relay:hub", 1))
        sink.close()
    assert not result.ok
    assert SECRET not in (result.error or "")
    assert hop.requests and elsewhere.requests == []
