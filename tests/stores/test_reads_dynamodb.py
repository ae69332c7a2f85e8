"""DynamoDB read layout on moto_server: listing shards, a page per shard, aggregates, old tables upgraded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from corral.stores import dynamodb
from corral.stores.base import FindingQuery, MatchCount
from corral.stores.dynamodb import DynamoDBStore
from corral.stores.dynamodb.items import SHARDS, listing_partitions
from tests.stores.factory import BASE_TIME, make_finding
from tests.stores.test_dynamodb_specific import dynamo_store, raw_client, table_url

pytestmark = pytest.mark.integration

T = BASE_TIME


@pytest.fixture
def ddb(moto_server: str) -> Iterator[DynamoDBStore]:
    """A migrated DynamoDB store on a fresh table."""
    store = dynamo_store(table_url(moto_server))
    store.migrate()
    yield store
    store.close()


def scan(moto_server: str, table: str) -> list[dict[str, Any]]:
    """Every item of the table, read behind the store's back."""
    client = raw_client(moto_server)
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table}
    while True:
        response = client.scan(**params)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def queries(store: DynamoDBStore) -> list[dict[str, Any]]:
    """Record the parameters and item counts of every Query the store sends from now on."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    def answered(parsed: dict[str, Any], **_: Any) -> None:
        for entry in reversed(sent):
            if "returned" not in entry:
                entry["returned"] = parsed.get("Count", 0)
                break

    store.client.meta.events.register("provide-client-params.dynamodb.Query", record)
    store.client.meta.events.register("after-call.dynamodb.Query", answered)
    return sent


def test_a_thousand_findings_spread_over_every_listing_shard(ddb: DynamoDBStore, moto_server: str) -> None:
    """Writes of 1,000 findings go to at least 8 (here all 16) index partition keys, none holding most."""
    for start in range(0, 1000, 250):
        ddb.upsert([make_finding(f"w{i:04d}") for i in range(start, start + 250)], now=T + start)
    findings = [i for i in scan(moto_server, ddb.table) if i["sk"]["S"] == "F"]
    per_key = Counter(i["g1pk"]["S"] for i in findings)
    assert len(findings) == 1000
    assert len(per_key) >= 8
    assert set(per_key) <= set(listing_partitions())
    assert max(per_key.values()) < 1000 / SHARDS * 2


def test_first_page_reads_at_most_one_page_per_shard(ddb: DynamoDBStore) -> None:
    """An unfiltered first page is one Query of limit + 1 items per listing partition and one BatchGetItem."""
    ddb.upsert([make_finding(f"p{i:03d}") for i in range(200)], now=T)
    ddb.upsert([make_finding(f"q{i:03d}") for i in range(200)], now=T + 1)
    sent = queries(ddb)
    page = ddb.query(FindingQuery(limit=20))
    assert len(page.items) == 20 and page.next_cursor is not None
    assert all(f.last_seen == T + 1 for f in page.items)
    partitions = Counter(q["ExpressionAttributeValues"][":p"]["S"] for q in sent)
    assert set(partitions) == set(listing_partitions())
    assert max(partitions.values()) == 1
    assert all(q["Limit"] == 21 and q["returned"] <= 21 for q in sent)


def test_pages_across_shards_come_in_one_order(ddb: DynamoDBStore) -> None:
    """Paging through every shard gives each finding once, newest last seen first."""
    for batch in range(5):
        ddb.upsert([make_finding(f"o{batch}-{i}") for i in range(30)], now=T + batch)
    seen: list[tuple[int, str]] = []
    cursor = None
    while True:
        page = ddb.query(FindingQuery(limit=17, cursor=cursor))
        seen += [(f.last_seen, f.id) for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 150 and len(set(seen)) == 150
    assert seen == sorted(seen, reverse=True)


def test_aggregates_spread_over_partitions_and_count_exactly(ddb: DynamoDBStore, moto_server: str) -> None:
    """Batches add their deltas to random aggregate partitions; the sums are exact."""
    for batch in range(24):
        ddb.upsert([make_finding(f"a{batch}-{i}", severity_id=1 + i % 5) for i in range(10)], now=T + batch)
    partitions = {i["pk"]["S"] for i in scan(moto_server, ddb.table) if i["pk"]["S"].startswith("A#")}
    assert len(partitions) > 4
    assert sum(r.count for r in ddb.counts()) == 240
    assert {r.severity_id: r.count for r in ddb.counts()} == dict.fromkeys(range(1, 6), 48)
    sent = queries(ddb)
    # Severity bands of open findings (the finding list's counts) come from the aggregate items.
    assert ddb.count(FindingQuery(severity_id=5, open_only=True)) == MatchCount(48)
    assert ddb.count(FindingQuery(cloud="aws", severity_at_least=4)) == MatchCount(96)
    assert all(q.get("IndexName") is None for q in sent)
    # Other filters read the listing index, and may stop early.
    assert ddb.count(FindingQuery(account="111122223333"), at_most=100) == MatchCount(100, exact=False)
    assert any(q.get("IndexName") == dynamodb.INDEX for q in sent)


def test_migrate_upgrades_a_version_1_table(ddb: DynamoDBStore, moto_server: str) -> None:
    """A table written before sharding (one F partition, no pointers or aggregates) is upgraded in place."""
    ddb.upsert([make_finding(f"v{i}", severity_id=4) for i in range(30)], now=T)
    client = raw_client(moto_server)
    for item in scan(moto_server, ddb.table):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk.startswith(("A#", "I#")):
            client.delete_item(TableName=ddb.table, Key={"pk": item["pk"], "sk": item["sk"]})
        elif sk == "F":
            client.update_item(
                TableName=ddb.table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET g1pk = :f, g1sk = :t",
                ExpressionAttributeValues={":f": {"S": "F"}, ":t": {"S": f"{T:013d}"}},
            )
    client.put_item(TableName=ddb.table, Item={"pk": {"S": "META"}, "sk": {"S": "schema"}, "sv": {"N": "1"}})
    # Before the upgrade the legacy partition is still listed.
    assert len(ddb.query(FindingQuery(limit=100)).items) == 30
    ddb.migrate()
    keys = {i["g1pk"]["S"] for i in scan(moto_server, ddb.table) if i["sk"]["S"] == "F"}
    assert "F" not in keys and len(keys) > 4
    assert [(r.severity_id, r.count) for r in ddb.counts()] == [(4, 30)]
    assert [f.key[2] for f in ddb.find("v7")] == ["v7"]
    meta = client.get_item(TableName=ddb.table, Key={"pk": {"S": "META"}, "sk": {"S": "schema"}})["Item"]
    assert meta["sv"] == {"N": str(dynamodb.SCHEMA_VERSION)}
    ddb.migrate()  # a second run changes nothing
    assert [(r.severity_id, r.count) for r in ddb.counts()] == [(4, 30)]
