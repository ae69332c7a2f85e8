"""HTTP transport shared by the HTTP sinks: one pool, fixed timeouts, one way to read answers.

Answers are classified once, here: 2xx accepted; 429, 5xx, timeouts and connection errors are
retryable (with the sink's Retry-After); any other 4xx is a permanent rejection. Error messages
name the sink and the status, never the URL: webhook URLs carry their secret in the path or query.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from corral.errors import ConfigError

if TYPE_CHECKING:
    import urllib3

CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 15.0
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Answer:
    """A classified HTTP answer (or the lack of one)."""

    ok: bool
    status: int | None
    body: bytes = b""
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None


def require_https(url: object, where: str) -> str:
    """Return `url` if it is https (or http on loopback, for tests); raise ConfigError otherwise.

    `where` names the setting, e.g. "sinks.slack:soc.webhook_url_env"; the URL itself is never
    echoed, because it may carry a secret.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: expected an https:// URL")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url
    raise ConfigError(f"{where}: only https:// endpoints are accepted (http:// only on loopback)")


def secret_from_env(settings: Mapping[str, Any], key: str, env: Mapping[str, str], where: str) -> str:
    """Return the secret named by `settings[key]` (an environment variable name).

    Secrets are referenced by variable name, never written in configuration files.
    """
    name = settings.get(key)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.{key}: name the environment variable that holds the secret")
    value = env.get(name)
    if not value:
        raise ConfigError(f"{where}.{key}: environment variable {name} is not set or empty")
    return value


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Client:
    """A small urllib3 pool with Corral's timeouts; retries are the ledger's job, not urllib3's."""

    def __init__(self, *, ca_certs: str | None = None, timeout: float = READ_TIMEOUT) -> None:
        import urllib3  # noqa: PLC0415 - only sinks that speak HTTP pay for it

        self._urllib3 = urllib3
        kwargs: dict[str, Any] = {"timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT, read=timeout), "retries": False}
        if ca_certs:
            kwargs["ca_certs"] = ca_certs
        self._pool: urllib3.PoolManager = urllib3.PoolManager(**kwargs)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, what: str) -> Answer:
        """POST `body` and classify the answer; `what` names the sink in errors."""
        try:
            response = self._pool.request("POST", url, body=body, headers=dict(headers), preload_content=True)
        except self._urllib3.exceptions.TimeoutError:
            return Answer(False, None, error=f"{what}: timed out")
        except self._urllib3.exceptions.HTTPError as exc:
            return Answer(False, None, error=f"{what}: connection failed ({type(exc).__name__})")
        return classify(response.status, response.data, response.headers.get("Retry-After"), what)

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()


def classify(status: int, body: bytes, retry_after: str | None, what: str) -> Answer:
    """Classify an HTTP status: 2xx ok; 429/5xx retryable; other 4xx permanent."""
    if 200 <= status < 300:
        return Answer(True, status, body)
    hint = retry_after_seconds(retry_after)
    if status == 429 or status >= 500:
        return Answer(False, status, body, error=f"{what}: HTTP {status}", retry_after=hint)
    return Answer(False, status, body, error=f"{what}: HTTP {status} (rejected)", permanent=True)
