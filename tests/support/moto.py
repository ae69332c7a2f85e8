"""A real `moto_server` on loopback for tests and benchmarks: AWS APIs over HTTP, no account.

The server is the `moto_server` command of the running interpreter's environment, started as a
subprocess on a free 127.0.0.1 port. Tests talk to it over HTTP with an explicit endpoint URL, so
nothing global points boto3 at it; botocore still insists on credentials, so the fixture provides
fake ones in the environment for the session (restored afterwards) and spawned processes inherit
them. Without `moto_server` the fixture fails when `CI` is set and skips otherwise.

moto evaluates a DynamoDB condition and applies the write without a lock, and its threaded server
interleaves requests: under CPU load two `PutItem`s conditioned on the same old value both
succeed, which real DynamoDB never allows. So the URL handed out is a small loopback proxy that
forwards every request to moto and runs DynamoDB requests one at a time, restoring the atomicity
each DynamoDB write has (other services, e.g. SQS long polls, pass through concurrently). Even
so, moto's `TransactWriteItems` stays unfit for concurrency tests: it deep-copies whole tables.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock, Thread, local

import pytest

STARTUP_TIMEOUT = 30.0
FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# A real profile or session token in the developer's shell must not mix with the fake keys.
HIDDEN_VARIABLES = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")


class MotoUnavailableError(Exception):
    """`moto_server` is not installed here, or it would not start."""


def moto_server_command() -> Path:
    """Return the `moto_server` script beside the running interpreter, or raise MotoUnavailableError."""
    script = Path(sys.executable).parent / "moto_server"
    if not script.exists():
        raise MotoUnavailableError(
            f"no moto_server beside {sys.executable}: install moto[server] in this environment"
            " (pip install 'moto[server]')"
        )
    return script


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def start_moto_server(*, atomic_dynamodb: bool = True) -> tuple[str, Callable[[], None]]:
    """Start `moto_server` on a free loopback port; return its URL and a function that stops it.

    With `atomic_dynamodb` (the default) the URL is the serializing proxy described above.

    Example:
        >>> url, stop = start_moto_server()
        >>> url.startswith("http://127.0.0.1:")
        True
        >>> stop()
    """
    command = moto_server_command()
    port = _free_port()
    # moto logs every request; a pipe nobody reads would fill up and block it. stop() closes the file.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [str(command), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    proxy: _Proxy | None = None

    def stop() -> None:
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace").strip()
            stop()
            raise MotoUnavailableError(f"moto_server on port {port} did not start: {tail or 'no output'}")
        time.sleep(0.05)
    if not atomic_dynamodb:
        return url, stop
    proxy = _Proxy(port)
    Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{proxy.server_address[1]}", stop


HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})


class _Proxy(ThreadingHTTPServer):
    """Forwards every request to moto; DynamoDB requests one at a time (see the module docstring)."""

    daemon_threads = True

    def __init__(self, moto_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.moto_port = moto_port
        self.dynamodb_lock = Lock()
        self.upstream = local()  # one kept-alive connection to moto per proxy thread

    def send(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send one request to moto and return its status, reason, headers and body."""
        for attempt in (1, 2):
            connection = getattr(self.upstream, "connection", None)
            if connection is None:
                connection = self.upstream.connection = http.client.HTTPConnection(
                    "127.0.0.1", self.moto_port, timeout=120
                )
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                return answer.status, answer.reason, answer.getheaders(), answer.read()
            except (http.client.HTTPException, OSError):
                # moto closed a kept-alive connection: retry once on a fresh one.
                connection.close()
                self.upstream.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        target = self.headers.get("X-Amz-Target", "")
        lock = self.server.dynamodb_lock if target.startswith("DynamoDB_") else contextlib.nullcontext()
        with lock:
            status, reason, answer_headers, payload = self.server.send(self.command, self.path, body, headers)
        self.send_response_only(status, reason)
        for name, value in answer_headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@contextlib.contextmanager
def fake_aws_credentials() -> Iterator[None]:
    """Set fake AWS credentials in the environment for the block, and restore what was there."""
    saved = {name: os.environ.get(name) for name in (*FAKE_CREDENTIALS, *HIDDEN_VARIABLES)}
    for name in HIDDEN_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(FAKE_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a `moto_server` shared by the session (fake credentials set meanwhile)."""
    try:
        url, stop = start_moto_server()
    except MotoUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (required in CI)")
        pytest.skip(str(exc))
    try:
        with fake_aws_credentials():
            yield url
    finally:
        stop()
