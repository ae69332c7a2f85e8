"""The Splunk HEC sink against a local HEC: format, batching under the limit, answers, secrets."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.errors import ConfigError
from corral.sinks import build, family
from corral.sinks import splunk_hec as hec
from corral.sinks.http import pack
from tests.support.fake_http import FakeHTTPServer, Reply, make_tls
from tests.support.fake_siem import HecCollector
from tests.support.sinks import HOSTILE_TEXTS, assert_no_canary, check_golden, make_delivery, numbered

SINK = "splunk_hec:soc"
CANARY = "CANARY-hec-7f3a9c"
TOKEN = f"{CANARY}-0000-1111-2222"
ENV = {"SPLUNK_HEC_TOKEN": TOKEN}


def _settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "splunk_hec", "url": url, "token_env": "SPLUNK_HEC_TOKEN", "index": "security", **extra}


@pytest.fixture
def collector() -> HecCollector:
    """A HEC that accepts our token and the indexes main and security."""
    return HecCollector(TOKEN)


@pytest.fixture
def server(collector: HecCollector) -> Iterator[FakeHTTPServer]:
    """A local HTTP server acting as HEC."""
    with FakeHTTPServer(collector) as running:
        yield running


def _sink(server: FakeHTTPServer, **extra: Any) -> hec.SplunkHecSink:
    return hec.from_config(SINK, _settings(server.url, timeout=2, **extra), ENV)


def test_render_matches_golden() -> None:
    """One event: time in epoch seconds with ms, metadata, the finding plus the Corral fields."""
    delivery = make_delivery(SINK, change="reopened")
    check_golden("splunk_hec", "event.json", hec.render(delivery, index="security", host="corral-hub"))


def test_render_defaults_match_golden() -> None:
    """Without index and host, only source and sourcetype are set."""
    check_golden("splunk_hec", "event_defaults.json", hec.render(make_delivery(SINK)))


def test_render_time_and_idempotency_key() -> None:
    """`time` is the modified time in seconds with ms; the event carries the key and the change."""
    doc = json.loads(hec.render(make_delivery(SINK, version="k" * 64, change="closed", time=1_700_000_000_789)))
    assert doc["time"] == 1_700_000_000.789
    assert doc["event"]["corral_idempotency_key"] == "k" * 64
    assert doc["event"]["corral_change"] == "closed"
    assert doc["event"]["finding_info"]["uid"] == make_delivery(SINK).finding["finding_info"]["uid"]
    assert doc["sourcetype"] == hec.DEFAULT_SOURCETYPE


def test_batch_is_one_request_with_every_event(server: FakeHTTPServer, collector: HecCollector) -> None:
    """Three deliveries go in one request, newline-separated, with the HEC headers, all accepted."""
    deliveries = numbered(SINK, 3)
    results = _sink(server, host="hub-1", sourcetype="ocsf:corral").send(deliveries)
    assert [r.ok for r in results] == [True, True, True]
    assert [r.version for r in results] == [d.version for d in deliveries]
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.header("Authorization") == f"Splunk {TOKEN}"
    assert request.header("Content-Type") == "application/json"
    uuid.UUID(request.header("X-Splunk-Request-Channel") or "")
    assert request.body.count(b"\n") == 3
    assert [e["event"]["corral_idempotency_key"] for e in collector.events] == [d.version for d in deliveries]
    assert {(e["index"], e["host"], e["sourcetype"], e["source"]) for e in collector.events} == {
        ("security", "hub-1", "ocsf:corral", "corral")
    }


def test_configured_channel_is_sent(server: FakeHTTPServer) -> None:
    """A configured channel GUID is the X-Splunk-Request-Channel header."""
    channel = "0b7d4e1c-5a0f-4c3e-9f00-8d6b2a1c0e11"
    _sink(server, channel=channel).send(numbered(SINK, 1))
    assert server.requests[0].header("X-Splunk-Request-Channel") == channel


def test_requests_are_split_under_max_request_bytes(server: FakeHTTPServer, collector: HecCollector) -> None:
    """With a small limit, the batch becomes several requests, each within it, events in order."""
    deliveries = numbered(SINK, 7)
    one = len(hec.render(deliveries[0], index="security", source="corral", sourcetype="ocsf:finding")) + 1
    limit = 2 * one + 10
    collector.max_bytes = limit
    results = _sink(server, max_request_bytes=limit).send(deliveries)
    assert all(r.ok for r in results)
    assert len(server.requests) == 4
    assert all(len(r.body) <= limit for r in server.requests)
    assert [e["event"]["corral_idempotency_key"] for e in collector.events] == [d.version for d in deliveries]


def test_event_over_the_limit_fails_alone_without_a_request(server: FakeHTTPServer) -> None:
    """An event larger than max_request_bytes fails permanently; the others are sent."""
    big = make_delivery(SINK, version="b" * 64, desc="x" * 5000)
    small = numbered(SINK, 2)
    results = _sink(server, max_request_bytes=4096).send([small[0], big, small[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].permanent
    assert "exceeds max_request_bytes" in (results[1].error or "")
    assert all(b"b" * 64 not in r.body for r in server.requests)


@pytest.mark.parametrize("status", [503, 429])
def test_busy_answers_are_retryable_with_retry_after(server: FakeHTTPServer, status: int) -> None:
    """503 (queue full) and 429 fail every delivery of the request, retryably, with Retry-After."""
    server.push(Reply.json(status, {"text": "Server is busy", "code": 9}, {"Retry-After": "17"}))
    results = _sink(server).send(numbered(SINK, 3))
    assert [r.ok for r in results] == [False] * 3
    assert all(not r.permanent and r.retry_after == 17.0 for r in results)
    assert all(f"HTTP {status}" in (r.error or "") for r in results)


def test_server_error_is_retryable(server: FakeHTTPServer) -> None:
    """500 is retryable."""
    server.push(Reply.json(500, {"text": "Internal server error", "code": 8}))
    results = _sink(server).send(numbered(SINK, 2))
    assert all(not r.ok and not r.permanent for r in results)
    assert "Internal server error" in (results[0].error or "")


def test_incorrect_index_is_permanent(server: FakeHTTPServer) -> None:
    """An index the token may not write to is a permanent refusal, explained with HEC's text."""
    results = hec.from_config(SINK, _settings(server.url, index="nope"), ENV).send(numbered(SINK, 2))
    assert all(not r.ok and r.permanent for r in results)
    assert "Incorrect index" in (results[0].error or "")


