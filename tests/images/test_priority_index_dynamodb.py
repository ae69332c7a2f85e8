"""DynamoDB's priority index on moto_server: reads stop at a page, items follow their priority, old tables get one."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from corral import inventory, priority
from corral.stores import dynamodb
from corral.stores.base import FindingQuery
from corral.stores.dynamodb import DynamoDBStore
from corral.stores.dynamodb.images import BY_PRIORITY
from corral.stores.dynamodb.items import SHARDS
from tests.images.support import RECEIVED, registry_cve
from tests.stores.test_dynamodb_specific import raw_client
from tests.stores.test_reads_dynamodb import ddb, queries, scan

pytestmark = pytest.mark.integration
__all__ = ["ddb"]  # the migrated store on a fresh table, as the store read tests have it

REPO = "shopacr.azurecr.io/shop/web"


def image(n: int) -> str:
    return f"sha256:{n:064x}"


def vulnerabilities(store: DynamoDBStore, count: int) -> dict[str, inventory.Vulnerable]:
    """`count` open Vulnerability Findings, one image each, stored and recorded; their facts by uid."""
    findings = [registry_cve(f"v{n:03d}", image(n), REPO, tag=str(n)) for n in range(count)]
    store.upsert(findings, now=RECEIVED)
    store.record_images([inventory.observe(f) for f in findings])
    return {r.key[2]: r.vulnerable for r in store.image_vulnerabilities()}


def given(score: int, *, running: bool = False) -> priority.Priority:
    if running:
        return priority.Priority(3 if score >= 50 else 2, score, "running", False, "running")
    return priority.Priority(3 if score >= 50 else 2, score, "registry_only", False, "registry only")


def index_items(moto_server: str, table: str) -> list[dict[str, Any]]:
    return [i for i in scan(moto_server, table) if i["pk"]["S"].startswith(BY_PRIORITY)]


def test_the_first_page_reads_one_page_of_the_index(ddb: DynamoDBStore, moto_server: str) -> None:
    """Five most urgent of 300: a query per index shard, spread over every shard, and no read of every vulnerability."""
    facts = vulnerabilities(ddb, 300)
    ddb.set_image_priorities([(facts[uid], given(n % 100)) for n, uid in enumerate(sorted(facts))])
    assert len({i["pk"]["S"] for i in index_items(moto_server, ddb.table)}) == SHARDS
    sent = queries(ddb)
    found = [f.key[2] for f in ddb.prioritized(FindingQuery(limit=5), least_id=1, running=False)]
    assert found == ["v099", "v199", "v299", "v098", "v198"]
    partitions = [q["ExpressionAttributeValues"][":pk"]["S"] for q in sent if ":pk" in q["ExpressionAttributeValues"]]
    assert "IK" not in partitions and not any(p.startswith("IV#") for p in partitions)
    shards = [f"{BY_PRIORITY}{n:02d}" for n in range(SHARDS)]
    assert sorted(p for p in partitions if p.startswith(BY_PRIORITY)) == shards
    assert ddb.ranked_image_digests(2) == [image(99), image(199)]


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        (FindingQuery(account="someone-else"), 0),
        (FindingQuery(source="aws.inspector2"), 0),
        (FindingQuery(account="00000000-*", source="microsoft.defender_for_cloud", limit=4), 4),
    ],
)
def test_filters_a_finding_key_answers_cost_no_read_of_a_finding(
    ddb: DynamoDBStore, query: FindingQuery, listed: int
) -> None:
    """Account and source are in each index item's key: candidates they rule out are never read."""
    facts = vulnerabilities(ddb, 40)
    ddb.set_image_priorities([(facts[uid], given(n + 10)) for n, uid in enumerate(sorted(facts))])
    sent = queries(ddb)
    found = ddb.prioritized(query, least_id=1, running=False)
    assert [f.key[2] for f in found] == [f"v{n:03d}" for n in range(39, 39 - listed, -1)]
    reads = [q for q in sent if q["ExpressionAttributeValues"].get(":sk") == {"S": "F"}]
    assert len(reads) == listed


