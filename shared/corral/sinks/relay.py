"""Relay sink: the normalized OCSF finding to a Pub/Sub topic or an SQS queue, for a hub to ingest.

In the hub layout, spokes normalize and relay; one hub stores and fans out. The message body is
the bare OCSF finding as JSON (orjson), so the hub ingests it like any other input; the delivery's
idempotency key and change kind travel as attributes (`idempotency_key`, `change`), never inside
the finding.

Pub/Sub: published with message ordering, the ordering key being the finding identity
(`product|account|uid`, or its SHA-256 when longer than Pub/Sub's 1 KB limit), so the versions of
one finding arrive in order. A failed publish pauses its ordering key in the client; the sink
resumes it so that the next attempt can go. The client cancels the key's messages still queued
behind the failed one: those were never sent, so they are held back (retried without spending an
attempt), not failed.

SQS: `SendMessageBatch` in groups of at most 10 entries and 256 KiB; for a FIFO queue
(`.fifo`) `MessageGroupId` is the identity hash and `MessageDeduplicationId` the idempotency key.
Entries SQS lists as `Failed` fail alone: permanently when SQS blames the sender.

Unavailable, throttled and timed-out calls are retryable; invalid arguments, unknown topics or
queues and refused permissions are permanent. google-cloud-pubsub and boto3 are imported only
when a relay of that kind is built, so `import corral` stays cheap.

The requests carry credentials (an OAuth token, a SigV4 signature with the session token) and the
findings, so nothing goes out in plaintext beyond this machine: `queue_url` and `endpoint_url`
take https, http only on loopback (`require_https`, as the HTTP sinks), and the emulator
`endpoint`, plaintext gRPC, only a loopback host.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import orjson

from corral import ocsf
from corral.errors import ConfigError
from corral.loopback import LOOPBACK_HOSTS
from corral.sinks.base import Delivery, Result, SinkFamily, whole_finding
from corral.sinks.http import require_https
from corral.sinks.settings import seconds

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

FAMILY: Final[SinkFamily] = "relay"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`relay:name`).",
    "topic": (
        "Pub/Sub topic, `projects/<project>/topics/<topic>`; messages are ordered by finding. Credentials: "
        "Application Default Credentials."
    ),
    "endpoint": "`host:port` of a Pub/Sub emulator, with `topic` (tests and local runs).",
    "queue_url": (
        "SQS queue URL, `https://sqs.<region>.amazonaws.com/<account>/<queue>`, instead of `topic`. "
        "Credentials: the AWS credential chain."
    ),
    "region": "AWS region of the queue, with `queue_url`.",
    "endpoint_url": "URL of an SQS-compatible endpoint, with `queue_url` (tests and local runs).",
    "timeout": "Seconds to wait for the service, 0.5 to 300 (default 30).",
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

DEFAULT_TIMEOUT: Final = 30.0
ORDERING_KEY_LIMIT: Final = 1024
"""Pub/Sub's limit on an ordering key, in bytes."""
PUBSUB_MESSAGE_LIMIT: Final = 10_000_000
SQS_BATCH_ENTRIES: Final = 10
SQS_BATCH_BYTES: Final = 262_144
"""SendMessageBatch: at most 10 entries, whose bodies and attributes total at most 256 KiB."""

