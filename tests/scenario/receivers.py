"""Loopback receivers that keep what they accepted and fail on purpose, from a seeded RNG.

Three receivers stand in for what Corral's sinks talk to: `HecReceiver` (Splunk HEC's event
endpoint), `WebhookReceiver` (a receiver that checks Corral's signature) and `SlackApi` (Slack's
`chat.postMessage`). Each turns an accepted request into `Copy` records, one per finding version
it carries. `Faulty` wraps a receiver and injects faults: a share of calls is answered 429
(Retry-After: 0) or 500 before the receiver sees them, and a share of accepted calls is answered
500 anyway ("fail after accept": the copies are kept, the client is told it failed). Those
copies are counted in `Faulty.after_accept`.
`Loopback` serves a behaviour on 127.0.0.1, answering each request in one write with Nagle's
algorithm off, so that a thousand deliveries take seconds rather than delayed-ACK waits.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from corral.sinks.webhook import verify
from tests.support.fake_siem import Reply, Request

TAG = re.compile(r"\[c(\d+)\]")
"""The content tag the scenario writes at the start of every finding title: `[c<content id>]`."""

CHAT_LABELS = {
    "New": "new",
    "Updated": "updated",
    "Escalated": "escalated",
    "De-escalated": "deescalated",
    "Reopened": "reopened",
    "Closed": "closed",
}


@dataclass(frozen=True)
class Copy:
    """One finding version as a receiver accepted it.

    `tag` is the content id from the title, `change` the change kind the payload states, `key` the
    idempotency key it carries (None for chat, whose messages carry none), `thread` the Slack
    thread a reply was posted in and `ts` the Slack message id the receiver handed out.
    """

    tag: int
    change: str
    key: str | None = None
    uid: str | None = None
    thread: str | None = None
    ts: str | None = None


def tag_of(text: str) -> int:
    """Return the content id written in a title; raise if there is none."""
    match = TAG.search(text)
    if match is None:
        raise ValueError(f"no content tag in {text[:120]!r}")
    return int(match.group(1))


class Receiver(Protocol):
    """A behaviour that keeps what it accepts as `copies`."""

    copies: list[Copy]

    def __call__(self, request: Request) -> Reply: ...


class HecReceiver:
    """Splunk HEC's `/services/collector/event`: token check, concatenated JSON events, 200 on success."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.copies: list[Copy] = []

    def __call__(self, request: Request) -> Reply:
        """Accept a batch of events with the right token; keep one Copy per event."""
        if request.path != "/services/collector/event":
            return Reply.json(404, {"text": "The requested URL was not found on this server.", "code": 404})
        if request.header("Authorization") != f"Splunk {self.token}":
            return Reply.json(403, {"text": "Invalid token", "code": 4})
        try:
            events = _concatenated(request.body.decode("utf-8"))
        except ValueError:
            return Reply.json(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
        if not events:
            return Reply.json(400, {"text": "No data", "code": 5})
        for event in events:
            body = event["event"]
            info = body["finding_info"]
            self.copies.append(
                Copy(
                    tag_of(info["title"]),
                    body["corral_change"],
                    key=body["corral_idempotency_key"],
                    uid=info["uid"],
                )
            )
        return Reply.json(200, {"text": "Success", "code": 0})


class WebhookReceiver:
    """A signed-webhook receiver: checks the signature and the Idempotency-Key header, answers 202."""

    def __init__(self, secret: str, path: str) -> None:
        self.secret = secret
        self.path = path
        self.copies: list[Copy] = []

    def __call__(self, request: Request) -> Reply:
        """Accept a correctly signed request whose header key matches its body; keep one Copy."""
        import time

        if request.path != self.path:
            return Reply(404)
        signed = verify(
            self.secret,
            request.header("X-Corral-Timestamp") or "",
            request.body,
            request.header("X-Corral-Signature") or "",
            now=time.time(),
        )
        if not signed:
            return Reply.json(401, {"error": "bad signature"})
        body = json.loads(request.body)
        key = request.header("Idempotency-Key")
        if key != body["idempotency_key"]:
            return Reply.json(400, {"error": "Idempotency-Key header differs from the body"})
        info = body["finding"]["finding_info"]
        self.copies.append(Copy(tag_of(info["title"]), body["change"], key=key, uid=info["uid"]))
        return Reply(202)


class SlackApi:
    """Slack's `chat.postMessage` (bot token): checks the token and channel, hands out a `ts` per message."""

    def __init__(self, token: str, channel: str) -> None:
        self.token = token
        self.channel = channel
        self.copies: list[Copy] = []
        self._serial = 0

    def __call__(self, request: Request) -> Reply:
        """Accept a message for the configured channel; keep one Copy with the change read from its text."""
        if not request.path.endswith("/chat.postMessage"):
            return Reply.json(404, {"ok": False, "error": "unknown_method"})
        if request.header("Authorization") != f"Bearer {self.token}":
            return Reply.json(200, {"ok": False, "error": "invalid_auth"})
        message = json.loads(request.body)
        if message.get("channel") != self.channel:
            return Reply.json(200, {"ok": False, "error": "channel_not_found"})
        self._serial += 1
        ts = f"1780000000.{self._serial:06d}"
        # The text is "<severity> · <change label>: <title>"; the label's first word names the change.
        label = message["text"].split(" · ", 1)[1].split(":", 1)[0]
        change = CHAT_LABELS[label.split(" ", 1)[0]]
        self.copies.append(Copy(tag_of(message["text"]), change, thread=message.get("thread_ts"), ts=ts))
        return Reply.json(200, {"ok": True, "channel": self.channel, "ts": ts})


@dataclass
class Faulty:
    """Wraps a receiver with seeded faults; see the module docstring."""

    inner: Receiver
    rng: random.Random
    refuse: float = 0.20
    fail_after_accept: float = 0.05
    calls: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    after_accept: list[Copy] = field(default_factory=list)
    enabled: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Reply:
        """Answer 429/500 for a share of calls; pass the rest on; turn a share of acceptances into 500."""
        with self._lock:
            self.calls += 1
            roll = self.rng.random() if self.enabled else 1.0
            if roll < self.refuse / 2:
                self.counts["429"] += 1
                return Reply.json(
                    429,
                    {"ok": False, "error": "ratelimited", "text": "Server is busy", "code": 9},
                    {"Retry-After": "0"},
                )
            if roll < self.refuse:
                self.counts["500"] += 1
                return _broken()
            before = len(self.inner.copies)
            reply = self.inner(request)
            accepted = 200 <= reply.status < 300 and _ok(reply)
            if accepted and self.enabled and self.rng.random() < self.fail_after_accept:
                self.counts["after_accept"] += 1
                self.after_accept.extend(self.inner.copies[before:])
                return _broken()
            self.counts["accepted" if accepted else "refused"] += 1
            return reply


def _broken() -> Reply:
    return Reply.json(500, {"ok": False, "error": "internal_error", "text": "Internal server error", "code": 8})


def _ok(reply: Reply) -> bool:
    # Slack answers refusals with HTTP 200 and `ok: false`.
    if not reply.body:
        return True
    try:
        doc: Any = json.loads(reply.body)
    except ValueError:
        return True
    return not (isinstance(doc, dict) and doc.get("ok") is False)


def _concatenated(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position == len(text):
            return found
        doc, position = decoder.raw_decode(text, position)
        if not isinstance(doc, dict) or "event" not in doc:
            raise ValueError("not an event")
        found.append(doc)


class Loopback:
    """A threaded HTTP server on 127.0.0.1 that answers every POST with `behaviour(request)`."""

    def __init__(self, behaviour: Callable[[Request], Reply]) -> None:
        self.behaviour = behaviour
        self.pushed: list[Reply] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def push(self, *replies: Reply) -> None:
        """Answer the next requests with `replies` (unrecorded) before the behaviour takes over again."""
        self.pushed.extend(replies)

    def answer(self, request: Request) -> Reply:
        """The reply to one request."""
        return self.pushed.pop(0) if self.pushed else self.behaviour(request)

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def _handler(server: Loopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server.answer(Request("POST", parts.path, parse_qs(parts.query), headers, body))
            head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
            head += [f"{name}: {value}" for name, value in reply.headers.items()]
            head += [f"Content-Length: {len(reply.body)}", "", ""]
            self.wfile.write("\r\n".join(head).encode("latin-1") + reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
