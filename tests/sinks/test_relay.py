"""The relay sink: bare OCSF bodies to the Pub/Sub emulator (ordered) and to SQS on moto_server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import ocsf
from corral.delivery import Deliverer
from corral.errors import ConfigError
from corral.sinks import build, family, relay
from corral.sinks.base import Delivery
from corral.stores import _sql, open_store
from corral.stores.base import Claim, LedgerEntry
from corral.stores.sqlite import SqliteStore
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.moto import moto_server  # noqa: F401  (the session fixture)
from tests.support.sinks import check_golden, make_delivery

SINK = "relay:hub"
EMULATOR_START = 60.0


def _versions(n: int, **finding: Any) -> list[Delivery]:
    return [make_delivery(SINK, version=f"{i:064x}", change="updated", **finding) for i in range(n)]


# --- Rendering -----------------------------------------------------------------------------------


def test_body_is_the_bare_finding() -> None:
    """The body is the OCSF finding itself, nothing added; key and change are attributes."""
    delivery = make_delivery(SINK, change="escalated", title="t\u202e\x00\uffff")
    assert orjson.loads(relay.render(delivery)) == delivery.finding
    assert relay.attributes(delivery) == {"idempotency_key": delivery.version, "change": "escalated"}
    assert b"\xef\xbf\xbf" not in relay.render(delivery)


def test_message_matches_golden() -> None:
    """Body, attributes, ordering key and FIFO ids of one delivery, byte for byte."""
    delivery = make_delivery(SINK, change="reopened")
    doc = {
        "attributes": relay.attributes(delivery),
        "ordering_key": relay.ordering_key(delivery.finding),
        "sqs_fifo_entry": {k: v for k, v in relay.sqs_entry(delivery, "0", fifo=True).items() if k != "MessageBody"},
    }
    check_golden("relay", "body.json", relay.render(delivery) + b"\n")
    check_golden("relay", "envelope.json", orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def test_ordering_key_is_the_identity_or_its_hash() -> None:
    """The ordering key joins the identity; over 1 KB it becomes a fixed-length hash."""
    delivery = make_delivery(SINK)
    assert relay.ordering_key(delivery.finding) == "|".join(ocsf.identity(delivery.finding))
    long = make_delivery(SINK, uid="é" * 600).finding
    key = relay.ordering_key(long)
    assert key == "sha256:" + relay.identity_hash(long)
    assert len(key.encode()) <= relay.ORDERING_KEY_LIMIT


def test_fifo_entry_group_and_deduplication() -> None:
    """FIFO entries group by identity hash and deduplicate by the idempotency key."""
    delivery = make_delivery(SINK, version="ab" * 32)
    entry = relay.sqs_entry(delivery, "0", fifo=True)
    assert entry["MessageGroupId"] == relay.identity_hash(delivery.finding)
    assert entry["MessageDeduplicationId"] == "ab" * 32
    assert "MessageGroupId" not in relay.sqs_entry(delivery, "0", fifo=False)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "topic"),
        ({"topic": "projects/p/topics/t", "queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q"}, "topic"),
        ({"topic": "topics/t"}, "topic"),
        ({"topic": "projects/my-project/topics/findings", "endpoint": "http://x"}, "endpoint"),
        ({"queue_url": "not a url", "region": "eu-west-1"}, "queue_url"),
        ({"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "region": "Europe"}, "region"),
        ({"queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "region": "eu-west-1", "timeout": 0}, "timeout"),
    ],
)
def test_config_errors_name_the_key(settings: dict[str, Any], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>."""
    with pytest.raises(ConfigError, match=rf"^sinks\.relay:hub\.{key}:"):
        relay.from_config(SINK, {"kind": "relay", **settings}, {})


