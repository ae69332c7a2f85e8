"""The DynamoDB store: one table, conditional single-item writes, one index for listing by time.

URL: `dynamodb://TABLE?region=R[&endpoint=URL]`; `endpoint` is for local use (moto, DynamoDB
Local). `open()` never creates anything: production tables come from the deployment's IaC and the
functions need only data rights; `migrate()` (`corral store migrate`) creates the table when asked.

Single-table design (`pk`, `sk` strings; attribute names are short because capacity is billed
per byte, names included):

| item            | pk                          | sk                  | gsi1 (g1pk / g1sk)                |
| --------------- | --------------------------- | ------------------- | --------------------------------- |
| finding         | `F#["product","acct","uid"]`| `F`                 | `F#<shard>` / `<last seen>#<id>`  |
| id pointer      | `I#<first 2 digits of id>`  | id                  | -                                 |
| aggregate       | `A#<shard>`                 | `N#…`, `T1#…`, `T2#…`, `C#…` | -                        |
| history entry   | finding pk                  | `H#<inc>#<seq:08>`  | -                                 |
| message ref     | finding pk                  | `M#<sink>`          | -                                 |
| ledger row      | `L#<version>`               | sink                | `L#<state>` / `<created>#<ver>#…` |
| ledger document | `L#<version>`               | `#document`         | `L#doc` / `<created>#<ver>`       |
| dead letter     | `D`                         | id (`<at:13>-…`)    | -                                 |
| dead letter part| `D#<id>` (raw above 350 KB) | `<part:04>`         | -                                 |
| source health   | `S`                         | `["source","acct"]` | -                                 |
| health signal   | `G`                         | `[src,acct,svc,rg]` | -                                 |
| schema version  | `META`                      | `schema`            | -                                 |

Finding attributes: `d` document (JSON string, or gzip-compressed JSON as Binary above 1 KiB),
`kp`/`ka`/`kf` identity, `fs`/`ls` first and last seen, `n` accepted versions, `v` write counter
(the optimistic lock), `mt` modified time, `fp` fingerprint, `sev`/`st`/`cl` severity, status,
closed, the query columns `c` cloud, `r` region, `cu` class, `ft` type, `cs` container service,
`ly` layer, `tk` task, `kc` cluster, `kn` namespace, `im` image, `tr` traits (a set of
`["name","value"]` strings), suppression `sr`/`sb`/`su`, and history bookkeeping `inc`, `hs`, `hx`.

**Upsert** reads the batch's findings with `BatchGetItem` (100 keys a call, strongly consistent,
without documents), decides each finding in order with `decide()`, and writes each changed key with
one `PutItem` conditioned on the write counter it read (`attribute_not_exists(pk)` for new ones);
on `ConditionalCheckFailed` it re-reads that key and decides again. The writes of one batch run on
a small thread pool (`WRITE_CONCURRENCY`), so 500 findings take about 500/8 write latencies.

**History** stays atomic without transactions: a write carries its own history entries on the
finding item (`hx`, the outbox), and the next write that replaces them first copies them to their
own `H#` items with an idempotent `BatchWriteItem`. `history()` reads the partition (one query)
and merges the outbox with the `H#` items by sequence number. Entries are keyed by the
finding's incarnation (`inc`), so a finding expired and seen again starts a clean history.
`TransactWriteItems` would batch the writes into fewer round trips, but each transactional write
costs twice the capacity, one conflicting finding cancels the whole group, and moto (which the
tests run against) deep-copies and restores whole tables around each transaction, losing
concurrent writes, so that design could not be tested for concurrency.

**Queries** fan out over the 16 listing shards of `gsi1` (a finding's shard is fixed by its key's
hash, so writes spread over 16 partition keys) and read each newest first, in parallel: without
filters one page of limit + 1 per shard. Exact filters (cloud and service in their stored
spelling, status, severity, class, open, trait) run on the server as a `FilterExpression`;
case-insensitive ones (account, type, cluster, namespace, image, source) are checked here on the
projected attributes, since DynamoDB compares strings exactly. The shards' answers merge by the
sort key (last seen, then id), which is also the cursor; the page's items come with
`BatchGetItem`. A text search reads candidate pages' documents. The index projects only the
filter attributes, so documents are stored once. Index reads are eventually consistent.
Tables written before sharding keep old items under `F`, read as a 17th partition until
`migrate()` moves them.

**Lookups by id** (or id prefix, or uid: an id's first 12 digits hash the uid) query the id
pointers, one item per finding in 256 partitions by the id's first two digits.

**Counts, the trend and coverage** are maintained aggregate items (see `aggregates`): each batch
adds its deltas to one of 16 aggregate partitions at random, readers sum all 16. `count()` of a
query reads the listing index (no documents) and may stop early ("at least N").
`ledger_summary()` reads the index's projected attributes and counts here.

**Delivery claims**: a ledger row is held by `lc` (the claim's token) with `na` set to when the
claim lapses; taking a row is an UpdateItem conditioned on it being pending and due, so of two
workers that read the same candidates from the index, one writes and the other's condition
fails and it sends nothing. A chat thread's first message is held the same way on its `M#` item
(`ref` empty, `lc`, `lu`). Ledger rows carry no document: a retried row's version keeps one
`#document` item beside its rows, and a row read after a crash falls back on the finding's
document when that is still its version.

Capacity: every call asks for `ReturnConsumedCapacity=TOTAL`; `round_trips` (HTTP requests,
retries included), `consumed_wcu` and `consumed_rcu` add up what the service reported.

Limits: each listing shard takes up to about 1,000 index writes a second (16,000 in all); every
write moves a finding in the index (its last seen changes). Settled ledger rows stay in the
index until `ledger_expire()` deletes them; the hourly check reads only the pending partition
(`ledger_oldest_pending()`), while `ledger_summary()` counts every row. Documents above
`MAX_DOCUMENT` compressed are a `PermanentError`.

Modules: `items` (attribute values, documents, keys, history entries, finding state), `table`
(the client, calls with errors mapped, batches, the schema), and one mixin of `table.Table` per
concern: `upsert`, `queries`, `aggregates`, `delivery` (dead letter, ledger, message refs),
`health` and `images` (the image inventory, whose items that module's docstring lists).
"""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import parse_qs, urlsplit

