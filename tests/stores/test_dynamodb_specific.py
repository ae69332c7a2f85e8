"""DynamoDB-only store behaviour: the table and index `migrate()` makes, what items look like,
large documents, outages, and how many round trips a batch costs. All against a real moto_server."""

from __future__ import annotations

import base64
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest

from corral import inventory, ocsf
from corral.errors import ConfigError, PermanentError, StoreUnavailableError
from corral.stores import dynamodb, open_store
from corral.stores.base import DeadLetter, LedgerEntry
from corral.stores.dynamodb import DynamoDBStore
from tests.images.support import RECEIVED, digest, runtime_alert
from tests.stores.factory import BASE_TIME, make_finding
from tests.support.fake_http import FakeHTTPServer, Reply, refused_url
from tests.support.moto import fake_aws_credentials

pytestmark = pytest.mark.integration

T = BASE_TIME
NOW = T + 60_000


def table_url(endpoint: str, table: str | None = None) -> str:
    """Return a store URL for a fresh table name on the given endpoint."""
    return f"dynamodb://{table or 'corral-test-' + uuid.uuid4().hex}?region=us-east-1&endpoint={endpoint}"


def raw_client(endpoint: str) -> Any:
    """Return a plain boto3 client on the endpoint, to look at the table behind the store's back."""
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def dynamo_store(url: str) -> DynamoDBStore:
    """Open a store by URL and check that it is the DynamoDB one."""
    store = open_store(url)
    assert isinstance(store, DynamoDBStore)
    return store


@pytest.fixture
def ddb(moto_server: str) -> Iterator[DynamoDBStore]:
    """A migrated DynamoDB store on a fresh table."""
    store = dynamo_store(table_url(moto_server))
    store.migrate()
    yield store
    store.close()


