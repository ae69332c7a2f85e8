"""The Elasticsearch sink against a local _bulk endpoint: create + _id, per-item results, limits, secrets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.errors import ConfigError
from corral.sinks import build, elastic, family
from tests.support.fake_http import FakeHTTPServer, Reply, make_tls
from tests.support.fake_siem import BulkIndex
from tests.support.sinks import HOSTILE_TEXTS, assert_no_canary, check_golden, make_delivery, numbered

SINK = "elastic:siem"
INDEX = "logs-corral.findings-default"
CANARY = "CANARY-es-51d0e2"
API_KEY = f"{CANARY}VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
ENV = {"ELASTIC_API_KEY": API_KEY}


def _settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "elastic", "url": url, "index": INDEX, "api_key_env": "ELASTIC_API_KEY", "timeout": 2, **extra}


@pytest.fixture
def index() -> BulkIndex:
    """An Elasticsearch _bulk endpoint that accepts our API key."""
    return BulkIndex(API_KEY)


@pytest.fixture
def server(index: BulkIndex) -> Iterator[FakeHTTPServer]:
    """A local HTTP server acting as Elasticsearch."""
    with FakeHTTPServer(index) as running:
        yield running


def _sink(server: FakeHTTPServer, **extra: Any) -> elastic.ElasticSink:
    return elastic.from_config(SINK, _settings(server.url, **extra), ENV)


def test_render_matches_golden() -> None:
    """Action line `create` with _index and _id, then the document with @timestamp and corral.*."""
    check_golden("elastic", "bulk.ndjson", elastic.render(make_delivery(SINK, change="updated"), INDEX))


def test_render_document_fields() -> None:
    """The document is the finding plus @timestamp (modified time, ISO ms) and corral.change."""
    action, document = elastic.render(make_delivery(SINK, version="v" * 64, time=1_700_000_000_789), INDEX).splitlines()
    assert json.loads(action) == {"create": {"_index": INDEX, "_id": "v" * 64}}
    doc = json.loads(document)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.789Z"
    assert doc["corral"] == {"change": "new", "idempotency_key": "v" * 64}
    assert doc["class_uid"] == 2004


def test_batch_is_one_bulk_request(server: FakeHTTPServer, index: BulkIndex) -> None:
    """Three deliveries go in one _bulk request with ApiKey auth and NDJSON; all are created."""
    deliveries = numbered(SINK, 3)
    results = _sink(server).send(deliveries)
    assert [r.ok for r in results] == [True] * 3
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.path == "/_bulk"
    assert request.header("Authorization") == f"ApiKey {API_KEY}"
    assert request.header("Content-Type") == "application/x-ndjson"
    assert list(index.documents[INDEX]) == [d.version for d in deliveries]


def test_duplicate_create_is_success(server: FakeHTTPServer, index: BulkIndex) -> None:
    """Sending the same version again is refused by Elasticsearch (409) and counts as delivered."""
    deliveries = numbered(SINK, 2)
    _sink(server).send(deliveries[:1])
    results = _sink(server).send(deliveries)
    assert [r.ok for r in results] == [True, True]
    assert len(index.documents[INDEX]) == 2


def test_item_errors_map_to_their_deliveries(server: FakeHTTPServer, index: BulkIndex) -> None:
    """Per item: 429 retryable, 400 mapping error permanent, 503 retryable, the rest delivered."""
    deliveries = numbered(SINK, 4)
    index.item_failures = {
        deliveries[0].version: (429, "es_rejected_execution_exception"),
        deliveries[1].version: (400, "document_parsing_exception"),
        deliveries[3].version: (503, "unavailable_shards_exception"),
    }
    results = _sink(server).send(deliveries)
    assert [r.ok for r in results] == [False, False, True, False]
    assert [r.permanent for r in results] == [False, True, False, False]
    assert "es_rejected_execution_exception" in (results[0].error or "")
    assert "document_parsing_exception" in (results[1].error or "")


def test_requests_are_split_under_max_request_bytes(server: FakeHTTPServer, index: BulkIndex) -> None:
    """With a small limit the batch is split, every request within the limit, documents in order."""
    deliveries = numbered(SINK, 5)
    one = len(elastic.render(deliveries[0], INDEX))
    limit = 2 * one + 5
    results = _sink(server, max_request_bytes=limit).send(deliveries)
    assert all(r.ok for r in results)
    assert len(server.requests) == 3
    assert all(len(r.body) <= limit for r in server.requests)
    assert list(index.documents[INDEX]) == [d.version for d in deliveries]


def test_document_over_the_limit_fails_alone(server: FakeHTTPServer) -> None:
    """A document larger than max_request_bytes fails permanently without a request."""
    big = make_delivery(SINK, version="b" * 64, desc="x" * 5000)
    results = _sink(server, max_request_bytes=4096).send([big, *numbered(SINK, 1)])
    assert [r.ok for r in results] == [False, True]
    assert results[0].permanent
    assert all(b"b" * 64 not in r.body for r in server.requests)


@pytest.mark.parametrize(("status", "permanent"), [(429, False), (500, False), (503, False), (401, True)])
def test_refused_request_fails_every_item(server: FakeHTTPServer, status: int, permanent: bool) -> None:
    """A request-level refusal fails all its deliveries; 429/5xx retryable with Retry-After."""
    server.push(Reply.json(status, {"error": {"type": "x"}, "status": status}, {"Retry-After": "9"}))
    results = _sink(server).send(numbered(SINK, 3))
    assert [r.ok for r in results] == [False] * 3
    assert all(r.permanent is permanent for r in results)
    if not permanent:
        assert all(r.retry_after == 9.0 for r in results)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"errors": false}', b'{"errors": false, "items": [{"create": {"status": 201}}]}'],
    ids=["garbage", "no-items", "too-few-items"],
)
def test_unreadable_answer_is_retryable(server: FakeHTTPServer, body: bytes) -> None:
    """A 200 whose items cannot be matched to the actions leaves every delivery retryable."""
    server.push(Reply(200, body, {"Content-Type": "application/json"}))
    results = _sink(server).send(numbered(SINK, 2))
    assert all(not r.ok and not r.permanent for r in results)


def test_hung_connection_is_retryable_and_bounded(server: FakeHTTPServer) -> None:
    """A cluster that never answers costs one timeout; deliveries stay retryable."""
    server.push(Reply(hang=True))
    started = time.monotonic()
    results = _sink(server, timeout=0.3).send(numbered(SINK, 2))
    assert time.monotonic() - started < 5
    assert all(not r.ok and not r.permanent for r in results)


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_cannot_forge_actions(server: FakeHTTPServer, index: BulkIndex, text: str) -> None:
    """Hostile text stays inside its document: two lines per delivery, no extra action, exact round-trip."""
    deliveries = [make_delivery(SINK, version=f"{i:064x}", title=text, namespace=text) for i in range(2)]
    results = _sink(server).send(deliveries)
    assert all(r.ok for r in results)
    body = server.requests[0].body
    assert body.count(b"\n") == 4
    assert list(index.documents) == [INDEX]
    stored = index.documents[INDEX][deliveries[0].version]
    assert stored["finding_info"]["title"] == text


def test_https_with_a_private_ca(tmp_path: Path, index: BulkIndex) -> None:
    """Over TLS, `ca_file` lets the sink trust a cluster with a private certificate."""
    tls = make_tls(tmp_path)
    with FakeHTTPServer(index, tls=tls) as server:
        results = elastic.from_config(SINK, _settings(server.url, ca_file=str(tls.cert)), ENV).send(numbered(SINK, 1))
    assert results[0].ok
    assert len(index.documents[INDEX]) == 1


FAILURE_REPLIES = [
    Reply.json(400, {"error": {"type": "illegal_argument_exception", "reason": API_KEY}}),
    Reply.json(401, {"error": {"type": "security_exception", "reason": f"bad key {API_KEY}"}}),
    Reply.json(429, {"error": "too many"}, {"Retry-After": "1"}),
    Reply.json(500, {"error": API_KEY}),
    Reply.json(200, {"errors": True, "items": [{"create": {"status": 400, "error": {"type": API_KEY}}}] * 2}),
    Reply(hang=True),
]


@pytest.mark.parametrize("reply", FAILURE_REPLIES, ids=lambda r: "hang" if r.hang else str(r.status))
def test_api_key_never_leaks(server: FakeHTTPServer, reply: Reply, caplog: pytest.LogCaptureFixture) -> None:
    """In every failure mode the API key is in no Result.error, no log record and no body."""
    caplog.set_level(logging.DEBUG)
    server.push(reply)
    results = _sink(server, timeout=0.3).send(numbered(SINK, 2))
    assert not any(r.ok for r in results)
    assert_no_canary(CANARY, results, caplog, server.requests)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"url": "http://es.example:9200"}, "url"),
        ({"url": "https://es.example:9200/?x=1"}, "url"),
        ({"index": "Findings"}, "index"),
        ({"index": "_private"}, "index"),
        ({"index": "a/b"}, "index"),
        ({"index": "a b"}, "index"),
        ({"index": ".."}, "index"),
        ({"index": "x" * 256}, "index"),
        ({"index": None}, "index"),
        ({"api_key_env": None}, "api_key_env"),
        ({"api_key_env": "UNSET_VARIABLE"}, "api_key_env"),
        ({"max_request_bytes": -1}, "max_request_bytes"),
        ({"timeout": 10_000}, "timeout"),
        ({"ca_file": 3}, "ca_file"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>, never echoing the key."""
    merged = {k: v for k, v in {**_settings("https://es.example:9200"), **settings}.items() if v is not None}
    with pytest.raises(ConfigError, match=rf"^sinks\.{SINK}\.{key}: ") as caught:
        elastic.from_config(SINK, merged, ENV)
    assert CANARY not in str(caught.value)