def test_wrong_token_is_permanent(server: FakeHTTPServer, collector: HecCollector) -> None:
    """A token HEC does not know is a permanent refusal."""
    collector.token = "another-token"
    results = _sink(server).send(numbered(SINK, 1))
    assert results[0].permanent
    assert "HTTP 403" in (results[0].error or "")
    assert "Invalid token" in (results[0].error or "")


def test_invalid_event_number_blames_one_event(server: FakeHTTPServer) -> None:
    """HEC naming one malformed event fails it for good and the others retryably."""
    server.push(Reply.json(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}))
    results = _sink(server).send(numbered(SINK, 3))
    assert [r.ok for r in results] == [False, False, False]
    assert [r.permanent for r in results] == [False, True, False]
    assert "Invalid data format" in (results[1].error or "")


def test_hung_connection_is_retryable_and_bounded(server: FakeHTTPServer) -> None:
    """A HEC that never answers costs one timeout, and the deliveries stay retryable."""
    server.push(Reply(hang=True))
    started = time.monotonic()
    results = hec.from_config(SINK, _settings(server.url, timeout=0.3), ENV).send(numbered(SINK, 2))
    assert time.monotonic() - started < 5
    assert all(not r.ok and not r.permanent for r in results)
    assert "timed out" in (results[0].error or "")


