"""Splunk HTTP Event Collector sink: OCSF findings as JSON events, batched under HEC's request limit.

Each delivery becomes one HEC event whose `event` is the OCSF finding with two Corral fields
added at the top (`corral_idempotency_key`, `corral_change`), so Splunk's JSON extraction sees
the OCSF fields where OCSF-aware apps expect them. `time` is the version's own modified time in
epoch seconds with milliseconds. Events go newline-separated to `/services/collector/event`,
several per request, each request under `max_request_bytes` (HEC's `max_content_length`,
1 MB by default on many deployments).

A request HEC refuses fails all its events, except that for a malformed event HEC names
(`invalid-event-number`) only that event is refused for good; the others are retried, and the
idempotency key lets searches drop the rare duplicate. 503 (indexer queue full) and 429 are
retryable with Retry-After. This sink does not poll indexer acknowledgements: a 200 means HEC
accepted the events, which is what the delivery ledger records.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from corral import ocsf
from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily, finding_and
from corral.sinks.http import (
    READ_TIMEOUT,
    Answer,
    Client,
    post_halving,
    require_https,
    secret_from_env,
    send_batches,
)
from corral.sinks.settings import MAX_TIMEOUT, PUBLIC_URL_HELP, ca_bundle, label, number, public_url, seconds
from corral.sinks.text import finding_link

FAMILY: Final[SinkFamily] = "siem"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`splunk_hec:name`).",
    "url": "HTTP Event Collector base URL, `https://host:8088` (http only on loopback); no query string.",
    "token_env": "Environment variable holding the HEC token.",
    "index": "Splunk index for the events (default: the token's default index).",
    "source": "Event `source` (default `corral`).",
    "sourcetype": "Event `sourcetype` (default `ocsf:finding`).",
    "host": "Event `host` (default: set by Splunk).",
    "channel": "HEC channel GUID, for indexer acknowledgement (default: a new GUID per start).",
    "max_request_bytes": (
        "Largest request body in bytes, 1024 to 2^30 (default 1000000, Splunk's default `max_content_length` "
        "is larger)."
    ),
    "timeout": "Seconds to wait for an answer, 0.05 to 300 (default 15).",
    "ca_file": "PEM file of CA certificates to trust instead of the system store (a private CA).",
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

DEFAULT_SOURCE: Final = "corral"
DEFAULT_SOURCETYPE: Final = "ocsf:finding"
DEFAULT_MAX_REQUEST_BYTES: Final = 1_000_000
EVENT_PATH: Final = "/services/collector/event"

HEC_CODES: Final[Mapping[int, str]] = {
    0: "Success",
    1: "Token disabled",
    2: "Token is required",
    3: "Invalid authorization",
    4: "Invalid token",
    5: "No data",
    6: "Invalid data format",
    7: "Incorrect index",
    8: "Internal server error",
    9: "Server is busy",
    10: "Data channel is missing",
    11: "Invalid data channel",
    12: "Event field is required",
    13: "Event field cannot be blank",
    14: "ACK is disabled",
    15: "Error in handling indexed fields",
    16: "Query string authorization is not enabled",
}
"""HEC's own answer codes; only these texts are quoted in errors, never the server's raw body."""

# Codes that blame one event of the batch, named by `invalid-event-number`.
_EVENT_CODES: Final = frozenset({6, 12, 13, 15})
_INDEX_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
_TOKEN: Final = re.compile(r"[\x21-\x7e]+")

log = logging.getLogger(__name__)


def render(
    delivery: Delivery,
    *,
    source: str = DEFAULT_SOURCE,
    sourcetype: str = DEFAULT_SOURCETYPE,
    index: str | None = None,
    host: str | None = None,
    public_url: str | None = None,
) -> bytes:
    """Return one HEC event (a JSON object, no trailing newline) for `delivery`.

    With `public_url` the event carries `corral_url`, the finding's page on Corral's dashboard.

    Example:
        >>> from corral.sinks.base import Delivery
        >>> f = {"time": 1704164645123, "finding_info": {"uid": "f1"}}
        >>> render(Delivery("splunk_hec:x", "k1", "new", f))[:30]
        b'{"time":1704164645.123,"source'
    """
    extra = {"corral_idempotency_key": delivery.version, "corral_change": delivery.change}
    link = finding_link(public_url, delivery.finding)
    if link:
        extra["corral_url"] = link
    envelope: dict[str, Any] = {
        "time": ocsf.modified_time(delivery.finding) / 1000,
        "source": source,
        "sourcetype": sourcetype,
    }
    if index:
        envelope["index"] = index
    if host:
        envelope["host"] = host
    envelope["event"] = finding_and(delivery, extra)
    return orjson.dumps(envelope)


def event_url(url: str) -> str:
    """Return the event endpoint for a HEC base URL (or the endpoint itself, if given)."""
    base = url.rstrip("/")
    if base.endswith(EVENT_PATH):
        return base
    if base.endswith("/services/collector"):
        return base + "/event"
    return base + EVENT_PATH


class SplunkHecSink:
    """Sends findings to one HEC endpoint."""

    family: SinkFamily = FAMILY

    def __init__(
        self,
        sink_id: str,
        *,
        url: str,
        token: str,
        meta: Mapping[str, str],
        channel: str,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        client: Client,
    ) -> None:
        self.id = sink_id
        self._url = event_url(url)
        self._meta = dict(meta)
        self._limit = max_request_bytes
        self._client = client
        self._headers = {
            "Authorization": f"Splunk {token}",
            "Content-Type": "application/json",
            # Required by HEC when indexer acknowledgement is on; harmless when it is off.
            "X-Splunk-Request-Channel": channel,
        }

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Send the deliveries in as few requests as the size limit allows; one Result each."""
        return send_batches(
            self.id,
            deliveries,
            render=lambda delivery: render(delivery, **self._meta) + b"\n",
            size=len,
            limit=self._limit,
            too_large=lambda event: f"event of {len(event)} bytes exceeds max_request_bytes ({self._limit})",
            send=self._post,
            log=log,
        )

    def _post(self, batch: Sequence[Delivery], events: list[bytes]) -> list[Result]:
        return post_halving(
            lambda group: self._client.post(self._url, b"".join(group), self._headers, what=self.id),
            self._results,
            batch,
            events,
        )

    def _results(self, answer: Answer, batch: Sequence[Delivery]) -> list[Result]:
        if answer.ok:
            return [Result.success(d.version) for d in batch]
        code, blamed = _hec_answer(answer.body)
        error = answer.error or f"{self.id}: failed"
        if code is not None and code in HEC_CODES:
            error = f"{error}: {HEC_CODES[code]}"
        if answer.status == 400 and code in _EVENT_CODES and blamed is not None and 0 <= blamed < len(batch):
            return [
                Result.failure(d.version, error, permanent=True)
                if n == blamed
                else Result.failure(d.version, f"{self.id}: HEC refused another event in the same request")
                for n, d in enumerate(batch)
            ]
        return [
            Result.failure(d.version, error, permanent=answer.permanent, retry_after=answer.retry_after) for d in batch
        ]

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()


