"""Microsoft Teams: one Adaptive Card per change, posted to a Teams Workflows webhook.

Office 365 connectors (and their MessageCards) are retired; Corral speaks only the Workflows
format ("When a Teams webhook request is received"), which answers 202 Accepted and, unlike the
old connectors, real HTTP 429s.

Attacker-controlled text sits either in `TextRun`s, which Adaptive Cards render without Markdown,
or in the facts of a `FactSet`, whose titles and values Teams renders as a Markdown subset (bold,
italic, lists, links): every fact is therefore escaped with `markdown_escape` first. `TextBlock`s
and the `Action.OpenUrl`s carry Corral's own words, a checked console link and Corral's own link.
The whole message stays within Teams' 28 KB: the description is cut until it fits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from corral.errors import ConfigError
from corral.ocsf import Finding
from corral.sinks import chat
from corral.sinks.base import Delivery, Result, SinkFamily
from corral.sinks.http import Answer, Client, redact_url_in_logs, require_https, secret_from_env
from corral.sinks.settings import PUBLIC_URL_HELP, public_url, seconds
from corral.sinks.text import cut_bytes, finding_link
from corral.stores.base import ChangeKind

FAMILY: Final[SinkFamily] = "chat"
CARD_VERSION: Final = "1.4"
"""The newest schema Teams renders everywhere (desktop, web, mobile) for cards not sent by a bot."""
MAX_PAYLOAD_BYTES: Final = 28_000
"""Teams' 28 KB message limit, read as decimal kilobytes to keep a margin."""
DESCRIPTION_LIMIT: Final = 8000
TITLE_LIMIT: Final = 300
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_INTERVAL: Final = 0.25
"""Teams throttles a webhook above about four requests per second."""
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`teams:name`).",
    "webhook_url_env": (
        "Environment variable holding the Teams Workflows webhook URL (it carries its own credential). Office"
        " 365 connector URLs are refused: connectors are retired."
    ),
    "timeout": "Seconds to wait for an answer, 0.05 to 120 (default 10).",
    "min_interval": (
        "Least seconds between two messages, 0 to 60 (default 0.25: Teams throttles a webhook above about "
        "four requests per second)."
    ),
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""
# Adaptive Card container styles by severity id: red for critical, amber for high.
STYLES: Final = {5: "attention", 6: "attention", 4: "warning", 3: "accent"}
CLOSED_STYLE: Final = "good"
RETIRED_HOSTS: Final = (".webhook.office.com", "outlook.office.com", "outlook.office365.com")
# Old connectors answered 200 with the real error in the body; a Workflows URL should never, but
# a proxy or a misconfigured flow might.
_BODY_STATUS: Final = re.compile(rb"HTTP error (\d{3})")


# Rendering (pure) ----------------------------------------------------------------------------


def _run(text: str, **style: Any) -> dict[str, Any]:
    # TextRun: rendered literally, no Markdown (Adaptive Cards schema 1.2+).
    return {"type": "TextRun", "text": text, **style}


# Characters with a meaning anywhere in a CommonMark line: emphasis, code, links and images,
# autolinks and raw HTML, entities, tables, and the backslash itself. Parentheses are left as
# they are: they only make a link after a `]`, which is escaped.
_MARKDOWN_ANYWHERE: Final = re.compile(r"([\\`*_~\[\]<>#|!&])")
# Block markers that count only at the start of a line: list items, thematic breaks and ordered-list
# numbers (at most nine digits, then a space or the end), which leaves `111122223333.dkr.ecr…` alone.
_MARKDOWN_LEADING: Final = re.compile(r"^([-+])|^(\d{1,9})([.)])(?=\s|$)", re.MULTILINE)
# A bare URL or `www.` host can be turned into a link by the client's linkifier even without
# Markdown syntax; a word joiner after `://` or `www` leaves the text readable and unlinked.
_LINK_START: Final = re.compile(r"(://|\bwww(?=\.))", re.IGNORECASE)
_WORD_JOINER: Final = "\u2060"


