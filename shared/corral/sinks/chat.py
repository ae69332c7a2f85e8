"""What the chat sinks (Slack, Teams) say about a finding, and how they keep attacker text inert.

Titles, descriptions, resource names, image names and user agents in a finding can be written by
whoever attacks the workload. A chat message must show them without letting them act: no mention,
no link, no formatting and no bidirectional trickery. This module turns a finding into plain,
cleaned strings and labels; each platform module then places them only where its client renders
text literally (Slack `plain_text` objects, Adaptive Card `TextRun`s) and applies its own escaping.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from corral import inert, ocsf, traits
from corral.context import container_context
from corral.sinks.base import Delivery, Result
from corral.sinks.text import MARKER
from corral.stores.base import ChangeKind

SEVERITY_MARKS: Final = {0: "⚪", 1: "⚪", 2: "🔵", 3: "🟡", 4: "🟠", 5: "🔴", 6: "⛔", 99: "⚫"}
CHANGE_LABELS: Final[dict[ChangeKind, str]] = {
    "new": "New",
    "updated": "Updated",
    "escalated": "Escalated",
    "deescalated": "De-escalated",
    "reopened": "Reopened",
    "closed": "Closed",
    "unchanged": "Unchanged",
    "stale": "Stale",
    "reprioritized": "Reprioritized",
}
UNTITLED: Final = "(untitled finding)"

# Vendor consoles a "open in console" button may point to; anything else in `finding_info.src_url`
# is shown as text at most. Exact hosts, or subdomains of the `.`-prefixed entries.
CONSOLE_HOSTS: Final = frozenset(
    {
        "console.aws.amazon.com",
        ".console.aws.amazon.com",
        "console.amazonaws-us-gov.com",
        ".console.amazonaws-us-gov.com",
        "console.amazonaws.cn",
        ".console.amazonaws.cn",
        "portal.azure.com",
        "portal.azure.us",
        "portal.azure.cn",
        "security.microsoft.com",
        "console.cloud.google.com",
    }
)
MAX_CONSOLE_URL: Final = 2000

VALUE_LIMIT: Final = 300
"""UTF-16 units kept of one field value (a Kubernetes name is at most 253 characters)."""

# Everything that acts on the reader (see corral.inert), and lone surrogates, which no client can encode.
_CONTROLS: Final = re.compile(f"[{inert.CONTROLS}{inert.DIRECTIONAL}{inert.SEPARATORS}\ud800-\udfff]")
_SPACES: Final = re.compile(r"\s+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")
_SCHEME: Final = re.compile(r"(https?|ftps?)://", re.IGNORECASE)
# No word boundary is required after the word: texts are cut after cleaning, and a cut right after
# `@channel` in `@channelz` would leave the marker to supply one. Guarding every `@` that starts a
# broadcast word keeps every prefix of a cleaned text guarded, wherever a limit cuts it.
_BROADCAST: Final = re.compile(r"@(?=channel|here|everyone|all)", re.IGNORECASE)
_WORD_JOINER: Final = "\u2060"


def clean(value: object, *, single_line: bool = True) -> str:
    """Return attacker-supplied `value` as inert text: no controls, no live URL, no broadcast word.

    URLs are defanged (`hxxps://`), as security teams do in alerts, so no client turns them into
    links or previews; `@channel`, `@here`, `@everyone` and `@all`, even as the start of a longer
    word, get an invisible word joiner so that no client parses them, or a cut of them, as a
    broadcast. Bidirectional overrides (used to disguise file names) and control characters, NUL
    included, are removed.

    Example:
        >>> clean("see https://evil.example\\u202e @here")
        'see hxxps://evil.example @\\u2060here'
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SCHEME.sub(_defang, text)
    text = _BROADCAST.sub("@" + _WORD_JOINER, text)
    if single_line:
        return _SPACES.sub(" ", text).strip()
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _defang(match: re.Match[str]) -> str:
    scheme = match.group(1)
    return f"{scheme[0]}xx{scheme[3:]}://" if scheme[0] in "hH" else f"{scheme[0]}x{scheme[2:]}://"