QUEUE = "https://sqs.eu-west-1.amazonaws.com/111122223333/findings"
TOPIC = "projects/corral-test/topics/findings"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        # SQS: SendMessageBatch carries the SigV4 signature and the session token.
        ({"queue_url": QUEUE, "endpoint_url": "http://192.0.2.2:4566"}, "endpoint_url"),
        ({"queue_url": QUEUE, "endpoint_url": "http://sqs.eu-west-1.amazonaws.com"}, "endpoint_url"),
        ({"queue_url": QUEUE, "endpoint_url": "http://127.0.0.1@192.0.2.2:4566"}, "endpoint_url"),
        ({"queue_url": QUEUE, "endpoint_url": "ftp://127.0.0.1:4566"}, "endpoint_url"),
        ({"queue_url": "http://192.0.2.2/111122223333/findings"}, "queue_url"),
        ({"queue_url": "http://sqs.eu-west-1.amazonaws.com/111122223333/findings"}, "queue_url"),
        # Pub/Sub: the emulator endpoint is an insecure gRPC channel.
        ({"topic": TOPIC, "endpoint": "192.0.2.2:8085"}, "endpoint"),
        ({"topic": TOPIC, "endpoint": "pubsub.googleapis.com:443"}, "endpoint"),
        ({"topic": TOPIC, "endpoint": "0.0.0.0:8085"}, "endpoint"),
        ({"topic": TOPIC, "endpoint": "[2001:db8::1]:8085"}, "endpoint"),
        ({"topic": TOPIC, "endpoint": "[::1:8085"}, "endpoint"),
    ],
)
def test_plaintext_beyond_loopback_is_refused(settings: dict[str, Any], key: str) -> None:
    """http:// (and the emulator's plaintext gRPC) only to loopback: elsewhere a one-line error at build."""
    if "queue_url" in settings:
        settings = {"region": "eu-west-1", **settings}
    with pytest.raises(ConfigError, match=rf"^sinks\.relay:hub\.{key}: .*loopback") as caught:
        relay.from_config(SINK, {"kind": "relay", **settings}, {})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"queue_url": QUEUE, "endpoint_url": "https://sqs.eu-west-1.amazonaws.com"},
        {"queue_url": QUEUE, "endpoint_url": "http://127.0.0.1:4566"},
        {"queue_url": QUEUE, "endpoint_url": "http://localhost:4566"},
        {"queue_url": QUEUE, "endpoint_url": "http://[::1]:4566"},
        {"queue_url": "http://127.0.0.1:4566/111122223333/findings", "endpoint_url": "http://127.0.0.1:4566"},
        {"topic": TOPIC, "endpoint": "127.0.0.1:8085"},
        {"topic": TOPIC, "endpoint": "LocalHost:8085"},
        {"topic": TOPIC, "endpoint": "[::1]:8085"},
    ],
)
def test_plaintext_on_loopback_is_accepted(settings: dict[str, Any]) -> None:
    """Tests and local runs: an emulator or moto_server on loopback builds (nothing is sent at build)."""
    if "queue_url" in settings:
        settings = {"region": "eu-west-1", **settings}
    sink = relay.from_config(SINK, {"kind": "relay", **settings}, {})
    sink.close()


