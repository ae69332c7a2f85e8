"""Upsert on DynamoDB: decide each finding against its item, then one conditional put per changed key."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from corral import ocsf
from corral.context import ContainerContext
from corral.errors import StoreUnavailableError
from corral.stores.base import (
    Change,
    FindingKey,
    HistoryEntry,
    Snapshot,
    Suppression,
    columns,
    decide,
    finding_id,
    fingerprint,
    remember,
    version_key,
)
from corral.stores.dynamodb.aggregates import Aggregates, Written
from corral.stores.dynamodb.items import (
    STATE_ATTRIBUTES,
    Entry,
    Item,
    State,
    as_n,
    as_s,
    encode_document,
    finding_pk,
    history_item,
    id_pk,
    listing_pk,
    listing_sk,
    trait_pairs,
)
from corral.stores.dynamodb.table import MAX_CONFLICT_RETRIES, backoff


@dataclass(frozen=True, slots=True)
class Incoming:
    """One finding of a batch, with what every decision about it needs computed once."""

    index: int
    finding: ocsf.Finding
    key: FindingKey
    fingerprint: str
    snapshot: Snapshot
    modified_time: int
    """The source's own time, which the version and its history carry (the snapshot's may be capped)."""
    version: str
    document: dict[str, Any]

    @classmethod
    def of(cls, index: int, finding: ocsf.Finding, *, now: int) -> Incoming:
        """Prepare one finding arriving at `now` (its document is encoded here, so that a too-large one fails early)."""
        key = ocsf.identity(finding)
        fp = fingerprint(finding)
        modified = ocsf.modified_time(finding)
        return cls(
            index=index,
            finding=finding,
            key=key,
            fingerprint=fp,
            snapshot=Snapshot.of(finding, fp, now=now),
            modified_time=modified,
            version=version_key(key, modified, fp),
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
        snapshot = found.snapshot._replace(seen=remember(snapshot.seen if snapshot else (), found.fingerprint))
        latest = found
        if kind != "unchanged":
            versions += 1
            seq += 1
            entries.append(
                Entry(
                    seq,
                    HistoryEntry(
                        now, kind, found.version, found.modified_time, snapshot.severity_id, snapshot.status_id
                    ),
                )
            )
    if latest is None:
        return plan
    outbox = tuple(entries) if entries else (current.outbox if current else ())
    # The entries a write replaces go to their own items first (see the module docstring).
    plan.spill = current.outbox if current and entries else ()
    plan.incarnation = incarnation
    plan.item = _finding_item(latest, first_seen, last_seen, versions, seq, incarnation, outbox, current)
    if snapshot is not None:
        plan.item.update(_order(snapshot))
    if current is None:
        plan.condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        plan.condition = {
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "v"},
            "ExpressionAttributeValues": {":v": as_n(current.lock)},
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
    # Its snapshot, not the finding alone: the item keeps the time the finding was decided by.
    cols = columns(found.finding, found.fingerprint, found.snapshot)
    item: Item = {
        "pk": as_s(pk),
        "sk": as_s("F"),
        "g1pk": as_s(listing_pk(pk)),
        "g1sk": as_s(listing_sk(last_seen, finding_id(found.key))),
        "kp": as_s(found.key[0]),
        "ka": as_s(found.key[1]),
        "kf": as_s(found.key[2]),
        "d": found.document,
        "fs": as_n(first_seen),
        "ls": as_n(last_seen),
        "n": as_n(versions),
        "v": as_n(current.lock + 1 if current else 1),
        "mt": as_n(cols.modified_time),
        "fp": as_s(cols.fingerprint),
        "sev": as_n(cols.severity_id),
        "st": as_n(cols.status_id),
        "cl": {"BOOL": cols.closed},
        "c": as_s(cols.cloud),
        "cu": as_n(cols.class_uid),
        "inc": as_s(incarnation),
        "hs": as_n(seq),
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
            item[name] = as_s(value)
    pairs = trait_pairs(found.finding)
    if pairs:
        item["tr"] = {"SS": pairs}
    if cols.sample:
        item["sm"] = {"BOOL": True}
    if current is not None:
        item.update(current.suppression)
    return item


def _order(snapshot: Snapshot) -> Item:
    """The transport order and the accepted contents the item keeps for the next decision."""
    item: Item = {"seen": as_s(" ".join(snapshot.seen))}
    if snapshot.logged_time is not None:
        item["lt"] = as_n(snapshot.logged_time)
    if snapshot.sequence is not None:
        item["sq"] = as_n(snapshot.sequence)
    return item


class Upserts(Aggregates):
    """The writes of findings: upserts and suppression marks."""

    def upsert(
        self,
        findings: Sequence[ocsf.Finding],
        *,
        now: int,
        documents: Sequence[bytes | None] = (),
        contexts: Sequence[ContainerContext | None] = (),
    ) -> list[Change]:
        """Store a batch: one read per 100 keys, one conditional write per changed key (see module docstring)."""
        del contexts  # derived per written item: most of a batch is usually unchanged
        prepared = [Incoming.of(i, finding, now=now) for i, finding in enumerate(findings)]
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
        tasks = [(key, by_key[key], plan, stored.get(key)) for key, plan in plans.items()]
        results: list[Change | None] = [None] * len(prepared)
        written: list[Written] = []
        for changes, done in self._pool_map(lambda task: self._write_key(*task, now=now), tasks):
            for index, change in changes:
                results[index] = change
            if done is not None:
                written.append(done)
        # A new finding gets its id pointer (idempotent: the id is the key's hash).
        self._batch_write(
            [
                {"PutRequest": {"Item": {"pk": as_s(id_pk(fid)), "sk": as_s(fid), "f": as_s(finding_pk(key))}}}
                for key, fid in ((w.key, finding_id(w.key)) for w in written if w.before is None)
            ]
        )
        self._aggregate(written)
        return [change for change in results if change is not None]

    def _states(self, keys: Sequence[FindingKey]) -> dict[FindingKey, State]:
        items = self._batch_get([{"pk": as_s(finding_pk(k)), "sk": as_s("F")} for k in keys], STATE_ATTRIBUTES)
        by_pk = {finding_pk(k): k for k in keys}
        return {by_pk[pk]: State.of(found[0]) for pk, found in items.items() if pk in by_pk}

    def _write_key(
        self, key: FindingKey, incoming: Sequence[Incoming], plan: Plan, before: State | None, *, now: int
    ) -> tuple[list[tuple[int, Change]], Written | None]:
        """Put one key's item; on a lost race, read it again, decide again and retry.

        Return the changes and what the put replaced with what (None when nothing was written).
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            if plan.item is None:
                return plan.changes, None
            if self._if("put_item", Item=plan.item, **plan.condition):
                return plan.changes, Written(key, before, plan.item)
            backoff(attempt)
            before = self._states([key]).get(key)
            plan = plan_key(before, incoming, now=now)
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
        values: dict[str, Any] = {":one": as_n(1)}
        if suppression is None:
            update = "REMOVE #sr, #sb, #su ADD #v :one"
        else:
            values.update({":sr": as_s(suppression.reason), ":sb": as_s(suppression.by)})
            if suppression.until is None:
                update = "SET #sr = :sr, #sb = :sb REMOVE #su ADD #v :one"
            else:
                values[":su"] = as_n(suppression.until)
                update = "SET #sr = :sr, #sb = :sb, #su = :su ADD #v :one"
        # A failed condition means an unknown finding: it has nothing to mark.
        self._if(
            "update_item",
            Key={"pk": as_s(finding_pk(key)), "sk": as_s("F")},
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
