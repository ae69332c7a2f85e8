"""The Sentinel sink through azure-monitor-ingestion against a local TLS Logs Ingestion endpoint."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from corral.errors import ConfigError
from corral.sinks import family, sentinel
from corral.sinks.text import MARKER
from tests.support.fake_http import FakeHTTPServer, Reply, TlsFiles
from tests.support.fake_siem import LogsIngestion
from tests.support.sinks import HOSTILE_TEXTS, assert_no_canary, check_golden, make_delivery, numbered

SINK = "sentinel:soc"
RULE = "dcr-00112233445566778899aabbccddeeff"
CANARY = "CANARY-entra-9b1e"
TOKEN = f"{CANARY}.eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIn0.sig"


class StaticToken:
    """A TokenCredential that always returns one token.

    Entra ID has no local counterpart, so this stands in for DefaultAzureCredential; everything
    after the token (bearer header over TLS, the ingestion request, the answers) is real.
    """

    def __init__(self, token: str = TOKEN, error: Exception | None = None) -> None:
        self.token = token
        self.error = error
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        """Return the static token (or raise the configured error)."""
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def ingestion() -> LogsIngestion:
    """A Logs Ingestion endpoint for our DCR and stream that accepts our token."""
    return LogsIngestion(TOKEN, RULE, sentinel.STREAM)


@pytest.fixture
def server(ingestion: LogsIngestion, tls: TlsFiles) -> Iterator[FakeHTTPServer]:
    """The ingestion endpoint over HTTPS on 127.0.0.1."""
    with FakeHTTPServer(ingestion, tls=tls) as running:
        yield running


def _settings(url: str, tls: TlsFiles, **extra: Any) -> dict[str, Any]:
    return {"kind": "sentinel", "endpoint": url, "rule_id": RULE, "ca_file": str(tls.cert), "timeout": 3, **extra}


def _sink(
    server: FakeHTTPServer, tls: TlsFiles, credential: StaticToken | None = None, **extra: Any
) -> sentinel.SentinelSink:
    return sentinel.from_config(SINK, _settings(server.url, tls, **extra), {}, credential=credential or StaticToken())


def test_render_matches_golden() -> None:
    """One row of CorralFindings_CL: the flat columns and the whole finding."""
    row = sentinel.render(make_delivery(SINK, change="escalated"))
    check_golden("sentinel", "row.json", orjson.dumps(row, option=orjson.OPT_INDENT_2))


def test_stream_declaration_matches_golden() -> None:
    """The DCR stream declaration infra/azure uses, from the same column list."""
    check_golden(
        "sentinel", "stream_declaration.json", orjson.dumps(sentinel.stream_declaration(), option=orjson.OPT_INDENT_2)
    )


def test_row_columns_and_values() -> None:
    """A row has exactly the table's columns, in order, read from the finding and the delivery."""
    delivery = make_delivery(SINK, version="v" * 64, change="closed", severity_id=5, time=1_700_000_000_789)
    row = sentinel.render(delivery)
    assert list(row) == [name for name, _ in sentinel.COLUMNS]
    assert row["TimeGenerated"] == "2023-11-14T22:13:20.789Z"
    assert (row["ProductUid"], row["AccountUid"], row["Cloud"]) == ("aws.guardduty", "111122223333", "AWS")
    assert (row["Severity"], row["SeverityId"], row["Status"]) == ("Critical", 5, "New")
    assert (row["ChangeKind"], row["IdempotencyKey"]) == ("closed", "v" * 64)
    assert (row["ContainerService"], row["Cluster"], row["Namespace"]) == ("EKS", "prod-eks", "payments")
    assert row["Image"] == "registry.example/payments/api:1.4.2"
    assert row["Finding"] == delivery.finding


def test_upload_is_one_request_with_a_bearer_token(
    server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles
) -> None:
    """Three deliveries are one gzip'd upload to the DCR stream, authorised with the Entra token."""
    credential = StaticToken()
    deliveries = numbered(SINK, 3)
    results = _sink(server, tls, credential).send(deliveries)
    assert [r.ok for r in results] == [True] * 3
    assert len(server.requests) == 1
    assert server.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert server.requests[0].header("Content-Encoding") == "gzip"
    assert credential.scopes[0] == ("https://monitor.azure.com/.default",)
    assert [row["IdempotencyKey"] for row in ingestion.rows] == [d.version for d in deliveries]
    assert ingestion.rows == [json.loads(json.dumps(sentinel.render(d))) for d in deliveries]