def test_refused_connection_is_retryable() -> None:
    """Nothing listening is a retryable connection failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = hec.from_config(SINK, _settings(f"http://127.0.0.1:{port}"), ENV).send(numbered(SINK, 1))
    assert not results[0].ok
    assert not results[0].permanent
    # urllib3's NewConnectionError subclasses ConnectTimeoutError, so the transport says "timed out".
    assert (results[0].error or "").startswith(f"{SINK}: ")


def test_unrenderable_finding_fails_alone(server: FakeHTTPServer, collector: HecCollector) -> None:
    """A finding without a time cannot be rendered: permanent for it, the others are sent."""
    broken = make_delivery(SINK, version="c" * 64)
    del broken.finding["time"]
    del broken.finding["finding_info"]["modified_time"]
    results = _sink(server).send([broken, *numbered(SINK, 1)])
    assert [r.ok for r in results] == [False, True]
    assert results[0].permanent
    assert len(collector.events) == 1


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_leaves_every_event_valid(server: FakeHTTPServer, collector: HecCollector, text: str) -> None:
    """Hostile titles and names round-trip inside valid events; no request passes the limit."""
    deliveries = [make_delivery(SINK, version=f"{i:064x}", title=text, cluster=text, desc=text) for i in range(3)]
    results = _sink(server).send(deliveries)
    assert all(r.ok for r in results)
    assert all(len(r.body) <= hec.DEFAULT_MAX_REQUEST_BYTES for r in server.requests)
    assert [e["event"]["finding_info"]["title"] for e in collector.events] == [text] * 3
    assert all(set(r.headers) >= {"authorization"} and text not in r.headers.values() for r in server.requests)


def test_https_with_a_private_ca(tmp_path: Path, collector: HecCollector) -> None:
    """Over TLS, `ca_file` lets the sink trust a HEC with a private certificate."""
    tls = make_tls(tmp_path)
    with FakeHTTPServer(collector, tls=tls) as server:
        results = hec.from_config(SINK, _settings(server.url, ca_file=str(tls.cert)), ENV).send(numbered(SINK, 2))
    assert server.url.startswith("https://")
    assert all(r.ok for r in results)
    assert len(collector.events) == 2


def test_https_without_trust_fails_retryably(tmp_path: Path, collector: HecCollector) -> None:
    """Without the CA, the TLS handshake fails: no data leaves, the delivery stays pending."""
    with FakeHTTPServer(collector, tls=make_tls(tmp_path)) as server:
        results = hec.from_config(SINK, _settings(server.url), ENV).send(numbered(SINK, 1))
    assert not results[0].ok
    assert not results[0].permanent
    assert collector.events == []


FAILURE_REPLIES = [
    Reply.json(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}),
    Reply.json(401, {"text": "Token is required", "code": 2}),
    Reply.json(403, {"text": "Invalid token", "code": 4}),
    Reply.json(429, {"text": "Too many", "code": 9}, {"Retry-After": "3"}),
    Reply.json(500, {"text": f"echo {TOKEN}", "code": 8}),
    Reply.json(503, {"text": "Server is busy", "code": 9}),
    Reply(413, f"too large {TOKEN}".encode()),
    Reply(hang=True),
]


@pytest.mark.parametrize("reply", FAILURE_REPLIES, ids=lambda r: "hang" if r.hang else str(r.status))
def test_token_never_leaks(server: FakeHTTPServer, reply: Reply, caplog: pytest.LogCaptureFixture) -> None:
    """In every failure mode the token is in no Result.error, no log record and no body."""
    caplog.set_level(logging.DEBUG)
    server.push(reply)
    results = hec.from_config(SINK, _settings(server.url, timeout=0.3), ENV).send(numbered(SINK, 2))
    assert_no_canary(CANARY, results, caplog, server.requests)


def test_token_never_leaks_on_success(server: FakeHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    """The token travels only in the Authorization header."""
    caplog.set_level(logging.DEBUG)
    results = _sink(server).send(numbered(SINK, 2))
    assert all(r.ok for r in results)
    assert_no_canary(CANARY, results, caplog, server.requests)
    assert all(r.header("Authorization") == f"Splunk {TOKEN}" for r in server.requests)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"url": "http://splunk.example:8088"}, "url"),
        ({"url": "ftp://127.0.0.1"}, "url"),
        ({"url": "https://splunk.example:8088/?token=x"}, "url"),
        ({"token_env": None}, "token_env"),
        ({"token_env": "UNSET_VARIABLE"}, "token_env"),
        ({"index": "Bad Index"}, "index"),
        ({"index": "_internal"}, "index"),
        ({"source": ""}, "source"),
        ({"sourcetype": "a\nb"}, "sourcetype"),
        ({"host": 7}, "host"),
        ({"channel": "not-a-guid"}, "channel"),
        ({"max_request_bytes": True}, "max_request_bytes"),
        ({"max_request_bytes": 10}, "max_request_bytes"),
        ({"timeout": 0}, "timeout"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>, never echoing the token."""
    merged = {k: v for k, v in {**_settings("https://splunk.example:8088"), **settings}.items() if v is not None}
    with pytest.raises(ConfigError, match=rf"^sinks\.{SINK}\.{key}: ") as caught:
        hec.from_config(SINK, merged, ENV)
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize("bad", [f"{CANARY} with space", f"{CANARY}\r\nX-Evil: 1", f"{CANARY}é"])
def test_header_breaking_token_is_refused_without_echo(bad: str) -> None:
    """A token that could break the Authorization header is refused, and not quoted."""
    with pytest.raises(ConfigError, match=r"\.token_env: ") as caught:
        hec.from_config(SINK, _settings("https://splunk.example:8088"), {"SPLUNK_HEC_TOKEN": bad})
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://h:8088", "https://h:8088/services/collector/event"),
        ("https://h:8088/", "https://h:8088/services/collector/event"),
        ("https://h/services/collector", "https://h/services/collector/event"),
        ("https://h/services/collector/event", "https://h/services/collector/event"),
    ],
)
def test_event_url(url: str, endpoint: str) -> None:
    """The event endpoint is derived from a base URL or taken as given."""
    assert hec.event_url(url) == endpoint


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=40), st.integers(min_value=1, max_value=400))
def test_pack_keeps_order_and_limit(sizes: list[int], limit: int) -> None:
    """Every item lands once, in order; groups stay within the limit; only oversize items are left out."""
    groups, oversize = pack(sizes, limit)
    placed = [i for group in groups for i in group]
    assert placed == sorted(placed)
    assert sorted(placed + oversize) == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in group) <= limit for group in groups)
    assert all(group for group in groups)
    assert oversize == [i for i, size in enumerate(sizes) if size > limit]


def test_registry_builds_the_sink() -> None:
    """The registry builds this sink, and its family agrees with the registry's."""
    sink = build(SINK, _settings("https://splunk.example:8088"), ENV)
    assert sink.id == SINK
    assert sink.family == family("splunk_hec") == hec.FAMILY
    sink.close()


def test_a_body_over_hec_s_own_limit_is_sent_in_halves(server: FakeHTTPServer, collector: HecCollector) -> None:
    """HEC's max_content_length below max_request_bytes: a 413 for the batch, then every event lands in halves."""
    deliveries = numbered(SINK, 8)
    collector.max_bytes = len(hec.render(deliveries[0])) * 5
    results = _sink(server).send(deliveries)
    assert all(r.ok for r in results)
    assert [e["event"]["corral_idempotency_key"] for e in collector.events] == [d.version for d in deliveries]
    assert len(server.requests) > 2  # the whole batch (refused), then its halves
    assert len(server.requests[0].body) > collector.max_bytes
