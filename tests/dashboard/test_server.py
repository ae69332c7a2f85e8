"""The dashboard server under hostile and concurrent requests: host names, bad parameters, no global lock."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from corral.dashboard import server
from corral.stores import open_store
from corral.stores.base import FindingQuery, Page, Store
from tests.dashboard.conftest import Running


def request(port: int, path: str, host: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
    """GET `path` with an explicit Host header (None: the one http.client would send)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if host is None:
            conn.request("GET", path)
        else:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_foreign_host_is_refused(run_dashboard: Callable[..., Running]) -> None:
    """A rebinding page's own name gets 421 with no data; the bound address's names and a public host are answered."""
    running = run_dashboard(hosts=server.own_host_names("127.0.0.1", "corral.example.org"))
    for foreign in ("rebind.attacker.example", f"rebind.attacker.example:{running.port}", "127.0.0.2", "", "[::1"):
        status, body = request(running.port, "/api/counts", foreign)
        assert status == 421, foreign
        assert b"count" not in body and orjson.loads(body)["error"]
    for own in (f"127.0.0.1:{running.port}", f"localhost:{running.port}", "LOCALHOST", "corral.example.org",
                f"[::1]:{running.port}"):  # fmt: skip
        assert request(running.port, "/api/counts", own)[0] == 200, own
    assert request(running.port, "/", "rebind.attacker.example")[0] == 421


def test_wildcard_bind_answers_its_own_names() -> None:
    """A server on 0.0.0.0 answers loopback and the machine's names, nothing else."""
    names = server.own_host_names("0.0.0.0")
    assert {"localhost", "127.0.0.1"} <= names
    assert "attacker.example" not in names
    assert server.host_name("Example.ORG:8080") == "example.org"
    assert server.host_name("example.org:http") is None
    assert server.host_name("[::1]:8321") == "::1"


BAD = [
    "/api/findings?limit=-1",
    "/api/findings?limit=0",
    "/api/findings?limit=501",
    "/api/findings?limit=abc",
    "/api/findings?limit=99999999999999999999999999",
    "/api/findings?since=99999999999999999999999",
    "/api/findings?since=-5",
    "/api/findings?until=1e30",
    "/api/findings?status_id=100000000000000000000",
    "/api/findings?class_uid=-1",
    "/api/findings?severity_at_least=9999999999999999999999",
    "/api/findings?severity_at_least=catastrophic",
    "/api/findings?cloud=amazon",
    "/api/findings?trait=noseparator",
    "/api/findings?cursor=not-a-cursor",
    "/api/findings?cursor=%ZZ",
    "/api/findings?cursor=WzEsMiwzXQ==",  # [1,2,3]: valid base64 JSON, wrong shape
    "/api/findings?cursor=Wzk5OTk5OTk5OTk5OTk5OTk5OTk5LCJhIiwiYiIsImMiXQ==",  # a last_seen past 64 bits
    "/api/findings?cursor=WzE4NDQ2NzQ0MDczNzA5NTUxNjE1LCJhIiwiYiIsImMiXQ==",  # 2**64-1
    "/api/coverage?window_hours=0",
    "/api/coverage?window_hours=-3",
    "/api/coverage?window_hours=999999999999999999999",
    "/?window_hours=x",
    "/api/findings?account=" + "a" * 5000,
    "/findings/not-hex",
    "/findings/abc",
    "/findings/" + "a" * 40,
    "/?status=closedish",
    "/?page=0",
    "/?page=41",
    "/?since=forever",
    "/?drill=Kubernetes",
]


