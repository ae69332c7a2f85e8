"""Loopback receivers that keep what they accepted and fail on purpose, from a seeded RNG.

Three receivers stand in for what Corral's sinks talk to: `HecReceiver` (Splunk HEC's event
endpoint), `WebhookReceiver` (a receiver that checks Corral's signature) and `SlackApi` (Slack's
`chat.postMessage`). Each turns an accepted request into `Copy` records, one per finding version
it carries. `Faulty` wraps a receiver and injects faults: a share of calls is answered 429
(Retry-After: 0) or 500 before the receiver sees them, and a share of accepted calls is answered
500 anyway ("fail after accept": the copies are kept, the client is told it failed). Those
copies are counted in `Faulty.after_accept`.
The receivers are behaviours for `tests.support.fake_http.FakeHTTPServer`; the first two are the
sink tests' `HecCollector` and `WebhookReceiver` (tests/support/fake_siem.py), keeping copies.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.support import fake_siem
from tests.support.fake_http import Recorded, Reply

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

    def __call__(self, request: Recorded) -> Reply: ...


class HecReceiver(fake_siem.HecCollector):
    """Splunk HEC's `/services/collector/event`, keeping one Copy per accepted event."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.copies: list[Copy] = []

    def keep(self, events: list[dict[str, Any]]) -> None:
        """Keep one Copy per event."""
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


class WebhookReceiver(fake_siem.WebhookReceiver):
    """A signed-webhook receiver that also checks the Idempotency-Key header against the body."""

    def __init__(self, secret: str, path: str) -> None:
        super().__init__(secret, path, time.time)
        self.copies: list[Copy] = []

    def accept(self, key: str, body: dict[str, Any]) -> Reply:
        """Accept a signed request whose header key matches its body; keep one Copy."""
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

    def __call__(self, request: Recorded) -> Reply:
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

    def __call__(self, request: Recorded) -> Reply:
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
