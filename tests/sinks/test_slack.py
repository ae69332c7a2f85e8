"""Slack sink: golden Block Kit renders, and every answer of a Slack-like server on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import pytest

from corral import ocsf, sinks, traits
from corral.errors import ConfigError
from corral.sinks import slack
from corral.sinks.base import Delivery
from corral.stores.base import ChangeKind
from tests.support.fake_http import DROP, HANG, FakeHTTPServer, Reply, refused_url
from tests.support.ocsf import problems
from tests.support.sinks import AKS_DEFENDER, AZURE_ALERT, finding, golden

TOKEN = "xoxb-1111-2222-tokenvalue"
HOOK_PATH = "/services/T000/B000/hooksecret"
TS = "1717000000.000100"
TIMEOUT = 0.5


def delivery(change: ChangeKind = "new", *, version: str = "v1", thread_ref: str | None = None, **kw: Any) -> Delivery:
    """A delivery of the test finding for slack:soc."""
    return Delivery("slack:soc", version, change, finding(**kw), thread_ref)


def bot(server: FakeHTTPServer, **extra: Any) -> slack.SlackSink:
    """A bot-token sink talking to `server` as its Slack API."""
    settings = {
        "kind": "slack",
        "token_env": "SLACK_TOKEN",
        "channel": "C0123ABCD",
        "api_url": server.url + "/api/",
        "timeout": TIMEOUT,
        "min_interval": 0,
        **extra,
    }
    return slack.from_config("slack:soc", settings, {"SLACK_TOKEN": TOKEN})


def hook(url: str, **extra: Any) -> slack.SlackSink:
    """An incoming-webhook sink posting to `url`."""
    settings = {"webhook_url_env": "SLACK_HOOK", "timeout": TIMEOUT, "min_interval": 0, **extra}
    return slack.from_config("slack:soc", settings, {"SLACK_HOOK": url})


def posted(ts: str = TS) -> Reply:
    """Slack's answer to a successful chat.postMessage."""
    return Reply.json(200, {"ok": True, "channel": "C0123ABCD", "ts": ts, "message": {"text": "x"}})


# Golden renders ------------------------------------------------------------------------------

GCP = "https://console.cloud.google.com/security/command-center/findings?project=shop-prod"