@pytest.mark.parametrize("path", BAD)
def test_bad_parameters_get_400_json(run_dashboard: Callable[..., Running], path: str, capfd: Any) -> None:
    """Malformed or out-of-range parameters get 400 with a JSON error; the server goes on answering."""
    running = run_dashboard()
    status, body = request(running.port, path)
    assert status == 400, (path, body)
    error = orjson.loads(body)["error"]
    assert isinstance(error, str) and error
    assert "Traceback" not in capfd.readouterr().err
    assert request(running.port, "/api/counts")[0] == 200


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/api/findings?severity=high", "/api/findings: unknown parameter 'severity'; it takes account, class_uid,"),
        ("/api/findings?cloud=GCP&text=x", "/api/findings: unknown parameter 'text'; it takes account, class_uid,"),
        ("/api/coverage?window=24", "/api/coverage: unknown parameter 'window'; it takes window_hours"),
        ("/api/counts?cloud=GCP", "/api/counts: unknown parameter 'cloud'; it takes none"),
        ("/api/sources?x=1", "/api/sources: unknown parameter 'x'; it takes none"),
    ],
)
def test_a_misspelt_api_filter_is_refused_not_ignored(
    run_dashboard: Callable[..., Running], path: str, error: str
) -> None:
    """A filter the API does not read is a 400 naming the ones it does, not every finding unfiltered."""
    running = run_dashboard()
    status, body = request(running.port, path)
    assert status == 400, (path, body)
    assert orjson.loads(body)["error"].startswith(error)
    assert request(running.port, "/api/findings?q=x&limit=5")[0] == 200


