"""The delivery side on DynamoDB: dead letters, the delivery ledger and sink message references."""

from __future__ import annotations

import gzip
import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from corral.stores.base import ChangeKind, DeadLetter, FindingKey, LedgerEntry, LedgerState, LedgerSummary
from corral.stores.dynamodb.items import (
    COMPRESS_ABOVE,
    INDEX,
    KIND_CODES,
    LEDGER_STATES,
    Item,
    as_n,
    as_s,
    decode_document,
    encode_document,
    finding_pk,
    get_n,
    get_s,
    opt_n,
    opt_s,
    time_key,
)
from corral.stores.dynamodb.table import Table

# Items -------------------------------------------------------------------------------------------


def ledger_key(entry: LedgerEntry) -> Item:
    """Return the key of one ledger row's item."""
    return {"pk": as_s(f"L#{entry.version}"), "sk": as_s(entry.sink)}


def ledger_item(entry: LedgerEntry) -> Item:
    """Return the item of one ledger row."""
    item: Item = {
        **ledger_key(entry),
        "snk": as_s(entry.sink),
        "kp": as_s(entry.key[0]),
        "ka": as_s(entry.key[1]),
        "kf": as_s(entry.key[2]),
        "ch": as_s(entry.change),
        "d": encode_document(entry.document, what=f"ledger row {entry.version[:16]}/{entry.sink}"),
        "cr": as_n(entry.created),
        "g1sk": as_s(f"{time_key(entry.created)}#{entry.version}#{entry.sink}"),
    }
    item.update(ledger_state(entry))
    return item


def ledger_state(entry: LedgerEntry) -> Item:
    state: Item = {
        "s": as_s(entry.state),
        "g1pk": as_s(f"L#{entry.state}"),
        "at": as_n(entry.attempts),
        "na": as_n(entry.next_attempt),
    }
    if entry.last_error is not None:
        state["le"] = as_s(entry.last_error)
    if entry.delivered_at is not None:
        state["da"] = as_n(entry.delivered_at)
    return state