def _hec_answer(body: bytes) -> tuple[int | None, int | None]:
    """Return HEC's `code` and `invalid-event-number` from an answer body, when it has them."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    code, number = doc.get("code"), doc.get("invalid-event-number")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        number if isinstance(number, int) and not isinstance(number, bool) else None,
    )


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> SplunkHecSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `url = "https://splunk.example:8088"`, `token_env = "SPLUNK_HEC_TOKEN"`,
    `index = "security"`, optional `source`, `sourcetype`, `host`, `channel` (a GUID),
    `max_request_bytes`, `timeout` (seconds) and `ca_file` (a PEM bundle for a private CA).
    """
    where = f"sinks.{sink_id}"
    url = require_https(settings.get("url"), f"{where}.url")
    if urlsplit(url).query or urlsplit(url).fragment:
        raise ConfigError(f"{where}.url: remove the query string; credentials go in the environment variable")
    token = secret_from_env(settings, "token_env", env, where)
    if not _TOKEN.fullmatch(token):
        # The token goes into a header: reject anything that could split or corrupt it.
        raise ConfigError(f"{where}.token_env: the token must be printable ASCII without spaces")
    meta = {
        "source": label(settings, "source", where, DEFAULT_SOURCE),
        "sourcetype": label(settings, "sourcetype", where, DEFAULT_SOURCETYPE),
    }
    index = settings.get("index")
    if index is not None:
        if not isinstance(index, str) or not _INDEX_NAME.fullmatch(index):
            raise ConfigError(f"{where}.index: use a Splunk index name (lowercase letters, digits, '_' and '-')")
        meta["index"] = index
    if settings.get("host") is not None:
        meta["host"] = label(settings, "host", where, "")
    link_base = public_url(settings, where)
    if link_base:
        meta["public_url"] = link_base
    channel = settings.get("channel")
    if channel is None:
        channel = str(uuid.uuid4())
    elif not isinstance(channel, str) or not _is_uuid(channel):
        raise ConfigError(f"{where}.channel: use a GUID, e.g. {uuid.uuid4()}")
    limit = int(number(settings, "max_request_bytes", where, DEFAULT_MAX_REQUEST_BYTES, minimum=1024, maximum=1 << 30))
    timeout = seconds(settings, "timeout", where, READ_TIMEOUT, minimum=0.05, maximum=MAX_TIMEOUT)
    ca_file = ca_bundle(settings, where)
    return SplunkHecSink(
        sink_id,
        url=url,
        token=token,
        meta=meta,
        channel=channel,
        max_request_bytes=limit,
        client=Client(ca_certs=ca_file, timeout=timeout),
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