def test_import_is_cheap() -> None:
    """Importing corral and the relay module loads neither google.cloud.pubsub nor boto3."""
    code = (
        "import sys, corral, corral.sinks.relay; "
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.pubsub', 'boto3', 'botocore'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- SQS on moto_server --------------------------------------------------------------------------


def _queue(moto_server: str, fifo: bool) -> str:  # noqa: F811
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1", endpoint_url=moto_server)
    name = f"corral-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def _receive(moto_server: str, url: str, count: int) -> list[dict[str, Any]]:  # noqa: F811
    import boto3

    sqs = boto3.client("sqs", region_name="eu-west-1", endpoint_url=moto_server)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def _sqs_sink(moto_server: str, url: str) -> relay.SqsRelay:  # noqa: F811
    sink = relay.from_config(SINK, {"queue_url": url, "region": "eu-west-1", "endpoint_url": moto_server}, {})
    assert isinstance(sink, relay.SqsRelay)
    return sink


@pytest.mark.parametrize("fifo", [False, True])
def test_sqs_messages_arrive_with_attributes(moto_server: str, fifo: bool) -> None:  # noqa: F811
    """23 deliveries go in 3 batches; each arrives once with its body and attributes."""
    url = _queue(moto_server, fifo)
    deliveries = [
        make_delivery(SINK, version=f"{i:064x}", change="new", uid=f"finding-{i % 4}", title=f"t{i}") for i in range(23)
    ]
    sink = _sqs_sink(moto_server, url)
    results = sink.send(deliveries)
    sink.close()
    assert [r.ok for r in results] == [True] * 23
    assert all(r.message_ref for r in results)
    received = _receive(moto_server, url, 23)
    assert len(received) == 23
    by_key = {m["MessageAttributes"]["idempotency_key"]["StringValue"]: m for m in received}
    assert set(by_key) == {d.version for d in deliveries}
    for delivery in deliveries:
        message = by_key[delivery.version]
        assert orjson.loads(message["Body"]) == delivery.finding
        assert message["MessageAttributes"]["change"]["StringValue"] == "new"
        if fifo:
            assert message["Attributes"]["MessageGroupId"] == relay.identity_hash(delivery.finding)
            assert message["Attributes"]["MessageDeduplicationId"] == delivery.version


def test_sqs_batches_stay_under_256_kib(moto_server: str) -> None:  # noqa: F811
    """Six 100 KB findings need several batches; an entry over 256 KiB fails alone, permanently."""
    url = _queue(moto_server, False)
    deliveries = _versions(6, desc="d" * 100_000)
    huge = make_delivery(SINK, version="f" * 64, desc="x" * 300_000)
    sink = _sqs_sink(moto_server, url)
    sent: list[int] = []
    original = sink._client.send_message_batch

    def counting(**kwargs: Any) -> Any:
        sent.append(sum(relay.sqs_size(e) for e in kwargs["Entries"]))
        return original(**kwargs)

    sink._client.send_message_batch = counting
    results = sink.send([*deliveries[:3], huge, *deliveries[3:]])
    assert [r.ok for r in results] == [True, True, True, False, True, True, True]
    assert results[3].permanent and "256 KiB" in (results[3].error or "")
    assert len(sent) == 3 and all(size <= relay.SQS_BATCH_BYTES for size in sent)
    assert len(_receive(moto_server, url, 6)) == 6


def test_sqs_unknown_queue_is_permanent(moto_server: str) -> None:  # noqa: F811
    """A queue that does not exist fails every delivery permanently, naming the SQS error."""
    url = f"{moto_server}/123456789012/no-such-queue-{uuid.uuid4().hex[:6]}"
    results = _sqs_sink(moto_server, url).send(_versions(2))
    assert [(r.ok, r.permanent) for r in results] == [(False, True), (False, True)]
    assert "SQS SendMessageBatch failed" in (results[0].error or "")


def test_sqs_unreachable_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint where nothing listens is a retryable failure."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    sink = relay.from_config(
        SINK, {"queue_url": f"{endpoint}/1/q", "region": "eu-west-1", "endpoint_url": endpoint, "timeout": 1}, {}
    )
    results = sink.send(_versions(2))
    assert [(r.ok, r.permanent) for r in results] == [(False, False), (False, False)]
    assert "unreachable" in (results[0].error or "")


def test_registry_builds_the_relay(moto_server: str) -> None:  # noqa: F811
    """`relay` is a registered kind of the relay family."""
    sink = build(SINK, {"kind": "relay", "queue_url": f"{moto_server}/1/q", "region": "eu-west-1"}, {})
    assert isinstance(sink, relay.SqsRelay)
    assert family("relay") == "relay" == sink.family


# --- Pub/Sub emulator ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """A Pub/Sub emulator on 127.0.0.1 (gcloud beta emulators pubsub), as host:port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        process = subprocess.Popen(
            ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the Pub/Sub emulator could not start: {exc}")
        pytest.skip(f"the Pub/Sub emulator could not start (gcloud missing?): {exc}")
    try:
        deadline = time.monotonic() + EMULATOR_START
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    message = f"the Pub/Sub emulator did not listen on {port} (exit {process.poll()})"
                    if os.environ.get("CI"):
                        pytest.fail(message)
                    pytest.skip(message)
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # gcloud starts java in the same (new) session: stop the whole group we created.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _admin(endpoint: str) -> tuple[Any, Any]:
    import grpc  # type: ignore[import-untyped]
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    publisher = pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(endpoint)))
    subscriber = pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(endpoint)))
    return publisher, subscriber


