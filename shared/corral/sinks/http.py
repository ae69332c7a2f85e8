"""HTTP transport shared by the HTTP sinks: one pool, one deadline per request, one way to read answers.

A sink's `timeout` bounds the whole request: connecting, sending and reading the entire answer.
urllib3's timeouts bound each socket operation only (its `Timeout(total=…)` just shortens the wait
for the status line, and every later read gets that wait afresh), so a receiver trickling its answer
a byte at a time would hold the worker as long as it liked, past the claim's lease. At the deadline
the connection's socket is shut down and the request is a retryable timeout (the receiver may have
kept it: delivery is at least once).

Answers are classified once, here: 2xx accepted; 408, 425, 429, 5xx, timeouts and connection
errors are retryable (with the sink's Retry-After), and so is 409 for a request carrying an
`Idempotency-Key` (the same key still being processed); any other 4xx is a permanent rejection.
Redirects are never followed: the requests carry a credential (a bearer token, an API key, a signed
body or a capability URL), and following a 3xx would hand it to whatever origin the answer names. A
3xx is a permanent failure that says where it pointed (origin only) and why it was not followed. Error messages
name the sink and the status, never the URL: webhook URLs carry their secret in the path or query,
and `redact_url_in_logs` keeps such a URL out of urllib3's DEBUG records too. `pack` and
`send_batches` group deliveries into requests under a size limit, for the batching SIEM sinks.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit

from corral.errors import ConfigError
from corral.loopback import LOOPBACK_HOSTS
from corral.sinks.base import Delivery, Result

if TYPE_CHECKING:
    import urllib3

CONNECT_TIMEOUT: Final = 5.0
"""The longest wait for a connection; a sink's shorter `timeout` bounds it too."""
READ_TIMEOUT: Final = 15.0
"""The default `timeout`: the longest a whole request may take, from connecting to the answer's last byte."""
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""The longest answer body read: far above any receiver's (an Elasticsearch `_bulk` answer of a full
batch with every item failed is a few MiB), far below what would strain a function's memory."""
_RECHECK_S: Final = 0.05
"""How often a passed deadline looks again for a socket still being connected."""
REDACTED: Final = "[redacted]"
"""What replaces a secret URL, or its secret parts, in transport log records."""

# urllib3 logs each request line ("POST /path?query HTTP/1.1") and retries at DEBUG level.
_TRANSPORT_LOGGERS: Final = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
)
_MIN_QUERY_SECRET: Final = 8

_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class Answer:
    """A classified HTTP answer (or the lack of one)."""

    ok: bool
    status: int | None
    body: bytes = b""
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def origin(url: str) -> str:
    """Return the `scheme://host[:port]` of `url`, printable and short, or "an unreadable location".

    Example:
        >>> origin("https://user:pw@Example.com:8443/path?q=1")
        'https://example.com:8443'
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable location"
    if not parts.scheme or not host:
        return "a relative location"
    text = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")
    return text if text.isascii() and text.isprintable() and len(text) <= 200 else "an unreadable location"


def redirect_error(what: str, status: int, location: str | None, url: str) -> str:
    """The one-line reason for a redirect that was not followed.

    Example:
        >>> redirect_error("hec", 302, "https://evil.example/x", "https://splunk.example/services/collector")
        'hec: HTTP 302 redirect to https://evil.example not followed (another origin; the request carries a credential)'
    """
    target = origin(urljoin(url, location)) if location else "no location"
    same = target == origin(url)
    why = "fix the configured URL" if same else "another origin; the request carries a credential"
    return f"{what}: HTTP {status} redirect to {target} not followed ({why})"


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


MAX_RETRY_AFTER_S: Final = 86_400
"""The longest wait a platform's Retry-After is taken at: a day. A receiver (hostile or broken)
asking for years, or for infinity, would otherwise park a delivery for good."""


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date, within 0 and `MAX_RETRY_AFTER_S`.

    Example:
        >>> retry_after_seconds("120"), retry_after_seconds("99999999999999999"), retry_after_seconds("inf")
        (120.0, 86400.0, None)
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:  # the obsolete asctime form: HTTP dates are in GMT, not local time
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), float(MAX_RETRY_AFTER_S))


class _RedactSecrets(logging.Filter):
    """Replaces every registered secret in the records of the loggers it is attached to; drops nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        # Longest first: a whole URL is replaced before the path or query value inside it.
        for secret in sorted(self.secrets, key=len, reverse=True):
            redacted = redacted.replace(secret, REDACTED)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT: Final = _RedactSecrets()


