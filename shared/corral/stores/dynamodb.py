"""The DynamoDB store: one table, conditional single-item writes, one index for listing by time.

URL: `dynamodb://TABLE?region=R[&endpoint=URL]`; `endpoint` is for local use (moto, DynamoDB
Local). `open()` never creates anything: production tables come from the deployment's IaC and the
functions need only data rights; `migrate()` (`corral store migrate`) creates the table when asked.

Single-table design (`pk`, `sk` strings; attribute names are short because capacity is billed
per byte, names included):

| item            | pk                          | sk                  | gsi1 (g1pk / g1sk)                |
| --------------- | --------------------------- | ------------------- | --------------------------------- |
| finding         | `F#["product","acct","uid"]`| `F`                 | `F` / last seen (13 digits)       |
| history entry   | finding pk                  | `H#<inc>#<seq:08>`  | -                                 |
| message ref     | finding pk                  | `M#<sink>`          | -                                 |
| ledger row      | `L#<version>`               | sink                | `L#<state>` / `<created>#<ver>#…` |
| dead letter     | `D`                         | id (`<at:13>-…`)    | -                                 |
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

**Queries** walk `gsi1` (partition `F`, newest last seen first) with the filters as a server-side
`FilterExpression` (globs as `begins_with`/`contains`, then matched exactly here), fetch the
page's items with `BatchGetItem`, and page by keyset: the cursor is the index key of the last
item returned, used as `ExclusiveStartKey`. The index projects only the filter attributes, so
documents are stored once. Index reads are eventually consistent (DynamoDB offers nothing else).
`counts()` and `ledger_summary()` read the index's projected attributes and count here.

Capacity: every call asks for `ReturnConsumedCapacity=TOTAL`; `round_trips` (HTTP requests,
retries included), `consumed_wcu` and `consumed_rcu` add up what the service reported.

Limits: the index keeps every finding under one partition value (`F`), which DynamoDB serves at
up to about 1,000 index writes a second; every write moves a finding in the index (its last seen
changes). That is far above what security findings arrive at; sharding `F` is the next step if it
ever is not. Ledger rows stay in the index in every state, so `ledger_summary()` reads grow with
the delivered rows kept. Documents above `MAX_DOCUMENT` compressed are a `PermanentError`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import hashlib
import os
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from corral import ocsf
from corral.errors import ConfigError, PermanentError, StoreUnavailableError
from corral.records import HealthSignal
from corral.stores.base import (
    Change,
    ChangeKind,
    CountRow,
    DeadLetter,
    FindingKey,
    FindingQuery,
    HistoryEntry,
    LedgerEntry,
    LedgerState,
    LedgerSummary,
    Page,
    Snapshot,
    SourceSeen,
    SourceState,
    StoredFinding,
    Suppression,
    columns,
    decide,
    fingerprint,
    version_key,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

Item = dict[str, Any]
"""One DynamoDB item in the wire format: {"name": {"S": "value"}, ...}."""
T = TypeVar("T")

SCHEMA_VERSION: Final = 1
INDEX: Final = "gsi1"
INDEX_ATTRIBUTES: Final = ("c", "ka", "sev", "st", "cl", "cu", "ft", "cs", "kc", "kn", "im", "tr", "na", "snk", "cr")
"""What gsi1 projects besides the keys: the query filters and what counts and summaries read."""
STATE_ATTRIBUTES: Final = "pk,kp,ka,kf,fs,ls,n,v,mt,fp,sev,st,cl,inc,hs,hx,sr,sb,su"  # everything but the document
COMPRESS_ABOVE: Final = 1024
"""Documents above 1 KiB are stored gzip-compressed: capacity is billed per KB read and written."""
MAX_DOCUMENT: Final = 350 * 1024
"""Largest encoded document: DynamoDB items stop at 400 KB, and the other attributes need room."""
WRITE_CONCURRENCY: Final = 8
MAX_CONFLICT_RETRIES: Final = 25
BATCH_RETRIES: Final = 8
BATCH_GET_KEYS: Final = 100
BATCH_WRITE_ITEMS: Final = 25
TABLE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}")
URL_PARAMETERS: Final = frozenset({"region", "endpoint"})
READ_OPERATIONS: Final = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DATA_OPERATIONS: Final = READ_OPERATIONS | WRITE_OPERATIONS
UNAVAILABLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
DENIED_CODES: Final = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException", "InvalidSignatureException"}
)
LEDGER_STATES: Final[tuple[LedgerState, ...]] = ("pending", "delivered", "dead")
KIND_CODES: Final[dict[str, ChangeKind]] = {
    "new": "new",
    "updated": "updated",
    "escalated": "escalated",
    "deescalated": "deescalated",
    "reopened": "reopened",
    "closed": "closed",
}
BOTO_CONFIG: Final = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "total_max_attempts": 4},
    max_pool_connections=WRITE_CONCURRENCY * 2,
)


def open(url: str) -> DynamoDBStore:
    """Open the store at `dynamodb://TABLE?region=R[&endpoint=URL]` (no network until first use).

    Example:
        >>> store = open("dynamodb://corral-findings?region=eu-west-1")
    """
    parts = urlsplit(url)
    table = parts.netloc
    if not TABLE_NAME.fullmatch(table) or parts.path not in ("", "/"):
        raise ConfigError(f"store URL {url!r}: the table name must be 3-255 of A-Z a-z 0-9 _ . - (dynamodb://TABLE)")
    params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(params) - URL_PARAMETERS)
    if unknown:
        raise ConfigError(f"store URL {url!r}: unknown parameter(s) {', '.join(unknown)}; use region and endpoint")
    # Lambda sets AWS_REGION; read only here, when a store is opened, never at import.
    region = params.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError(f"store URL {url!r}: add ?region=… (or set AWS_REGION)")
    endpoint = params.get("endpoint")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"store URL {url!r}: endpoint must be an http(s) URL")
    return DynamoDBStore(url=url, table=table, region=region, endpoint=endpoint)


class TableMissingError(StoreUnavailableError):
    """The table does not exist (yet): retryable, since a deployment may be creating it."""


# Encoding ----------------------------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _num(item: Mapping[str, Any], name: str) -> int:
    return int(item[name]["N"])


def _opt_num(item: Mapping[str, Any], name: str) -> int | None:
    return int(item[name]["N"]) if name in item else None


def _str(item: Mapping[str, Any], name: str) -> str:
    value: str = item[name]["S"]
    return value


def _opt_str(item: Mapping[str, Any], name: str) -> str | None:
    return _str(item, name) if name in item else None


def encode_document(doc: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """Return a document as an attribute value: plain JSON, or gzip-compressed JSON as Binary."""
    raw = orjson.dumps(doc)
    value: dict[str, Any] = {"S": raw.decode()}
    if len(raw) > COMPRESS_ABOVE:
        # mtime=0: the same document always compresses to the same bytes.
        value = {"B": gzip.compress(raw, compresslevel=6, mtime=0)}
    size = len(value.get("B") or raw)
    if size > MAX_DOCUMENT:
        raise PermanentError(f"{what}: the document is {size} bytes even compressed, over DynamoDB's item limit")
    return value


def decode_document(value: Mapping[str, Any]) -> ocsf.Finding:
    """Read back a document written by `encode_document`."""
    if "B" in value:
        doc: ocsf.Finding = orjson.loads(gzip.decompress(value["B"]))
    else:
        doc = orjson.loads(value["S"])
    return doc


def finding_pk(key: FindingKey) -> str:
    """Return the partition key of a finding (and of its history and message refs)."""
    text = orjson.dumps(list(key)).decode()
    # Partition keys stop at 2048 bytes; identities that long are hashed (the parts stay as attributes).
    if len(text.encode()) > 1024:
        return "F#sha256:" + sha256_hex(text.encode())
    return "F#" + text


def sha256_hex(data: bytes) -> str:
    """Return the hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _time_key(value: int) -> str:
    # Fixed width, so that string order is time order (epoch ms has 13 digits until 2286).
    return f"{value:013d}"