def _topic(endpoint: str) -> tuple[str, str, Any]:
    publisher, subscriber = _admin(endpoint)
    name = uuid.uuid4().hex[:10]
    topic = f"projects/corral-test/topics/findings-{name}"
    subscription = f"projects/corral-test/subscriptions/hub-{name}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(
        request={"name": subscription, "topic": topic, "enable_message_ordering": True, "ack_deadline_seconds": 60}
    )
    return topic, subscription, subscriber


def _pull(subscriber: Any, subscription: str, count: int) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        answer = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=10)
        if answer.received_messages:
            got += answer.received_messages
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [m.ack_id for m in answer.received_messages]}
            )
    return got


def test_pubsub_publishes_ordered_bare_findings(pubsub_emulator: str) -> None:
    """Each message carries the bare finding, the attributes and the identity as ordering key."""
    topic, subscription, subscriber = _topic(pubsub_emulator)
    long_uid = "u" * 1500
    deliveries = [
        make_delivery(SINK, version=f"{i:064x}", change="updated", uid=f"finding-{i % 3}", title=f"v{i}")
        for i in range(9)
    ] + [make_delivery(SINK, version="e" * 64, uid=long_uid)]
    sink = relay.from_config(SINK, {"topic": topic, "endpoint": pubsub_emulator, "timeout": 10}, {})
    try:
        results = sink.send(deliveries)
    finally:
        sink.close()
    assert [r.ok for r in results] == [True] * len(deliveries), [r.error for r in results]
    assert all(r.message_ref for r in results)
    received = _pull(subscriber, subscription, len(deliveries))
    assert len(received) == len(deliveries)
    by_key = {m.message.attributes["idempotency_key"]: m.message for m in received}
    for delivery in deliveries:
        message = by_key[delivery.version]
        assert orjson.loads(message.data) == delivery.finding
        assert dict(message.attributes) == relay.attributes(delivery)
        assert message.ordering_key == relay.ordering_key(delivery.finding)
    assert by_key["e" * 64].ordering_key.startswith("sha256:")
    # Within one ordering key, versions arrive in the order they were published.
    for uid in ("finding-0", "finding-1", "finding-2"):
        titles = [
            orjson.loads(m.message.data)["finding_info"]["title"]
            for m in received
            if orjson.loads(m.message.data)["finding_info"]["uid"] == uid
        ]
        assert titles == sorted(titles, key=lambda t: int(t[1:]))


def test_pubsub_unknown_topic_is_permanent(pubsub_emulator: str) -> None:
    """Publishing to a topic that does not exist fails permanently (NotFound), and resumes the key."""
    topic = f"projects/corral-test/topics/missing-{uuid.uuid4().hex[:8]}"
    sink = relay.from_config(SINK, {"topic": topic, "endpoint": pubsub_emulator, "timeout": 5}, {})
    try:
        results = sink.send(_versions(2))
        assert [(r.ok, r.permanent) for r in results] == [(False, True), (False, True)]
        assert "NotFound" in (results[0].error or "")
        # The paused ordering key was resumed: a second attempt fails the same way, not as "paused".
        again = sink.send(_versions(1))
        assert "NotFound" in (again[0].error or "")
    finally:
        sink.close()


