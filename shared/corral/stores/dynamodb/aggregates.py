"""Counts, the per-day trend and the newest finding per coverage cell, as maintained aggregate items.

DynamoDB has no GROUP BY, and counting by reading every finding grows with the table. So every
upsert folds what its writes changed into a few aggregate items, and readers sum those:

| item                   | pk      | sk                          | attribute                  |
| ---------------------- | ------- | --------------------------- | -------------------------- |
| findings by state      | `A#nn`  | `N#["cloud",sev,status,closed]` | `n`: count (ADD)       |
| first seen per day     | `A#nn`  | `T1#<day start, 13 digits>` | `n`: count (ADD)           |
| last seen per day      | `A#nn`  | `T2#<day start, 13 digits>` | `n`: count (ADD)           |
| newest per cell, source | `A#nn` | `C#["service","layer","task","product","cloud"]` | `ls`: max last seen |

A batch adds its deltas to one of `SHARDS` aggregate partitions picked at random, so that
aggregate writes spread like the listing index's; a read queries all of them (strongly
consistent) and sums. A batch costs one `UpdateItem` per distinct item it touches (tens for 500
findings), and counts are atomic `ADD`s. The newest finding per cell only moves forward (a
conditional `SET`), so a cell keeps its last finding's time after that finding expires. Counts
are exact as long as every write's aggregate update lands: a process that dies between a finding's
put and the update leaves them off by that finding, until `migrate()` recounts (it rebuilds the
aggregates from the findings when their version is older than the store's).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from corral.records import NamedTuple
from corral.stores._shared import CLOUD_NAMES, canonical
from corral.stores.base import CountRow, EvidenceKey, FindingQuery, PlaceCount, TrendDay, finding_id
from corral.stores.dynamodb.items import (
    SHARDS,
    Item,
    State,
    aggregate_pk,
    as_n,
    as_s,
    day_of,
    get_n,
    get_s,
    id_pk,
    listing_pk,
    listing_sk,
    time_key,
)
from corral.stores.dynamodb.table import Table
from corral.vocabulary import CORRAL_PRODUCT


class Written(NamedTuple):
    """One finding item put by an upsert, with the state it replaced (None: it was new)."""

    key: tuple[str, str, str]
    before: State | None
    item: Item


class Deltas(NamedTuple):
    """What a set of writes (or deletions) changes in the aggregates."""

    counts: Counter[tuple[str, int, int, bool]]
    first: Counter[int]
    last: Counter[int]
    cells: dict[EvidenceKey, int]

    @classmethod
    def empty(cls) -> Deltas:
        """No change."""
        return cls(Counter(), Counter(), Counter(), {})


def cell_of(item: Mapping[str, Any]) -> EvidenceKey | None:
    """Return the (cell, product, cloud) a finding item counts for, or None (unclassified, sample, Corral's own)."""
    if "cs" not in item or "ly" not in item or "tk" not in item or "sm" in item:
        return None
    product = get_s(item, "kp")
    if product == CORRAL_PRODUCT:
        return None
    return get_s(item, "cs"), get_s(item, "ly"), get_s(item, "tk"), product, get_s(item, "c")


def deltas_of(written: Iterable[Written]) -> Deltas:
    """Fold writes into aggregate deltas (pure): a new finding counts once, a change moves its counts."""
    found = Deltas.empty()
    for w in written:
        item = w.item
        cloud = get_s(item, "c")
        state = (cloud, get_n(item, "sev"), get_n(item, "st"), bool(item["cl"]["BOOL"]))
        last_day = day_of(get_n(item, "ls"))
        if w.before is None:
            found.counts[state] += 1
            found.first[day_of(get_n(item, "fs"))] += 1
            found.last[last_day] += 1
        else:
            snapshot = w.before.snapshot
            old = (cloud, snapshot.severity_id, snapshot.status_id, snapshot.closed)
            if old != state:
                found.counts[old] -= 1
                found.counts[state] += 1
            old_day = day_of(w.before.last_seen)
            if old_day != last_day:
                found.last[old_day] -= 1
                found.last[last_day] += 1
        cell = cell_of(item)
        if cell is not None:
            found.cells[cell] = max(found.cells.get(cell, 0), get_n(item, "ls"))
    return found


def removed(items: Iterable[Mapping[str, Any]]) -> Deltas:
    """Return the deltas of deleting finding items (pure); the newest per cell stays."""
    found = Deltas.empty()
    for item in items:
        found.counts[(get_s(item, "c"), get_n(item, "sev"), get_n(item, "st"), bool(item["cl"]["BOOL"]))] -= 1
        found.first[day_of(get_n(item, "fs"))] -= 1
        found.last[day_of(get_n(item, "ls"))] -= 1
    return found


def _json(value: Sequence[Any]) -> str:
    return orjson.dumps(list(value)).decode()


# The filters the state counts answer (reset to compare the rest with an unfiltered query).
_AGGREGATE_FILTERS: Final[dict[str, Any]] = {
    "cloud": None,
    "severity_id": None,
    "severity_at_least": None,
    "status_id": None,
    "open_only": False,
    "limit": 100,
    "cursor": None,
}
_BARE: Final = FindingQuery()


CELLS_BY_SOURCE_VERSION: Final = 5
"""The table schema version from which the newest finding per cell is kept per product and cloud:
older tables get their aggregates rebuilt by `migrate()`."""


class Aggregates(Table):
    """Maintained aggregate items: written by upserts and expiry, read by counts, trend and coverage."""

    def _aggregate(self, written: Sequence[Written]) -> None:
        """Add the deltas of an upsert's writes to one aggregate partition."""
        self._apply(deltas_of(written))

    def _apply(self, deltas: Deltas, shard: int | None = None) -> None:
        pk = as_s(aggregate_pk(random.randrange(SHARDS) if shard is None else shard))  # noqa: S311 - spreading, not secrecy
        adds = [(f"N#{_json(k)}", n) for k, n in deltas.counts.items() if n]
        adds += [(f"T1#{time_key(day)}", n) for day, n in deltas.first.items() if n]
        adds += [(f"T2#{time_key(day)}", n) for day, n in deltas.last.items() if n]
        updates: list[dict[str, Any]] = [
            {
                "Key": {"pk": pk, "sk": as_s(sk)},
                "UpdateExpression": "ADD #n :n",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":n": as_n(n)},
            }
            for sk, n in adds
        ]
        updates += [
            {
                "Key": {"pk": pk, "sk": as_s(f"C#{_json(cell)}")},
                "UpdateExpression": "SET #ls = :ls",
                "ConditionExpression": "attribute_not_exists(#ls) OR #ls < :ls",
                "ExpressionAttributeNames": {"#ls": "ls"},
                "ExpressionAttributeValues": {":ls": as_n(last_seen)},
            }
            for cell, last_seen in deltas.cells.items()
        ]
        self._pool_map(lambda params: self._if("update_item", **params), updates)

    def _upgrade(self, version: int) -> None:
        """From an older version: move findings onto the listing shards, add id pointers, rebuild the aggregates.

        One scan of the finding items without their documents; safe to run again (every step is
        idempotent, and the aggregates are rebuilt from scratch each time).
        """
        super()._upgrade(version)
        if version == 0 or version >= CELLS_BY_SOURCE_VERSION:
            return
        for n in range(SHARDS):
            self._batch_write(
                [
                    {"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}}
                    for i in self._partition(aggregate_pk(n), ProjectionExpression="pk, sk")
                ]
            )
        params: dict[str, Any] = {
            "FilterExpression": "sk = :f",
            "ExpressionAttributeValues": {":f": as_s("F")},
            "ProjectionExpression": "pk, kp, ka, kf, c, sev, st, cl, fs, ls, cs, ly, tk, sm",
            "ConsistentRead": True,
        }
        total = Deltas.empty()
        while True:
            response = self._call("scan", **params)
            items = response.get("Items", [])
            self._pool_map(self._reshard, items)
            found = deltas_of(Written((get_s(i, "kp"), get_s(i, "ka"), get_s(i, "kf")), None, i) for i in items)
            total.counts.update(found.counts)
            total.first.update(found.first)
            total.last.update(found.last)
            for cell, at in found.cells.items():
                total.cells[cell] = max(total.cells.get(cell, 0), at)
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        self._apply(total, shard=0)

    def _reshard(self, item: Item) -> None:
        key = (get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf"))
        fid = finding_id(key)
        pk = get_s(item, "pk")
        # Conditional on the item still being there: an expiry that raced the scan wins.
        self._if(
            "update_item",
            Key={"pk": as_s(pk), "sk": as_s("F")},
            UpdateExpression="SET g1pk = :p, g1sk = :s",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":p": as_s(listing_pk(pk)),
                ":s": as_s(listing_sk(get_n(item, "ls"), fid)),
            },
        )
        self._batch_write([{"PutRequest": {"Item": {"pk": as_s(id_pk(fid)), "sk": as_s(fid), "f": as_s(pk)}}}])

    def _aggregate_items(self) -> list[Item]:
        """Read every aggregate partition (one query each, in parallel)."""
        return self._partitions([aggregate_pk(n) for n in range(SHARDS)])

    def _state_counts(self) -> Counter[tuple[str, int, int, bool]]:
        tally: Counter[tuple[str, int, int, bool]] = Counter()
        for item in self._aggregate_items():
            sk = get_s(item, "sk")
            if sk.startswith("N#"):
                cloud, sev, status, closed = orjson.loads(sk[2:])
                tally[(str(cloud), int(sev), int(status), bool(closed))] += get_n(item, "n")
        return tally

    def counts(self) -> list[CountRow]:
        """Return finding counts by cloud, severity and status, summed over the aggregate partitions."""
        tally: Counter[tuple[str, int, int]] = Counter()
        for (cloud, sev, status, _), n in self._state_counts().items():
            tally[(cloud, sev, status)] += n
        return [CountRow(c, sev, st, n) for (c, sev, st), n in sorted(tally.items()) if n > 0]

    def _counted(self, query: FindingQuery) -> int | None:
        """Count a query from the aggregate items when it filters only on what they are kept by; else None.

        The finding list counts each severity band of the open findings this way: 16 small reads
        instead of the listing index.
        """
        if query._replace(**_AGGREGATE_FILTERS) != _BARE:
            return None
        cloud = None if query.cloud is None else canonical(query.cloud, CLOUD_NAMES)
        low = None if query.severity_at_least is None else max(query.severity_at_least, 1)
        return sum(
            n
            for (c, sev, status, closed), n in self._state_counts().items()
            if (cloud is None or c == cloud)
            and (query.severity_id is None or sev == query.severity_id)
            and (low is None or low <= sev <= 6)
            and (query.status_id is None or status == query.status_id)
            and not (query.open_only and closed)
        )

    def latest_per_cell(self, since: int, keys: Sequence[EvidenceKey]) -> dict[EvidenceKey, int]:
        """Return the newest last_seen of each (cell, product, cloud) key at or after `since` (aggregate items)."""
        wanted = set(keys)
        latest: dict[EvidenceKey, int] = {}
        for item in self._aggregate_items():
            sk = get_s(item, "sk")
            if sk.startswith("C#") and "ls" in item:
                parts = orjson.loads(sk[2:])
                if len(parts) != 5:  # kept per cell alone, before version 5: rebuilt by migrate()
                    continue
                key: EvidenceKey = (str(parts[0]), str(parts[1]), str(parts[2]), str(parts[3]), str(parts[4]))
                if key in wanted:
                    latest[key] = max(latest.get(key, 0), get_n(item, "ls"))
        return {key: at for key, at in latest.items() if at >= since}

    def place_counts(self, service: str, since: int) -> list[PlaceCount] | None:
        """None: the aggregate items count per cell and per day, not per cluster, so the caller samples."""
        return None

    def trend(self, since: int) -> list[TrendDay]:
        """Return findings first seen and last seen per UTC day from `since` on (from the aggregate items)."""
        first: Counter[int] = Counter()
        last: Counter[int] = Counter()
        for item in self._aggregate_items():
            sk = get_s(item, "sk")
            if sk.startswith(("T1#", "T2#")):
                day = int(sk[3:])
                if day >= since:
                    (first if sk.startswith("T1#") else last)[day] += get_n(item, "n")
        days = sorted(d for d in first.keys() | last.keys() if first[d] > 0 or last[d] > 0)
        return [TrendDay(day, first[day], last[day]) for day in days]
