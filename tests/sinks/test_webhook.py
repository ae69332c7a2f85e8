"""The signed webhook sink against a local receiver that verifies signatures; `verify` for receivers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.errors import ConfigError
from corral.sinks import build, family, http, webhook
from tests.support.fake_http import FakeHTTPServer, Reply, TlsFiles
from tests.support.fake_siem import WebhookReceiver
from tests.support.sinks import HOSTILE_TEXTS, assert_no_canary, check_golden, make_delivery, numbered

SINK = "webhook:soar"
CANARY = "CANARY-wh-c0ffee"
SECRET = f"{CANARY}-signing-secret-0123456789"
PATH = f"/hooks/{CANARY}-capability"
NOW = 1_700_000_000


@pytest.fixture
def receiver() -> WebhookReceiver:
    """A receiver that checks signatures with the real clock."""
    return WebhookReceiver(SECRET, PATH, time.time)


@pytest.fixture
def server(receiver: WebhookReceiver, tls: TlsFiles) -> Iterator[FakeHTTPServer]:
    """The receiver behind HTTPS on 127.0.0.1."""
    with FakeHTTPServer(receiver, tls=tls) as running:
        yield running


def _sink(server: FakeHTTPServer, tls: TlsFiles, **extra: Any) -> webhook.WebhookSink:
    settings = {"kind": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", "ca_file": str(tls.cert)}
    env = {"HOOK_URL": server.url + PATH, "HOOK_SECRET": SECRET}
    return webhook.from_config(SINK, {**settings, "timeout": 2, **extra}, env)


def test_signed_request_matches_golden() -> None:
    """Body and headers of one delivery, signed at a fixed time with a fixed secret."""
    body, headers = webhook.signed_request(make_delivery(SINK, change="escalated"), "golden-secret-0123456789", NOW)
    check_golden("webhook", "body.json", body)
    check_golden("webhook", "headers.json", orjson.dumps(headers, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def test_signature_is_hmac_over_timestamp_dot_body() -> None:
    """The signature is HMAC-SHA256 over timestamp "." body, hex, with the sha256= prefix."""
    import hashlib
    import hmac

    body, headers = webhook.signed_request(make_delivery(SINK), SECRET, NOW + 0.9)
    assert headers["X-Corral-Timestamp"] == str(NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Corral-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"] == make_delivery(SINK).version
    assert json.loads(body)["idempotency_key"] == headers["Idempotency-Key"]


def test_verify_accepts_a_fresh_signed_request() -> None:
    """A request signed now verifies, at the edge of the tolerance too."""
    body, headers = webhook.signed_request(make_delivery(SINK), SECRET, NOW)
    ts, sig = headers["X-Corral-Timestamp"], headers["X-Corral-Signature"]
    assert webhook.verify(SECRET, ts, body, sig, now=NOW)
    assert webhook.verify(SECRET.encode(), ts, body, sig, now=NOW + 300)
    assert webhook.verify(SECRET, ts, body, sig, now=NOW - 300)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"body": b'{"tampered":true}'}, False),
        ({"secret": "another-secret-0123456789"}, False),
        ({"now": NOW + 301}, False),
        ({"now": NOW - 301}, False),
        ({"timestamp": str(NOW + 1)}, False),
        ({"timestamp": "1.7e9"}, False),
        ({"timestamp": " 1700000000"}, False),
        ({"timestamp": "١٧٠٠٠٠٠٠٠٠"}, False),
        ({"timestamp": ""}, False),
        ({"timestamp": "9" * 40}, False),
        ({"signature": "sha1=abc"}, False),
        ({"signature": "é" * 71}, False),
        ({"signature": ""}, False),
        ({}, True),
    ],
)
def test_verify_refuses_forged_or_stale_requests(change: dict[str, Any], expected: bool) -> None:
    """Any change of body, secret, timestamp or signature, or a stale time, fails verification."""
    body, headers = webhook.signed_request(make_delivery(SINK), SECRET, NOW)
    args: dict[str, Any] = {
        "secret": SECRET,
        "timestamp": headers["X-Corral-Timestamp"],
        "body": body,
        "signature": headers["X-Corral-Signature"],
        "now": NOW,
        **change,
    }
    assert webhook.verify(**args) is expected


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=1999))
def test_verify_detects_any_flipped_byte(body: bytes, position: int) -> None:
    """sign then verify holds for any body; flipping any one byte breaks it."""
    signature = webhook.sign(SECRET, str(NOW), body)
    assert webhook.verify(SECRET, str(NOW), body, signature, now=NOW)
    if body:
        i = position % len(body)
        flipped = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not webhook.verify(SECRET, str(NOW), flipped, signature, now=NOW)


def test_deliveries_are_posted_signed_over_https(
    server: FakeHTTPServer, receiver: WebhookReceiver, tls: TlsFiles
) -> None:
    """Each delivery is one signed POST the receiver verifies; Idempotency-Key is the version."""
    deliveries = numbered(SINK, 3)
    results = _sink(server, tls).send(deliveries)
    assert [r.ok for r in results] == [True] * 3
    assert [key for key, _ in receiver.accepted] == [d.version for d in deliveries]
    assert [body["finding"] for _, body in receiver.accepted] == [d.finding for d in deliveries]
    assert {body["change"] for _, body in receiver.accepted} == {"new"}


def test_receiver_refuses_a_wrong_secret(server: FakeHTTPServer, receiver: WebhookReceiver, tls: TlsFiles) -> None:
    """With a secret the receiver does not share, its 401 is a permanent failure."""
    receiver.secret = "not-the-same-secret-0123456789"
    result = _sink(server, tls).send(numbered(SINK, 1))[0]
    assert not result.ok
    assert result.permanent
    assert "HTTP 401" in (result.error or "")


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(400), True, None),
        (Reply(404), True, None),
        (Reply(410), True, None),
        # The sink sends Idempotency-Key: under that draft 409 means the first attempt with the same
        # key is still being processed, so the delivery waits and is sent again (was: permanent).
        (Reply.json(409, {"error": "idempotency_key_in_use"}, headers={"Retry-After": "2"}), False, 2.0),
        (Reply(409), False, None),
        # ... while 422, the key reused with another body, is still refused for good.
        (Reply(422), True, None),
        (Reply(429, headers={"Retry-After": "30"}), False, 30.0),
        (Reply(500), False, None),
        (Reply(503, headers={"Retry-After": "5"}), False, 5.0),
    ],
    ids=lambda v: str(v.status) if isinstance(v, Reply) else None,
)
def test_answers_are_classified(
    server: FakeHTTPServer, tls: TlsFiles, reply: Reply, permanent: bool, retry_after: float | None
) -> None:
    """4xx permanent; 409 (same Idempotency-Key in progress), 429 and 5xx retryable with Retry-After."""
    server.push(reply)
    result = _sink(server, tls).send(numbered(SINK, 1))[0]
    assert not result.ok
    assert result.permanent is permanent
    assert result.retry_after == retry_after


@pytest.mark.parametrize("status", [429, 503])
def test_after_a_retry_after_the_rest_waits_unsent(
    server: FakeHTTPServer, receiver: WebhookReceiver, tls: TlsFiles, status: int
) -> None:
    """A receiver that asks to wait 30 s (429 or 503 with Retry-After, RFC 9110 §10.2.3) gets no
    further request from the batch: the rest is held back unsent, spending no attempt, until then."""
    deliveries = numbered(SINK, 4)
    server.push(Reply(202), Reply(status, headers={"Retry-After": "30"}))
    results = _sink(server, tls).send(deliveries)
    assert len(server.requests) == 2
    assert [r.ok for r in results] == [True, False, False, False]
    assert [r.attempted for r in results] == [True, True, False, False]
    assert all(not r.permanent and r.retry_after == 30.0 for r in results[1:])


def test_redirects_are_not_followed(server: FakeHTTPServer, receiver: WebhookReceiver, tls: TlsFiles) -> None:
    """A redirect is not followed with the signed body: nothing reaches the other location."""
    with FakeHTTPServer(tls=tls) as elsewhere:
        server.push(Reply(307, headers={"Location": elsewhere.url + "/steal"}))
        result = _sink(server, tls).send(numbered(SINK, 1))[0]
    assert not result.ok
    assert elsewhere.requests == []


def test_hung_connection_is_retryable_and_bounded(server: FakeHTTPServer, tls: TlsFiles) -> None:
    """A receiver that never answers costs one timeout per delivery; the delivery stays pending."""
    server.push(Reply(hang=True))
    started = time.monotonic()
    results = _sink(server, tls, timeout=0.3).send(numbered(SINK, 2))
    assert time.monotonic() - started < 5
    assert not results[0].ok
    assert not results[0].permanent
    assert results[1].ok


def test_trickling_receiver_is_retryable_and_bounded(server: FakeHTTPServer, tls: TlsFiles) -> None:
    """A receiver that answers 200 and then trickles its body, a byte every 0.5 s, cannot hold the
    worker past the sink's timeout (nor past the claim's lease): the delivery is a retryable failure,
    not a success after 20 s, and the next one is still posted."""
    server.push(Reply(200, b"x" * 40, drip=0.5))
    started = time.monotonic()
    results = _sink(server, tls, timeout=1).send(numbered(SINK, 2))
    assert time.monotonic() - started < 8  # 1 s deadline (+ the second, quick, delivery)
    assert not results[0].ok
    assert not results[0].permanent
    assert results[0].error == f"{SINK}: timed out"
    assert results[1].ok


def test_header_unsafe_version_fails_without_a_request(server: FakeHTTPServer, tls: TlsFiles) -> None:
    """An idempotency key that is not header-safe is refused before any request."""
    result = _sink(server, tls).send([make_delivery(SINK, version="bad\r\nX-Evil: 1")])[0]
    assert result.permanent
    assert server.requests == []


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_stays_in_the_body(
    server: FakeHTTPServer, receiver: WebhookReceiver, tls: TlsFiles, text: str
) -> None:
    """Hostile text round-trips in the signed JSON body and never reaches a header or the path."""
    delivery = make_delivery(SINK, title=text, cluster=text)
    assert _sink(server, tls).send([delivery])[0].ok
    assert receiver.accepted[0][1]["finding"]["finding_info"]["title"] == text
    request = server.requests[0]
    assert request.path == PATH
    assert all(text not in value for value in request.headers.values())


FAILURE_REPLIES = [
    Reply(400, SECRET.encode()),
    Reply(401, PATH.encode()),
    Reply(429, headers={"Retry-After": "1"}),
    Reply(500, SECRET.encode()),
    Reply(302, headers={"Location": f"https://127.0.0.1:1{PATH}"}),
    Reply(hang=True),
]


@pytest.mark.parametrize("reply", FAILURE_REPLIES, ids=lambda r: "hang" if r.hang else str(r.status))
def test_url_and_secret_never_leak(
    server: FakeHTTPServer, tls: TlsFiles, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    """In every failure mode neither the URL nor the secret is in a Result.error, a log record or the body."""
    caplog.set_level(logging.DEBUG)
    server.push(reply)
    results = _sink(server, tls, timeout=0.3).send(numbered(SINK, 1))
    assert not results[0].ok
    assert_no_canary(CANARY, results, caplog, server.requests, in_path=False)


def test_url_and_secret_never_leak_on_success(
    server: FakeHTTPServer, tls: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """On success too: logs and body carry neither the URL nor the secret."""
    caplog.set_level(logging.DEBUG)
    results = _sink(server, tls).send(numbered(SINK, 2))
    assert all(r.ok for r in results)
    assert_no_canary(CANARY, results, caplog, server.requests, in_path=False)
    # The transport's request lines are still logged, with the path replaced.
    assert any(http.REDACTED in record.getMessage() for record in caplog.records)


def test_unreachable_receiver_does_not_leak() -> None:
    """A refused connection names the sink, not the URL."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", "timeout": 1}
    sink = webhook.from_config(SINK, settings, {"HOOK_URL": f"http://127.0.0.1:{port}{PATH}", "HOOK_SECRET": SECRET})
    result = sink.send(numbered(SINK, 1))[0]
    assert not result.ok
    assert not result.permanent
    assert CANARY not in (result.error or "")