_TOPIC: Final = re.compile(r"projects/[a-z][a-z0-9.:-]{3,62}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
_SQS_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")

# gRPC status names (google.api_core exception classes) that a later attempt can get past.
_PUBSUB_RETRYABLE: Final = frozenset(
    {
        "ServiceUnavailable",
        "DeadlineExceeded",
        "ResourceExhausted",
        "TooManyRequests",
        "InternalServerError",
        "Aborted",
        "Unknown",
        "Cancelled",
        "GatewayTimeout",
        "BadGateway",
        "RetryError",
        "TimeoutError",
    }
)
# SQS error codes that are transient; every other client error is the request's own fault.
_SQS_RETRYABLE: Final = frozenset(
    {
        "RequestThrottled",
        "ThrottlingException",
        "Throttling",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "KMS.ThrottlingException",
        "RequestTimeout",
    }
)

log = logging.getLogger(__name__)


def render(delivery: Delivery) -> bytes:
    """Return the message body: the bare OCSF finding as JSON.

    U+FFFE and U+FFFF are written as JSON escapes: the same JSON value, but SQS refuses those
    two characters raw in a message body.

    Example:
        >>> from corral.sinks.base import Delivery
        >>> render(Delivery("relay:hub", "k1", "new", {"finding_info": {"uid": "f\\uffff"}}))
        b'{"finding_info":{"uid":"f\\\\uffff"}}'
    """
    body = orjson.dumps(whole_finding(delivery))
    return body.replace(b"\xef\xbf\xbe", b"\\ufffe").replace(b"\xef\xbf\xbf", b"\\uffff")


def attributes(delivery: Delivery) -> dict[str, str]:
    """Return the message attributes: the idempotency key and the change kind."""
    return {"idempotency_key": delivery.version, "change": delivery.change}


def identity_hash(finding: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of a finding's identity, unambiguous whatever its parts contain."""
    return hashlib.sha256(orjson.dumps(list(ocsf.identity(finding)))).hexdigest()


def ordering_key(finding: Mapping[str, Any]) -> str:
    """Return the Pub/Sub ordering key: `product|account|uid`, or a hash when over 1 KB.

    Example:
        >>> f = {"metadata": {"product": {"uid": "p"}}, "cloud": {"account": {"uid": "a"}},
        ...      "finding_info": {"uid": "u"}}
        >>> ordering_key(f), len(ordering_key({**f, "finding_info": {"uid": "u" * 2000}}))
        ('p|a|u', 71)
    """
    joined = "|".join(ocsf.identity(finding))
    if len(joined.encode()) <= ORDERING_KEY_LIMIT:
        return joined
    return "sha256:" + identity_hash(finding)


def sqs_entry(delivery: Delivery, entry_id: str, *, fifo: bool) -> dict[str, Any]:
    """Return one SendMessageBatch entry for `delivery`."""
    entry: dict[str, Any] = {
        "Id": entry_id,
        "MessageBody": render(delivery).decode(),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes(delivery).items()
        },
    }
    if fifo:
        entry["MessageGroupId"] = identity_hash(delivery.finding)
        version = delivery.version
        entry["MessageDeduplicationId"] = (
            version if _SQS_ID.fullmatch(version) else hashlib.sha256(version.encode()).hexdigest()
        )
    return entry


def sqs_size(entry: Mapping[str, Any]) -> int:
    """Return the bytes SQS counts for an entry: body plus attribute names, types and values."""
    size = len(entry["MessageBody"].encode())
    for name, value in entry["MessageAttributes"].items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
    return size


def _behind_failed_publish(exc: BaseException) -> bool:
    """Whether the client gave up on a message unsent because an earlier one of its ordering key failed.

    When an ordered publish fails, google-cloud-pubsub pauses the key: the key's batches still
    queued are cancelled with a bare `RuntimeError` carrying
    `BatchCancellationReason.PRIOR_ORDERED_MESSAGE_FAILED` (publisher/_batch/thread.py
    `Batch.cancel`), and a publish to the paused key answers
    `PublishToPausedOrderingKeyException`. Other RuntimeErrors (a stopped client) are not this.
    """
    from google.cloud.pubsub_v1.publisher import exceptions  # noqa: PLC0415 - only Pub/Sub relays
    from google.cloud.pubsub_v1.publisher._batch.base import BatchCancellationReason  # noqa: PLC0415

    if isinstance(exc, exceptions.PublishToPausedOrderingKeyException):
        return True
    return type(exc) is RuntimeError and exc.args == (BatchCancellationReason.PRIOR_ORDERED_MESSAGE_FAILED.value,)


class PubSubRelay:
    """Publishes findings to one Pub/Sub topic, ordered per finding."""

    family: SinkFamily = FAMILY

    def __init__(self, sink_id: str, *, topic: str, client: PublisherClient, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.id = sink_id
        self._topic = topic
        self._client = client
        self._timeout = timeout

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Publish every delivery, then wait for each; one Result per delivery, in order."""
        from google.api_core import retry as retries  # noqa: PLC0415 - only Pub/Sub relays pay for it

        # Bounded retries inside the client: the ledger retries later, the invocation must end.
        retry = retries.Retry(initial=0.1, maximum=2.0, multiplier=2.0, timeout=self._timeout)
        pending: list[tuple[Delivery, str, Any]] = []
        results: dict[int, Result] = {}
        for i, delivery in enumerate(deliveries):
            try:
                body = render(delivery)
                key = ordering_key(delivery.finding)
            except (KeyError, TypeError, ValueError) as exc:
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: cannot render the finding ({type(exc).__name__})", permanent=True
                )
                continue
            if len(body) > PUBSUB_MESSAGE_LIMIT:
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: message of {len(body)} bytes exceeds Pub/Sub's 10 MB", permanent=True
                )
                continue
            try:
                future = self._client.publish(
                    self._topic, body, ordering_key=key, retry=retry, timeout=self._timeout, **attributes(delivery)
                )
            except Exception as exc:  # noqa: BLE001 - the client raises for a paused key; one Result each
                results[i] = self._failure(delivery, key, exc)
                continue
            pending.append((delivery, key, future))
            results[i] = Result.success(delivery.version)  # replaced below by the publish outcome
        for i, (delivery, key, future) in zip(
            [i for i in range(len(deliveries)) if i in results and results[i].ok], pending, strict=True
        ):
            try:
                message_id = future.result(timeout=self._timeout + 5)
            except Exception as exc:  # noqa: BLE001 - any publish error becomes this delivery's Result
                results[i] = self._failure(delivery, key, exc)
            else:
                results[i] = Result.success(delivery.version, message_ref=str(message_id))
        done = [results[i] for i in range(len(deliveries))]
        failed = sum(not r.ok for r in done)
        if failed:
            log.warning("%s: %d of %d deliveries failed", self.id, failed, len(done))
        return done

    def _failure(self, delivery: Delivery, key: str, exc: BaseException) -> Result:
        # A failed publish pauses its ordering key; resume it so a later attempt is not refused.
        # RuntimeError: not paused (any more); an earlier failure of the same key resumed it.
        with contextlib.suppress(RuntimeError, ValueError):
            self._client.resume_publish(self._topic, key)
        if _behind_failed_publish(exc):
            # Never sent: the client dropped it to keep the key's order. Held back, not attempted,
            # so a newer version queued behind a failed one neither dies nor spends an attempt.
            return Result.held_back(
                delivery.version, f"{self.id}: not published: an earlier message of the finding failed first"
            )
        name = type(exc).__name__
        permanent = name not in _PUBSUB_RETRYABLE
        return Result.failure(delivery.version, f"{self.id}: Pub/Sub publish failed ({name})", permanent=permanent)

    def close(self) -> None:
        """Flush and stop the publisher's background batching."""
        self._client.stop()


class SqsRelay:
    """Sends findings to one SQS queue (standard or FIFO) with SendMessageBatch."""

    family: SinkFamily = FAMILY

    def __init__(self, sink_id: str, *, queue_url: str, client: Any) -> None:
        self.id = sink_id
        self._queue_url = queue_url
        self._client = client
        self._fifo = queue_url.endswith(".fifo")

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Send in batches of at most 10 entries and 256 KiB; one Result per delivery, in order."""
        results: dict[int, Result] = {}
        entries: list[tuple[int, dict[str, Any], int]] = []
        for i, delivery in enumerate(deliveries):
            try:
                entry = sqs_entry(delivery, str(i), fifo=self._fifo)
            except (KeyError, TypeError, ValueError) as exc:
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: cannot render the finding ({type(exc).__name__})", permanent=True
                )
                continue
            size = sqs_size(entry)
            if size > SQS_BATCH_BYTES:
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: message of {size} bytes exceeds SQS's 256 KiB", permanent=True
                )
                continue
            entries.append((i, entry, size))
        batch: list[tuple[int, dict[str, Any], int]] = []
        for item in entries:
            if batch and (len(batch) == SQS_BATCH_ENTRIES or sum(s for _, _, s in batch) + item[2] > SQS_BATCH_BYTES):
                results.update(self._send_batch(batch, deliveries))
                batch = []
            batch.append(item)
        if batch:
            results.update(self._send_batch(batch, deliveries))
        done = [results[i] for i in range(len(deliveries))]
        failed = sum(not r.ok for r in done)
        if failed:
            log.warning("%s: %d of %d deliveries failed", self.id, failed, len(done))
        return done

    def _send_batch(
        self, batch: Sequence[tuple[int, dict[str, Any], int]], deliveries: Sequence[Delivery]
    ) -> dict[int, Result]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only SQS relays

        try:
            answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=[e for _, e, _ in batch])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            permanent = code not in _SQS_RETRYABLE and not status >= 500
            error = f"{self.id}: SQS SendMessageBatch failed ({code})"
            return {i: Result.failure(deliveries[i].version, error, permanent=permanent) for i, _, _ in batch}
        except BotoCoreError as exc:
            # Connection errors and timeouts: nothing was refused, try again later.
            error = f"{self.id}: SQS unreachable ({type(exc).__name__})"
            return {i: Result.failure(deliveries[i].version, error) for i, _, _ in batch}
        out: dict[int, Result] = {}
        for ok in answer.get("Successful", []):
            i = int(ok["Id"])
            out[i] = Result.success(deliveries[i].version, message_ref=ok.get("MessageId"))
        for bad in answer.get("Failed", []):
            i = int(bad["Id"])
            code = str(bad.get("Code", "Unknown"))
            permanent = bool(bad.get("SenderFault")) and code not in _SQS_RETRYABLE
            out[i] = Result.failure(
                deliveries[i].version, f"{self.id}: SQS refused the message ({code})", permanent=permanent
            )
        for i, _, _ in batch:
            # An entry SQS did not mention is unknown: send it again (the key drops a duplicate).
            out.setdefault(i, Result.failure(deliveries[i].version, f"{self.id}: SQS did not report on the message"))
        return out

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()


def _timeout(settings: Mapping[str, Any], where: str) -> float:
    return seconds(settings, "timeout", where, DEFAULT_TIMEOUT, minimum=0.5, maximum=300)


def _host(endpoint: str) -> str | None:
    """The host of a `host:port` (`[::1]:8085` gives `::1`), lower case; None when it has none."""
    try:
        return urlsplit(f"//{endpoint}").hostname
    except ValueError:  # an unbalanced bracket
        return None


def _pubsub(sink_id: str, settings: Mapping[str, Any], where: str) -> PubSubRelay:
    topic = settings.get("topic")
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise ConfigError(f"{where}.topic: use the full topic name, projects/<project>/topics/<topic>")
    endpoint = settings.get("endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d+", endpoint)
    ):
        raise ConfigError(f"{where}.endpoint: use host:port of a Pub/Sub emulator, e.g. 127.0.0.1:8085")
    if endpoint is not None and _host(endpoint) not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"{where}.endpoint: the emulator endpoint is spoken to in plaintext gRPC (no TLS);"
            f" only a loopback host is accepted ({', '.join(sorted(LOOPBACK_HOSTS))})"
        )
    from google.cloud import pubsub_v1  # noqa: PLC0415 - about 0.6 s: only Pub/Sub relays pay for it

    options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    if endpoint is None:
        client = pubsub_v1.PublisherClient(publisher_options=options)
    else:
        # The emulator speaks plaintext gRPC and takes no credentials, as PUBSUB_EMULATOR_HOST
        # would arrange, without changing the process environment.
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport  # noqa: PLC0415

        transport = PublisherGrpcTransport(channel=grpc.insecure_channel(endpoint))
        client = pubsub_v1.PublisherClient(publisher_options=options, transport=transport)
    return PubSubRelay(sink_id, topic=topic, client=client, timeout=_timeout(settings, where))


def _sqs(sink_id: str, settings: Mapping[str, Any], where: str) -> SqsRelay:
    queue_url = settings.get("queue_url")
    parts = urlsplit(queue_url) if isinstance(queue_url, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or parts.path.count("/") != 2:
        raise ConfigError(f"{where}.queue_url: use the queue URL, https://sqs.<region>.amazonaws.com/<account>/<queue>")
    require_https(queue_url, f"{where}.queue_url")
    region = settings.get("region")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ConfigError(f"{where}.region: use an AWS region name, e.g. eu-west-1")
    endpoint_url = settings.get("endpoint_url")
    if endpoint_url is not None:
        endpoint_url = require_https(endpoint_url, f"{where}.endpoint_url")
    timeout = _timeout(settings, where)
    import boto3  # noqa: PLC0415 - only SQS relays pay for boto3
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    client = boto3.client("sqs", region_name=region, endpoint_url=endpoint_url, config=config)
    return SqsRelay(sink_id, queue_url=str(queue_url), client=client)


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> PubSubRelay | SqsRelay:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Pub/Sub: `topic = "projects/P/topics/T"`, optional `endpoint` (an emulator's host:port).
    SQS: `queue_url`, `region`, optional `endpoint_url`. Both: optional `timeout` (seconds).
    Credentials come from the platform (Application Default Credentials, the AWS chain).
    """
    where = f"sinks.{sink_id}"
    has_topic, has_queue = settings.get("topic") is not None, settings.get("queue_url") is not None
    if has_topic == has_queue:
        raise ConfigError(f"{where}.topic: set either topic (Pub/Sub) or queue_url (SQS), not both or neither")
    return _pubsub(sink_id, settings, where) if has_topic else _sqs(sink_id, settings, where)