CASES: dict[str, tuple[dict[str, Any], ChangeKind, dict[str, Any]]] = {
    "new_critical_eks": (finding(), "new", {}),
    "escalated_high_to_critical": (finding(), "escalated", {"previous_severity_id": 4}),
    "escalated_reply": (finding(), "escalated", {"previous_severity_id": 4, "reply": True}),
    "escalated_without_previous": (finding(), "escalated", {}),
    "reopened": (finding(severity_id=4), "reopened", {}),
    "closed_reply": (finding(status_id=ocsf.STATUS_RESOLVED), "closed", {"reply": True}),
    "closed_without_thread": (finding(status_id=ocsf.STATUS_ARCHIVED), "closed", {}),
    "aks_defender": (finding(**AKS_DEFENDER), "new", {}),
    "gke_scc_no_container": (
        finding(
            provider="GCP",
            account="shop-prod",
            region=None,
            service=traits.GKE,
            cluster="gke-shop",
            namespace=None,
            pod=None,
            container=None,
            image=None,
            types=["Execution: Added Binary Executed"],
            src_url=GCP,
            product=("Security Command Center", "gcp.scc"),
            severity_id=3,
            desc="",
        ),
        "new",
        {},
    ),
    "sample_untrusted_link": (finding(sample=True, src_url="https://evil.example/phish", severity_id=2), "new", {}),
    "hostile_text": (
        finding(
            title="<!channel> *URGENT* <https://evil.example|reset password> & <@U024BE7LH>",
            desc="Click [here](https://evil.example) ![x](https://evil.example/x.png) @here\n\n\n\nbye",
            pod="<#C024BE7LR>",
        ),
        "new",
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    """Each sample change renders to the Block Kit message kept in tests/golden/sinks/slack."""
    doc, change, options = CASES[name]
    golden("slack", name, slack.render(doc, change, **options))


def test_test_finding_is_valid_ocsf() -> None:
    """The findings rendered here are valid OCSF 1.8.0, so the goldens show real shapes."""
    assert problems(finding()) == []


def test_console_button_only_for_vendor_console() -> None:
    """An https vendor console link becomes the button; any other src_url gives no button."""

    def buttons(url: str | None) -> list[str]:
        blocks = slack.render(finding(src_url=url), "new")["blocks"]
        return [e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    assert buttons(AZURE_ALERT) == [AZURE_ALERT]
    for url in (
        "http://console.aws.amazon.com/x",
        "https://console.aws.amazon.com.evil.example/x",
        "https://user@console.aws.amazon.com/x",
        "https://console.aws.amazon.com:8443/x",
        "https://console.aws.amazon.com\\@evil.example/",
        "javascript:alert(1)",
        None,
    ):
        assert buttons(url) == [], url


def test_render_never_sends_empty_text() -> None:
    """Slack rejects empty text objects: a finding without title or names still renders non-empty texts."""
    doc = finding(title="\x00\u202e ", desc="", cluster=None, namespace=None, pod=None, container=None, image=None)
    message = slack.render(doc, "new")
    assert message["blocks"][0]["text"]["text"].endswith("(untitled finding)")
    texts = [
        o["text"]
        for b in message["blocks"]
        for o in [b.get("text"), *b.get("fields", []), *b.get("elements", [])]
        if o and "text" in o
    ]
    assert texts and all(t.strip() for t in texts if isinstance(t, str))


# Bot token: chat.postMessage -------------------------------------------------------------------


def test_first_message_posts_to_channel_and_returns_ts() -> None:
    """A first message is a chat.postMessage to the channel, and its ts comes back as message_ref."""
    with FakeHTTPServer() as server:
        server.push(posted())
        [result] = bot(server).send([delivery()])
    assert result.ok and result.message_ref == TS and result.version == "v1"
    request = server.requests[0]
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body["channel"] == "C0123ABCD" and "thread_ts" not in body
    assert body["link_names"] is False and body["unfurl_links"] is False
    assert body["blocks"] == slack.render(finding(), "new")["blocks"]


@pytest.mark.parametrize(
    ("change", "broadcast"), [("escalated", True), ("reopened", True), ("closed", False), ("updated", False)]
)
def test_later_change_replies_in_thread(change: ChangeKind, broadcast: bool) -> None:
    """A change of a finding with a first message replies in its thread; escalations also show in the channel."""
    with FakeHTTPServer() as server:
        server.push(posted("1717000999.000200"))
        [result] = bot(server).send([delivery(change, thread_ref=TS)])
    body = server.requests[0].json()
    assert body["thread_ts"] == TS and body["reply_broadcast"] is broadcast
    assert body["blocks"][0]["type"] == "section"  # the short reply form, no header
    assert result.ok and result.message_ref == TS  # the thread root stays the reference


@pytest.mark.parametrize(
    "code", ["invalid_blocks", "channel_not_found", "not_in_channel", "invalid_auth", "msg_too_long"]
)
def test_ok_false_is_permanent_and_batch_goes_on(code: str) -> None:
    """Slack's `ok: false` refusals are permanent failures naming the code; the next delivery is still sent."""
    with FakeHTTPServer() as server:
        server.push(Reply.json(200, {"ok": False, "error": code}), posted())
        first, second = bot(server).send([delivery(version="a"), delivery(version="b")])
    assert not first.ok and first.permanent and code in (first.error or "")
    assert second.ok and len(server.requests) == 2


def test_ratelimited_stops_the_batch_with_retry_after() -> None:
    """A 429 `ratelimited` fails this and the rest of the batch, with the server's Retry-After, after one request."""
    with FakeHTTPServer() as server:
        server.push(Reply.json(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"}), posted())
        results = bot(server).send([delivery(version=v) for v in "abc"])
    assert [r.version for r in results] == ["a", "b", "c"]
    assert all(not r.ok and not r.permanent and r.retry_after == 30.0 for r in results)
    assert len(server.requests) == 1  # no retry inside send, nothing sent after the 429


def test_ratelimited_error_code_with_200_is_retryable() -> None:
    """`ok: false, error: ratelimited` is retryable even when the status is 200."""
    with FakeHTTPServer() as server:
        server.push(Reply.json(200, {"ok": False, "error": "ratelimited"}, headers={"retry-after": "3"}))
        [result] = bot(server).send([delivery()])
    assert not result.ok and not result.permanent and result.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "header", "hint"),
    [(500, None, None), (503, "12", 12.0), (502, None, None), (408, None, None), (425, "5", 5.0)],
)
def test_server_errors_are_retryable(status: int, header: str | None, hint: float | None) -> None:
    """5xx, 408 and 425 answers (JSON or not) are retryable failures, with Retry-After when given."""
    headers = {"Retry-After": header} if header else {}
    with FakeHTTPServer() as server:
        server.push(Reply.text(status, "<html>oops</html>", headers=headers))
        [result] = bot(server).send([delivery()])
    assert not result.ok and not result.permanent and result.retry_after == hint
    assert str(status) in (result.error or "")


def test_non_json_200_is_retryable() -> None:
    """A 200 that is not Slack's JSON (a proxy page) is not taken as delivered, nor as a refusal."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(200, "<html>captive portal</html>"))
        [result] = bot(server).send([delivery()])
    assert not result.ok and not result.permanent


def test_hung_connection_times_out_as_retryable() -> None:
    """A server that never answers gives a retryable 'timed out' within the configured timeout."""
    with FakeHTTPServer() as server:
        server.push(HANG, posted())
        started = time.monotonic()
        results = bot(server).send([delivery(version="a"), delivery(version="b")])
        elapsed = time.monotonic() - started
    assert all(not r.ok and not r.permanent for r in results)
    assert "timed out" in (results[0].error or "")
    assert elapsed < TIMEOUT + 2
    assert len(server.requests) == 1


def test_dropped_connection_is_not_retried_by_the_sdk() -> None:
    """A connection closed without an answer is one retryable failure; slack-sdk's retry handlers stay off."""
    with FakeHTTPServer() as server:
        server.push(DROP, posted())
        [result] = bot(server).send([delivery()])
    assert not result.ok and not result.permanent
    assert len(server.requests) == 1


def test_connection_refused_is_retryable() -> None:
    """Nothing listening on the API address is a retryable failure, not an exception."""
    settings = {
        "token_env": "T",
        "channel": "C1",
        "api_url": refused_url("/api/"),
        "timeout": TIMEOUT,
        "min_interval": 0,
    }
    sink = slack.from_config("slack:soc", settings, {"T": TOKEN})
    [result] = sink.send([delivery()])
    assert not result.ok and not result.permanent and "connection failed" in (result.error or "")


def test_min_interval_paces_posts() -> None:
    """Posts of one sink are spaced by min_interval (Slack allows about one per second)."""
    with FakeHTTPServer(default=posted()) as server:
        started = time.monotonic()
        results = bot(server, min_interval=0.2).send([delivery(version=v) for v in "abc"])
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results) and elapsed >= 0.4


def test_unrenderable_finding_is_a_permanent_failure() -> None:
    """A finding whose shape breaks rendering fails permanently without a request, and the batch goes on."""
    broken = Delivery(
        "slack:soc", "bad", "new", {"finding_info": {"title": "x"}, "resources": "not-a-list", "evidences": 7}
    )
    bad = Delivery("slack:soc", "worse", "new", None)  # type: ignore[arg-type]
    with FakeHTTPServer(default=posted()) as server:
        results = bot(server).send([bad, broken, delivery()])
    assert not results[0].ok and results[0].permanent
    assert results[1].ok and results[2].ok  # a tolerant render: odd fields are skipped
    assert len(server.requests) == 2


# Incoming webhook ----------------------------------------------------------------------------


def test_webhook_posts_the_message_without_thread() -> None:
    """An incoming webhook gets the full message (no channel, no thread_ts, even for a later change)."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(200, "ok"))
        [result] = hook(server.url + HOOK_PATH).send([delivery("escalated", thread_ref=TS)])
    assert result.ok and result.message_ref is None
    request = server.requests[0]
    assert request.path == HOOK_PATH
    body = request.json()
    assert "channel" not in body and "thread_ts" not in body and body["blocks"][0]["type"] == "header"


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "invalid_blocks"),
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
def test_webhook_refusals_are_permanent(status: int, text: str) -> None:
    """Webhook 4xx answers other than 429 are permanent failures naming Slack's error."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(status, text), Reply.text(200, "ok"))
        first, second = hook(server.url + HOOK_PATH).send([delivery(version="a"), delivery(version="b")])
    assert not first.ok and first.permanent and text in (first.error or "") and str(status) in (first.error or "")
    assert second.ok


def test_webhook_429_honours_retry_after_and_stops() -> None:
    """A webhook 429 stops the batch; every remaining delivery carries the same Retry-After."""
    with FakeHTTPServer() as server:
        server.push(Reply.text(429, "rate_limited", headers={"Retry-After": "9"}), Reply.text(200, "ok"))
        results = hook(server.url + HOOK_PATH).send([delivery(version="a"), delivery(version="b")])
    assert [(r.ok, r.permanent, r.retry_after) for r in results] == [(False, False, 9.0), (False, False, 9.0)]
    assert len(server.requests) == 1


@pytest.mark.parametrize("reply", [Reply.text(500, "rollup_error"), HANG, DROP])
def test_webhook_outages_are_retryable(reply: Reply) -> None:
    """Webhook 5xx, a hung connection and a dropped one are retryable failures."""
    with FakeHTTPServer() as server:
        server.push(reply)
        [result] = hook(server.url + HOOK_PATH).send([delivery()])
    assert not result.ok and not result.permanent and result.error


# Configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "env", "key"),
    [
        ({}, {}, "sinks.slack:soc: set either token_env"),
        ({"token_env": "T", "webhook_url_env": "H", "channel": "C1"}, {"T": TOKEN, "H": "https://h"}, "either"),
        ({"token_env": "T"}, {"T": TOKEN}, "sinks.slack:soc.channel"),
        ({"token_env": "T", "channel": "<!channel>"}, {"T": TOKEN}, "sinks.slack:soc.channel"),
        ({"token_env": "T", "channel": "C1"}, {}, "sinks.slack:soc.token_env"),
        ({"token_env": "T", "channel": "C1"}, {"T": "not-a-token-secretvalue"}, "sinks.slack:soc.token_env"),
        (
            {"token_env": "T", "channel": "C1", "api_url": "http://slack.example/api/"},
            {"T": TOKEN},
            "sinks.slack:soc.api_url",
        ),
        ({"token_env": "T", "channel": "C1", "timeout": True}, {"T": TOKEN}, "sinks.slack:soc.timeout"),
        ({"token_env": "T", "channel": "C1", "timeout": -1}, {"T": TOKEN}, "sinks.slack:soc.timeout"),
        ({"token_env": "T", "channel": "C1", "min_interval": "1s"}, {"T": TOKEN}, "sinks.slack:soc.min_interval"),
        ({"token_env": "T", "channel": "C1", "chanel": "C2"}, {"T": TOKEN}, "sinks.slack:soc.chanel"),
        (
            {"webhook_url_env": "H"},
            {"H": "http://hooks.slack.example/services/secretvalue"},
            "sinks.slack:soc.webhook_url_env",
        ),
        (
            {"webhook_url_env": "H", "channel": "C1"},
            {"H": "https://hooks.slack.com/services/secretvalue"},
            "sinks.slack:soc.channel",
        ),
        ({"webhook_url_env": ""}, {}, "sinks.slack:soc.webhook_url_env"),
    ],
)
def test_config_errors_name_the_key_and_hide_secrets(settings: dict[str, Any], env: dict[str, str], key: str) -> None:
    """Each bad setting raises ConfigError naming sinks.<id>.<key>, never quoting a secret value."""
    with pytest.raises(ConfigError) as caught:
        sinks.build("slack:soc", settings, env)
    message = str(caught.value)
    assert key in message
    for secret in env.values():
        assert secret not in message


def test_registry_builds_both_modes() -> None:
    """The sink registry builds a Slack sink in either mode, with the chat family."""
    token_mode = sinks.build("slack:soc", {"token_env": "T", "channel": "#secops"}, {"T": TOKEN})
    hook_mode = sinks.build("slack:ops", {"webhook_url_env": "H"}, {"H": "https://hooks.slack.com/services/T/B/x"})
    assert isinstance(token_mode, slack.SlackSink) and token_mode.threads and token_mode.family == "chat"
    assert isinstance(hook_mode, slack.SlackSink) and not hook_mode.threads and hook_mode.id == "slack:ops"
