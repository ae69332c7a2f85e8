"""Teams sink: golden Adaptive Card renders, and every answer of a Workflows-like webhook on 127.0.0.1."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

from corral import ocsf, sinks
from corral.errors import ConfigError
from corral.sinks import teams
from corral.sinks.base import Delivery
from corral.sinks.text import MARKER
from corral.stores.base import ChangeKind
from tests.support.fake_http import DROP, HANG, FakeHTTPServer, Reply, refused_url
from tests.support.sinks import AKS_DEFENDER, finding, golden

FLOW_PATH = (
    "/workflows/0d1e2f/triggers/manual/paths/invoke"
    "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=flowsignature"
)
TIMEOUT = 0.5


def delivery(change: ChangeKind = "new", *, version: str = "v1", **kw: Any) -> Delivery:
    """A delivery of the test finding for teams:soc."""
    return Delivery("teams:soc", version, change, finding(**kw))


def sink(url: str, **extra: Any) -> teams.TeamsSink:
    """A Teams sink posting to `url`."""
    settings = {"kind": "teams", "webhook_url_env": "TEAMS_HOOK", "timeout": TIMEOUT, "min_interval": 0, **extra}
    return teams.from_config("teams:soc", settings, {"TEAMS_HOOK": url})


# Golden renders ------------------------------------------------------------------------------

CASES: dict[str, tuple[dict[str, Any], ChangeKind, dict[str, Any]]] = {
    "new_critical_eks": (finding(), "new", {}),
    "escalated_high_to_critical": (finding(), "escalated", {"previous_severity_id": 4}),
    "deescalated_without_previous": (finding(severity_id=3), "deescalated", {}),
    "reopened": (finding(severity_id=4), "reopened", {}),
    "closed": (finding(status_id=ocsf.STATUS_RESOLVED), "closed", {}),
    "aks_defender": (finding(**AKS_DEFENDER), "new", {}),
    "sample_low_no_context": (
        finding(
            sample=True, severity_id=2, cluster=None, namespace=None, pod=None, container=None, image=None, src_url=None
        ),
        "new",
        {},
    ),
    "hostile_text": (
        finding(
            title="**URGENT** [reset your password](https://evil.example) <at>Everyone</at>",
            desc="![x](https://evil.example/x.png)\n- item\n\n\n\n[click](javascript:alert(1)) @channel",
            namespace="_italic_ `code`",
            src_url="https://evil.example/console",
        ),
        "new",
        {},
    ),
    "long_description_cut": (finding(desc="Suspicious connection. " * 3000), "new", {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    """Each sample change renders to the Workflows message kept in tests/golden/sinks/teams."""
    doc, change, options = CASES[name]
    golden("teams", name, teams.render(doc, change, **options))


def test_message_is_a_workflows_adaptive_card() -> None:
    """The payload is the Workflows envelope around one Adaptive Card 1.4, never a connector MessageCard."""
    payload = teams.render(finding(), "new")
    assert payload["type"] == "message" and len(payload["attachments"]) == 1
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive" and attachment["contentUrl"] is None
    assert attachment["content"]["type"] == "AdaptiveCard" and attachment["content"]["version"] == "1.4"
    assert "@type" not in payload and "themeColor" not in payload


@pytest.mark.parametrize("size", [30_000, 100_000, 400_000])
def test_long_description_is_cut_to_fit_28kb(size: int) -> None:
    """Descriptions are cut, with the marker, until the encoded message fits in 28 KB."""
    payload = teams.render(finding(desc="é漢😀" * (size // 3)), "new")
    encoded = teams.encode(payload)
    assert len(encoded) <= teams.MAX_PAYLOAD_BYTES
    runs = [i["text"] for b in payload["attachments"][0]["content"]["body"] for i in b.get("inlines", [])]
    assert any(text.endswith(MARKER) and len(text) > 1000 for text in runs)


def test_tight_limit_drops_the_description_rather_than_overflowing() -> None:
    """Under a limit with no room for a description, the description goes and the rest still fits."""
    bare = len(teams.encode(teams.render(finding(desc=""), "new")))
    payload = teams.render(finding(desc="x" * 50_000), "new", max_bytes=bare + 20)
    assert len(teams.encode(payload)) <= bare + 20
    assert "xxxx" not in teams.encode(payload).decode()
    roomier = teams.render(finding(desc="x" * 50_000), "new", max_bytes=bare + 1000)
    assert bare + 800 < len(teams.encode(roomier)) <= bare + 1000


# Transport -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [202, 200])
def test_accepted_posts_the_card(status: int) -> None:
    """202 Accepted (or 200) is success; the request is the rendered card as JSON on the flow URL."""
    with FakeHTTPServer() as server:
        server.push(Reply(status))
        [result] = sink(server.url + FLOW_PATH).send([delivery()])
    assert result.ok and result.message_ref is None and result.version == "v1"
    request = server.requests[0]
    assert request.target == FLOW_PATH and request.headers["content-type"] == "application/json"
    assert request.json() == teams.render(finding(), "new")


def test_connector_style_error_in_200_body_is_retryable() -> None:
    """A 200 whose body reports 'HTTP error 429' (the old connector way) is not taken as delivered."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId ..."))
        [result] = sink(server.url + FLOW_PATH).send([delivery()])
    assert not result.ok and not result.permanent


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_refusals_are_permanent_and_batch_goes_on(status: int) -> None:
    """4xx answers other than 429 are permanent failures; the next delivery is still posted."""
    with FakeHTTPServer() as server:
        server.push(Reply.json(status, {"error": {"code": "InvalidRequestContent"}}), Reply(202))
        first, second = sink(server.url + FLOW_PATH).send([delivery(version="a"), delivery(version="b")])
    assert not first.ok and first.permanent and str(status) in (first.error or "")
    assert second.ok and len(server.requests) == 2