class SlowQueries:
    """A store connection whose finding queries take `delay` seconds (the page's reads)."""

    def __init__(self, store: Store, delay: float) -> None:
        self._store = store
        self._delay = delay

    def query(self, query: FindingQuery) -> Page:
        time.sleep(self._delay)
        return self._store.query(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_slow_pages_do_not_delay_an_api_call(run_dashboard: Callable[..., Running], store_path: Any) -> None:
    """While two page loads wait on slow reads, /api/counts answers at once on its own connection."""
    opened: list[Store] = []

    def opener() -> Store:
        store = SlowQueries(open_store(f"sqlite:///{store_path}"), delay=2.0)
        opened.append(store)
        return store

    running = run_dashboard(opener)
    pages: list[float] = []

    def load_page() -> None:
        started = time.monotonic()
        assert request(running.port, "/")[0] == 200
        pages.append(time.monotonic() - started)

    threads = [threading.Thread(target=load_page) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    status, _ = request(running.port, "/api/counts")
    api_seconds = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=60)
    assert status == 200
    assert api_seconds < 1.0, f"/api/counts took {api_seconds:.2f} s behind two page loads"
    assert len(pages) == 2 and min(pages) >= 2.0
    assert len(opened) >= 3


class CountedCalls:
    """A store connection that counts the calls made to it, by method name."""

    def __init__(self, store: Store, calls: Counter[str]) -> None:
        self._store = store
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            return found(*args, **kwargs)

        return counted


@pytest.mark.parametrize("path", ["/", "/?severity=high", "/?cloud=GCP&page=2"])
def test_a_page_reads_the_grouped_counts_once(
    run_dashboard: Callable[..., Running], store_path: Any, path: str
) -> None:
    """The overview's counts and the list's choice of severity bands come from one grouped count."""
    calls: Counter[str] = Counter()
    running = run_dashboard(lambda: CountedCalls(open_store(f"sqlite:///{store_path}"), calls))
    status, body = request(running.port, path)
    assert status == 200 and b'id="findings"' in body
    assert calls["counts"] == 1
    assert calls["count"] >= 1  # the list still counts its matches


def test_internal_error_is_json_500(run_dashboard: Callable[..., Running], capfd: Any) -> None:
    """A failure inside a read is one log line and a JSON 500, never a dropped connection or a traceback."""

    class Broken:
        url = "broken://"

        def counts(self) -> Any:
            raise RuntimeError("disk on fire")

        def close(self) -> None:
            pass

    running = run_dashboard(Broken)
    status, body = request(running.port, "/api/counts")
    assert status == 500 and orjson.loads(body) == {"error": "internal error"}
    err = capfd.readouterr().err
    assert "RuntimeError: disk on fire" in err and "Traceback" not in err


def test_finding_page_by_id_or_unique_prefix(run_dashboard: Callable[..., Running]) -> None:
    """A finding page answers to its id and to a unique prefix; an unknown id is 404."""
    from corral.stores.base import finding_id

    running = run_dashboard()
    fid = finding_id(("google.scc", "corral-demo", "hostile-1"))
    for path in (f"/findings/{fid}", f"/findings/{fid[:14]}", f"/findings/{fid.upper()}"):
        status, body = request(running.port, path)
        assert status == 200 and b"&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
    assert request(running.port, "/findings/0000000000000000000f")[0] == 404
    status, body = request(running.port, f"/api/findings/{fid}")
    by_id = orjson.loads(body)
    assert status == 200 and by_id["id"] == fid and by_id["history"]
    status, body = request(running.port, "/api/findings/google.scc/corral-demo/hostile-1")
    assert status == 200 and orjson.loads(body) == by_id
    assert request(running.port, "/api/findings/0000000000000000000f")[0] == 404
    assert request(running.port, "/api/findings/google.scc/corral-demo/absent")[0] == 404


def test_ipv6_loopback_bind(filled: Any) -> None:
    """--host ::1 listens on IPv6 and answers its own names only."""
    url = filled.store.url
    dashboard = server.Dashboard(
        server.StorePool(lambda: open_store(url)), {}, lambda: 0, hosts=server.own_host_names("::1")
    )
    httpd = server.make_server(dashboard, "::1", 0)
    port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        for host, status in ((f"[::1]:{port}", 200), (f"localhost:{port}", 200), ("rebind.attacker.example", 421)):
            conn = http.client.HTTPConnection("::1", port, timeout=30)
            conn.putrequest("GET", "/api/counts", skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
            assert conn.getresponse().status == status, host
            conn.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes as a request and return everything the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_cannot_write_control_characters_into_the_log(
    run_dashboard: Callable[..., Running], capfd: Any
) -> None:
    """Terminal escapes and newlines in a path reach the log escaped, on the request's one line."""
    running = run_dashboard()
    capfd.readouterr()
    answer = _raw(running.port, b"GET /\x1b]0;owned\x07\x1b[2K\x1b[31mFAKE HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 404")
    out = capfd.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "GET /\\x1b]0;owned\\x07\\x1b[2K\\x1b[31mFAKE 404" in out


@pytest.mark.parametrize("line", [b"GET / FOO/1.1", b"GET /a b c HTTP/1.1", b"\x00\x01"])
def test_a_malformed_request_line_gets_an_answer(
    run_dashboard: Callable[..., Running], line: bytes, capfd: Any
) -> None:
    """A request line the server cannot parse is answered 400 and logged as one line, without a traceback."""
    running = run_dashboard()
    answer = _raw(running.port, line + b"\r\n\r\n")
    assert b"400" in answer
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert " 400" in captured.out


def test_an_idle_connection_is_closed(run_dashboard: Callable[..., Running], monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that connects and sends nothing does not hold a request thread for ever."""
    monkeypatch.setattr(server, "IDLE_TIMEOUT_S", 0.5)
    running = run_dashboard()
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5


def test_connections_over_the_cap_are_answered_busy(
    run_dashboard: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle connections take at most MAX_CONNECTIONS threads; one more gets 503 at once, and slots come back."""
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    running = run_dashboard()
    idle = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.2)  # both accepted and holding a thread
        status, body = request(running.port, "/api/sources", timeout=5)
        assert (status, body) == (503, b"busy\n")
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while (status := request(running.port, "/api/sources", timeout=5)[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200


def test_control_and_bidirectional_text_is_shown_as_replacement_characters(
    filled: Any, run_dashboard: Callable[..., Running]
) -> None:
    """A title with a bidirectional override and ESC reads as written, its hidden characters marked U+FFFD."""
    from corral.pipeline import Inbound, now_ms
    from corral.stores.base import finding_id
    from tests.coverage.test_dashboard import hostile_finding

    finding = hostile_finding(now_ms())
    finding["finding_info"] = {**finding["finding_info"], "uid": "bidi-1", "title": "run invoice\u202etxt.exe\x1b[2J"}  # type: ignore[dict-item]
    assert filled.ingest([Inbound(finding, "bidi")]).counts["new"] == 1
    running = run_dashboard()
    fid = finding_id(("google.scc", "corral-demo", "bidi-1"))
    for path in (f"/findings/{fid}", "/?q=invoice"):
        status, body = request(running.port, path)
        page = body.decode()
        assert status == 200 and "run invoice\ufffdtxt.exe\ufffd[2J" in page, path
        assert "\u202e" not in page and "\x1b" not in page, path