def ledger_entry(item: Mapping[str, Any]) -> LedgerEntry:
    """Read a ledger item back."""
    states: dict[str, LedgerState] = {s: s for s in LEDGER_STATES}
    kinds: dict[str, ChangeKind] = {**KIND_CODES, "unchanged": "unchanged", "stale": "stale"}
    return LedgerEntry(
        version=get_s(item, "pk")[2:],
        sink=get_s(item, "snk"),
        key=(get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf")),
        change=kinds[get_s(item, "ch")],
        document=decode_document(item["d"]),
        created=get_n(item, "cr"),
        state=states[get_s(item, "s")],
        attempts=get_n(item, "at"),
        next_attempt=get_n(item, "na"),
        last_error=opt_s(item, "le"),
        delivered_at=opt_n(item, "da"),
    )


def dead_letter_item(letter: DeadLetter, letter_id: str) -> Item:
    """Return the item of one dead letter (raw input compressed when that helps)."""
    item: Item = {
        "pk": as_s("D"),
        "sk": as_s(letter_id),
        "at": as_n(letter.at),
        "rs": as_s(letter.reason),
        "ref": as_s(letter.ref),
        "sha": as_s(letter.sha256),
        "size": as_n(letter.size),
    }
    packed = gzip.compress(letter.raw, compresslevel=6, mtime=0) if len(letter.raw) > COMPRESS_ABOVE else None
    if packed is not None and len(packed) < len(letter.raw):
        item["rawz"] = {"B": packed}
    else:
        item["raw"] = {"B": letter.raw}
    if letter.source is not None:
        item["src"] = as_s(letter.source)
    return item


def dead_letter(item: Mapping[str, Any]) -> DeadLetter:
    """Read a dead-letter item back."""
    raw = gzip.decompress(item["rawz"]["B"]) if "rawz" in item else bytes(item["raw"]["B"])
    return DeadLetter(
        at=get_n(item, "at"),
        reason=get_s(item, "rs"),
        ref=get_s(item, "ref"),
        raw=raw,
        sha256=get_s(item, "sha"),
        size=get_n(item, "size"),
        source=opt_s(item, "src"),
        id=get_s(item, "sk"),
    )


class Delivery(Table):
    """Dead letters, the delivery ledger and sink message references."""

    # Dead letter -------------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs; ids sort by time, then by arrival."""
        stamp = time.time_ns()
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": dead_letter_item(
                            letter, f"{time_key(letter.at)}-{stamp:x}{i:04x}-{secrets.token_hex(2)}"
                        )
                    }
                }
                for i, letter in enumerate(letters)
            ]
        )

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first."""
        params: dict[str, Any] = {"ScanIndexForward": False}
        if source is not None:
            params.update(FilterExpression="src = :src", ExpressionAttributeValues={":src": as_s(source)})
        found: list[DeadLetter] = []
        for item in self._partition("D", **params):
            if len(found) >= limit:
                break
            found.append(dead_letter(item))
        return found

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""
        if not letter_id:
            return None
        item = self._get({"pk": as_s("D"), "sk": as_s(letter_id)})
        return dead_letter(item) if item else None

    def count_dead_letters(self) -> dict[str, int]:
        """Return dead-letter counts per source ("" for unknown)."""
        return dict(Counter(opt_s(item, "src") or "" for item in self._partition("D", ProjectionExpression="src")))

    # Delivery ledger ---------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Insert rows whose (version, sink) is new; return each row as stored now."""
        keys = [ledger_key(e) for e in entries]
        existing = {
            (get_s(item, "pk"), get_s(item, "sk")): ledger_entry(item)
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
        if self._if("put_item", Item=ledger_item(entry), ConditionExpression="attribute_not_exists(pk)"):
            return entry
        # Another writer inserted it first: theirs is the row.
        return ledger_entry(self._call("get_item", Key=ledger_key(entry), ConsistentRead=True)["Item"])

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest created first."""
        due: list[Item] = []
        for item in self._query_all(
            IndexName=INDEX,
            KeyConditionExpression="g1pk = :p",
            FilterExpression="na <= :now",
            ExpressionAttributeValues={":p": as_s("L#pending"), ":now": as_n(now)},
        ):
            if len(due) >= limit:
                break
            due.append(item)
        fetched = self._batch_get([{"pk": i["pk"], "sk": i["sk"]} for i in due])
        rows = {(get_s(i, "pk"), get_s(i, "sk")): i for items in fetched.values() for i in items}
        wanted = [rows.get((get_s(i, "pk"), get_s(i, "sk"))) for i in due]
        return [ledger_entry(item) for item in wanted if item is not None and get_s(item, "s") == "pending"]

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Record the new state, attempts, error and next attempt of each row (absent rows stay absent)."""
        for entry in entries:
            self._ledger_update_one(entry)

    def _ledger_update_one(self, entry: LedgerEntry) -> None:
        # A conditional UpdateItem per row: BatchWriteItem has no conditions, and a row that is
        # not there must not be created by an update.
        state = ledger_state(entry)
        names = {f"#{name}": name for name in ("s", "g1pk", "at", "na", "le", "da")}
        sets = [f"#{name} = :{name}" for name in state]
        removes = [f"#{name}" for name in ("le", "da") if name not in state]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        self._if(
            "update_item",
            Key=ledger_key(entry),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{name}": value for name, value in state.items()},
        )

    def ledger_for(self, versions: Sequence[str]) -> list[LedgerEntry]:
        """Return the ledger rows of these finding versions: one query per version (its sinks share a key)."""
        return [
            ledger_entry(item)
            for version in versions
            for item in self._query_all(
                KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": as_s(f"L#{version}")}
            )
        ]

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink."""
        summary = LedgerSummary()
        for state in LEDGER_STATES:
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :p",
                ExpressionAttributeValues={":p": as_s(f"L#{state}")},
                ProjectionExpression="snk, cr",
            ):
                sink = get_s(item, "snk")
                summary.counts[(sink, state)] = summary.counts.get((sink, state), 0) + 1
                if state == "pending":
                    created = get_n(item, "cr")
                    summary.oldest_pending[sink] = min(created, summary.oldest_pending.get(sink, created))
        return summary

    # Sink message references -------------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding."""
        item = self._get({"pk": as_s(finding_pk(key)), "sk": as_s(f"M#{sink}")})
        return get_s(item, "ref") if item else None

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference; an existing one is kept."""
        self._if(
            "put_item",
            Item={"pk": as_s(finding_pk(key)), "sk": as_s(f"M#{sink}"), "ref": as_s(ref)},
            ConditionExpression="attribute_not_exists(pk)",
        )