def test_uploads_are_split_under_one_megabyte(server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles) -> None:
    """Rows adding up to more than 1 MB go in several uploads, each under the API's limit, in order."""
    deliveries = numbered(SINK, 14, title="T" * 70_000, desc="D" * 70_000)
    results = _sink(server, tls).send(deliveries)
    assert all(r.ok for r in results)
    assert len(server.requests) >= 2
    assert all(size <= sentinel.REQUEST_LIMIT_BYTES for size in ingestion.uncompressed_sizes)
    assert sum(ingestion.uncompressed_sizes) > 1_048_576
    assert [row["IdempotencyKey"] for row in ingestion.rows] == [d.version for d in deliveries]


def test_a_failed_upload_fails_only_its_own_rows(
    server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles
) -> None:
    """When the first of two uploads gets 503, its rows are retryable and the second upload's rows delivered."""
    deliveries = numbered(SINK, 14, title="T" * 70_000)
    server.push(Reply.json(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    results = _sink(server, tls).send(deliveries)
    failed = [r for r in results if not r.ok]
    assert failed
    assert len(failed) < len(results)
    assert results[0] in failed
    assert all(not r.permanent and r.attempted for r in failed)
    assert {row["IdempotencyKey"] for row in ingestion.rows} == {r.version for r in results if r.ok}


def test_after_a_retry_after_the_rest_waits_unsent(
    server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles
) -> None:
    """A 503 asking to wait 12 s: the first upload's rows retry then, the later uploads are held back unsent."""
    deliveries = numbered(SINK, 14, title="T" * 70_000)
    server.push(Reply.json(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}, {"Retry-After": "12"}))
    results = _sink(server, tls).send(deliveries)
    assert not any(r.ok for r in results) and ingestion.rows == []
    assert all(not r.permanent and r.retry_after == 12.0 for r in results)
    assert results[0].attempted and not results[-1].attempted


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after", "text"),
    [
        (Reply.json(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "42"}), False, 42.0, "HTTP 429"),
        (Reply.json(500, {"error": {"code": "InternalServerError"}}), False, None, "HTTP 500"),
        (Reply.json(503, {"error": {"code": "ServiceUnavailable"}}), False, None, "HTTP 503"),
        (Reply.json(400, {"error": {"code": "InvalidStream", "message": "x"}}), True, None, "InvalidStream"),
        # A role assigned by the same deployment takes minutes to apply: 403 is retried, not dropped.
        (Reply.json(403, {"error": {"code": "OperationFailed", "message": "no role"}}), False, None, "HTTP 403"),
        (Reply.json(413, {"error": {"code": "ContentLengthLimitExceeded"}}), True, None, "HTTP 413"),
    ],
    ids=lambda v: str(v.status) if isinstance(v, Reply) else None,
)
def test_answers_are_classified(
    server: FakeHTTPServer, tls: TlsFiles, reply: Reply, permanent: bool, retry_after: float | None, text: str
) -> None:
    """429, 5xx and 403 are retryable with Retry-After; other 4xx are permanent, naming the service's code."""
    server.push(reply)
    results = _sink(server, tls).send(numbered(SINK, 2))
    assert all(not r.ok for r in results)
    assert all(r.permanent is permanent and r.retry_after == retry_after for r in results)
    assert text in (results[0].error or "")
    assert len(server.requests) == 1, "azure-core must not retry on its own"


def test_hung_connection_is_retryable_and_bounded(server: FakeHTTPServer, tls: TlsFiles) -> None:
    """An endpoint that never answers costs one read timeout; the rows stay retryable."""
    server.push(Reply(hang=True))
    started = time.monotonic()
    results = _sink(server, tls, timeout=0.3).send(numbered(SINK, 2))
    assert time.monotonic() - started < 5
    assert all(not r.ok and not r.permanent for r in results)
    assert "no answer" in (results[0].error or "")