def trait_pairs(finding: Mapping[str, Any]) -> list[str]:
    """Return every trait of a finding as `["name","value"]` strings (both `value` and `values`)."""
    found: list[str] = []
    for trait in finding.get("finding_info", {}).get("traits") or []:
        if not isinstance(trait, Mapping) or not isinstance(trait.get("name"), str):
            continue
        candidates = list(trait.get("values") or [])
        if trait.get("value") is not None:
            candidates.append(trait["value"])
        for value in candidates:
            pair = orjson.dumps([trait["name"], str(value)]).decode()
            if pair not in found:
                found.append(pair)
    return found


# Findings: state, plans, items --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One history entry as the store keeps it: its sequence number in the finding's history."""

    seq: int
    at: int
    kind: ChangeKind
    version: str
    modified_time: int
    severity_id: int
    status_id: int

    def attribute(self) -> dict[str, Any]:
        """Return the entry as a map attribute (for the outbox)."""
        return {"M": self.attributes()}

    def attributes(self) -> dict[str, Any]:
        """Return the entry's attributes (the fields of an `H#` item)."""
        return {
            "q": _n(self.seq),
            "at": _n(self.at),
            "k": _s(self.kind),
            "ver": _s(self.version),
            "mt": _n(self.modified_time),
            "sev": _n(self.severity_id),
            "st": _n(self.status_id),
        }

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> Entry:
        """Read an entry from an outbox map or an `H#` item."""
        return cls(
            seq=_num(attrs, "q"),
            at=_num(attrs, "at"),
            kind=KIND_CODES[_str(attrs, "k")],
            version=_str(attrs, "ver"),
            modified_time=_num(attrs, "mt"),
            severity_id=_num(attrs, "sev"),
            status_id=_num(attrs, "st"),
        )

    def history(self) -> HistoryEntry:
        """Return the contract's view of this entry."""
        return HistoryEntry(self.at, self.kind, self.version, self.modified_time, self.severity_id, self.status_id)


@dataclass(frozen=True, slots=True)
class State:
    """What a finding item holds besides its document: what an upsert compares and carries forward."""

    snapshot: Snapshot
    first_seen: int
    last_seen: int
    versions: int
    lock: int
    incarnation: str
    seq: int
    outbox: tuple[Entry, ...]
    suppression: Mapping[str, Any]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> State:
        """Read the state of a finding item (fetched with `STATE_ATTRIBUTES`)."""
        return cls(
            snapshot=Snapshot(
                modified_time=_num(item, "mt"),
                fingerprint=_str(item, "fp"),
                severity_id=_num(item, "sev"),
                status_id=_num(item, "st"),
                closed=bool(item["cl"]["BOOL"]),
            ),
            first_seen=_num(item, "fs"),
            last_seen=_num(item, "ls"),
            versions=_num(item, "n"),
            lock=_num(item, "v"),
            incarnation=_str(item, "inc"),
            seq=_num(item, "hs"),
            outbox=tuple(Entry.of(e["M"]) for e in item.get("hx", {}).get("L", [])),
            suppression={name: item[name] for name in ("sr", "sb", "su") if name in item},
        )


@dataclass(frozen=True, slots=True)
class Incoming:
    """One finding of a batch, with what every decision about it needs computed once."""

    index: int
    finding: ocsf.Finding
    key: FindingKey
    fingerprint: str
    snapshot: Snapshot
    version: str
    document: dict[str, Any]

    @classmethod
    def of(cls, index: int, finding: ocsf.Finding) -> Incoming:
        """Prepare one finding (its document is encoded here, so that a too-large one fails early)."""
        key = ocsf.identity(finding)
        fp = fingerprint(finding)
        snapshot = Snapshot.of(finding, fp)
        return cls(
            index=index,
            finding=finding,
            key=key,
            fingerprint=fp,
            snapshot=snapshot,
            version=version_key(key, snapshot.modified_time, fp),
            document=encode_document(finding, what=f"finding {key[2][:200]!r}"),
        )