@pytest.mark.parametrize(
    ("settings", "env", "key"),
    [
        ({"secret_env": "S"}, {"S": SECRET}, "url_env"),
        ({"url": "https://h.example/x", "url_env": "U", "secret_env": "S"}, {"U": "https://h", "S": SECRET}, "url_env"),
        ({"url_env": "U", "secret_env": "S"}, {"S": SECRET}, "url_env"),
        ({"url_env": "U", "secret_env": "S"}, {"U": f"http://hooks.example{PATH}", "S": SECRET}, "url_env"),
        ({"url": f"http://hooks.example{PATH}", "secret_env": "S"}, {"S": SECRET}, "url"),
        ({"url": "https://hooks.example/x"}, {}, "secret_env"),
        ({"url": "https://hooks.example/x", "secret_env": "S"}, {}, "secret_env"),
        ({"url": "https://hooks.example/x", "secret_env": "S"}, {"S": "short"}, "secret_env"),
        ({"url": "https://hooks.example/x", "secret_env": "S", "timeout": "1"}, {"S": SECRET}, "timeout"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], env: dict[str, str], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>, never echoing URL or secret."""
    with pytest.raises(ConfigError, match=rf"^sinks\.{SINK}\.{key}: ") as caught:
        webhook.from_config(SINK, settings, env)
    assert CANARY not in str(caught.value)


def test_registry_builds_the_sink() -> None:
    """The registry builds this sink, and its family agrees with the registry's."""
    sink = build(SINK, {"kind": "webhook", "url": "https://hooks.example/x", "secret_env": "S"}, {"S": SECRET})
    assert sink.id == SINK
    assert sink.family == family("webhook") == webhook.FAMILY
    sink.close()