def test_running_and_least_priority_filter_the_index(ddb: DynamoDBStore) -> None:
    facts = vulnerabilities(ddb, 6)
    rows = [(facts[f"v{n:03d}"], given(10 * n + 20, running=n % 2 == 0)) for n in range(6)]
    ddb.set_image_priorities(rows)
    running = ddb.prioritized(FindingQuery(), least_id=1, running=True)
    assert [f.key[2] for f in running] == ["v004", "v002", "v000"]
    high = ddb.prioritized(FindingQuery(), least_id=3, running=False)
    assert [f.key[2] for f in high] == ["v005", "v004", "v003"]


def test_a_new_priority_replaces_its_index_item(ddb: DynamoDBStore, moto_server: str) -> None:
    facts = vulnerabilities(ddb, 2)
    ddb.set_image_priorities([(facts["v000"], given(70)), (facts["v001"], given(40))])
    ddb.set_image_priorities([(facts["v000"], given(30))])
    ddb.set_image_priorities([(facts["v000"], given(30))])  # the same again: still one item
    assert sorted(i["sk"]["S"][:4] for i in index_items(moto_server, ddb.table)) == ["0960", "0970"]
    assert [f.key[2] for f in ddb.prioritized(FindingQuery(), least_id=1, running=False)] == ["v001", "v000"]


def test_an_index_item_its_vulnerability_no_longer_names_is_skipped(ddb: DynamoDBStore, moto_server: str) -> None:
    """What a crash between the index write and the vulnerability's leaves behind is never read as a priority."""
    facts = vulnerabilities(ddb, 2)
    ddb.set_image_priorities([(facts["v000"], given(40)), (facts["v001"], given(60))])
    (item,) = [i for i in index_items(moto_server, ddb.table) if i["k"]["S"].endswith('"v000"]')]
    stale = {**item, "sk": {"S": "0901#" + item["k"]["S"]}, "pid": {"N": "4"}}
    raw_client(moto_server).put_item(TableName=ddb.table, Item=stale)
    assert [f.key[2] for f in ddb.prioritized(FindingQuery(), least_id=1, running=False)] == ["v001", "v000"]
    assert [f.key[2] for f in ddb.prioritized(FindingQuery(), least_id=4, running=False)] == []
    assert ddb.ranked_image_digests(5) == [image(1), image(0)]


def test_concurrent_writers_leave_the_vulnerability_its_index_item(ddb: DynamoDBStore) -> None:
    """Eight writers setting priorities of one vulnerability at once: it is listed once, at its stored score."""
    facts = vulnerabilities(ddb, 1)
    barrier = threading.Barrier(8)

    def write(seed: int) -> None:
        picks = random.Random(seed)
        barrier.wait()
        for _ in range(15):
            ddb.set_image_priorities([(facts["v000"], given(picks.randrange(101)))])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (stored,) = ddb.image_vulnerabilities()
    assert stored.priority is not None
    listed = list(ddb.by_priority())
    assert [(r.key, r.priority) for r in listed] == [(stored.key, stored.priority)]


def test_migrate_indexes_the_priorities_of_a_version_3_table(ddb: DynamoDBStore, moto_server: str) -> None:
    facts = vulnerabilities(ddb, 3)
    ddb.set_image_priorities([(facts["v000"], given(20)), (facts["v002"], given(90))])
    client = raw_client(moto_server)
    for item in scan(moto_server, ddb.table):
        if item["pk"]["S"].startswith(BY_PRIORITY):
            client.delete_item(TableName=ddb.table, Key={"pk": item["pk"], "sk": item["sk"]})
        elif item["pk"]["S"].startswith("IV#"):
            client.update_item(
                TableName=ddb.table, Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="REMOVE ps, pt"
            )
    client.put_item(TableName=ddb.table, Item={"pk": {"S": "META"}, "sk": {"S": "schema"}, "sv": {"N": "3"}})
    assert ddb.prioritized(FindingQuery(), least_id=1, running=False) == []
    ddb.migrate()
    ddb.migrate()  # a second run changes nothing
    assert [f.key[2] for f in ddb.prioritized(FindingQuery(), least_id=1, running=False)] == ["v002", "v000"]
    assert len(index_items(moto_server, ddb.table)) == 2
    meta = client.get_item(TableName=ddb.table, Key={"pk": {"S": "META"}, "sk": {"S": "schema"}})["Item"]
    assert meta["sv"] == {"N": str(dynamodb.SCHEMA_VERSION)}