@dataclass(slots=True)
class Plan:
    """What one key's findings of a batch do: a Change each, and the item to put (None: all stale)."""

    changes: list[tuple[int, Change]]
    item: Item | None = None
    condition: dict[str, Any] = field(default_factory=dict)
    spill: tuple[Entry, ...] = ()
    incarnation: str = ""


def plan_key(current: State | None, incoming: Sequence[Incoming], *, now: int) -> Plan:
    """Decide one key's findings in order against its stored state and build the item to put."""
    plan = Plan(changes=[])
    snapshot = current.snapshot if current else None
    latest: Incoming | None = None
    first_seen = current.first_seen if current else now
    last_seen = current.last_seen if current else now
    versions = current.versions if current else 0
    seq = current.seq if current else 0
    incarnation = current.incarnation if current else secrets.token_hex(4)
    entries: list[Entry] = []
    for found in incoming:
        kind = decide(snapshot, found.snapshot)
        plan.changes.append((found.index, Change(kind, found.key, found.version, found.finding, snapshot)))
        if kind == "stale":
            continue
        last_seen = max(last_seen, now)
        snapshot = found.snapshot
        latest = found
        if kind != "unchanged":
            versions += 1
            seq += 1
            entries.append(
                Entry(seq, now, kind, found.version, snapshot.modified_time, snapshot.severity_id, snapshot.status_id)
            )
    if latest is None:
        return plan
    outbox = tuple(entries) if entries else (current.outbox if current else ())
    # The entries a write replaces go to their own items first (see the module docstring).
    plan.spill = current.outbox if current and entries else ()
    plan.incarnation = incarnation
    plan.item = _finding_item(latest, first_seen, last_seen, versions, seq, incarnation, outbox, current)
    if current is None:
        plan.condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        plan.condition = {
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "v"},
            "ExpressionAttributeValues": {":v": _n(current.lock)},
        }
    return plan


def _finding_item(
    found: Incoming,
    first_seen: int,
    last_seen: int,
    versions: int,
    seq: int,
    incarnation: str,
    outbox: tuple[Entry, ...],
    current: State | None,
) -> Item:
    pk = finding_pk(found.key)
    cols = columns(found.finding, found.fingerprint)
    item: Item = {
        "pk": _s(pk),
        "sk": _s("F"),
        "g1pk": _s("F"),
        "g1sk": _s(_time_key(last_seen)),
        "kp": _s(found.key[0]),
        "ka": _s(found.key[1]),
        "kf": _s(found.key[2]),
        "d": found.document,
        "fs": _n(first_seen),
        "ls": _n(last_seen),
        "n": _n(versions),
        "v": _n(current.lock + 1 if current else 1),
        "mt": _n(cols.modified_time),
        "fp": _s(cols.fingerprint),
        "sev": _n(cols.severity_id),
        "st": _n(cols.status_id),
        "cl": {"BOOL": cols.closed},
        "c": _s(cols.cloud),
        "cu": _n(cols.class_uid),
        "inc": _s(incarnation),
        "hs": _n(seq),
        "hx": {"L": [e.attribute() for e in outbox]},
    }
    for name, value in (
        ("r", cols.region),
        ("ft", cols.finding_type),
        ("cs", cols.container_service),
        ("ly", cols.layer),
        ("tk", cols.task),
        ("kc", cols.cluster),
        ("kn", cols.namespace),
        ("im", cols.image),
    ):
        if value:  # DynamoDB keeps no empty strings in indexed attributes; absent means None
            item[name] = _s(value)
    pairs = trait_pairs(found.finding)
    if pairs:
        item["tr"] = {"SS": pairs}
    if current is not None:
        item.update(current.suppression)
    return item


def history_item(pk: str, incarnation: str, entry: Entry) -> Item:
    """Return the `H#` item of one history entry."""
    return {"pk": _s(pk), "sk": _s(f"H#{incarnation}#{entry.seq:08d}"), **entry.attributes()}


def stored_finding(item: Mapping[str, Any]) -> StoredFinding:
    """Read a finding item back as the contract's StoredFinding."""
    suppression = None
    if "sr" in item:
        suppression = Suppression(_str(item, "sr"), _str(item, "sb"), _opt_num(item, "su"))
    return StoredFinding(
        key=(_str(item, "kp"), _str(item, "ka"), _str(item, "kf")),
        document=decode_document(item["d"]),
        first_seen=_num(item, "fs"),
        last_seen=_num(item, "ls"),
        versions=_num(item, "n"),
        severity_id=_num(item, "sev"),
        status_id=_num(item, "st"),
        closed=bool(item["cl"]["BOOL"]),
        modified_time=_num(item, "mt"),
        suppression=suppression,
    )