def redact_url_in_logs(url: str) -> None:
    """Keep the secret parts of a capability URL out of urllib3's DEBUG log records (idempotent).

    For a webhook URL the path, the query or one query value (e.g. Teams Workflows' `sig`) is the
    credential: the URL, its path and query, and each query value of 8 characters or more are
    replaced by `REDACTED` wherever urllib3 would log them.
    """
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    secrets = {url} | ({target} - {"", "/"})
    secrets.update(value for _, value in parse_qsl(parts.query) if len(value) >= _MIN_QUERY_SECRET)
    _REDACT.secrets.update(secrets)
    for name in _TRANSPORT_LOGGERS:
        logging.getLogger(name).addFilter(_REDACT)  # addFilter ignores a filter already present


class _Deadline:
    """One request's deadline, on the calling thread: when it passes, the socket of the connection
    the request is using is shut down, which ends whatever read or write is waiting on it.

    The connection makes itself known through `_DEADLINE` (see `_watched`) when it connects and
    when it sends; a socket still being connected is bounded by the connect timeout, and is looked
    for again every `_RECHECK_S` until it exists.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._seconds = seconds
        self._connection: Any = None
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _Deadline:
        _DEADLINE.current = self
        self._arm(self._seconds)
        return self

    def __exit__(self, *_exc: object) -> None:
        _DEADLINE.current = None
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()

    def attach(self, connection: object) -> None:
        """Note the connection the request is using (called on the request's thread)."""
        with self._lock:
            self._connection = connection

    def _arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = getattr(self._connection, "sock", None)
            if sock is None:
                self._arm(_RECHECK_S)
                return
            # The plain socket's shutdown even for TLS: SSLSocket.shutdown also drops the TLS state
            # under the thread reading it. Shut down, a blocked recv or send returns at once; an
            # OSError means the socket is already closed, and nothing waits on it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _DeadlineSlot(threading.local):
    current: _Deadline | None = None


_DEADLINE: Final = _DeadlineSlot()


def _watched(connection_class: type[Any]) -> type[Any]:
    """`connection_class` telling the calling thread's deadline which connection it is using."""

    class Watched(connection_class):  # type: ignore[misc]
        def connect(self) -> None:
            if _DEADLINE.current is not None:
                _DEADLINE.current.attach(self)
            super().connect()

        def request(self, *args: Any, **kwargs: Any) -> None:
            if _DEADLINE.current is not None:
                _DEADLINE.current.attach(self)
            super().request(*args, **kwargs)

    Watched.__name__ = Watched.__qualname__ = f"Watched{connection_class.__name__}"
    return Watched


class Client:
    """A small urllib3 pool with Corral's deadline; retries are the ledger's job, not urllib3's."""

    def __init__(
        self, *, ca_certs: str | None = None, timeout: float = READ_TIMEOUT, max_answer: int = MAX_ANSWER_BYTES
    ) -> None:
        import urllib3  # noqa: PLC0415 - only sinks that speak HTTP pay for it
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool  # noqa: PLC0415

        self._urllib3 = urllib3
        self._timeout = timeout
        self._max_answer = max_answer
        limits = urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout, total=timeout)
        kwargs: dict[str, Any] = {"timeout": limits, "retries": False}
        if ca_certs:
            kwargs["ca_certs"] = ca_certs
        self._pool: urllib3.PoolManager = urllib3.PoolManager(**kwargs)
        # Pools whose connections report to the request's deadline (pools are made on first use).
        self._pool.pool_classes_by_scheme = {
            "http": type(
                "DeadlineHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _watched(HTTPConnectionPool.ConnectionCls)}
            ),
            "https": type(
                "DeadlineHTTPSPool",
                (HTTPSConnectionPool,),
                {"ConnectionCls": _watched(HTTPSConnectionPool.ConnectionCls)},
            ),
        }

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, what: str) -> Answer:
        """POST `body` and classify the answer; `what` names the sink in errors.

        A request that carries an `Idempotency-Key` header has its 409 read as that header's
        "still processing" (see `classify`).

        The whole request, answer included, takes at most the client's `timeout`; past it the
        answer is a retryable timeout, even when some of it came. An answer body (decompressed)
        longer than `max_answer` is not read further: a retryable error, its connection dropped.
        """
        request_headers = dict(headers)
        with _Deadline(self._timeout) as deadline:
            try:
                response = self._pool.request(
                    "POST", url, body=body, headers=request_headers, preload_content=False, redirect=False
                )
                data = response.read(self._max_answer + 1)
                if len(data) > self._max_answer:
                    # A receiver's answer is read into memory: one that never ends must not fill it.
                    response.close()
                    error = f"{what}: answer over {self._max_answer:,} bytes (HTTP {response.status})"
                    return Answer(False, response.status, error=error)
                response.release_conn()
            except self._urllib3.exceptions.NewConnectionError as exc:
                # Caught first: urllib3 2.x derives it from ConnectTimeoutError, but a refusal is no timeout.
                return Answer(False, None, error=f"{what}: connection failed ({type(exc).__name__})")
            except self._urllib3.exceptions.TimeoutError:
                return Answer(False, None, error=f"{what}: timed out")
            except self._urllib3.exceptions.HTTPError as exc:
                if deadline.expired:  # the socket shut down at the deadline: a reset, or an answer cut short
                    return Answer(False, None, error=f"{what}: timed out")
                return Answer(False, None, error=f"{what}: connection failed ({type(exc).__name__})")
        if deadline.expired:
            # A body without Content-Length ends at the shutdown and would read as complete.
            return Answer(False, None, error=f"{what}: timed out")
        headers = {name.lower(): value for name, value in response.headers.items()}
        if 300 <= response.status < 400:
            error = redirect_error(what, response.status, headers.get("location"), url)
            return Answer(False, response.status, error=error, permanent=True, headers=headers)
        keyed = any(name.lower() == IDEMPOTENCY_KEY for name in request_headers)
        answer = classify(response.status, data, headers.get("retry-after"), what, idempotency_key=keyed)
        return replace(answer, headers=headers)

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()