def test_429_stops_the_batch_with_retry_after() -> None:
    """A 429 fails this and the remaining deliveries with its Retry-After, after a single request."""
    with FakeHTTPServer() as server:
        server.push(Reply.json(429, {"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "12"}), Reply(202))
        results = sink(server.url + FLOW_PATH).send([delivery(version=v) for v in "abc"])
    assert [(r.version, r.ok, r.permanent, r.retry_after) for r in results] == [
        ("a", False, False, 12.0),
        ("b", False, False, 12.0),
        ("c", False, False, 12.0),
    ]
    assert len(server.requests) == 1


def test_retry_after_as_http_date() -> None:
    """A Retry-After given as an HTTP date becomes the seconds until then."""
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    with FakeHTTPServer() as server:
        server.push(Reply(429, headers={"Retry-After": when}))
        [result] = sink(server.url + FLOW_PATH).send([delivery()])
    assert result.retry_after is not None and 100 < result.retry_after <= 120


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(status: int) -> None:
    """5xx answers are retryable failures."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(status, "flow failed"))
        [result] = sink(server.url + FLOW_PATH).send([delivery()])
    assert not result.ok and not result.permanent and str(status) in (result.error or "")


def test_hung_connection_times_out_as_retryable() -> None:
    """A webhook that never answers gives a retryable failure within the configured timeout, and stops the batch."""
    with FakeHTTPServer() as server:
        server.push(HANG, Reply(202))
        started = time.monotonic()
        results = sink(server.url + FLOW_PATH).send([delivery(version="a"), delivery(version="b")])
        elapsed = time.monotonic() - started
    assert all(not r.ok and not r.permanent for r in results)
    assert "timed out" in (results[0].error or "")
    assert elapsed < TIMEOUT + 2 and len(server.requests) == 1


@pytest.mark.parametrize("reply", [DROP, None])
def test_dropped_or_refused_connection_is_retryable(reply: Reply | None) -> None:
    """A dropped connection, or nothing listening, is one retryable failure (urllib3 retries are off)."""
    if reply is None:
        [result] = sink(refused_url(FLOW_PATH)).send([delivery()])
        assert not result.ok and not result.permanent
        return
    with FakeHTTPServer() as server:
        server.push(reply, Reply(202))
        [result] = sink(server.url + FLOW_PATH).send([delivery()])
    assert not result.ok and not result.permanent and len(server.requests) == 1


def test_min_interval_paces_posts() -> None:
    """Posts are spaced by min_interval (Teams throttles above about four per second)."""
    with FakeHTTPServer(default=Reply(202)) as server:
        started = time.monotonic()
        results = sink(server.url + FLOW_PATH, min_interval=0.15).send([delivery(version=v) for v in "abc"])
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results) and elapsed >= 0.3


def test_unrenderable_finding_is_a_permanent_failure() -> None:
    """A delivery whose finding cannot be rendered fails permanently without a request; the batch goes on."""
    bad = Delivery("teams:soc", "bad", "new", None)  # type: ignore[arg-type]
    with FakeHTTPServer(default=Reply(202)) as server:
        results = sink(server.url + FLOW_PATH).send([bad, delivery()])
    assert not results[0].ok and results[0].permanent and results[1].ok
    assert len(server.requests) == 1


# Configuration -------------------------------------------------------------------------------

SECRET_URL = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=secretsig123"


@pytest.mark.parametrize(
    ("settings", "env", "key"),
    [
        ({}, {}, "sinks.teams:soc.webhook_url_env"),
        ({"webhook_url_env": "H"}, {}, "sinks.teams:soc.webhook_url_env"),
        (
            {"webhook_url_env": "H"},
            {"H": "http://flow.example/invoke?sig=secretsig123"},
            "sinks.teams:soc.webhook_url_env",
        ),
        ({"webhook_url_env": "H"}, {"H": "https://contoso.webhook.office.com/webhookb2/secretsig123"}, "connector"),
        ({"webhook_url_env": "H"}, {"H": "https://outlook.office.com/webhook/secretsig123"}, "Workflows"),
        ({"webhook_url_env": "H", "timeout": 0}, {"H": SECRET_URL}, "sinks.teams:soc.timeout"),
        ({"webhook_url_env": "H", "min_interval": -1}, {"H": SECRET_URL}, "sinks.teams:soc.min_interval"),
        ({"webhook_url_env": "H", "channel": "x"}, {"H": SECRET_URL}, "sinks.teams:soc.channel"),
    ],
)
def test_config_errors_name_the_key_and_hide_secrets(settings: dict[str, Any], env: dict[str, str], key: str) -> None:
    """Each bad setting raises ConfigError naming sinks.<id>.<key>, never quoting the webhook URL."""
    with pytest.raises(ConfigError) as caught:
        sinks.build("teams:soc", settings, env)
    message = str(caught.value)
    assert key in message
    assert "secretsig123" not in message


def test_registry_builds_teams() -> None:
    """The sink registry builds a Teams sink of the chat family from its settings."""
    built = sinks.build("teams:soc", {"webhook_url_env": "H"}, {"H": SECRET_URL})
    assert isinstance(built, teams.TeamsSink) and built.family == "chat" and built.id == "teams:soc"
    built.close()