from corral.errors import ConfigError
from corral.redaction import redact_url
from corral.stores.base import HealthInputs
from corral.stores.dynamodb.delivery import Delivery
from corral.stores.dynamodb.health import Health
from corral.stores.dynamodb.images import Images
from corral.stores.dynamodb.items import (
    COMPRESS_ABOVE,
    INDEX,
    INDEX_ATTRIBUTES,
    MAX_DOCUMENT,
    SCHEMA_VERSION,
    decode_document,
    encode_document,
    finding_pk,
)
from corral.stores.dynamodb.queries import Queries
from corral.stores.dynamodb.table import TableMissingError
from corral.stores.dynamodb.upsert import Upserts

__all__ = [
    "COMPRESS_ABOVE",
    "INDEX",
    "INDEX_ATTRIBUTES",
    "MAX_DOCUMENT",
    "SCHEMA_VERSION",
    "DynamoDBStore",
    "TableMissingError",
    "decode_document",
    "encode_document",
    "finding_pk",
    "open",
]

TABLE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}")
URL_PARAMETERS: Final = frozenset({"region", "endpoint"})


class DynamoDBStore(Upserts, Queries, Delivery, Health, Images):
    """The Store contract on one DynamoDB table (see the package docstring for the design)."""

    def health_inputs(self) -> HealthInputs:
        """Return the sources, dead letters and oldest pending deliveries (see `Store`); three reads."""
        return HealthInputs(self.sources(), self.count_dead_letters(), self.ledger_oldest_pending())


def open(url: str) -> DynamoDBStore:
    """Open the store at `dynamodb://TABLE?region=R[&endpoint=URL]` (no network until first use).

    Example:
        >>> store = open("dynamodb://corral-findings?region=eu-west-1")
    """
    parts = urlsplit(url)
    table = parts.netloc
    if not TABLE_NAME.fullmatch(table) or parts.path not in ("", "/"):
        raise ConfigError(
            f"store URL {redact_url(url)!r}: the table name must be 3-255 of A-Z a-z 0-9 _ . - (dynamodb://TABLE)"
        )
    params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(params) - URL_PARAMETERS)
    if unknown:
        raise ConfigError(
            f"store URL {redact_url(url)!r}: unknown parameter(s) {', '.join(unknown)}; use region and endpoint"
        )
    # Lambda sets AWS_REGION; read only here, when a store is opened, never at import.
    region = params.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError(f"store URL {redact_url(url)!r}: add ?region=… (or set AWS_REGION)")
    endpoint = params.get("endpoint")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"store URL {redact_url(url)!r}: endpoint must be an http(s) URL")
    return DynamoDBStore(url=url, table=table, region=region, endpoint=endpoint)