def test_header_breaking_api_key_is_refused_without_echo() -> None:
    """An API key that could break the Authorization header is refused, and not quoted."""
    with pytest.raises(ConfigError, match=r"\.api_key_env: ") as caught:
        elastic.from_config(SINK, _settings("https://es.example:9200"), {"ELASTIC_API_KEY": f"{CANARY}\r\nX: 1"})
    assert CANARY not in str(caught.value)


def test_registry_builds_the_sink() -> None:
    """The registry builds this sink, and its family agrees with the registry's."""
    sink = build(SINK, _settings("https://es.example:9200"), ENV)
    assert sink.id == SINK
    assert sink.family == family("elastic") == elastic.FAMILY
    sink.close()


def test_a_request_too_large_for_the_receiver_is_sent_in_halves(server: FakeHTTPServer) -> None:
    """413 for three documents: they go again in smaller requests and are indexed."""
    server.push(Reply.json(413, {"error": "request entity too large"}))
    results = _sink(server).send(numbered(SINK, 3))
    assert all(r.ok for r in results)
    assert [r.body.count(b"\n") // 2 for r in server.requests] == [3, 1, 2]


def test_only_a_document_refused_alone_fails_for_good(server: FakeHTTPServer) -> None:
    """A receiver refusing every size: each document ends refused on its own, permanently."""
    for _ in range(5):
        server.push(Reply.json(413, {"error": "request entity too large"}))
    results = _sink(server).send(numbered(SINK, 3))
    assert all(not r.ok and r.permanent for r in results)
    assert [r.body.count(b"\n") // 2 for r in server.requests] == [3, 1, 2, 1, 1]