def _trim_dangling(text: str) -> str:
    # A cut must not leave a combining mark, a joiner or a variation selector waiting for the
    # marker: they would attach to it.
    while text and (unicodedata.combining(text[-1]) or text[-1] in "\u200c\u200d\ufe0e\ufe0f"):
        text = text[:-1]
    return text


def utf16_len(text: str) -> int:
    """Return the length of `text` in UTF-16 code units (how JavaScript clients count)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def cut_units(text: str, limit: int, marker: str = MARKER) -> str:
    """Return `text` within `limit` UTF-16 code units, cut on a character boundary, with `marker`.

    Counting UTF-16 units is the strict reading of "characters" for both Slack and Teams: an
    emoji counts twice, so a text that fits here fits whichever way the platform counts.

    Example:
        >>> cut_units("😀😀😀", 5, "~")
        '😀😀~'
    """
    if utf16_len(text) <= limit:
        return text
    room = limit - utf16_len(marker)
    if room <= 0:
        return ""  # no room for any of the text: the marker alone would say nothing
    kept: list[str] = []
    used = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > room:
            break
        kept.append(char)
        used += width
    return _trim_dangling("".join(kept)) + marker


def severity_id(finding: Mapping[str, Any]) -> int:
    """Return the finding's OCSF severity id (0 when absent or not a known id)."""
    value = finding.get("severity_id")
    return value if isinstance(value, int) and value in ocsf.SEVERITY_NAMES else 0


def severity_caption(sid: int) -> str:
    """Return Corral's own caption for a severity id (never the vendor's text)."""
    return ocsf.SEVERITY_NAMES.get(sid, "Unknown")


def change_label(change: ChangeKind, finding: Mapping[str, Any], previous_severity_id: int | None = None) -> str:
    """Return the change as a reader wants it, e.g. "Escalated High → Critical" or "Closed (Resolved)".

    Example:
        >>> change_label("escalated", {"severity_id": 5}, 4)
        'Escalated High → Critical'
    """
    label = CHANGE_LABELS.get(change, "Updated")
    now = severity_caption(severity_id(finding))
    if change in ("escalated", "deescalated"):
        if previous_severity_id in ocsf.SEVERITY_NAMES:
            return f"{label} {severity_caption(previous_severity_id or 0)} → {now}"
        return f"{label} to {now}"
    if change == "closed":
        status_id = finding.get("status_id")
        if isinstance(status_id, int) and status_id in ocsf.CLOSED_STATUSES:
            return f"{label} ({ocsf.STATUS_NAMES[status_id]})"
    return label


@dataclass(frozen=True, slots=True)
class Summary:
    """The cleaned, cut texts of one finding that both chat sinks show."""

    severity_id: int
    severity: str
    title: str
    description: str
    finding_type: str | None
    product: str | None
    finding_uid: str | None
    sample: bool
    where: tuple[tuple[str, str], ...]
    container: tuple[tuple[str, str], ...]
    console_url: str | None


def _value(value: object) -> str | None:
    text = cut_units(clean(value), VALUE_LIMIT) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text or None


