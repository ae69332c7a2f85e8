"""A scripted HTTP server on 127.0.0.1 that stands in for a SaaS endpoint (Slack, Teams, HEC, ...).

The server answers each request with the next `Reply` of its script (or with `default` once
the script is empty; by default a 500 "script exhausted") and records every request. A reply
can also hang (`HANG`: the server reads the request and then says nothing until the test ends,
which is how a client timeout is tested against a real socket) or drop the connection (`DROP`).
`refused_url()` gives an address where connections are refused.

Example:
    >>> with FakeHTTPServer() as server:
    ...     server.script(Reply(202), Reply.json(429, {"error": "slow down"}, headers={"Retry-After": "7"}))
    ...     # point the client at server.url + "/hook", send twice ...
    ...     # server.requests[0].json(), server.requests[1].headers["content-type"]

`Reply` may also be a callable taking the `Recorded` request and returning a `Reply`, for
answers that depend on what was sent. Pass `ssl_context` (a server-side `ssl.SSLContext`) to
serve https.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HANG_LIMIT = 30.0
"""Longest a hanging reply holds its connection open (the server's close releases it sooner)."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, headers and body; or `hang=True` (never answer) or `drop=True`
    (close the connection at once, without a status line)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False
    drop: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON answer (Content-Type application/json)."""
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode())

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
        """A text/plain answer."""
        return cls(status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, text.encode())


HANG = Reply(hang=True)
"""Read the request, never answer."""

DROP = Reply(drop=True)
"""Read the request, then close the connection without answering (a reset, to the client)."""

Script = Reply | Callable[["Recorded"], Reply]


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self._read_body())
        reply = self.server.owner.next_reply(recorded)
        if reply.hang:
            # Hold the connection without a byte of answer, then drop it.
            self.server.owner.released.wait(HANG_LIMIT)
        if reply.hang or reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeHTTPServer


class FakeHTTPServer:
    """A threaded HTTP server on 127.0.0.1 with a scripted queue of replies; a context manager."""

    def __init__(self, *, default: Script | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if ssl_context is not None else "http"
        self._script: deque[Script] = deque()
        self._default: Script = default or Reply.text(500, "script exhausted")
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.released = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:54321" (no trailing slash)."""
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def script(self, *replies: Script) -> None:
        """Queue replies, answered in order, one per request."""
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, recorded: Recorded) -> Reply:
        """Record `recorded` and return the reply to give it (called by the handler)."""
        with self._lock:
            self.requests.append(recorded)
            step = self._script.popleft() if self._script else self._default
        return step(recorded) if callable(step) else step

    def start(self) -> FakeHTTPServer:
        """Start serving (the context manager does this)."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Release hanging replies and stop the server."""
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def refused_url(path: str = "/") -> str:
    """Return an http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