# Queries -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Expression:
    """A filter expression under construction, with its names and values."""

    clauses: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        """Return the placeholder of an attribute name (every name is one: no reserved-word traps)."""
        self.names[f"#{attribute}"] = attribute
        return f"#{attribute}"

    def value(self, value: dict[str, Any]) -> str:
        """Return a new placeholder for a value."""
        mark = f":p{len(self.values)}"
        self.values[mark] = value
        return mark

    def equal(self, attribute: str, value: dict[str, Any]) -> None:
        """Add `attribute = value`."""
        self.clauses.append(f"{self.name(attribute)} = {self.value(value)}")

    def glob(self, attribute: str, pattern: str) -> None:
        """Add the server-side part of a `*` glob: equality, or a prefix and the literal middles."""
        if "*" not in pattern:
            self.equal(attribute, _s(pattern))
            return
        parts = pattern.split("*")
        if parts[0]:
            self.clauses.append(f"begins_with({self.name(attribute)}, {self.value(_s(parts[0]))})")
        for part in parts[1:]:
            if part:
                self.clauses.append(f"contains({self.name(attribute)}, {self.value(_s(part))})")
        if not any(parts):
            self.clauses.append(f"attribute_exists({self.name(attribute)})")

    def parameters(self) -> dict[str, Any]:
        """Return the request parameters of this expression (empty when there is no clause)."""
        if not self.clauses:
            return {}
        params: dict[str, Any] = {
            "FilterExpression": " AND ".join(self.clauses),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """Return the exact matcher of a glob where only `*` is a wildcard (case-sensitive)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


GLOB_FILTERS: Final = (("finding_type", "ft"), ("cluster", "kc"), ("namespace", "kn"), ("image", "im"))


def query_filter(query: FindingQuery) -> tuple[Expression, Callable[[Mapping[str, Any]], bool]]:
    """Return the server-side filter of a query and the exact check of its globs, done here."""
    expr = Expression()
    for attribute, text in (("c", query.cloud), ("ka", query.account), ("cs", query.container_service)):
        if text is not None:
            expr.equal(attribute, _s(text))
    for attribute, number in (("st", query.status_id), ("cu", query.class_uid)):
        if number is not None:
            expr.equal(attribute, _n(number))
    if query.severity_at_least is not None:
        # Unknown (0) and Other (99) have no rank, as in `decide()`: never "at least" anything.
        low = expr.value(_n(max(query.severity_at_least, 1)))
        expr.clauses.append(f"{expr.name('sev')} BETWEEN {low} AND {expr.value(_n(6))}")
    if query.open_only:
        expr.equal("cl", {"BOOL": False})
    if query.trait is not None:
        pair = orjson.dumps(list(query.trait)).decode()
        expr.clauses.append(f"contains({expr.name('tr')}, {expr.value(_s(pair))})")
    checks: list[tuple[str, re.Pattern[str]]] = []
    for option, attribute in GLOB_FILTERS:
        pattern = getattr(query, option)
        if pattern is not None:
            expr.glob(attribute, pattern)
            if "*" in pattern:
                checks.append((attribute, glob_matcher(pattern)))

    def exact(item: Mapping[str, Any]) -> bool:
        return all(attr in item and matcher.fullmatch(_str(item, attr)) for attr, matcher in checks)

    return expr, exact


def encode_cursor(item: Mapping[str, Any]) -> str:
    """Return the keyset cursor that continues after an index item (its index and table keys)."""
    return base64.urlsafe_b64encode(orjson.dumps([_str(item, "g1sk"), _str(item, "pk")])).decode()


def decode_cursor(cursor: str) -> Item:
    """Return the `ExclusiveStartKey` of a cursor made by `encode_cursor`; ValueError for anything else."""
    try:
        g1sk, pk = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise ValueError(f"not a query cursor: {cursor[:40]!r}") from None
    if not isinstance(g1sk, str) or not isinstance(pk, str) or not pk.startswith("F#"):
        raise ValueError(f"not a query cursor: {cursor[:40]!r}")
    return {"g1pk": _s("F"), "g1sk": _s(g1sk), "pk": _s(pk), "sk": _s("F")}


# Other items -------------------------------------------------------------------------------------


def ledger_item(entry: LedgerEntry) -> Item:
    """Return the item of one ledger row."""
    item: Item = {
        "pk": _s(f"L#{entry.version}"),
        "sk": _s(entry.sink),
        "snk": _s(entry.sink),
        "kp": _s(entry.key[0]),
        "ka": _s(entry.key[1]),
        "kf": _s(entry.key[2]),
        "ch": _s(entry.change),
        "d": encode_document(entry.document, what=f"ledger row {entry.version[:16]}/{entry.sink}"),
        "cr": _n(entry.created),
        "g1sk": _s(f"{_time_key(entry.created)}#{entry.version}#{entry.sink}"),
    }
    item.update(_ledger_state(entry))
    return item


def _ledger_state(entry: LedgerEntry) -> Item:
    state: Item = {
        "s": _s(entry.state),
        "g1pk": _s(f"L#{entry.state}"),
        "at": _n(entry.attempts),
        "na": _n(entry.next_attempt),
    }
    if entry.last_error is not None:
        state["le"] = _s(entry.last_error)
    if entry.delivered_at is not None:
        state["da"] = _n(entry.delivered_at)
    return state


def ledger_entry(item: Mapping[str, Any]) -> LedgerEntry:
    """Read a ledger item back."""
    states: dict[str, LedgerState] = {s: s for s in LEDGER_STATES}
    kinds: dict[str, ChangeKind] = {**KIND_CODES, "unchanged": "unchanged", "stale": "stale"}
    return LedgerEntry(
        version=_str(item, "pk")[2:],
        sink=_str(item, "snk"),
        key=(_str(item, "kp"), _str(item, "ka"), _str(item, "kf")),
        change=kinds[_str(item, "ch")],
        document=decode_document(item["d"]),
        created=_num(item, "cr"),
        state=states[_str(item, "s")],
        attempts=_num(item, "at"),
        next_attempt=_num(item, "na"),
        last_error=_opt_str(item, "le"),
        delivered_at=_opt_num(item, "da"),
    )


def dead_letter_item(letter: DeadLetter, letter_id: str) -> Item:
    """Return the item of one dead letter (raw input compressed when that helps)."""
    item: Item = {
        "pk": _s("D"),
        "sk": _s(letter_id),
        "at": _n(letter.at),
        "rs": _s(letter.reason),
        "ref": _s(letter.ref),
        "sha": _s(letter.sha256),
        "size": _n(letter.size),
    }
    packed = gzip.compress(letter.raw, compresslevel=6, mtime=0) if len(letter.raw) > COMPRESS_ABOVE else None
    if packed is not None and len(packed) < len(letter.raw):
        item["rawz"] = {"B": packed}
    else:
        item["raw"] = {"B": letter.raw}
    if letter.source is not None:
        item["src"] = _s(letter.source)
    return item


def dead_letter(item: Mapping[str, Any]) -> DeadLetter:
    """Read a dead-letter item back."""
    raw = gzip.decompress(item["rawz"]["B"]) if "rawz" in item else bytes(item["raw"]["B"])
    return DeadLetter(
        at=_num(item, "at"),
        reason=_str(item, "rs"),
        ref=_str(item, "ref"),
        raw=raw,
        sha256=_str(item, "sha"),
        size=_num(item, "size"),
        source=_opt_str(item, "src"),
        id=_str(item, "sk"),
    )


def _fold_sources(seen: Sequence[SourceSeen]) -> dict[tuple[str, str], tuple[int, int | None, int]]:
    folded: dict[tuple[str, str], tuple[int, int | None, int]] = {}
    for item in seen:
        key = (item.source, item.account_uid)
        at, finding_time, count = folded.get(key, (item.at, item.finding_time, 0))
        times = [t for t in (finding_time, item.finding_time) if t is not None]
        folded[key] = (max(at, item.at), max(times) if times else None, count + 1)
    return folded


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _backoff(attempt: int) -> None:
    # Full jitter, capped: conflicting writers and throttled batches spread out instead of colliding again.
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))  # noqa: S311 - jitter, not secrecy


_SESSION_LOCK: Final = threading.Lock()


@functools.cache
def _session() -> Any:
    # One boto3 session per process: loading the service models costs about 0.3 s, and stores
    # opened later (the CLI, tests, a warm function) reuse it. Sessions are not thread-safe, so
    # clients are created under a lock; the clients themselves are.
    return boto3.session.Session()


def _new_client(region: str, endpoint: str | None) -> Any:
    with _SESSION_LOCK:
        return _session().client("dynamodb", region_name=region, endpoint_url=endpoint, config=BOTO_CONFIG)


# The store ---------------------------------------------------------------------------------------


class DynamoDBStore:
    """The Store contract on one DynamoDB table (see the module docstring for the design)."""

    def __init__(self, *, url: str, table: str, region: str, endpoint: str | None = None) -> None:
        """Remember where the table is; the client is created on first use."""
        self.url = url
        self.table = table
        self.region = region
        self.endpoint = endpoint
        self.round_trips = 0
        self.consumed_wcu = 0.0
        self.consumed_rcu = 0.0
        self._lock = threading.Lock()
        self._client: BaseClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    # Plumbing ----------------------------------------------------------------------------------

    @property
    def client(self) -> BaseClient:
        """The boto3 DynamoDB client of this store, created once (sessions are not thread-safe)."""
        with self._lock:
            if self._client is None:
                client = _new_client(self.region, self.endpoint)
                client.meta.events.register("before-send.dynamodb", self._count_request)
                client.meta.events.register("after-call.dynamodb", self._count_capacity)
                self._client = client
            return self._client

    def _count_request(self, **_: Any) -> None:
        with self._lock:
            self.round_trips += 1

    def _count_capacity(self, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        if not consumed:
            return
        units = sum(float(c.get("CapacityUnits", 0)) for c in (consumed if isinstance(consumed, list) else [consumed]))
        with self._lock:
            if model.name in READ_OPERATIONS:
                self.consumed_rcu += units
            else:
                self.consumed_wcu += units

    def _pool_map(self, function: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WRITE_CONCURRENCY, thread_name_prefix="corral-dynamodb")
            pool = self._pool
        return list(pool.map(function, items))

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call one DynamoDB operation, with errors mapped to Corral's (conditional failures pass)."""
        name = "".join(part.capitalize() for part in operation.split("_"))
        if name in DATA_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        if "RequestItems" not in params:
            params.setdefault("TableName", self.table)
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise TableMissingError(
                    f"DynamoDB table {self.table!r} does not exist in {self.region}: run `corral store migrate`"
                    " or deploy the table"
                ) from None
            if code in UNAVAILABLE_CODES:
                raise StoreUnavailableError(
                    f"DynamoDB table {self.table!r} in {self.region}: {code} after retries"
                ) from None
            if code in DENIED_CODES:
                raise StoreUnavailableError(
                    f"DynamoDB table {self.table!r} in {self.region}: {code} (check the credentials and IAM role)"
                ) from None
            raise
        except NoCredentialsError:
            raise StoreUnavailableError(f"DynamoDB table {self.table!r}: no AWS credentials found") from None
        except (BotoConnectionError, HTTPClientError) as exc:
            where = self.endpoint or f"dynamodb.{self.region}"
            raise StoreUnavailableError(
                f"DynamoDB table {self.table!r} at {where} is unreachable ({type(exc).__name__} after retries)"
            ) from None
        return response

    @staticmethod
    def _conditional_failed(exc: ClientError) -> bool:
        return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")

    def _batch_get(self, keys: Sequence[Item], projection: str | None = None) -> dict[str, list[Item]]:
        """Fetch items by key (100 a call, strongly consistent); return them grouped by pk."""
        found: dict[str, list[Item]] = {}
        unique = list({orjson.dumps(k, option=orjson.OPT_SORT_KEYS): k for k in keys}.values())
        for chunk in _chunks(unique, BATCH_GET_KEYS):
            request: dict[str, Any] = {"Keys": list(chunk), "ConsistentRead": True}
            if projection:
                request["ProjectionExpression"] = projection
            for attempt in range(BATCH_RETRIES + 1):
                response = self._call("batch_get_item", RequestItems={self.table: request})
                for item in response.get("Responses", {}).get(self.table, []):
                    found.setdefault(_str(item, "pk"), []).append(item)
                left = response.get("UnprocessedKeys", {}).get(self.table)
                if not left:
                    break
                if attempt == BATCH_RETRIES:
                    raise StoreUnavailableError(f"DynamoDB table {self.table!r}: reads still throttled after retries")
                request = left
                _backoff(attempt + 3)
        return found

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        """Run idempotent puts and deletes, 25 a call, retrying what DynamoDB left unprocessed."""
        for chunk in _chunks(requests, BATCH_WRITE_ITEMS):
            pending = list(chunk)
            for attempt in range(BATCH_RETRIES + 1):
                response = self._call("batch_write_item", RequestItems={self.table: pending})
                pending = response.get("UnprocessedItems", {}).get(self.table, [])
                if not pending:
                    break
                if attempt == BATCH_RETRIES:
                    raise StoreUnavailableError(f"DynamoDB table {self.table!r}: writes still throttled after retries")
                _backoff(attempt + 3)

    def _query_all(self, **params: Any) -> Iterator[Item]:
        """Yield every item of a query, page after page."""
        while True:
            response = self._call("query", **params)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # Schema ------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the table and its index (on-demand billing) when absent and record the schema version."""
        try:
            description = self._call("describe_table")["Table"]
        except TableMissingError:
            description = self._create_table()
        keys = {k["AttributeName"]: k["KeyType"] for k in description.get("KeySchema", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise ConfigError(f"DynamoDB table {self.table!r} exists with another key schema ({keys}); use a new table")
        indexes = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
        if INDEX not in indexes:
            raise ConfigError(
                f"DynamoDB table {self.table!r} lacks the index {INDEX!r}; deploy it as in the module docstring"
            )
        try:
            self._call(
                "update_item",
                Key={"pk": _s("META"), "sk": _s("schema")},
                UpdateExpression="SET #sv = :sv",
                ConditionExpression="attribute_not_exists(#sv) OR #sv < :sv",
                ExpressionAttributeNames={"#sv": "sv"},
                ExpressionAttributeValues={":sv": _n(SCHEMA_VERSION)},
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise

    def _create_table(self) -> dict[str, Any]:
        attributes = [{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g1pk", "g1sk")]
        try:
            self._call(
                "create_table",
                AttributeDefinitions=attributes,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": INDEX,
                        "KeySchema": [
                            {"AttributeName": "g1pk", "KeyType": "HASH"},
                            {"AttributeName": "g1sk", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(INDEX_ATTRIBUTES)},
                    }
                ],
            )
        except ClientError as exc:
            # Another migrate created it meanwhile: wait for it like for our own.
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        table: dict[str, Any] = self._call("describe_table")["Table"]
        return table

    def close(self) -> None:
        """Stop the write pool and release the HTTP connections."""
        with self._lock:
            pool, self._pool = self._pool, None
            client, self._client = self._client, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()

    # Findings ----------------------------------------------------------------------------------

    def upsert(self, findings: Sequence[ocsf.Finding], *, now: int) -> list[Change]:
        """Store a batch: one read per 100 keys, one conditional write per changed key (see module docstring)."""
        prepared = [Incoming.of(i, finding) for i, finding in enumerate(findings)]
        by_key: dict[FindingKey, list[Incoming]] = {}
        for found in prepared:
            by_key.setdefault(found.key, []).append(found)
        stored = self._states(list(by_key))
        plans = {key: plan_key(stored.get(key), items, now=now) for key, items in by_key.items()}
        spill = [
            {"PutRequest": {"Item": history_item(finding_pk(key), plan.incarnation, entry)}}
            for key, plan in plans.items()
            for entry in plan.spill
        ]
        self._batch_write(spill)
        tasks = [(key, by_key[key], plan) for key, plan in plans.items()]
        results: list[Change | None] = [None] * len(prepared)
        for changes in self._pool_map(lambda task: self._write_key(*task, now=now), tasks):
            for index, change in changes:
                results[index] = change
        return [change for change in results if change is not None]

    def _states(self, keys: Sequence[FindingKey]) -> dict[FindingKey, State]:
        items = self._batch_get([{"pk": _s(finding_pk(k)), "sk": _s("F")} for k in keys], STATE_ATTRIBUTES)
        by_pk = {finding_pk(k): k for k in keys}
        return {by_pk[pk]: State.of(found[0]) for pk, found in items.items() if pk in by_pk}

    def _write_key(
        self, key: FindingKey, incoming: Sequence[Incoming], plan: Plan, *, now: int
    ) -> list[tuple[int, Change]]:
        """Put one key's item; on a lost race, read it again, decide again and retry."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            if plan.item is None:
                return plan.changes
            try:
                self._call("put_item", Item=plan.item, **plan.condition)
            except ClientError as exc:
                if not self._conditional_failed(exc):
                    raise
            else:
                return plan.changes
            _backoff(attempt)
            plan = plan_key(self._states([key]).get(key), incoming, now=now)
            if plan.spill:
                pk = finding_pk(key)
                self._batch_write([{"PutRequest": {"Item": history_item(pk, plan.incarnation, e)}} for e in plan.spill])
        raise StoreUnavailableError(f"DynamoDB table {self.table!r}: finding {key[2][:80]!r} kept changing under us")

    def mark_suppressed(self, marks: Sequence[tuple[FindingKey, Suppression | None]]) -> None:
        """Record or clear suppressions; each bumps the write counter so that a racing upsert re-reads."""
        self._pool_map(self._mark, list(marks))

    def _mark(self, mark: tuple[FindingKey, Suppression | None]) -> None:
        key, suppression = mark
        names = {"#v": "v", "#sr": "sr", "#sb": "sb", "#su": "su"}
        values: dict[str, Any] = {":one": _n(1)}
        if suppression is None:
            update = "REMOVE #sr, #sb, #su ADD #v :one"
        else:
            values.update({":sr": _s(suppression.reason), ":sb": _s(suppression.by)})
            if suppression.until is None:
                update = "SET #sr = :sr, #sb = :sb REMOVE #su ADD #v :one"
            else:
                values[":su"] = _n(suppression.until)
                update = "SET #sr = :sr, #sb = :sb, #su = :su ADD #v :one"
        try:
            self._call(
                "update_item",
                Key={"pk": _s(finding_pk(key)), "sk": _s("F")},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):  # an unknown finding has nothing to mark
                raise

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""
        item = self._call("get_item", Key={"pk": _s(finding_pk(key)), "sk": _s("F")}, ConsistentRead=True).get("Item")
        return stored_finding(item) if item else None

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first: its `H#` items merged with its outbox."""
        items = list(
            self._query_all(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(finding_pk(key))},
                ProjectionExpression="sk, inc, hx, q, #at, k, ver, mt, sev, st",
                ExpressionAttributeNames={"#at": "at"},
                ConsistentRead=True,
            )
        )
        head = next((item for item in items if _str(item, "sk") == "F"), None)
        if head is None:
            return []
        prefix = f"H#{_str(head, 'inc')}#"
        entries = {e.seq: e for e in (Entry.of(i) for i in items if _str(i, "sk").startswith(prefix))}
        entries.update((e.seq, e) for e in (Entry.of(m["M"]) for m in head.get("hx", {}).get("L", [])))
        return [entries[seq].history() for seq in sorted(entries)]

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every filter, newest last seen first, paged by keyset."""
        expr, exact = query_filter(query)
        expr.names["#g1pk"] = "g1pk"
        if query.since is not None or query.until is not None:
            expr.names["#g1sk"] = "g1sk"
        key_condition = "#g1pk = :f"
        values: dict[str, Any] = {":f": _s("F")}
        if query.since is not None and query.until is not None:
            key_condition += " AND #g1sk BETWEEN :since AND :until"
            values.update({":since": _s(_time_key(query.since)), ":until": _s(_time_key(query.until - 1))})
        elif query.since is not None:
            key_condition += " AND #g1sk >= :since"
            values[":since"] = _s(_time_key(query.since))
        elif query.until is not None:
            key_condition += " AND #g1sk < :until"
            values[":until"] = _s(_time_key(query.until))
        params: dict[str, Any] = {
            "IndexName": INDEX,
            "KeyConditionExpression": key_condition,
            "ScanIndexForward": False,
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": {**values, **expr.values},
        }
        if expr.clauses:
            params["FilterExpression"] = " AND ".join(expr.clauses)
        if query.cursor is not None:
            params["ExclusiveStartKey"] = decode_cursor(query.cursor)
        # One more than asked tells whether another page exists, so the last page has no cursor.
        wanted = max(query.limit, 0) + 1
        matches: list[Item] = []
        while len(matches) < wanted:
            params["Limit"] = max(wanted - len(matches), 100 if expr.clauses else 0)
            response = self._call("query", **params)
            matches += [item for item in response.get("Items", []) if exact(item)]
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        page = matches[: max(query.limit, 0)]
        fetched = self._batch_get([{"pk": item["pk"], "sk": _s("F")} for item in page])
        items = [stored_finding(fetched[_str(i, "pk")][0]) for i in page if _str(i, "pk") in fetched]
        next_cursor = encode_cursor(page[-1]) if page and len(matches) > len(page) else None
        return Page(items, next_cursor)

    def counts(self) -> list[CountRow]:
        """Return finding counts by cloud, severity and status (read from the index's projection)."""
        tally = Counter(
            (_str(item, "c"), _num(item, "sev"), _num(item, "st"))
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :f",
                ExpressionAttributeValues={":f": _s("F")},
                ProjectionExpression="c, sev, st",
            )
        )
        return [CountRow(cloud, sev, st, n) for (cloud, sev, st), n in sorted(tally.items())]

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time, with their history and message refs."""
        candidates = [
            _str(item, "pk")
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :f AND g1sk < :t",
                FilterExpression="cl = :closed",
                ExpressionAttributeValues={
                    ":f": _s("F"),
                    ":t": _s(_time_key(closed_before)),
                    ":closed": {"BOOL": True},
                },
                ProjectionExpression="pk",
            )
        ]
        return sum(self._pool_map(lambda pk: self._expire(pk, closed_before), candidates))

    def _expire(self, pk: str, closed_before: int) -> int:
        try:
            # The condition holds against a reopening or a fresh delivery that raced the query.
            self._call(
                "delete_item",
                Key={"pk": _s(pk), "sk": _s("F")},
                ConditionExpression="cl = :closed AND ls < :t",
                ExpressionAttributeValues={":closed": {"BOOL": True}, ":t": _n(closed_before)},
            )
        except ClientError as exc:
            if self._conditional_failed(exc):
                return 0
            raise
        rest = self._query_all(
            KeyConditionExpression="pk = :pk AND sk > :f",
            ExpressionAttributeValues={":pk": _s(pk), ":f": _s("F")},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        # History entries left by a crash here belong to a dead incarnation: invisible to `history()`.
        self._batch_write([{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in rest])
        return 1

    # Dead letter -------------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs; ids sort by time, then by arrival."""
        stamp = time.time_ns()
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": dead_letter_item(
                            letter, f"{_time_key(letter.at)}-{stamp:x}{i:04x}-{secrets.token_hex(2)}"
                        )
                    }
                }
                for i, letter in enumerate(letters)
            ]
        )

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first."""
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :d",
            "ExpressionAttributeValues": {":d": _s("D")},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if source is not None:
            params["FilterExpression"] = "src = :src"
            params["ExpressionAttributeValues"][":src"] = _s(source)
        found: list[DeadLetter] = []
        for item in self._query_all(**params):
            if len(found) >= limit:
                break
            found.append(dead_letter(item))
        return found

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""
        if not letter_id:
            return None
        item = self._call("get_item", Key={"pk": _s("D"), "sk": _s(letter_id)}, ConsistentRead=True).get("Item")
        return dead_letter(item) if item else None

    def count_dead_letters(self) -> dict[str, int]:
        """Return dead-letter counts per source ("" for unknown)."""
        tally = Counter(
            _opt_str(item, "src") or ""
            for item in self._query_all(
                KeyConditionExpression="pk = :d",
                ExpressionAttributeValues={":d": _s("D")},
                ProjectionExpression="src",
                ConsistentRead=True,
            )
        )
        return dict(tally)

    # Delivery ledger ---------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Insert rows whose (version, sink) is new; return each row as stored now."""
        keys = [{"pk": _s(f"L#{e.version}"), "sk": _s(e.sink)} for e in entries]
        existing = {
            (_str(item, "pk"), _str(item, "sk")): ledger_entry(item)
            for items in self._batch_get(keys).values()
            for item in items
        }
        missing = list(
            {
                (f"L#{e.version}", e.sink): e for e in reversed(entries) if (f"L#{e.version}", e.sink) not in existing
            }.values()
        )
        for (pk, sink), stored in zip(
            [(f"L#{e.version}", e.sink) for e in missing], self._pool_map(self._insert_ledger, missing), strict=True
        ):
            existing[(pk, sink)] = stored
        return [existing[(f"L#{e.version}", e.sink)] for e in entries]

    def _insert_ledger(self, entry: LedgerEntry) -> LedgerEntry:
        try:
            self._call("put_item", Item=ledger_item(entry), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise
            # Another writer inserted it first: theirs is the row.
            item = self._call(
                "get_item", Key={"pk": _s(f"L#{entry.version}"), "sk": _s(entry.sink)}, ConsistentRead=True
            )["Item"]
            return ledger_entry(item)
        return entry

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest created first."""
        due: list[Item] = []
        for item in self._query_all(
            IndexName=INDEX,
            KeyConditionExpression="g1pk = :p",
            FilterExpression="na <= :now",
            ExpressionAttributeValues={":p": _s("L#pending"), ":now": _n(now)},
        ):
            if len(due) >= limit:
                break
            due.append(item)
        fetched = self._batch_get([{"pk": i["pk"], "sk": i["sk"]} for i in due])
        rows = {(_str(i, "pk"), _str(i, "sk")): i for items in fetched.values() for i in items}
        wanted = [rows.get((_str(i, "pk"), _str(i, "sk"))) for i in due]
        return [ledger_entry(item) for item in wanted if item is not None and _str(item, "s") == "pending"]

    def ledger_update(self, entry: LedgerEntry) -> None:
        """Record the new state, attempts, error and next attempt of one row (absent rows stay absent)."""
        state = _ledger_state(entry)
        names = {f"#{name}": name for name in ("s", "g1pk", "at", "na", "le", "da")}
        sets = [f"#{name} = :{name}" for name in state]
        removes = [f"#{name}" for name in ("le", "da") if name not in state]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._call(
                "update_item",
                Key={"pk": _s(f"L#{entry.version}"), "sk": _s(entry.sink)},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":{name}": value for name, value in state.items()},
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink."""
        summary = LedgerSummary()
        for state in LEDGER_STATES:
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :p",
                ExpressionAttributeValues={":p": _s(f"L#{state}")},
                ProjectionExpression="snk, cr",
            ):
                sink = _str(item, "snk")
                summary.counts[(sink, state)] = summary.counts.get((sink, state), 0) + 1
                if state == "pending":
                    created = _num(item, "cr")
                    summary.oldest_pending[sink] = min(created, summary.oldest_pending.get(sink, created))
        return summary

    # Sink message references -------------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding."""
        item = self._call("get_item", Key={"pk": _s(finding_pk(key)), "sk": _s(f"M#{sink}")}, ConsistentRead=True).get(
            "Item"
        )
        return _str(item, "ref") if item else None

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference; an existing one is kept."""
        try:
            self._call(
                "put_item",
                Item={"pk": _s(finding_pk(key)), "sk": _s(f"M#{sink}"), "ref": _s(ref)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise

    # Source health -----------------------------------------------------------------------------

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: times only move forward, every delivery counts (read, then conditional put)."""
        self._pool_map(self._touch, list(_fold_sources(seen).items()))

    def _touch(self, entry: tuple[tuple[str, str], tuple[int, int | None, int]]) -> None:
        (source, account), (at, finding_time, count) = entry
        key = {"pk": _s("S"), "sk": _s(orjson.dumps([source, account]).decode())}
        for attempt in range(MAX_CONFLICT_RETRIES):
            current = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
            item: Item = {**key, "src": _s(source), "acct": _s(account)}
            times = [t for t in (finding_time, _opt_num(current or {}, "lft")) if t is not None]
            item["ld"] = _n(max(at, _num(current, "ld")) if current else at)
            item["n"] = _n(count + (_num(current, "n") if current else 0))
            if times:
                item["lft"] = _n(max(times))
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            if current:
                condition = {
                    "ConditionExpression": "#n = :n",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":n": current["n"]},
                }
            try:
                self._call("put_item", Item=item, **condition)
            except ClientError as exc:
                if not self._conditional_failed(exc):
                    raise
                _backoff(attempt)
            else:
                return
        raise StoreUnavailableError(f"DynamoDB table {self.table!r}: source health kept changing under us")

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""
        return [
            SourceState(_str(i, "src"), _str(i, "acct"), _num(i, "ld"), _opt_num(i, "lft"), _num(i, "n"))
            for i in self._query_all(
                KeyConditionExpression="pk = :s", ExpressionAttributeValues={":s": _s("S")}, ConsistentRead=True
            )
        ]

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest signal per (source, account, service, region); ties go to the later one."""
        latest: dict[tuple[str, str, str, str], HealthSignal] = {}
        for signal in signals:
            key = (signal.source, signal.account_uid, signal.service, signal.region or "")
            if key not in latest or signal.time >= latest[key].time:
                latest[key] = signal
        self._pool_map(self._record_signal, list(latest.items()))

    def _record_signal(self, entry: tuple[tuple[str, str, str, str], HealthSignal]) -> None:
        key, signal = entry
        item: Item = {
            "pk": _s("G"),
            "sk": _s(orjson.dumps(list(key)).decode()),
            "src": _s(signal.source),
            "acct": _s(signal.account_uid),
            "svc": _s(signal.service),
            "ok": {"BOOL": signal.healthy},
            "t": _n(signal.time),
            "dt": _s(signal.detail),
        }
        if signal.region:
            item["rg"] = _s(signal.region)
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
                ExpressionAttributeNames={"#t": "t"},
                ExpressionAttributeValues={":t": _n(signal.time)},
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):  # a newer signal is already kept
                raise

    def signals(self) -> list[HealthSignal]:
        """Return the latest signal per (source, account, service, region)."""
        return [
            HealthSignal(
                source=_str(i, "src"),
                account_uid=_str(i, "acct"),
                service=_str(i, "svc"),
                healthy=bool(i["ok"]["BOOL"]),
                time=_num(i, "t"),
                region=_opt_str(i, "rg"),
                detail=_str(i, "dt"),
            )
            for i in self._query_all(
                KeyConditionExpression="pk = :g", ExpressionAttributeValues={":g": _s("G")}, ConsistentRead=True
            )
        ]