def operations(store: DynamoDBStore) -> Counter[str]:
    """Count the store's HTTP requests by DynamoDB operation from now on (the returned Counter fills up)."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    store.client.meta.events.register("before-call.dynamodb", count)
    return seen


# Table and index ------------------------------------------------------------------------------------


def test_open_creates_nothing_and_a_missing_table_says_how_to_fix_it(moto_server: str) -> None:
    """Opening and using a store never creates its table; the error names `corral store migrate`."""
    name = "corral-test-" + uuid.uuid4().hex
    store = dynamo_store(table_url(moto_server, name))
    with pytest.raises(StoreUnavailableError, match=r"does not exist.*corral store migrate") as caught:
        store.get(("aws.guardduty", "1", "x"))
    assert "\n" not in str(caught.value)
    assert name not in raw_client(moto_server).list_tables()["TableNames"]
    store.close()


def test_migrate_creates_table_and_index_and_is_safe_twice(moto_server: str) -> None:
    """`migrate()` makes an on-demand table with the time index and records the schema version; twice is fine."""
    name = "corral-test-" + uuid.uuid4().hex
    store = dynamo_store(table_url(moto_server, name))
    store.migrate()
    store.upsert([make_finding()], now=NOW)
    store.migrate()
    described = raw_client(moto_server).describe_table(TableName=name)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    [index] = described["GlobalSecondaryIndexes"]
    assert index["IndexName"] == dynamodb.INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["g1pk", "g1sk"]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    meta = raw_client(moto_server).get_item(TableName=name, Key={"pk": {"S": "META"}, "sk": {"S": "schema"}})
    assert meta["Item"]["sv"] == {"N": str(dynamodb.SCHEMA_VERSION)}
    assert store.get(ocsf.identity(make_finding())) is not None
    store.close()


def test_migrate_refuses_a_table_with_another_key_schema(moto_server: str) -> None:
    """A table of the same name built for something else is a configuration error, not silently used."""
    name = "corral-test-" + uuid.uuid4().hex
    raw_client(moto_server).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = dynamo_store(table_url(moto_server, name))
    with pytest.raises(ConfigError, match="another key schema"):
        store.migrate()
    store.close()


# Documents -----------------------------------------------------------------------------------------


def test_large_document_round_trips_compressed(ddb: DynamoDBStore, moto_server: str) -> None:
    """A finding over 400 KB as JSON is stored gzip-compressed as Binary and comes back equal."""
    rng = random.Random(3)
    finding = make_finding("big")
    finding["unmapped"] = {
        "events": [{"seq": i, "process": rng.choice(["bash", "curl", "xmrig"]), "pad": "x" * 200} for i in range(2000)]
    }
    assert len(orjson.dumps(finding)) > 400 * 1024
    [change] = ddb.upsert([finding], now=NOW)
    assert change.kind == "new"
    stored = ddb.get(ocsf.identity(finding))
    assert stored is not None and stored.document == finding
    item = raw_client(moto_server).get_item(
        TableName=ddb.table, Key={"pk": {"S": dynamodb.finding_pk(ocsf.identity(finding))}, "sk": {"S": "F"}}
    )["Item"]
    assert "B" in item["d"]
    assert len(item["d"]["B"]) < 100 * 1024
    # A ledger row refers to its version: the finding's compressed document comes back through it.
    entry = LedgerEntry(change.version, "file:local", ocsf.identity(finding), "new", finding, created=T)
    ddb.ledger_add([entry])
    assert ddb.ledger_due(now=T) == [entry]


def test_documents_over_1_kib_are_compressed_and_smaller_ones_plain() -> None:
    """Small documents stay readable JSON strings; larger ones become gzip Binary that decodes the same."""
    small = {"a": 1}
    assert dynamodb.encode_document(small, what="t") == {"S": '{"a":1}'}
    finding = make_finding()
    assert len(orjson.dumps(finding)) > dynamodb.COMPRESS_ABOVE
    packed = dynamodb.encode_document(finding, what="t")
    assert set(packed) == {"B"} and len(packed["B"]) < len(orjson.dumps(finding))
    assert dynamodb.decode_document(packed) == finding


def test_document_too_large_even_compressed_is_permanent(ddb: DynamoDBStore) -> None:
    """A document that cannot fit an item even compressed is a permanent error, and nothing is written."""
    noise = base64.b64encode(random.Random(5).randbytes(600 * 1024)).decode()
    huge = make_finding("huge")
    huge["unmapped"] = {"blob": noise}
    with pytest.raises(PermanentError, match="item limit"):
        ddb.upsert([make_finding("fine"), huge], now=NOW)
    assert ddb.get(ocsf.identity(make_finding("fine"))) is None


# History outbox --------------------------------------------------------------------------------------


def test_history_moves_from_the_outbox_to_its_own_items(ddb: DynamoDBStore, moto_server: str) -> None:
    """A change's entry rides on the finding item until the next change copies it to an `H#` item."""
    key = ocsf.identity(make_finding())
    pk = dynamodb.finding_pk(key)
    ddb.upsert([make_finding(modified=T)], now=NOW)
    ddb.upsert([make_finding(modified=T + 1, severity_id=5)], now=NOW + 1)
    ddb.upsert([make_finding(modified=T + 1, severity_id=5)], now=NOW + 2)  # unchanged: no copy
    items = raw_client(moto_server).query(
        TableName=ddb.table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )["Items"]
    head = next(i for i in items if i["sk"]["S"] == "F")
    spilled = [i["sk"]["S"] for i in items if i["sk"]["S"].startswith("H#")]
    assert spilled == [f"H#{head['inc']['S']}#00000001"]
    assert [e["M"]["k"]["S"] for e in head["hx"]["L"]] == ["escalated"]
    assert [h.kind for h in ddb.history(key)] == ["new", "escalated"]


def test_expired_finding_seen_again_starts_a_clean_history(ddb: DynamoDBStore) -> None:
    """Expiry removes the history with the finding; the same identity later is `new` with one entry."""
    key = ocsf.identity(make_finding())
    ddb.upsert([make_finding(modified=T)], now=NOW)
    ddb.upsert([make_finding(modified=T + 1, status_id=ocsf.STATUS_RESOLVED)], now=NOW + 1)
    ddb.upsert([make_finding(modified=T + 2, status_id=ocsf.STATUS_RESOLVED, title="x")], now=NOW + 2)
    ddb.set_message_ref(key, "slack:secops", "1.2")
    assert ddb.expire_closed(NOW + 10) == 1
    assert ddb.history(key) == []
    assert ddb.message_ref(key, "slack:secops") is None
    [again] = ddb.upsert([make_finding(modified=T + 3)], now=NOW + 20)
    assert again.kind == "new"
    assert [h.kind for h in ddb.history(key)] == ["new"]