def _pairs(*items: tuple[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple((label, text) for label, value in items if (text := _value(value)))


def summarize(finding: Mapping[str, Any], *, description_limit: int) -> Summary:
    """Return what a chat message shows of `finding`, every text cleaned and cut (pure).

    Tolerates missing and mistyped fields: a message about a half-formed finding is better than
    none.
    """
    info = _mapping(finding.get("finding_info"))
    cloud = _mapping(finding.get("cloud"))
    account = _mapping(cloud.get("account"))
    product = _mapping(_mapping(finding.get("metadata")).get("product"))
    types = info.get("types")
    finding_type = types[0] if isinstance(types, list) and types else None
    sid = severity_id(finding)
    vendor = finding.get("severity") if sid == 99 else None
    ctx = container_context(finding)
    title = cut_units(clean(info.get("title")), 500) or UNTITLED
    return Summary(
        severity_id=sid,
        severity=severity_caption(sid),
        title=title,
        description=cut_units(clean(info.get("desc"), single_line=False), description_limit),
        finding_type=_value(finding_type),
        product=_value(product.get("name")),
        finding_uid=_value(info.get("uid")),
        sample=traits.is_sample(finding),
        where=_pairs(
            ("Cloud", cloud.get("provider")),
            ("Account", account.get("name") or account.get("uid")),
            ("Region", cloud.get("region")),
            ("Severity", vendor),
            ("Status", finding.get("status")),
            ("Service", traits.read(finding).get(traits.SERVICE)),
            ("Priority", _priority(finding)),
        ),
        container=_pairs(
            ("Cluster", ctx.cluster),
            ("Namespace", ctx.namespace),
            ("Pod", ctx.pod),
            ("Container", ctx.container),
            ("Image", ctx.image),
            ("Digest", ctx.image_digest),
        ),
        console_url=console_url(finding),
    )


def _priority(finding: Mapping[str, Any]) -> str | None:
    """Corral's priority and why (corral.priority), e.g. "High (65): …; image running in 2 workloads"."""
    level, score, why = finding.get("priority"), finding.get("risk_score"), finding.get("risk_details")
    if not isinstance(level, str) or not isinstance(score, int):
        return None
    return f"{level} ({score}): {why}" if isinstance(why, str) and why else f"{level} ({score})"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def console_url(finding: Mapping[str, Any]) -> str | None:
    """Return `finding_info.src_url` when it is a plain https link to a vendor console, else None.

    The URL travels in the finding, so it is checked like any other input: https, a console host
    (exact or a subdomain of a listed one), no user info, no port, no whitespace or backslash.
    """
    url = _mapping(finding.get("finding_info")).get("src_url")
    if not isinstance(url, str) or not url or len(url) > MAX_CONSOLE_URL:
        return None
    if any(c.isspace() or c == "\\" or not c.isprintable() or ord(c) > 0x7E for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme != "https" or port is not None or "@" in parts.netloc or not host:
        return None
    if host in CONSOLE_HOSTS or any(host.endswith(suffix) for suffix in CONSOLE_HOSTS if suffix.startswith(".")):
        return url
    return None


class Pacer:
    """Keeps at least `interval` seconds between two posts of one sink (platform rate limits)."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        """Sleep until the next post is allowed, then mark it as made."""
        if self._interval > 0 and self._last is not None:
            remaining = self._last + self._interval - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last = self._clock()


def send_until_outage(
    deliveries: Sequence[Delivery], send_one: Callable[[Delivery], Result], unavailable: str
) -> list[Result]:
    """Send each delivery with `send_one`; after a retryable failure, fail the rest unsent.

    The rest get the error `unavailable` and the failure's Retry-After hint, so that a platform
    that is down or rate limiting is not hammered with the rest of the batch.
    """
    results: list[Result] = []
    halt: Result | None = None
    for delivery in deliveries:
        if halt is not None:
            results.append(Result.held_back(delivery.version, unavailable, retry_after=halt.retry_after))
            continue
        result = send_one(delivery)
        results.append(result)
        if not result.ok and not result.permanent:
            halt = result
    return results


def quiet_logger(name: str) -> logging.Logger:
    """Return a disabled logger to hand to an SDK that logs request URLs and bodies.

    slack-sdk logs the webhook URL (the secret) and each request body at DEBUG level; Corral
    reports every outcome in the Result instead, where the text is its own.
    """
    logger = logging.getLogger(name)
    logger.disabled = True
    logger.propagate = False
    return logger
