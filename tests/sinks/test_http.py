"""The shared HTTP transport: connection errors, timeouts and the log redaction of secret URLs."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from corral.sinks.http import MAX_RETRY_AFTER_S, REDACTED, Client, classify, redact_url_in_logs, retry_after_seconds
from tests.support.fake_http import HANG, FakeHTTPServer, Reply, TlsFiles, refused_url


def test_refused_connection_is_a_connection_failure_not_a_timeout() -> None:
    """urllib3 2.x derives NewConnectionError from its timeout error; a refusal must still say so."""
    started = time.monotonic()
    answer = Client(timeout=2).post(refused_url("/hook"), b"{}", {}, what="webhook:x")
    assert not answer.ok
    assert not answer.permanent
    assert answer.error == "webhook:x: connection failed (NewConnectionError)"
    assert time.monotonic() - started < 2


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection attempt waits for ever."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_short_timeout_bounds_the_connect_too(unanswered_port: int) -> None:
    """A sink's timeout below the 5 s connect limit also bounds the wait for a connection."""
    started = time.monotonic()
    answer = Client(timeout=0.3).post(f"http://127.0.0.1:{unanswered_port}/hook", b"{}", {}, what="webhook:x")
    elapsed = time.monotonic() - started
    assert not answer.ok
    assert answer.error == "webhook:x: timed out"
    assert elapsed < 2.5, elapsed


def test_short_timeout_bounds_the_read() -> None:
    """A server that never answers is given up on after the sink's timeout."""
    with FakeHTTPServer() as server:
        server.push(HANG)
        started = time.monotonic()
        answer = Client(timeout=0.3).post(server.url + "/hook", b"{}", {}, what="webhook:x")
        elapsed = time.monotonic() - started
    assert answer.error == "webhook:x: timed out"
    assert elapsed < 2.5, elapsed


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("drip_head", [False, True], ids=["trickled-body", "trickled-head"])
def test_timeout_bounds_the_whole_request_not_each_read(scheme: str, drip_head: bool, tls: TlsFiles) -> None:
    """A receiver that trickles its answer, each byte well within the read timeout, is cut off at
    the sink's timeout: the call returns soon after it, as a retryable timeout (whether the receiver
    kept the request is unknown; the ledger sends it again)."""
    with FakeHTTPServer(tls=tls if scheme == "https" else None) as server:
        # 40 body bytes, or the whole answer, one every 0.5 s: 20 s and more if nothing cuts it off.
        server.push(Reply(200, b"x" * 40, drip=0.5, drip_head=drip_head))
        client = Client(ca_certs=str(tls.cert), timeout=1)
        started = time.monotonic()
        answer = client.post(server.url + "/hook", b"{}", {}, what="webhook:x")
        elapsed = time.monotonic() - started
    assert answer.error == "webhook:x: timed out"
    assert not answer.ok
    assert not answer.permanent
    # 1 s deadline; the bound leaves room for a loaded 2-core machine, and is far below the 20 s trickle.
    assert elapsed < 8, elapsed


def test_secret_url_parts_are_redacted_from_transport_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The path and query of a capability URL, and a long `sig` value, never reach urllib3's records."""
    caplog.set_level(logging.DEBUG)
    with FakeHTTPServer() as server:
        server.push(Reply(202), Reply(202))
        path_url = server.url + "/hooks/path-secret-0001"
        sig_url = server.url + "/invoke?api-version=1&sig=query-secret-0002"
        redact_url_in_logs(path_url)
        redact_url_in_logs(sig_url)
        client = Client(timeout=2)
        assert client.post(path_url, b"{}", {}, what="webhook:x").ok
        assert client.post(sig_url, b"{}", {}, what="webhook:x").ok
        client.close()
    transport = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert transport, "urllib3 logged no request line: the test would prove nothing"
    assert any(REDACTED in message for message in transport)
    for message in transport:
        assert "path-secret-0001" not in message
        assert "query-secret-0002" not in message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("99999999999999999", float(MAX_RETRY_AFTER_S)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", float(MAX_RETRY_AFTER_S)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("inf", None),
        ("1e400", None),
        ("nan", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_a_bounded_wait(header: str, expected: float | None) -> None:
    """Seconds or an HTTP date, never below 0 nor above a day; infinity and nonsense are no hint at all."""
    assert retry_after_seconds(header) == expected


def test_retry_after_dates_are_gmt_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The obsolete asctime form carries no zone: HTTP dates are GMT, not the host's local time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        soon = time.gmtime(time.time() + 120)
        wait = retry_after_seconds(time.strftime("%a %b %d %H:%M:%S %Y", soon))
        assert wait is not None and 100 <= wait <= 121
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("status", [408, 425, 429, 500, 503])
def test_not_now_answers_are_retryable(status: int) -> None:
    """A timed-out, too-early or throttled request may be repeated; so may a server error."""
    answer = classify(status, b"", None, "x")
    assert not answer.ok and not answer.permanent


# 409 is here: without an Idempotency-Key (Slack, Teams, HEC, the Elastic request) a conflict with
# the resource's state is refused again; with one, it means "still processing" (the test below).
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413])
def test_other_client_errors_are_permanent(status: int) -> None:
    """The rest of 4xx will be refused again."""
    assert classify(status, b"", None, "x").permanent


def test_conflict_on_an_idempotency_key_is_retryable_after_the_wait_asked() -> None:
    """Under the Idempotency-Key draft a 409 says a request with the same key is still being
    processed: the retry waits (Retry-After) instead of giving up; 422 (the key reused with another
    body) and the rest of 4xx stay permanent."""
    busy = classify(409, b"", "7", "webhook:x", idempotency_key=True)
    assert not busy.ok
    assert not busy.permanent
    assert busy.retry_after == 7.0
    assert busy.error == "webhook:x: HTTP 409"
    assert classify(422, b"", None, "webhook:x", idempotency_key=True).permanent
    assert classify(400, b"", None, "webhook:x", idempotency_key=True).permanent


@pytest.mark.parametrize("status", [200, 500])
def test_an_answer_longer_than_the_cap_is_not_read_into_memory(status: int) -> None:
    """A receiver answering without end is cut off at the cap: a retryable error, the request sent again later."""
    with FakeHTTPServer() as server:
        server.push(Reply(status, b"x" * 4096))
        server.push(Reply(200, b"ok"))
        client = Client(timeout=5, max_answer=1024)
        answer = client.post(server.url + "/hook", b"{}", {}, what="webhook:x")
        assert not answer.ok
        assert not answer.permanent
        assert answer.error == f"webhook:x: answer over 1,024 bytes (HTTP {status})"
        assert answer.body == b""
        # The connection cut short is not reused: the next request is answered in full.
        after = client.post(server.url + "/hook", b"{}", {}, what="webhook:x")
    assert after.ok
    assert after.body == b"ok"


def test_an_answer_at_the_cap_is_read_whole() -> None:
    with FakeHTTPServer() as server:
        server.push(Reply(200, b"y" * 1024))
        answer = Client(timeout=5, max_answer=1024).post(server.url + "/hook", b"{}", {}, what="webhook:x")
    assert answer.ok
    assert answer.body == b"y" * 1024