# Outages ---------------------------------------------------------------------------------------------


def test_closed_port_is_store_unavailable_in_one_line() -> None:
    """Nothing listening: after botocore's retries, a one-line StoreUnavailableError without a cause chain."""
    store = dynamo_store(table_url(refused_url("").rstrip("/"), "corral-down"))
    started = time.monotonic()
    with fake_aws_credentials(), pytest.raises(StoreUnavailableError) as caught:
        store.upsert([make_finding()], now=NOW)
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "corral-down" in message and "unreachable" in message and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert store.round_trips == 4  # botocore's standard mode: the first try and three retries
    store.close()


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_throttling_after_retries_is_store_unavailable(code: str) -> None:
    """A throttled endpoint is retried by botocore, then surfaces as StoreUnavailableError naming the code."""
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "Rate of requests exceeds the allowed"}
    with fake_aws_credentials(), FakeHTTPServer(default=Reply.json(400, body)) as server:
        store = dynamo_store(table_url(server.url, "corral-busy"))
        with pytest.raises(StoreUnavailableError, match=rf"corral-busy.*{code} after retries"):
            store.get(("aws.guardduty", "1", "x"))
        assert len(server.requests) == 4
        store.close()


def test_url_is_validated_when_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad table names, unknown parameters, a missing region and odd endpoints are config errors."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    for url, message in (
        ("dynamodb://ab?region=us-east-1", "table name"),
        ("dynamodb://corral?region=us-east-1&endpont=http://x", "unknown parameter"),
        ("dynamodb://corral", "region"),
        ("dynamodb://corral?region=us-east-1&endpoint=file:///etc", "http"),
    ):
        with pytest.raises(ConfigError, match=message):
            open_store(url)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    store = dynamo_store("dynamodb://corral")
    assert (store.table, store.region, store.endpoint) == ("corral", "eu-west-3", None)


# Cost -----------------------------------------------------------------------------------------------

BATCH = 500


