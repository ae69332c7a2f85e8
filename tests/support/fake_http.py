"""A scripted HTTP(S) server on 127.0.0.1 that stands in for a SaaS endpoint (Slack, Teams, HEC, ...).

The server records every request and answers it with the next `Reply` pushed onto its script, or,
once the script is empty, with `default`: a `Reply`, or a behaviour (a callable taking the
`Recorded` request and returning a `Reply`, such as the SIEM counterparts in `fake_siem`). Without
a default it answers 500 "script exhausted". A reply can also hang (`HANG`: the server reads the
request and then says nothing until the server stops, which is how a client timeout is tested
against a real socket), drop the connection (`DROP`), or trickle (`drip`: one byte at a time, each
within any read timeout, so that only a deadline on the whole request ends the wait). Every other
answer goes out in one write with Nagle's algorithm off, so that a thousand requests take seconds
rather than delayed-ACK waits.
`make_tls` generates a self-signed certificate for 127.0.0.1/localhost; pass it as `tls` to serve
https (clients that insist on TLS, such as azure-core with bearer tokens, get a real endpoint).
`refused_url()` gives an address where connections are refused.

Example:
    >>> with FakeHTTPServer() as server:
    ...     server.push(Reply(202), Reply.json(429, {"error": "slow down"}, headers={"Retry-After": "7"}))
    ...     # point the client at server.url + "/hook", send twice ...
    ...     # server.requests[0].json(), server.requests[1].header("Content-Type")
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HANG_LIMIT = 30.0
"""Longest a hanging reply holds its connection open (the server's close releases it sooner)."""


@dataclass(frozen=True)
class Reply:
    """One answer: status, body and headers; or `hang=True` (never answer) or `drop=True`
    (close the connection at once, without a status line).

    With `drip` (seconds), the body goes out one byte every `drip` seconds after the status line
    and headers, or, with `drip_head`, the whole answer does from its first byte; the server's
    close, or the client's, stops the trickle.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False
    drip: float = 0.0
    drip_head: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON answer (Content-Type application/json)."""
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
        """A text/plain answer."""
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


HANG = Reply(hang=True)
"""Read the request, never answer."""

DROP = Reply(drop=True)
"""Read the request, then close the connection without answering (a reset, to the client)."""


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it; header names are lower-cased.

    `target` is the request target as sent; `path` and `query` are its two parts.
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The target's path, without the query string."""
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        """The target's query string, parsed."""
        return parse_qs(urlsplit(self.target).query)

    def header(self, name: str) -> str | None:
        """Return a header by case-insensitive name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


Behaviour = Callable[[Recorded], Reply]
Script = Reply | Behaviour


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate (also its own CA) and its key, as PEM files."""

    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """Generate a self-signed certificate valid for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corral test endpoint")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "endpoint.pem", directory / "endpoint.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
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
        # Status line, headers and body in one write.
        head = [f"{self.protocol_version} {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        head += [f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        head += [f"Content-Length: {len(reply.body)}", "", ""]
        answer = "\r\n".join(head).encode("latin-1") + reply.body
        try:
            if not reply.drip:
                self.wfile.write(answer)
                return
            start = 0 if reply.drip_head else len(answer) - len(reply.body)
            self.wfile.write(answer[:start])
            for i in range(start, len(answer)):
                if self.server.owner.released.wait(reply.drip):
                    self.close_connection = True
                    return
                self.wfile.write(answer[i : i + 1])
        except OSError:
            # The client gave up (a timeout); nothing to answer to.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeHTTPServer


class FakeHTTPServer:
    """A threaded HTTP(S) server on 127.0.0.1 with a scripted queue of replies; a context manager."""

    def __init__(self, default: Script | None = None, *, tls: TlsFiles | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            # The handshake happens in the handler thread, so a stuck client cannot block accept().
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._script: deque[Script] = deque()
        self.default: Script = default or Reply.text(500, "script exhausted")
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.released = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:54321" (no trailing slash)."""
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def push(self, *replies: Script) -> None:
        """Queue replies, answered in order, one per request, before the default takes over again."""
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, recorded: Recorded) -> Reply:
        """Record `recorded` and return the reply to give it (called by the handler)."""
        with self._lock:
            self.requests.append(recorded)
            step = self._script.popleft() if self._script else self.default
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

    def __exit__(self, *_exc: object) -> None:
        self.close()


def refused_url(path: str = "/") -> str:
    """Return an http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