def markdown_escape(text: str) -> str:
    """Return already cleaned `text` so that a Markdown renderer shows it literally (pure).

    Teams renders a Markdown subset in `Fact.title` and `Fact.value`, so a resource name such as
    `[reset](hxxps://evil.example)` would otherwise become a link and `**x**` bold text.
    Backslash escapes of ASCII punctuation are part of CommonMark and show as the character alone.

    Example:
        >>> print(markdown_escape("**x** [a](b) 1. <at>"))
        \\*\\*x\\*\\* \\[a\\](b) 1. \\<at\\>
    """
    text = _MARKDOWN_ANYWHERE.sub(r"\\\1", text)
    text = _MARKDOWN_LEADING.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", text)
    return _LINK_START.sub(lambda m: m.group(1) + _WORD_JOINER, text)


def _fact(label: str, value: str) -> dict[str, str]:
    return {"title": markdown_escape(label), "value": markdown_escape(value)}


def card(
    finding: Finding,
    change: ChangeKind,
    *,
    previous_severity_id: int | None = None,
    description_limit: int,
    link: str | None = None,
) -> dict[str, Any]:
    """Return the Adaptive Card for one change of `finding`, its description cut to `description_limit`.

    `link`, the finding's page on Corral's dashboard, adds an "Open in Corral" action.
    """
    summary = chat.summarize(finding, description_limit=description_limit)
    label = chat.change_label(change, finding, previous_severity_id)
    mark = chat.SEVERITY_MARKS.get(summary.severity_id, "⚫")
    style = CLOSED_STYLE if change == "closed" else STYLES.get(summary.severity_id, "emphasis")
    heading = [
        # Corral's own words only: a TextBlock renders Markdown.
        {"type": "TextBlock", "text": f"{mark} {summary.severity} · {label}", "weight": "Bolder", "wrap": True},
        {
            "type": "RichTextBlock",
            "inlines": [
                *([_run("[Sample] ", weight="Bolder")] if summary.sample else []),
                _run(chat.cut_units(summary.title, TITLE_LIMIT), size="Large", weight="Bolder"),
            ],
        },
    ]
    body: list[dict[str, Any]] = [{"type": "Container", "style": style, "bleed": True, "items": heading}]
    facts = [*((("Type", summary.finding_type),) if summary.finding_type else ()), *summary.where, *summary.container]
    if facts:
        body.append({"type": "FactSet", "facts": [_fact(label, value) for label, value in facts]})
    if summary.description:
        body.append({"type": "RichTextBlock", "separator": True, "inlines": [_run(summary.description)]})
    footer = " · ".join(x for x in ("Corral", summary.product, summary.finding_uid) if x)
    body.append({"type": "RichTextBlock", "inlines": [_run(footer, isSubtle=True, size="Small")]})
    content: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    actions = []
    if summary.console_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in console", "url": summary.console_url})
    if link:
        actions.append({"type": "Action.OpenUrl", "title": "Open in Corral", "url": link})
    if actions:
        content["actions"] = actions
    return content


def message(content: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap an Adaptive Card in the message a Workflows webhook expects."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": dict(content)}
        ],
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """Serialise a payload as sent (compact UTF-8 JSON)."""
    return orjson.dumps(payload)


def render(
    finding: Finding,
    change: ChangeKind,
    *,
    previous_severity_id: int | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    link: str | None = None,
) -> dict[str, Any]:
    """Return the Workflows message for one change of `finding`, at most `max_bytes` once encoded.

    The description is the only unbounded text: it is cut (with a marker) until the message fits,
    and dropped if even that is not enough. Everything else is cut to fixed limits, which keep a
    card without description far below 28 KB.

    Example:
        >>> render({"severity_id": 4, "finding_info": {"title": "x"}}, "new")["type"]
        'message'
    """
    limit = DESCRIPTION_LIMIT
    payload = message(
        card(finding, change, previous_severity_id=previous_severity_id, description_limit=limit, link=link)
    )
    for _ in range(8):
        size = len(encode(payload))
        if size <= max_bytes:
            return payload
        description = chat.summarize(finding, description_limit=limit).description
        # Bytes over the limit, plus a margin for the JSON escaping of what is kept.
        room = len(description.encode()) - (size - max_bytes) - 64
        limit = max(0, min(limit - 1, len(cut_bytes(description, max(0, room)))))
        payload = message(
            card(finding, change, previous_severity_id=previous_severity_id, description_limit=limit, link=link)
        )
    if len(encode(payload)) > max_bytes:
        payload = message(
            card(finding, change, previous_severity_id=previous_severity_id, description_limit=0, link=link)
        )
    return payload


