"""Round trips and capacity units per finding of the DynamoDB store (no throughput: moto is not DynamoDB).

5,000 findings (the SQL benchmark's realistic ones, about 3 KB of JSON each) go into a fresh table
on a `moto_server` this script starts, in batches of 500, three times: all new, the same content
again (unchanged), and a newer version of every finding (updated). For each phase it prints:

- round trips per finding: HTTP requests the store made (retries included);
- WCU and RCU per finding as moto reported them in `ConsumedCapacity`. moto reports placeholder
  units (1 per write call whatever the size, 1 per key read, nothing for index writes), so
- WCU and RCU per finding estimated with DynamoDB's on-demand rules from the items actually sent
  and stored: writes 1 unit per started KB of the larger of the old and new item, plus the index
  entry (projected attributes; a changed index key is a delete and a put); strongly consistent
  reads 1 unit per started 4 KB of the whole item (projections do not reduce it), 1 for a miss.

Run it with `python benchmarks/bench_store_dynamodb.py` or `make bench`.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BATCH = 500
FINDINGS = 5_000
NOW = 1_717_000_000_000


def attribute_size(value: Mapping[str, Any]) -> int:
    """Return the billed size of one attribute value in DynamoDB's wire format (bytes)."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = len(data.lstrip("-").replace(".", "").strip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in data.items())
    raise ValueError(f"unsized attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Return the billed size of an item: attribute names plus values."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class Estimate:
    """DynamoDB's on-demand capacity rules applied to what the store sends, item by item."""

    table: str
    index_attributes: frozenset[str]
    wcu: float = 0.0
    rcu: float = 0.0
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)
    index_keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def watch(self, client: Any) -> None:
        """Follow every call the client makes from now on."""
        client.meta.events.register("provide-client-params.dynamodb", self.on_call)

    def on_call(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        """Add the capacity one call would consume on DynamoDB."""
        if model.name == "PutItem":
            self._put(params["Item"])
        elif model.name == "BatchWriteItem":
            for request in params["RequestItems"][self.table]:
                if "PutRequest" in request:
                    self._put(request["PutRequest"]["Item"])
                else:
                    key = self._key(request["DeleteRequest"]["Key"])
                    self.wcu += math.ceil(self.sizes.pop(key, 1) / 1024)
        elif model.name == "BatchGetItem":
            for key in params["RequestItems"][self.table]["Keys"]:
                size = self.sizes.get(self._key(key))
                self.rcu += 1 if size is None else math.ceil(size / 4096)

    @staticmethod
    def _key(item: Mapping[str, Any]) -> tuple[str, str]:
        return item["pk"]["S"], item["sk"]["S"]

    def _put(self, item: Mapping[str, Any]) -> None:
        key = self._key(item)
        size = item_size(item)
        self.wcu += math.ceil(max(size, self.sizes.get(key, 0)) / 1024)
        self.sizes[key] = size
        if "g1pk" in item:
            projected = {
                n: v for n, v in item.items() if n in self.index_attributes or n in ("pk", "sk", "g1pk", "g1sk")
            }
            writes = 2 if key in self.index_keys and self.index_keys[key] != item["g1sk"]["S"] else 1
            self.wcu += writes * math.ceil(item_size(projected) / 1024)
            self.index_keys[key] = item["g1sk"]["S"]


def _batches(findings: Sequence[Any]) -> list[Sequence[Any]]:
    return [findings[i : i + BATCH] for i in range(0, len(findings), BATCH)]


def main(count: int = FINDINGS) -> list[str]:
    """Run the benchmark, print each line as it comes, and return the lines."""
    import orjson
    from tests.support.moto import fake_aws_credentials, start_moto_server

    from benchmarks.bench_store_sql import realistic_findings
    from corral.stores import dynamodb

    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    findings = realistic_findings(count)
    phases = (
        ("new", findings, NOW),
        ("unchanged", [dict(f, metadata={**f["metadata"], "uid": "again"}) for f in findings], NOW + 1),
        ("updated", realistic_findings(count, version=1), NOW + 2),
    )
    say(f"DynamoDB store on moto_server: {count} findings in batches of {BATCH}, per finding")
    document = sum(len(orjson.dumps(f)) for f in findings) / len(findings)
    stored = sum(len(dynamodb.encode_document(f, what="bench").get("B") or b"") for f in findings) / len(findings)
    say(f"document: {document:,.0f} bytes of JSON, {stored:,.0f} bytes gzip-compressed as stored")
    # One writer, distinct keys: moto's own concurrency is enough, and the proxy hop would only slow it.
    url, stop = start_moto_server(atomic_dynamodb=False)
    try:
        with fake_aws_credentials():
            store = dynamodb.open(f"dynamodb://corral-bench-{uuid.uuid4().hex[:8]}?region=us-east-1&endpoint={url}")
            store.migrate()
            estimate = Estimate(store.table, frozenset(dynamodb.INDEX_ATTRIBUTES))
            estimate.watch(store.client)
            say(f"{'phase':<10} {'round trips':>11} {'WCU moto':>9} {'RCU moto':>9} {'WCU est.':>9} {'RCU est.':>9}")
            for phase, docs, now in phases:
                before = (store.round_trips, store.consumed_wcu, store.consumed_rcu, estimate.wcu, estimate.rcu)
                kinds = {c.kind for batch in _batches(docs) for c in store.upsert(batch, now=now)}
                after = (store.round_trips, store.consumed_wcu, store.consumed_rcu, estimate.wcu, estimate.rcu)
                trips, wcu, rcu, est_wcu, est_rcu = ((b - a) / len(docs) for a, b in zip(before, after, strict=True))
                say(
                    f"{phase:<10} {trips:>11.3f} {wcu:>9.2f} {rcu:>9.2f} {est_wcu:>9.2f} {est_rcu:>9.2f}"
                    f"  ({', '.join(sorted(kinds))})"
                )
            store.close()
    finally:
        stop()
    return lines


if __name__ == "__main__":
    # Run as a script from the repository root: make `tests.*` and `benchmarks.*` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
