"""Signed webhook sink: one HTTPS POST per finding version, HMAC-SHA256 signed, with an idempotency key.

The body is `{"idempotency_key": …, "change": …, "finding": {OCSF}}`. The signature covers the
timestamp and the exact body bytes: `X-Corral-Signature: sha256=<hex of HMAC-SHA256(secret,
timestamp + "." + body)>`, with the timestamp (epoch seconds) in `X-Corral-Timestamp`, so a
receiver can refuse a forged or replayed request with `verify()`. `Idempotency-Key` repeats the
version key so the receiver can drop the rare duplicate without parsing the body. A receiver that
follows the IETF Idempotency-Key draft answers 409 while a request with the same key is still being
processed: that delivery is sent again later (after Retry-After, if given), not given up on. A
Retry-After on a retryable answer also holds back the rest of the batch, unsent, until then.

The URL may itself be a secret (a capability URL), so it can come from an environment variable
(`url_env`) and is never written in errors or logs. Redirects are not followed: a signed body
goes only where it was configured to go.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily, whole_finding
from corral.sinks.http import (
    READ_TIMEOUT,
    Client,
    log_failures,
    redact_url_in_logs,
    require_https,
    secret_from_env,
    send_in_turn,
)
from corral.sinks.settings import MAX_TIMEOUT, PUBLIC_URL_HELP, ca_bundle, public_url, seconds
from corral.sinks.text import finding_link

FAMILY: Final[SinkFamily] = "siem"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`webhook:name`).",
    "url": "Receiver URL, `https://…` (http only on loopback), when the URL is not itself a secret.",
    "url_env": "Environment variable holding the receiver URL, instead of `url`, when the URL carries a credential.",
    "secret_env": (
        "Environment variable holding the HMAC-SHA256 signing secret (at least 16 bytes); receivers check "
        "`X-Corral-Signature` with `corral.sinks.webhook.verify`."
    ),
    "timeout": "Seconds to wait for an answer, 0.05 to 300 (default 15).",
    "ca_file": "PEM file of CA certificates to trust instead of the system store.",
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

TIMESTAMP_HEADER: Final = "X-Corral-Timestamp"
SIGNATURE_HEADER: Final = "X-Corral-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
SCHEME: Final = "sha256="
DEFAULT_TOLERANCE: Final = 300
MIN_SECRET_BYTES: Final = 16

# What may go into the Idempotency-Key header; Corral's keys are 64 hex digits.
_HEADER_SAFE: Final = re.compile(r"[A-Za-z0-9._:-]{1,256}")

log = logging.getLogger(__name__)


def render(delivery: Delivery, public_url: str | None = None) -> bytes:
    """Return the JSON body for one delivery; with `public_url`, `corral_url` links the finding's page."""
    body: dict[str, object] = {"idempotency_key": delivery.version, "change": delivery.change}
    link = finding_link(public_url, delivery.finding)
    if link:
        body["corral_url"] = link
    body["finding"] = whole_finding(delivery)
    return orjson.dumps(body)


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """Return the signature header value: "sha256=" + hex HMAC-SHA256 over `timestamp + "." + body`.

    Example:
        >>> sign("s3cret-s3cret-s3cret", "1700000000", b"{}")[:7]
        'sha256='
    """
    key = secret.encode() if isinstance(secret, str) else secret
    return SCHEME + hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signed_request(
    delivery: Delivery, secret: str | bytes, now: float, public_url: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of one delivery, signed at time `now` (epoch seconds)."""
    body = render(delivery, public_url)
    timestamp = str(int(now))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: delivery.version,
    }
    return body, headers


def verify(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Check a request Corral signed: fresh timestamp (within `tolerance` seconds) and matching HMAC.

    For receivers: pass the raw body bytes as received, before any JSON parsing. The comparison
    is constant-time.

    Example:
        >>> key, body = "s3cret-s3cret-s3cret", b'{"change":"new"}'
        >>> verify(key, "1700000000", body, sign(key, "1700000000", body), now=1700000100)
        True
    """
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header may be anything.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", errors="replace"))


class WebhookSink:
    """POSTs each finding version to one receiver, signed."""

    family: SinkFamily = FAMILY

    def __init__(
        self,
        sink_id: str,
        *,
        url: str,
        secret: str,
        client: Client,
        clock: Callable[[], float] = time.time,
        public_url: str | None = None,
    ) -> None:
        self.id = sink_id
        self._public_url = public_url
        self._url = url
        redact_url_in_logs(url)
        self._secret = secret.encode()
        self._client = client
        self._clock = clock

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """POST each delivery; one Result each. A receiver that asks to wait (a 429 or 503 with
        Retry-After) gets nothing more of the batch until then (`send_in_turn`)."""
        sent = send_in_turn(
            self.id, deliveries, [[i] for i in range(len(deliveries))], lambda one: [self._send_one(deliveries[one[0]])]
        )
        results = [sent[i] for i in range(len(deliveries))]
        log_failures(log, self.id, results)
        return results

    def _send_one(self, delivery: Delivery) -> Result:
        if not _HEADER_SAFE.fullmatch(delivery.version):
            return Result.failure(delivery.version, f"{self.id}: idempotency key is not header-safe", permanent=True)
        try:
            body, headers = signed_request(delivery, self._secret, self._clock(), self._public_url)
        except (TypeError, ValueError) as exc:
            return Result.failure(
                delivery.version, f"{self.id}: cannot render the finding ({type(exc).__name__})", permanent=True
            )
        answer = self._client.post(self._url, body, headers, what=self.id)
        if answer.ok:
            return Result.success(delivery.version)
        return Result.failure(
            delivery.version,
            answer.error or f"{self.id}: failed",
            permanent=answer.permanent,
            retry_after=answer.retry_after,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> WebhookSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `url_env = "CORRAL_WEBHOOK_URL"` (or `url = "https://…"` when the URL is not
    secret), `secret_env = "CORRAL_WEBHOOK_SECRET"`, optional `timeout` (seconds) and `ca_file`.
    """
    where = f"sinks.{sink_id}"
    if ("url" in settings) == ("url_env" in settings):
        raise ConfigError(f"{where}.url_env: set exactly one of url_env (URL kept in the environment) or url")
    if "url_env" in settings:
        url = require_https(secret_from_env(settings, "url_env", env, where), f"{where}.url_env")
    else:
        url = require_https(settings.get("url"), f"{where}.url")
    secret = secret_from_env(settings, "secret_env", env, where)
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where}.secret_env: use a signing secret of at least {MIN_SECRET_BYTES} bytes")
    timeout = seconds(settings, "timeout", where, READ_TIMEOUT, minimum=0.05, maximum=MAX_TIMEOUT)
    return WebhookSink(
        sink_id,
        url=url,
        secret=secret,
        client=Client(ca_certs=ca_bundle(settings, where), timeout=timeout),
        public_url=public_url(settings, where),
    )