# Transport -----------------------------------------------------------------------------------


def result(version: str, answer: Answer, what: str) -> Result:
    """Turn a classified HTTP answer into a Result (pure); see the module docstring for 200 bodies."""
    if answer.ok:
        found = _BODY_STATUS.search(answer.body[:2048])
        if found is None:
            return Result.success(version)
        status = int(found.group(1))
        retryable = status == 429 or status >= 500
        return Result.failure(
            version, f"{what}: HTTP {answer.status}, error {status} in the answer", permanent=not retryable
        )
    return Result.failure(
        version, answer.error or f"{what}: failed", permanent=answer.permanent, retry_after=answer.retry_after
    )


class TeamsSink:
    """Posts Adaptive Cards to one Teams Workflows webhook."""

    family: SinkFamily = FAMILY
    threads: bool = False
    """A Workflows webhook answers with no message to reply to: every change is its own card."""

    def __init__(
        self,
        sink_id: str,
        *,
        webhook_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        min_interval: float = DEFAULT_INTERVAL,
        public_url: str | None = None,
    ) -> None:
        self.id = sink_id
        self._url = webhook_url
        self._public_url = public_url
        redact_url_in_logs(webhook_url)
        self._http = Client(timeout=timeout)
        self._pacer = chat.Pacer(min_interval)

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Post one card per delivery; after a retryable failure, return the rest unsent with its hint."""
        return chat.send_until_outage(deliveries, self._send_one, f"{self.id}: not sent, Teams unavailable")

    def _send_one(self, delivery: Delivery) -> Result:
        try:
            payload = render(
                delivery.finding,
                delivery.change,
                previous_severity_id=delivery.previous_severity_id,
                link=finding_link(self._public_url, delivery.finding),
            )
            body = encode(payload)
        except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONEncodeError) as exc:
            return Result.failure(delivery.version, f"{self.id}: cannot render ({type(exc).__name__})", permanent=True)
        self._pacer.wait()
        answer = self._http.post(self._url, body, {"Content-Type": "application/json"}, what=self.id)
        return result(delivery.version, answer, self.id)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> TeamsSink:
    """Build a Teams sink from `sinks.<id>`; raises ConfigError naming the setting to fix.

    Settings: `webhook_url_env` (the variable holding the Workflows URL, which carries its
    credential), `timeout` and `min_interval` in seconds.
    """
    where = f"sinks.{sink_id}"
    timeout = seconds(settings, "timeout", where, DEFAULT_TIMEOUT, minimum=0.05, maximum=120)
    interval = seconds(settings, "min_interval", where, DEFAULT_INTERVAL, minimum=0, maximum=60)
    url = require_https(secret_from_env(settings, "webhook_url_env", env, where), f"{where}.webhook_url_env")
    host = (urlsplit(url).hostname or "").lower()
    if any(host == h.lstrip(".") or host.endswith(h) for h in RETIRED_HOSTS):
        raise ConfigError(
            f"{where}.webhook_url_env: this is an Office 365 connector URL, and connectors are retired; "
            'create a Teams Workflows webhook ("When a Teams webhook request is received") and use its URL'
        )
    return TeamsSink(
        sink_id, webhook_url=url, timeout=timeout, min_interval=interval, public_url=public_url(settings, where)
    )