def test_refused_connection_is_retryable(tls: TlsFiles) -> None:
    """Nothing listening is a retryable connection failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = sentinel.from_config(SINK, _settings(f"https://127.0.0.1:{port}", tls), {}, credential=StaticToken())
    result = sink.send(numbered(SINK, 1))[0]
    assert not result.ok
    assert not result.permanent


def test_token_failure_is_retryable(server: FakeHTTPServer, tls: TlsFiles) -> None:
    """When no token can be had, nothing is sent and the rows stay retryable."""
    credential = StaticToken(error=ClientAuthenticationError(f"no managed identity {CANARY}"))
    result = _sink(server, tls, credential).send(numbered(SINK, 1))[0]
    assert not result.ok
    assert not result.permanent
    assert "Entra ID token" in (result.error or "")
    assert CANARY not in (result.error or "")
    assert server.requests == []


def test_unrenderable_finding_fails_alone(server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles) -> None:
    """A finding without its identity fails for good; the others are uploaded."""
    broken = make_delivery(SINK, version="c" * 64)
    del broken.finding["cloud"]
    results = _sink(server, tls).send([broken, *numbered(SINK, 1)])
    assert [r.ok for r in results] == [False, True]
    assert results[0].permanent
    assert len(ingestion.rows) == 1


def _field_sizes_ok(row: dict[str, Any]) -> bool:
    texts = [v for k, v in row.items() if isinstance(v, str)]
    return all(len(t.encode()) <= 65_536 for t in texts) and len(json.dumps(row["Finding"]).encode()) <= 65_536


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_keeps_rows_valid_and_within_limits(
    server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles, text: str
) -> None:
    """Hostile text arrives as valid rows, every field within 64 KB, cut ones marked."""
    deliveries = numbered(SINK, 2, title=text, cluster=text, namespace=text, image=text, desc=text)
    results = _sink(server, tls).send(deliveries)
    assert all(r.ok for r in results)
    assert len(ingestion.rows) == 2
    for row in ingestion.rows:
        assert _field_sizes_ok(row)
        if len(text.encode()) <= sentinel.FIELD_LIMIT_BYTES:
            assert row["Title"] == text
        else:
            assert row["Title"].endswith(MARKER)
            assert text.startswith(row["Title"][: -len(MARKER)])
    assert all(text not in value for r in server.requests for value in r.headers.values())


@pytest.mark.parametrize("unit", ["\x01", "\U0001f642", '"', "é"], ids=["control", "emoji", "quote", "accent"])
def test_text_that_grows_in_json_still_fits_one_request(
    server: FakeHTTPServer, ingestion: LogsIngestion, tls: TlsFiles, unit: str
) -> None:
    """Every text column filled with characters JSON writes 2 to 12 bytes long: the row is still sent, within 1 MB."""
    text = unit * 70_000
    finding = make_delivery(SINK, title=text, cluster=text, namespace=text, image=text, uid=text).finding
    finding["cloud"]["account"]["uid"] = finding["cloud"]["provider"] = text
    finding["severity"] = finding["status"] = finding["metadata"]["product"]["uid"] = text
    results = _sink(server, tls).send([make_delivery(SINK, finding=finding)])
    assert [r.ok for r in results] == [True]
    [row] = ingestion.rows
    assert _field_sizes_ok(row)
    assert len(json.dumps(row).encode()) + 2 <= sentinel.REQUEST_LIMIT_BYTES
    for name in ("Title", "Cluster", "Namespace", "Image", "FindingUid", "AccountUid", "Severity", "ProductUid"):
        assert row[name].endswith(MARKER)
        assert len(json.dumps(row[name]).encode()) <= sentinel.FIELD_LIMIT_BYTES
        assert text.startswith(row[name][: -len(MARKER)])


def test_fit_keeps_small_documents_and_shrinks_large_ones() -> None:
    """fit() returns a small document as is, cuts long strings of a large one, and always fits."""
    small = {"a": "b", "n": [1, 2]}
    assert sentinel.fit(small, 1000) is small
    large = {"title": "x" * 100_000, "keep": 7, "nested": [{"s": "y" * 50_000}]}
    fitted = sentinel.fit(large, 64_000)
    assert isinstance(fitted, dict)
    assert fitted["keep"] == 7
    assert fitted["title"].endswith(MARKER)
    assert len(json.dumps(fitted).encode()) <= 64_000
    wide = {"values": list(range(50_000))}
    cut = sentinel.fit(wide, 10_000)
    assert isinstance(cut, str)
    assert cut.endswith(MARKER)
    assert len(json.dumps(cut).encode()) <= 10_000
    emoji = ["🙂" * 10] * 5_000
    assert len(json.dumps(sentinel.fit(emoji, 5_000)).encode()) <= 5_000


FAILURE_REPLIES = [
    Reply.json(400, {"error": {"code": "InvalidContent", "message": TOKEN}}),
    Reply.json(401, {"error": {"code": "InvalidToken", "message": f"token {TOKEN} expired"}}),
    Reply.json(429, {"error": {"code": "TooMany"}}, {"Retry-After": "1"}),
    Reply.json(500, {"error": {"code": TOKEN, "message": TOKEN}}),
    Reply(hang=True),
]


@pytest.mark.parametrize("reply", FAILURE_REPLIES, ids=lambda r: "hang" if r.hang else str(r.status))
def test_token_never_leaks(
    server: FakeHTTPServer, tls: TlsFiles, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    """In every failure mode the bearer token is in no Result.error, no log record and no row."""
    caplog.set_level(logging.DEBUG)
    server.push(reply)
    results = _sink(server, tls, timeout=0.3).send(numbered(SINK, 2))
    assert not any(r.ok for r in results)
    assert_no_canary(CANARY, results, caplog, server.requests)


def test_token_never_leaks_on_success(server: FakeHTTPServer, tls: TlsFiles, caplog: pytest.LogCaptureFixture) -> None:
    """The token travels only in the Authorization header, which azure-core's logging redacts."""
    caplog.set_level(logging.DEBUG)
    results = _sink(server, tls).send(numbered(SINK, 2))
    assert all(r.ok for r in results)
    assert_no_canary(CANARY, results, caplog, server.requests)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"endpoint": "http://127.0.0.1:8080"}, "endpoint"),
        ({"endpoint": "https://"}, "endpoint"),
        ({"endpoint": None}, "endpoint"),
        ({"rule_id": "dcr-XYZ"}, "rule_id"),
        ({"rule_id": "dcr-00112233445566778899aabbccddeeff/../x"}, "rule_id"),
        ({"rule_id": None}, "rule_id"),
        ({"stream": "CorralFindings_CL"}, "stream"),
        ({"stream": "Custom-a/b"}, "stream"),
        ({"managed_identity_client_id": "me"}, "managed_identity_client_id"),
        ({"timeout": -1}, "timeout"),
        ({"ca_file": "/nonexistent.pem"}, "ca_file"),
    ],
)
def test_invalid_settings_name_the_key(tls: TlsFiles, settings: dict[str, Any], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>."""
    base = _settings("https://corral-dce.westeurope-1.ingest.monitor.azure.com", tls)
    merged = {k: v for k, v in {**base, **settings}.items() if v is not None}
    with pytest.raises(ConfigError, match=rf"^sinks\.{SINK}\.{key}: "):
        sentinel.from_config(SINK, merged, {}, credential=StaticToken())


def test_default_credential_is_built_without_network(tls: TlsFiles) -> None:
    """Without an injected credential the sink builds DefaultAzureCredential (no I/O until a send)."""
    settings = _settings(
        "https://corral-dce.westeurope-1.ingest.monitor.azure.com",
        tls,
        managed_identity_client_id="0b7d4e1c-5a0f-4c3e-9f00-8d6b2a1c0e11",
    )
    sink = sentinel.from_config(SINK, settings, {})
    assert sink.id == SINK
    assert sink.family == family("sentinel") == sentinel.FAMILY
    sink.close()


def test_importing_the_sink_loads_no_azure_module() -> None:
    """Only building a Sentinel sink loads azure-*; importing the module does not."""
    import subprocess
    import sys

    code = "import sys, corral.sinks.sentinel; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_table_columns_cover_the_brief() -> None:
    """The column list is the table's: names unique, TimeGenerated first, Finding dynamic."""
    names = [name for name, _ in sentinel.COLUMNS]
    assert len(names) == len(set(names)) == 16
    assert sentinel.COLUMNS[0] == ("TimeGenerated", "datetime")
    assert dict(sentinel.COLUMNS)["Finding"] == "dynamic"
    assert dict(sentinel.COLUMNS)["SeverityId"] == "int"
    assert sentinel.stream_declaration()[sentinel.STREAM]["columns"][0] == {"name": "TimeGenerated", "type": "datetime"}