def test_a_batch_of_500_reads_in_five_calls_and_writes_once_per_finding(ddb: DynamoDBStore) -> None:
    """500 findings: 5 BatchGetItem reads and one PutItem each; a change adds one BatchWriteItem per 25.

    New findings add their id pointers (25 a BatchWriteItem); each batch updates a few aggregate
    items, one UpdateItem per distinct count, day and coverage cell it moved.
    """
    first = [make_finding(f"b{i:03d}", modified=T) for i in range(BATCH)]
    calls = operations(ddb)
    before = ddb.round_trips
    assert {c.kind for c in ddb.upsert(first, now=NOW)} == {"new"}
    # One count (cloud, severity, status), first and last seen day, one cell.
    assert calls == Counter(
        {"BatchGetItem": BATCH // 100, "PutItem": BATCH, "BatchWriteItem": BATCH // 25, "UpdateItem": 4}
    )
    assert ddb.round_trips - before == BATCH // 100 + BATCH + BATCH // 25 + 4

    calls.clear()
    assert {c.kind for c in ddb.upsert(first, now=NOW + 1)} == {"unchanged"}
    # Same day, same state: only the cell's newest time moves.
    assert calls == Counter({"BatchGetItem": BATCH // 100, "PutItem": BATCH, "UpdateItem": 1})

    calls.clear()
    newer = [make_finding(f"b{i:03d}", modified=T + 1, severity_id=5) for i in range(BATCH)]
    assert {c.kind for c in ddb.upsert(newer, now=NOW + 2)} == {"escalated"}
    # The `new` entries move from the outbox to their own items: 25 per BatchWriteItem; the count
    # moves from severity 3 to 5 (two updates) and the cell's time moves.
    assert calls == Counter(
        {"BatchGetItem": BATCH // 100, "PutItem": BATCH, "BatchWriteItem": BATCH // 25, "UpdateItem": 3}
    )
    assert ddb.consumed_wcu > 0 and ddb.consumed_rcu > 0


def test_a_finding_twice_in_a_batch_is_written_once(ddb: DynamoDBStore) -> None:
    """Versions of one finding in one batch are decided in order and cost a single write."""
    calls = operations(ddb)
    batch = [make_finding(modified=T + v, severity_id=1 + v) for v in range(4)]
    assert [c.kind for c in ddb.upsert(batch, now=NOW)] == ["new", "escalated", "escalated", "escalated"]
    assert calls["PutItem"] == 1
    stored = ddb.get(ocsf.identity(batch[0]))
    assert stored is not None and (stored.versions, stored.severity_id) == (4, 4)
    assert [h.severity_id for h in ddb.history(stored.key)] == [1, 2, 3, 4]


def test_a_redelivery_fills_in_a_sighting_mirror_lost_in_a_crash(ddb: DynamoDBStore, moto_server: str) -> None:
    """A process dying between a sighting and its namespace mirror: the same delivery again writes the mirror."""
    alert = runtime_alert("ctd-1", {"uid": digest("d"), "name": "repo/app", "tag": "1"}, seen=RECEIVED)
    observed = [inventory.observe(alert)]

    def crash(params: dict[str, Any], **_: Any) -> None:
        if params["Key"]["pk"]["S"].startswith("IM#"):
            raise ConnectionError("the process died between the two writes")

    def mirrors() -> list[Any]:
        found = raw_client(moto_server).query(
            TableName=ddb.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "IM#shop"}},
        )
        return list(found["Items"])

    ddb.client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", crash)
    with pytest.raises((ConnectionError, StoreUnavailableError)):
        ddb.record_images(observed)
    ddb.client.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", crash)
    assert mirrors() == []
    assert ddb.image_evidence([digest("d")])[digest("d")].sightings  # the sighting itself was written
    ddb.record_images(observed)  # the bus delivers it again
    assert [orjson.loads(item["sk"]["S"])[0] for item in mirrors()] == [digest("d")]


def test_reads_that_fan_out_by_image_overlap_their_latencies(ddb: DynamoDBStore) -> None:
    """One partition per digest is read in parallel: the evidence of many images costs a few latencies, not one each."""
    digests = [digest(f"{n:x}") for n in range(12)]
    ddb.record_images(
        [
            inventory.observe(runtime_alert(f"ctd-{n}", {"uid": d, "name": "repo/app", "tag": str(n)}, seen=RECEIVED))
            for n, d in enumerate(digests)
        ]
    )
    expected = ddb.image_evidence(digests)
    lock, flying, most = threading.Lock(), [0], [0]

    def slow(**_: Any) -> None:  # a network latency on each request, as a region away has
        with lock:
            flying[0] += 1
            most[0] = max(most[0], flying[0])
        time.sleep(0.05)
        with lock:
            flying[0] -= 1

    ddb.client.meta.events.register("before-send.dynamodb.Query", slow)
    try:
        assert ddb.image_evidence(digests) == expected
    finally:
        ddb.client.meta.events.unregister("before-send.dynamodb.Query", slow)
    assert sorted(expected) == sorted(digests)
    assert all(e.sightings for e in expected.values())
    assert most[0] > 1


def test_a_dead_letter_whose_writer_died_is_written_by_the_next(ddb: DynamoDBStore, moto_server: str) -> None:
    """A marker claimed by a writer that died before writing its letter: the next writer of that input writes it."""
    letter = DeadLetter.of(b"{not json", at=T, reason="not JSON", ref="Records[0]")
    raw_client(moto_server).put_item(
        TableName=ddb.table, Item={"pk": {"S": "DS"}, "sk": {"S": letter.sha256}, "id": {"S": "0000-dead-writer"}}
    )
    ddb.add_dead_letters([letter])
    [written] = ddb.dead_letters()
    assert (written.id, written.reason, written.raw, written.count) == ("0000-dead-writer", "not JSON", b"{not json", 1)
    ddb.add_dead_letters([letter])  # and it counts up from there
    assert [d.count for d in ddb.dead_letters()] == [2]
