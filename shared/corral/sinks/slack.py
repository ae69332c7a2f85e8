"""Slack: one Block Kit message per finding, later changes as replies in its thread.

Two modes. With a bot token (`token_env` + `channel`) messages go through `chat.postMessage`;
the first message's `ts` becomes the finding's thread and later changes reply in it. With an
incoming webhook (`webhook_url_env`) there are no threads: every change is its own message, but
a close (news only as a reply) is not sent.

Attacker-controlled text only ever sits in `plain_text` objects, escaped for Slack's three
control characters and cleaned by `corral.sinks.chat`; the only mrkdwn is Corral's own. Retries
are the delivery ledger's, and a 429 stops the rest of the batch so that a rate-limited channel
is not hammered.

Both modes are plain JSON POSTs through Corral's HTTP client (`corral.sinks.http`), which never
follows a redirect: slack-sdk's urllib transport follows a 302 to any host with the
`Authorization: Bearer xoxb-…` header still attached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from corral.errors import ConfigError
from corral.ocsf import Finding
from corral.sinks import chat
from corral.sinks.base import Delivery, Result, SinkFamily
from corral.sinks.http import (
    TRANSIENT_4XX,
    Client,
    classify,
    redact_url_in_logs,
    require_https,
    retry_after_seconds,
    secret_from_env,
)
from corral.sinks.settings import PUBLIC_URL_HELP, public_url, seconds
from corral.sinks.text import MARKER, finding_link
from corral.stores.base import ChangeKind

FAMILY: Final[SinkFamily] = "chat"
DEFAULT_API_URL: Final = "https://slack.com/api/"
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_INTERVAL: Final = 1.0
"""Slack allows about one message per second per channel (short bursts tolerated)."""

HEADER_LIMIT: Final = 150
TEXT_LIMIT: Final = 3000
FIELD_LIMIT: Final = 2000
FALLBACK_LIMIT: Final = 300
DESCRIPTION_LIMIT: Final = 2900
"""Below the 3000 of a section, so the escaping of `&`, `<` and `>` rarely forces a second cut."""

# chat.postMessage errors worth another try; every other `ok: false` is a refusal.
RETRYABLE_ERRORS: Final = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Replies that the whole channel should see, not only the thread's followers.
BROADCAST_CHANGES: Final = frozenset({"escalated", "reopened"})
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`slack:name`).",
    "token_env": (
        "Environment variable holding a bot token (`xoxb-…`); messages go through chat.postMessage and later "
        "changes reply in the first message's thread. Needs `channel`."
    ),
    "channel": "Channel id (e.g. `C0123ABCD`) or `#name` to post to, with `token_env`.",
    "webhook_url_env": (
        "Environment variable holding an incoming-webhook URL, instead of `token_env`: no threads, every "
        "change is its own message (but `closed`, news only as a thread reply, is not sent)."
    ),
    "api_url": "Web API base URL, with `token_env` (default `https://slack.com/api/`).",
    "timeout": "Seconds to wait for an answer, 0.05 to 120 (default 10).",
    "min_interval": (
        "Least seconds between two messages, 0 to 60 (default 1: Slack allows about one message per second "
        "per channel)."
    ),
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""
_ERROR_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TS: Final = re.compile(r"\d{1,12}\.\d{1,9}")
_CHANNEL: Final = re.compile(r"[#@]?[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_TOKEN_PREFIXES: Final = ("xoxb-", "xoxp-")
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


# Rendering (pure) ----------------------------------------------------------------------------


def escape(text: str, limit: int) -> str:
    """Escape Slack's control characters and cut to `limit` without splitting an entity.

    Example:
        >>> escape("a <b> & c", 100)
        'a &lt;b&gt; &amp; c'
    """
    escaped = text.translate(_ESCAPES)
    if chat.utf16_len(escaped) <= limit:
        return escaped
    cut = chat.cut_units(escaped, limit)
    head = cut[: len(cut) - len(MARKER)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + MARKER


def plain(text: str, limit: int) -> dict[str, Any]:
    """Return a `plain_text` object holding `text` (already cleaned) within `limit`."""
    return {"type": "plain_text", "text": escape(text, limit) or "-", "emoji": False}


def _fields(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [plain(f"{label}: {value}", FIELD_LIMIT) for label, value in pairs[:10]]


def render(
    finding: Finding,
    change: ChangeKind,
    *,
    previous_severity_id: int | None = None,
    reply: bool = False,
    link: str | None = None,
) -> dict[str, Any]:
    """Return the Slack message (text, blocks, unfurl switches) for one change of `finding`.

    `reply` renders the short form posted in the thread of the finding's first message. `link`,
    the finding's page on Corral's dashboard, adds an "Open in Corral" button.
    Transport fields (`channel`, `thread_ts`) are added by `send`.

    Example:
        >>> render({"severity_id": 5, "finding_info": {"title": "x"}}, "new")["blocks"][0]["type"]
        'header'
    """
    summary = chat.summarize(finding, description_limit=DESCRIPTION_LIMIT)
    label = chat.change_label(change, finding, previous_severity_id)
    mark = chat.SEVERITY_MARKS.get(summary.severity_id, "⚫")
    sample = "[Sample] " if summary.sample else ""
    headline = f"{mark} {summary.severity} · {label}"
    blocks: list[dict[str, Any]] = []
    if reply:
        blocks.append({"type": "section", "text": plain(f"{headline}: {sample}{summary.title}", TEXT_LIMIT)})
    else:
        blocks.append(
            {"type": "header", "text": plain(f"{mark} {summary.severity}: {sample}{summary.title}", HEADER_LIMIT)}
        )
        facts = [("Change", label), *((("Type", summary.finding_type),) if summary.finding_type else ())]
        blocks.append({"type": "section", "fields": _fields([*facts, *summary.where])})
    if summary.container:
        blocks.append({"type": "section", "fields": _fields(summary.container)})
    if summary.description and not reply:
        blocks.append({"type": "section", "text": plain(summary.description, TEXT_LIMIT)})
    buttons = []
    if summary.console_url and not reply:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in console", "emoji": False},
                "url": summary.console_url,
                "action_id": "corral_open_console",
            }
        )
    if link and not reply:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Corral", "emoji": False},
                "url": link,
                "action_id": "corral_open_finding",
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    footer = " · ".join(x for x in ("Corral", summary.product, summary.finding_uid) if x)
    blocks.append({"type": "context", "elements": [plain(footer, TEXT_LIMIT)]})
    return {
        # The notification text: Slack parses it for mentions, so it is escaped like the rest.
        "text": escape(f"{summary.severity} · {label}: {sample}{summary.title}", FALLBACK_LIMIT),
        "blocks": blocks,
        # No mrkdwn in the notification text, and no previews of whatever a text may link to.
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
    }


# Answers (pure) ------------------------------------------------------------------------------


def _header(headers: object, name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) or hasattr(headers, "items") else ()
    for key, value in items:
        if isinstance(key, str) and key.lower() == name.lower():
            return value[0] if isinstance(value, list) and value else str(value)
    return None


def error_code(value: object) -> str:
    """Return a Slack error code fit for a log line: a short snake_case word, else "unexpected answer"."""
    text = value.strip() if isinstance(value, str) else ""
    return text if _ERROR_CODE.fullmatch(text) else "unexpected answer"


def api_result(
    what: str, version: str, status: int, headers: object, data: object, *, thread_ref: str | None = None
) -> Result:
    """Classify a chat.postMessage answer (pure): ok → the message ts; errors by HTTP status and code."""
    body = data if isinstance(data, Mapping) else {}
    hint = retry_after_seconds(_header(headers, "Retry-After"))
    if status == 200 and body.get("ok") is True:
        ts = body.get("ts")
        posted = ts if isinstance(ts, str) and _TS.fullmatch(ts) else None
        # A reply keeps pointing at the thread's root: that is the reference later changes need.
        return Result.success(version, thread_ref or posted)
    code = error_code(body.get("error"))
    if status == 429 or code in RETRYABLE_ERRORS:
        return Result.failure(
            version, f"{what}: rate limited ({code})" if status == 429 else f"{what}: {code}", retry_after=hint
        )
    if status >= 500 or status in TRANSIENT_4XX or (status == 200 and code == "unexpected answer"):
        # 408 and 425 come from proxies in front of Slack as often as from Slack: "not now", as for every HTTP sink.
        return Result.failure(version, f"{what}: HTTP {status} ({code})", retry_after=hint)
    return Result.failure(version, f"{what}: refused ({code})", permanent=True)


def webhook_result(what: str, version: str, status: int, headers: object, body: object) -> Result:
    """Classify an incoming-webhook answer (pure): 2xx ok, 429/5xx retryable, other 4xx permanent."""
    answer = classify(status, b"", _header(headers, "Retry-After"), what)
    if answer.ok:
        return Result.success(version)
    code = error_code(body)
    return Result.failure(
        version, f"{answer.error}: {code}", permanent=answer.permanent, retry_after=answer.retry_after
    )


# Transport -----------------------------------------------------------------------------------


class SlackSink:
    """Posts findings to Slack; see the module docstring for the two modes."""

    family: SinkFamily = FAMILY

    def __init__(
        self,
        sink_id: str,
        *,
        token: str | None = None,
        channel: str | None = None,
        webhook_url: str | None = None,
        api_url: str = DEFAULT_API_URL,
        timeout: float = DEFAULT_TIMEOUT,
        min_interval: float = DEFAULT_INTERVAL,
        public_url: str | None = None,
    ) -> None:
        self.id = sink_id
        self._public_url = public_url
        self._channel = channel
        self._pacer = chat.Pacer(min_interval)
        self._client = Client(timeout=timeout)
        if token is not None:
            self._url = api_url.rstrip("/") + "/chat.postMessage"
            self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        elif webhook_url is not None:
            redact_url_in_logs(webhook_url)
            self._url = webhook_url
            self._headers = {"Content-Type": "application/json"}
        else:
            raise ConfigError(f"sinks.{sink_id}: set token_env and channel, or webhook_url_env")
        self._bot = token is not None

    @property
    def threads(self) -> bool:
        """True when later changes can reply in the first message's thread (bot token mode)."""
        return self._bot

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Post each delivery; after a retryable failure, return the rest unsent with its hint."""
        return chat.send_until_outage(deliveries, self._send_one, f"{self.id}: not sent, Slack unavailable")

    def _send_one(self, delivery: Delivery) -> Result:
        reply = self.threads and delivery.thread_ref is not None
        try:
            message = render(
                delivery.finding,
                delivery.change,
                previous_severity_id=delivery.previous_severity_id,
                reply=reply,
                link=finding_link(self._public_url, delivery.finding),
            )
            if self._bot:
                message = {**message, "channel": self._channel, "link_names": False}
                if reply:
                    message["thread_ts"] = delivery.thread_ref
                    message["reply_broadcast"] = delivery.change in BROADCAST_CHANGES
            body = orjson.dumps(message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return Result.failure(delivery.version, f"{self.id}: cannot render ({type(exc).__name__})", permanent=True)
        self._pacer.wait()
        answer = self._client.post(self._url, body, self._headers, what=self.id)
        if answer.status is None or 300 <= answer.status < 400:
            # No answer at all, or a redirect that was not followed: the transport's reason stands.
            return Result.failure(delivery.version, answer.error or f"{self.id}: failed", permanent=answer.permanent)
        if not self._bot:
            text = answer.body.decode("utf-8", errors="replace")
            return webhook_result(self.id, delivery.version, answer.status, answer.headers, text)
        try:
            data: object = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        # A reply keeps pointing at the thread's root: that is the reference later changes need.
        return api_result(
            self.id,
            delivery.version,
            answer.status,
            answer.headers,
            data,
            thread_ref=delivery.thread_ref if reply else None,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> SlackSink:
    """Build a Slack sink from `sinks.<id>`; raises ConfigError naming the setting to fix.

    Settings: `token_env` and `channel` (bot token, threads), or `webhook_url_env`; `api_url`
    (bot token mode, default https://slack.com/api/), `timeout` and `min_interval` in seconds.
    """
    where = f"sinks.{sink_id}"
    timeout = seconds(settings, "timeout", where, DEFAULT_TIMEOUT, minimum=0.05, maximum=120)
    interval = seconds(settings, "min_interval", where, DEFAULT_INTERVAL, minimum=0, maximum=60)
    link_base = public_url(settings, where)
    has_token, has_hook = "token_env" in settings, "webhook_url_env" in settings
    if has_token == has_hook:
        raise ConfigError(f"{where}: set either token_env (with channel) or webhook_url_env, not both or neither")
    if has_hook:
        for key in ("channel", "api_url"):
            if key in settings:
                raise ConfigError(
                    f"{where}.{key}: only used with token_env; an incoming webhook posts to its own channel"
                )
        url = secret_from_env(settings, "webhook_url_env", env, where)
        require_https(url, f"{where}.webhook_url_env")
        return SlackSink(sink_id, webhook_url=url, timeout=timeout, min_interval=interval, public_url=link_base)
    channel = settings.get("channel")
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise ConfigError(f"{where}.channel: expected a channel id (e.g. C0123ABCD) or #name")
    api_url = require_https(settings.get("api_url", DEFAULT_API_URL), f"{where}.api_url")
    token = secret_from_env(settings, "token_env", env, where)
    if not token.startswith(_TOKEN_PREFIXES) or any(c.isspace() for c in token):
        raise ConfigError(
            f"{where}.token_env: the variable {settings['token_env']} does not hold a Slack bot or user token "
            "(xoxb-… or xoxp-…)"
        )
    return SlackSink(
        sink_id,
        token=token,
        channel=channel,
        api_url=api_url,
        timeout=timeout,
        min_interval=interval,
        public_url=link_base,
    )
