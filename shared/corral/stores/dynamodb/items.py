"""How the DynamoDB store lays out its items: attribute values, documents, keys, history and state.

See the package docstring for the table design; every attribute name of a finding item is there.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from corral import ocsf
from corral.errors import PermanentError
from corral.records import NamedTuple
from corral.stores._shared import trait_map
from corral.stores.base import ChangeKind, FindingKey, HistoryEntry, LedgerState, Snapshot, StoredFinding, Suppression

Item = dict[str, Any]
"""One DynamoDB item in the wire format: {"name": {"S": "value"}, ...}."""
SCHEMA_VERSION: Final = 5
"""2: the listing index sharded, id pointers and aggregate items; 3: counts kept by closed too;
4: the priority index of vulnerabilities; 5: the newest finding per cell kept per product and cloud.
`migrate()` upgrades older tables."""
INDEX: Final = "gsi1"
INDEX_ATTRIBUTES: Final = ("c", "ka", "sev", "st", "cl", "cu", "ft", "cs", "kc", "kn", "im", "tr", "na", "snk", "cr")
"""What gsi1 projects besides the keys: the query filters and what counts and summaries read."""
STATE_ATTRIBUTES: Final = "pk,kp,ka,kf,fs,ls,n,v,mt,fp,sev,st,cl,inc,hs,hx,sr,sb,su,lt,sq,seen"  # all but the document
COMPRESS_ABOVE: Final = 1024
"""Documents above 1 KiB are stored gzip-compressed: capacity is billed per KB read and written."""
MAX_DOCUMENT: Final = 350 * 1024
"""Largest encoded document: DynamoDB items stop at 400 KB, and the other attributes need room."""
LEDGER_STATES: Final[tuple[LedgerState, ...]] = ("pending", "delivered", "dead")
KIND_CODES: Final[dict[str, ChangeKind]] = {
    "new": "new",
    "updated": "updated",
    "escalated": "escalated",
    "deescalated": "deescalated",
    "reopened": "reopened",
    "closed": "closed",
}


# Encoding ----------------------------------------------------------------------------------------


def as_s(value: str) -> dict[str, str]:
    """Return a string attribute value."""
    return {"S": value}


def as_n(value: int) -> dict[str, str]:
    """Return a number attribute value."""
    return {"N": str(value)}


def get_n(item: Mapping[str, Any], name: str) -> int:
    """Read a number attribute."""
    return int(item[name]["N"])


def opt_n(item: Mapping[str, Any], name: str) -> int | None:
    """Read a number attribute, None when absent."""
    return int(item[name]["N"]) if name in item else None


def get_s(item: Mapping[str, Any], name: str) -> str:
    """Read a string attribute."""
    value: str = item[name]["S"]
    return value


def opt_s(item: Mapping[str, Any], name: str) -> str | None:
    """Read a string attribute, None when absent."""
    return get_s(item, name) if name in item else None


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


def time_key(value: int) -> str:
    # Fixed width, so that string order is time order (epoch ms has 13 digits until 2286).
    return f"{value:013d}"


# Listing index shards, id pointers and aggregates -------------------------------------------------

SHARDS: Final = 16
"""Listing partitions of gsi1 (and aggregate partitions): each takes about 1,000 index writes a second."""
LEGACY_LISTING: Final = "F"
"""The one listing partition of tables written before sharding; read beside the shards until rewritten."""


def listing_pk(pk: str) -> str:
    """Return the gsi1 partition of a finding: a fixed shard, from its key's hash, so it never moves."""
    return f"F#{int(sha256_hex(pk.encode())[:8], 16) % SHARDS:02d}"


def listing_partitions() -> list[str]:
    """Every gsi1 partition a listing of findings reads: the shards, then the legacy one."""
    return [f"F#{n:02d}" for n in range(SHARDS)] + [LEGACY_LISTING]


def listing_sk(last_seen: int, fid: str) -> str:
    """Return the gsi1 sort key of a finding: last seen, then its id, so one order holds across shards."""
    return f"{time_key(last_seen)}#{fid}"