def test_pubsub_unreachable_is_retryable() -> None:
    """An emulator endpoint where nothing listens is a retryable failure."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = relay.from_config(
        SINK, {"topic": "projects/corral-test/topics/findings", "endpoint": f"127.0.0.1:{port}", "timeout": 1}, {}
    )
    try:
        results = sink.send(_versions(1))
    finally:
        sink.close()
    assert not results[0].ok and not results[0].permanent, results[0].error


# --- Pub/Sub: a failed ordered publish, through the Deliverer and the ledger ---------------------


class AbortingPublisher:
    """A loopback `google.pubsub.v1.Publisher` that answers ABORTED to the first Publish, then accepts.

    The emulator cannot be made to fail one call; ABORTED is a status the relay retries.
    `calls` holds each Publish call's messages as (idempotency key, ordering key).
    """

    def __init__(self) -> None:
        import grpc  # type: ignore[import-untyped]
        from google.pubsub_v1.types import PublishRequest, PublishResponse

        self.calls: list[list[tuple[str, str]]] = []

        def publish(request: Any, context: Any) -> Any:
            self.calls.append([(m.attributes["idempotency_key"], m.ordering_key) for m in request.messages])
            if len(self.calls) == 1:
                context.abort(grpc.StatusCode.ABORTED, "transient abort")
            return PublishResponse(message_ids=[f"m{len(self.calls)}-{i}" for i in range(len(request.messages))])

        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    publish,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.endpoint = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def stop(self) -> None:
        """Stop serving at once."""
        self.server.stop(None).wait(5)


def test_pubsub_version_queued_behind_a_failed_publish_is_held_back_then_sent_in_order(tmp_path: Path) -> None:
    """v2 cancelled by the client behind a failed v1 stays pending, unattempted; redriven, both go, in order.

    Two ~600 KB versions of one finding fill two client batches (1 MB each). The first Publish
    (v1) answers ABORTED; the client then cancels v2's batch with "prior ordered message failed".
    v2 was never sent: it must not be dead, nor spend an attempt, so the hub ends with v2.
    """
    now = BASE_TIME + 3_600_000
    store = open_store(f"sqlite:///{tmp_path}/ledger.db")
    server = AbortingPublisher()
    sink = relay.from_config(
        SINK, {"topic": "projects/corral-test/topics/findings", "endpoint": server.endpoint, "timeout": 5}, {}
    )
    try:
        rows: list[LedgerEntry] = []
        for n, (change, modified) in enumerate((("new", BASE_TIME), ("updated", BASE_TIME + 1_000))):
            finding = make_finding("f-1", modified=modified, title=f"v{n + 1} " + "x" * 300_000)
            [stored] = store.upsert([finding], now=now)
            entry = LedgerEntry(
                stored.version, SINK, stored.key, change, stored.finding, created=now + n, next_attempt=now
            )
            rows += store.ledger_add([entry], claim=Claim.new(now))
        v1, v2 = (r.version for r in rows)
        assert all(len(relay.render(Delivery(SINK, r.version, r.change, r.document or {}))) > 500_000 for r in rows)

        def ledger(row: LedgerEntry) -> LedgerEntry:
            assert isinstance(store, SqliteStore)
            query = f"SELECT {store._ledger_read} WHERE l.version = ? AND l.sink = ?"
            [found] = store._select(query, (row.version, row.sink))
            return _sql.ledger_entry(found)

        assert Deliverer(store, {SINK: sink}, lambda: now).deliver(rows) == {"pending": 2}
        first, second = ledger(rows[0]), ledger(rows[1])
        assert (first.state, first.attempts) == ("pending", 1)
        assert "Aborted" in (first.last_error or "")
        # v2 never reached the server: pending, no attempt spent, nothing dead-lettered.
        assert (second.state, second.attempts) == ("pending", 0), second.last_error
        assert store.dead_letters() == []
        assert [[version for version, _ in call] for call in server.calls] == [[v1]]

        later = now + 7_200_000
        due = store.ledger_due(now=later)
        assert sorted(r.version for r in due) == sorted([v1, v2])
        assert Deliverer(store, {SINK: sink}, lambda: later).deliver(due) == {"delivered": 2}
        assert [ledger(r).state for r in rows] == ["delivered", "delivered"]
        # v1 aborted once, then v1 and v2 published, in order, under the finding's ordering key.
        published = [message for call in server.calls[1:] for message in call]
        assert [version for version, _ in published] == [v1, v2]
        assert {key for _, key in published} == {relay.ordering_key(rows[0].document or {})}
    finally:
        sink.close()
        server.stop()
        store.close()


def test_only_a_cancellation_behind_a_failed_publish_is_held_back() -> None:
    """The client's "prior ordered message failed" cancellation and paused-key refusal; no other RuntimeError."""
    from google.cloud.pubsub_v1.publisher import exceptions
    from google.cloud.pubsub_v1.publisher._batch.base import BatchCancellationReason

    behind = relay._behind_failed_publish
    assert behind(RuntimeError(BatchCancellationReason.PRIOR_ORDERED_MESSAGE_FAILED.value))
    assert behind(exceptions.PublishToPausedOrderingKeyException("p|a|u"))
    assert not behind(RuntimeError(BatchCancellationReason.CLIENT_STOPPED.value))
    assert not behind(RuntimeError("Cannot publish on a stopped publisher."))
    assert not behind(ValueError(BatchCancellationReason.PRIOR_ORDERED_MESSAGE_FAILED.value))