TOO_LARGE: Final = 413
CONFLICT: Final = 409
IDEMPOTENCY_KEY: Final = "idempotency-key"
"""The request header (lower case) under whose contract a 409 means "still processing"."""

# 4xx answers that say "not now" rather than "never": a timed-out request (408), one sent too
# early (425), and too many requests (429).
TRANSIENT_4XX: Final = frozenset({408, 425, 429})


def classify(status: int, body: bytes, retry_after: str | None, what: str, *, idempotency_key: bool = False) -> Answer:
    """Classify an HTTP status: 2xx ok; 408, 425, 429 and 5xx retryable; other 4xx permanent.

    With `idempotency_key` (the request carried an `Idempotency-Key` header), 409 is retryable too.
    The IETF httpapi draft "The Idempotency-Key HTTP Header Field"
    (draft-ietf-httpapi-idempotency-key-header, section "Error Scenarios") has a server answer 409
    when a request is retried while the original one with the same key is still being processed,
    and exempts 409 from the requests a client must correct before retrying: the same request is
    to be sent again later, after Retry-After if given. Its other error, 422 for a key reused with
    a different body, stays permanent. Without the header, 409 is a conflict with the resource's
    state that sending the same request again will not resolve: Slack, Teams and Splunk HEC do not
    document it, and Elasticsearch's 409 is per `_bulk` item (a version conflict: already stored),
    which the Elastic sink reads from the answer's body, not here.
    """
    if 200 <= status < 300:
        return Answer(True, status, body)
    hint = retry_after_seconds(retry_after)
    if status in TRANSIENT_4XX or status >= 500 or (idempotency_key and status == CONFLICT):
        return Answer(False, status, body, error=f"{what}: HTTP {status}", retry_after=hint)
    return Answer(False, status, body, error=f"{what}: HTTP {status} (rejected)", permanent=True)