def id_pk(fid: str) -> str:
    """Return the partition of a finding's id pointer (256 of them, by the id's first two digits)."""
    return f"I#{fid[:2]}"


def aggregate_pk(shard: int) -> str:
    """Return one aggregate partition (writers pick one at random; readers sum them all)."""
    return f"A#{shard:02d}"


def day_of(ms: int) -> int:
    """Return the start (epoch ms) of the UTC day holding `ms`."""
    return ms - ms % 86_400_000


def trait_pairs(finding: Mapping[str, Any]) -> list[str]:
    """Return every trait of a finding as `["name","value"]` strings (both `value` and `values`)."""
    return [orjson.dumps([name, value]).decode() for name, values in trait_map(finding).items() for value in values]


# Findings: history entries and state -------------------------------------------------------------


class Entry(NamedTuple):
    """One history entry as the store keeps it: its sequence number in the finding's history."""

    seq: int
    history: HistoryEntry

    def attribute(self) -> dict[str, Any]:
        """Return the entry as a map attribute (for the outbox)."""
        return {"M": self.attributes()}

    def attributes(self) -> dict[str, Any]:
        """Return the entry's attributes (the fields of an `H#` item)."""
        entry = self.history
        return {
            "q": as_n(self.seq),
            "at": as_n(entry.at),
            "k": as_s(entry.kind),
            "ver": as_s(entry.version),
            "mt": as_n(entry.modified_time),
            "sev": as_n(entry.severity_id),
            "st": as_n(entry.status_id),
        }

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> Entry:
        """Read an entry from an outbox map or an `H#` item."""
        entry = HistoryEntry(
            at=get_n(attrs, "at"),
            kind=KIND_CODES[get_s(attrs, "k")],
            version=get_s(attrs, "ver"),
            modified_time=get_n(attrs, "mt"),
            severity_id=get_n(attrs, "sev"),
            status_id=get_n(attrs, "st"),
        )
        return cls(get_n(attrs, "q"), entry)


class State(NamedTuple):
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
                modified_time=get_n(item, "mt"),
                fingerprint=get_s(item, "fp"),
                severity_id=get_n(item, "sev"),
                status_id=get_n(item, "st"),
                closed=bool(item["cl"]["BOOL"]),
                logged_time=opt_n(item, "lt"),
                sequence=opt_n(item, "sq"),
                seen=tuple((opt_s(item, "seen") or "").split()),
                suppressed="sr" in item,
            ),
            first_seen=get_n(item, "fs"),
            last_seen=get_n(item, "ls"),
            versions=get_n(item, "n"),
            lock=get_n(item, "v"),
            incarnation=get_s(item, "inc"),
            seq=get_n(item, "hs"),
            outbox=tuple(Entry.of(e["M"]) for e in item.get("hx", {}).get("L", [])),
            suppression={name: item[name] for name in ("sr", "sb", "su") if name in item},
        )


def history_item(pk: str, incarnation: str, entry: Entry) -> Item:
    """Return the `H#` item of one history entry."""
    return {"pk": as_s(pk), "sk": as_s(f"H#{incarnation}#{entry.seq:08d}"), **entry.attributes()}


def stored_finding(item: Mapping[str, Any]) -> StoredFinding:
    """Read a finding item back as the contract's StoredFinding."""
    suppression = None
    if "sr" in item:
        suppression = Suppression(get_s(item, "sr"), get_s(item, "sb"), opt_n(item, "su"))
    return StoredFinding(
        key=(get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf")),
        document=decode_document(item["d"]),
        first_seen=get_n(item, "fs"),
        last_seen=get_n(item, "ls"),
        versions=get_n(item, "n"),
        severity_id=get_n(item, "sev"),
        status_id=get_n(item, "st"),
        closed=bool(item["cl"]["BOOL"]),
        modified_time=get_n(item, "mt"),
        suppression=suppression,
    )