def pack(sizes: Sequence[int], limit: int) -> tuple[list[list[int]], list[int]]:
    """Group item indexes, in order, into requests whose summed sizes stay within `limit`.

    Returns the groups and the indexes of items that alone exceed `limit`.

    Example:
        >>> pack([4, 4, 4, 9], 8)
        ([[0, 1], [2]], [3])
    """
    groups: list[list[int]] = []
    oversize: list[int] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if size > limit:
            oversize.append(i)
            continue
        if current and used + size > limit:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        groups.append(current)
    return groups, oversize


def send_in_turn(
    what: str,
    deliveries: Sequence[Delivery],
    groups: Sequence[Sequence[int]],
    send: Callable[[Sequence[int]], list[Result]],
) -> dict[int, Result]:
    """Send each group of `deliveries` (by index) in turn; a Result per index sent or held back.

    Once a retryable answer carries Retry-After, the platform has asked to wait: the rest is held
    back unsent until then, spending no attempt, where posting it anyway would only draw the same
    answer and spend an attempt of each.
    """
    results: dict[int, Result] = {}
    wait: float | None = None
    for group in groups:
        if wait is not None:
            for i in group:
                results[i] = Result.held_back(deliveries[i].version, f"{what}: waiting as asked (Retry-After)", wait)
            continue
        sent = send(group)
        results.update(zip(group, sent, strict=True))
        wait = next((r.retry_after for r in sent if not r.ok and not r.permanent and r.retry_after), None)
    return results


def send_batches(
    what: str,
    deliveries: Sequence[Delivery],
    *,
    render: Callable[[Delivery], _Item],
    size: Callable[[_Item], int],
    limit: int,
    too_large: Callable[[_Item], str],
    send: Callable[[Sequence[Delivery], list[_Item]], list[Result]],
    log: logging.Logger,
) -> list[Result]:
    """Render each delivery, send them in as few requests as `limit` allows; one Result each, in order.

    A delivery that cannot be rendered, or whose rendering alone exceeds `limit` (`too_large`
    says why), fails for good without holding up the others; `send` posts one group and answers
    one Result per delivery of it. Failures are counted in one warning on `log`.
    """
    results: list[Result | None] = [None] * len(deliveries)
    items: dict[int, _Item] = {}
    for i, delivery in enumerate(deliveries):
        try:
            items[i] = render(delivery)
        except (KeyError, TypeError, ValueError) as exc:
            results[i] = Result.failure(
                delivery.version, f"{what}: cannot render the finding ({type(exc).__name__})", permanent=True
            )
    order = sorted(items)
    groups, oversize = pack([size(items[i]) for i in order], limit)
    for k in oversize:
        i = order[k]
        results[i] = Result.failure(deliveries[i].version, f"{what}: {too_large(items[i])}", permanent=True)
    sent = send_in_turn(
        what,
        deliveries,
        [[order[k] for k in group] for group in groups],
        lambda members: send([deliveries[i] for i in members], [items[i] for i in members]),
    )
    for i, result in sent.items():
        results[i] = result
    done = [r for r in results if r is not None]
    log_failures(log, what, done)
    return done


def post_halving(
    post: Callable[[list[_Item]], Answer],
    results: Callable[[Answer, Sequence[Delivery]], list[Result]],
    batch: Sequence[Delivery],
    items: list[_Item],
) -> list[Result]:
    """Post one group and read its Results; a 413 for several deliveries posts each half instead.

    A receiver whose body limit is below `max_request_bytes` (a proxy, HEC's max_content_length)
    refuses the request's total, not any one document: only a delivery refused alone fails for good.
    """
    answer = post(items)
    if answer.status == TOO_LARGE and len(batch) > 1:
        half = len(batch) // 2
        return post_halving(post, results, batch[:half], items[:half]) + post_halving(
            post, results, batch[half:], items[half:]
        )
    return results(answer, batch)


def log_failures(log: logging.Logger, what: str, results: Sequence[Result]) -> None:
    """Log one warning counting the failed deliveries of a batch, if any failed."""
    failed = sum(not r.ok for r in results)
    if failed:
        log.warning("%s: %d of %d deliveries failed", what, failed, len(results))
