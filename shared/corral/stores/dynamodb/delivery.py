"""The delivery side on DynamoDB: dead letters, the delivery ledger and sink message references."""

from __future__ import annotations

import gzip
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from corral import ocsf
from corral.errors import StoreUnavailableError
from corral.stores.base import (
    ChangeKind,
    Claim,
    DeadLetter,
    FindingKey,
    LedgerEntry,
    LedgerState,
    LedgerSummary,
    SinkBacklog,
    ThreadClaim,
    merge_dead_letters,
)
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
from corral.stores.dynamodb.table import Table, backoff

DEAD_LETTER_RETRIES = 6
RAW_PART_BYTES: Final = 350_000
"""The most raw input one dead-letter item holds: DynamoDB items are at most 400 KB, names included."""

DOCUMENT_SK: Final = "#document"

# Items -------------------------------------------------------------------------------------------


def ledger_key(entry: LedgerEntry) -> Item:
    """Return the key of one ledger row's item."""
    return {"pk": as_s(f"L#{entry.version}"), "sk": as_s(entry.sink)}


def document_key(version: str) -> Item:
    """Return the key of the item keeping a version's document for retries (beside its rows)."""
    # Sink ids are `kind:name`, so no row's sort key starts with "#".
    return {"pk": as_s(f"L#{version}"), "sk": as_s(DOCUMENT_SK)}


def ledger_item(entry: LedgerEntry, claim: Claim | None = None) -> Item:
    """Return the item of one ledger row, without its document (held by `claim` when pending)."""
    item: Item = {
        **ledger_key(entry),
        "snk": as_s(entry.sink),
        "kp": as_s(entry.key[0]),
        "ka": as_s(entry.key[1]),
        "kf": as_s(entry.key[2]),
        "ch": as_s(entry.change),
        "cr": as_n(entry.created),
        "g1sk": as_s(f"{time_key(entry.created)}#{entry.version}#{entry.sink}"),
    }
    if entry.previous_severity_id is not None:
        item["ps"] = as_n(entry.previous_severity_id)
    item.update(ledger_state(entry))
    if claim is not None and entry.state == "pending":
        item.update(na=as_n(claim.until), lc=as_s(claim.token))
    return item


def ledger_state(entry: LedgerEntry) -> Item:
    """Return the attributes an outcome changes."""
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


def ledger_entry(item: Mapping[str, Any], document: ocsf.Finding | None = None) -> LedgerEntry:
    """Read a ledger item back (its own document when written before rows stopped copying it)."""
    states: dict[str, LedgerState] = {s: s for s in LEDGER_STATES}
    kinds: dict[str, ChangeKind] = {
        **KIND_CODES,
        "unchanged": "unchanged",
        "stale": "stale",
        "reprioritized": "reprioritized",
    }
    return LedgerEntry(
        version=get_s(item, "pk")[2:],
        sink=get_s(item, "snk"),
        key=(get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf")),
        change=kinds[get_s(item, "ch")],
        document=decode_document(item["d"]) if "d" in item else document,
        created=get_n(item, "cr"),
        state=states[get_s(item, "s")],
        attempts=get_n(item, "at"),
        next_attempt=get_n(item, "na"),
        last_error=opt_s(item, "le"),
        delivered_at=opt_n(item, "da"),
        claim=opt_s(item, "lc"),
        previous_severity_id=opt_n(item, "ps"),
    )


def dead_letter_items(letter: DeadLetter, letter_id: str) -> tuple[Item, list[Item]]:
    """Return the item of one dead letter and the items its raw input is split into, if any.

    The raw input is compressed when that helps; what still exceeds one item (DynamoDB's limit is
    400 KB) goes to part items under the letter's own key, so that every byte is kept.
    """
    item: Item = {
        "pk": as_s("D"),
        "sk": as_s(letter_id),
        "at": as_n(letter.at),
        "rs": as_s(letter.reason),
        "ref": as_s(letter.ref),
        "sha": as_s(letter.sha256),
        "size": as_n(letter.size),
    }
    body, compressed = letter.raw, False
    if len(body) > COMPRESS_ABOVE:
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        if len(packed) < len(body):
            body, compressed = packed, True
    parts: list[Item] = []
    if len(body) <= RAW_PART_BYTES:
        item["rawz" if compressed else "raw"] = {"B": body}
    else:
        parts = [
            {"pk": as_s(f"D#{letter_id}"), "sk": as_s(f"{n:04d}"), "b": {"B": body[start : start + RAW_PART_BYTES]}}
            for n, start in enumerate(range(0, len(body), RAW_PART_BYTES))
        ]
        item["parts"] = as_n(len(parts))
        item["z"] = {"BOOL": compressed}
    if letter.source is not None:
        item["src"] = as_s(letter.source)
    item["cnt"] = as_n(letter.count)
    return item, parts


def dead_letter(item: Mapping[str, Any], parts: Sequence[Mapping[str, Any]] = ()) -> DeadLetter:
    """Read a dead-letter item back, with its raw input's part items when it has them."""
    if "parts" in item:
        body = b"".join(bytes(part["b"]["B"]) for part in parts)
        raw = gzip.decompress(body) if item["z"]["BOOL"] else body
    else:
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
        count=opt_n(item, "cnt") or 1,
    )


class Delivery(Table):
    """Dead letters, the delivery ledger and sink message references."""

    # Dead letter -------------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs; ids sort by time, then by arrival. A known input (sha256) counts up.

        A marker item per input (`DS`, sha256) is claimed with a conditional put; the writer that
        claims it writes the letter, any other adds to the letter's count. A marker left without
        its letter (its writer died in between) gets the letter from the next writer of the input.
        """
        stamp = time.time_ns()
        for i, letter in enumerate(merge_dead_letters(letters)):
            letter_id = f"{time_key(letter.at)}-{stamp:x}{i:04x}-{secrets.token_hex(2)}"
            marker = {"pk": as_s("DS"), "sk": as_s(letter.sha256), "id": as_s(letter_id)}
            if self._if("put_item", Item=marker, ConditionExpression="attribute_not_exists(pk)") and self._put_letter(
                letter, letter_id
            ):
                continue
            # Known already, or (after a long pause here) written meanwhile by the next writer.
            self._count_again(letter)

    def _count_again(self, letter: DeadLetter) -> None:
        known: Item | None = None
        for attempt in range(DEAD_LETTER_RETRIES):
            known = self._get({"pk": as_s("DS"), "sk": as_s(letter.sha256)})
            if known is not None and self._if(
                "update_item",
                Key={"pk": as_s("D"), "sk": known["id"]},
                UpdateExpression="ADD cnt :n",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":n": as_n(letter.count)},
            ):
                return
            # The writer that claimed the marker has not written the letter yet: wait for it.
            backoff(attempt)
        if known is not None and self._put_letter(letter, get_s(known, "id")):
            return  # that writer is gone: the letter is written here, under the marker's id
        raise StoreUnavailableError(f"DynamoDB table {self.table!r}: dead letter {letter.sha256[:12]} not written")

    def _put_letter(self, letter: DeadLetter, letter_id: str) -> bool:
        """Write a dead letter unless it exists; its raw input's parts first, so a letter is never seen without them."""
        item, parts = dead_letter_items(letter, letter_id)
        if parts:
            # Idempotent: the same input under the same id always splits into the same parts.
            self._batch_write([{"PutRequest": {"Item": part}} for part in parts])
        return self._if("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")

    def _read_letter(self, item: Item) -> DeadLetter:
        parts = list(self._partition(f"D#{get_s(item, 'sk')}")) if "parts" in item else []
        return dead_letter(item, parts)

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first."""
        params: dict[str, Any] = {"ScanIndexForward": False}
        if source is not None:
            params.update(FilterExpression="src = :src", ExpressionAttributeValues={":src": as_s(source)})
        found: list[DeadLetter] = []
        for item in self._partition("D", **params):
            if len(found) >= limit:
                break
            found.append(self._read_letter(item))
        return found

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""
        if not letter_id:
            return None
        item = self._get({"pk": as_s("D"), "sk": as_s(letter_id)})
        return self._read_letter(item) if item else None

    def count_dead_letters(self) -> dict[str, int]:
        """Return how many records failed, per source ("" for unknown); a letter counts as often as it failed."""
        counts: Counter[str] = Counter()
        for item in self._partition("D", ProjectionExpression="src, cnt"):
            counts[opt_s(item, "src") or ""] += opt_n(item, "cnt") or 1
        return dict(counts)

    # Delivery ledger ---------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry], *, claim: Claim | None = None) -> list[LedgerEntry]:
        """Insert rows whose (version, sink) is new, one conditional write each; with a claim, hold them."""
        unique = list({(e.version, e.sink): e for e in reversed(entries)}.values())[::-1]
        if claim is None:
            inserted = self._pool_map(
                lambda e: self._if("put_item", Item=ledger_item(e), ConditionExpression="attribute_not_exists(pk)"),
                unique,
            )
            return [e for e, ok in zip(unique, inserted, strict=True) if ok]
        held = self._pool_map(lambda e: self._hold_new(e, claim), unique)
        return [e for e in held if e is not None]

    def _hold_new(self, entry: LedgerEntry, claim: Claim) -> LedgerEntry | None:
        # Insert, or take an existing row that is pending, due and held by no live claim; an
        # existing row keeps everything but its hold. The answer is the row as now stored.
        item = {k: v for k, v in ledger_item(entry, claim).items() if k not in ("pk", "sk")}
        kept = [name for name in item if name not in ("na", "lc")]
        update = "SET " + ", ".join([f"#{n} = if_not_exists(#{n}, :{n})" for n in kept] + ["#na = :na", "#lc = :lc"])
        try:
            response = self._call(
                "update_item",
                Key=ledger_key(entry),
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(pk) OR (#s = :pending AND #na <= :now)",
                ExpressionAttributeNames={f"#{n}": n for n in item},
                ExpressionAttributeValues={
                    **{f":{n}": v for n, v in item.items()},
                    ":pending": as_s("pending"),
                    ":now": as_n(claim.at),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if self._conditional_failed(exc):
                return None
            raise
        return ledger_entry(response["Attributes"], entry.document)

    def ledger_claim(self, claim: Claim, *, limit: int = 500, sinks: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Hold up to `limit` due rows, oldest first: each by a write conditioned on it being due and free.

        The index read is only a list of candidates (eventually consistent); the conditional
        UpdateItem decides. A candidate whose condition fails (another worker holds it, or it
        was settled) is not returned, so it is not sent.
        """
        if sinks is not None and not sinks:
            return []
        candidates = self._due_candidates(claim.at, limit, sinks)
        held = [item for item in self._pool_map(lambda c: self._hold_due(c, claim), candidates) if item is not None]
        return self._with_documents(held)

    def _due_candidates(self, now: int, limit: int, sinks: Sequence[str] | None) -> list[Item]:
        values: dict[str, Any] = {":p": as_s("L#pending"), ":now": as_n(now)}
        where = "na <= :now"
        if sinks is not None:
            names = [f":s{i}" for i in range(len(sinks))]
            values.update({name: as_s(sink) for name, sink in zip(names, sinks, strict=True)})
            where += f" AND snk IN ({', '.join(names)})"
        due: list[Item] = []
        # Pages of `limit` index entries: the due rows are the oldest, so the first page usually holds them.
        for item in self._query_all(
            IndexName=INDEX,
            KeyConditionExpression="g1pk = :p",
            FilterExpression=where,
            ExpressionAttributeValues=values,
            Limit=max(limit, 1),
        ):
            if len(due) >= limit:
                break
            due.append(item)
        return due

    def _hold_due(self, candidate: Item, claim: Claim) -> Item | None:
        try:
            response = self._call(
                "update_item",
                Key={"pk": candidate["pk"], "sk": candidate["sk"]},
                UpdateExpression="SET #na = :until, #lc = :token",
                ConditionExpression="#s = :pending AND #na <= :now",
                ExpressionAttributeNames={"#na": "na", "#lc": "lc", "#s": "s"},
                ExpressionAttributeValues={
                    ":until": as_n(claim.until),
                    ":token": as_s(claim.token),
                    ":pending": as_s("pending"),
                    ":now": as_n(claim.at),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if self._conditional_failed(exc):
                return None
            raise
        attributes: Item = response["Attributes"]
        return attributes

    def _with_documents(self, items: Sequence[Item]) -> list[LedgerEntry]:
        """Read rows back with their version's document: their own copy, the one kept for retries, or
        the finding's current document (see `corral.stores._sql.ledger_entry`)."""
        versions = {get_s(i, "pk")[2:] for i in items if "d" not in i}
        kept = {
            get_s(item, "pk")[2:]: decode_document(item["d"])
            for found in self._batch_get([document_key(v) for v in versions]).values()
            for item in found
        }
        missing = [i for i in items if "d" not in i and get_s(i, "pk")[2:] not in kept]
        keys = {(get_s(i, "kp"), get_s(i, "ka"), get_s(i, "kf")) for i in missing}
        current: dict[FindingKey, ocsf.Finding] = {}
        for found in self._batch_get([{"pk": as_s(finding_pk(k)), "sk": as_s("F")} for k in keys]).values():
            for item in found:
                current[(get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf"))] = decode_document(item["d"])
        rows = [ledger_entry(i) for i in items]
        return [
            row if row.document is not None else row._replace(document=kept.get(row.version, current.get(row.key)))
            for row in rows
        ]

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest created first (holding nothing)."""
        due = self._due_candidates(now, limit, None)
        fetched = self._batch_get([{"pk": i["pk"], "sk": i["sk"]} for i in due])
        rows = {(get_s(i, "pk"), get_s(i, "sk")): i for items in fetched.values() for i in items}
        wanted = [rows.get((get_s(i, "pk"), get_s(i, "sk"))) for i in due]
        return self._with_documents([item for item in wanted if item is not None and get_s(item, "s") == "pending"])

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Record each row's outcome (a held row only while its claim holds it); keep documents for retries."""
        documents: dict[str, Item] = {}
        for e in entries:
            if e.state == "pending" and e.document is not None and e.version not in documents:
                documents[e.version] = {
                    **document_key(e.version),
                    "d": encode_document(e.document, what=f"ledger document {e.version[:16]}"),
                    "cr": as_n(e.created),
                    "g1pk": as_s("L#doc"),
                    "g1sk": as_s(f"{time_key(e.created)}#{e.version}"),
                }
        # First the documents, so that no pending row is ever without one.
        self._batch_write([{"PutRequest": {"Item": item}} for item in documents.values()])
        self._pool_map(self._ledger_update_one, list(entries))

    def _ledger_update_one(self, entry: LedgerEntry) -> None:
        # A conditional UpdateItem per row: BatchWriteItem has no conditions, and a row that is
        # not there must not be created by an update.
        state = ledger_state(entry)
        names = {f"#{name}": name for name in ("s", "g1pk", "at", "na", "le", "da", "lc")}
        sets = [f"#{name} = :{name}" for name in state]
        removes = [f"#{name}" for name in ("le", "da") if name not in state] + ["#lc"]
        values = {f":{name}": value for name, value in state.items()}
        condition = "attribute_exists(pk)"
        if entry.claim is not None:
            condition += " AND #lc = :token"
            values[":token"] = as_s(entry.claim)
        self._if(
            "update_item",
            Key=ledger_key(entry),
            UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def ledger_expire(self, settled_before: int) -> int:
        """Delete delivered and dead rows settled before the time, and documents no pending row needs."""
        doomed: list[Item] = []
        for state in ("delivered", "dead"):
            # A row is created before it settles: the index's creation order bounds the search.
            doomed += self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :p AND g1sk < :t",
                FilterExpression="na < :before",
                ExpressionAttributeValues={
                    ":p": as_s(f"L#{state}"),
                    ":t": as_s(time_key(settled_before)),
                    ":before": as_n(settled_before),
                },
                ProjectionExpression="pk, sk",
            )
        self._batch_write([{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in doomed])
        documents = list(
            self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :p AND g1sk < :t",
                ExpressionAttributeValues={":p": as_s("L#doc"), ":t": as_s(time_key(settled_before))},
                ProjectionExpression="pk, sk",
            )
        )
        unneeded = [d for d in documents if not self._has_pending(get_s(d, "pk"))]
        self._batch_write([{"DeleteRequest": {"Key": {"pk": d["pk"], "sk": d["sk"]}}} for d in unneeded])
        return len(doomed)

    def _has_pending(self, pk: str) -> bool:
        return any(
            get_s(item, "sk") != DOCUMENT_SK and get_s(item, "s") == "pending"
            for item in self._partition(pk, ProjectionExpression="sk, #s", ExpressionAttributeNames={"#s": "s"})
            if "s" in item
        )

    def ledger_for(self, versions: Sequence[str]) -> list[LedgerEntry]:
        """Return the ledger rows of these finding versions: one query per version (its sinks share a key)."""
        items = [
            item
            for version in versions
            for item in self._query_all(
                KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": as_s(f"L#{version}")}
            )
            if get_s(item, "sk") != DOCUMENT_SK
        ]
        return [ledger_entry(item) for item in items]

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink (reads every row)."""
        summary = LedgerSummary.empty()
        for state in LEDGER_STATES:
            for item in self._index_rows(state, "snk, cr"):
                sink = get_s(item, "snk")
                summary.counts[(sink, state)] = summary.counts.get((sink, state), 0) + 1
        summary.oldest_pending.update(self.ledger_oldest_pending())
        return summary

    def ledger_oldest_pending(self) -> dict[str, int]:
        """Return the oldest pending row's creation time per sink (reads pending rows' index entries only)."""
        oldest: dict[str, int] = {}
        for item in self._index_rows("pending", "snk, cr"):
            sink, created = get_s(item, "snk"), get_n(item, "cr")
            oldest[sink] = min(created, oldest.get(sink, created))
        return oldest

    def ledger_backlog(self, now: int) -> list[SinkBacklog]:
        """Return what is pending per sink and when its next attempt is due (reads pending rows only)."""
        items = list(self._index_rows("pending", "pk, sk, snk, cr, na"))
        held = {
            (get_s(i, "pk"), get_s(i, "sk"))
            for found in self._batch_get([{"pk": i["pk"], "sk": i["sk"]} for i in items], "pk, sk, lc").values()
            for i in found
            if "lc" in i
        }
        per_sink: dict[str, list[tuple[int, int, bool]]] = {}
        for i in items:
            nxt = get_n(i, "na")
            per_sink.setdefault(get_s(i, "snk"), []).append(
                (nxt, get_n(i, "cr"), nxt > now and (get_s(i, "pk"), get_s(i, "sk")) in held)
            )
        return [
            SinkBacklog(
                sink,
                pending=len(rows),
                due=sum(1 for nxt, _, _ in rows if nxt <= now),
                held=sum(1 for *_, h in rows if h),
                next_attempt=min(nxt for nxt, _, _ in rows),
                oldest_created=min(cr for _, cr, _ in rows),
            )
            for sink, rows in sorted(per_sink.items())
        ]

    def _index_rows(self, state: LedgerState, projection: str) -> Iterator[Item]:
        return self._query_all(
            IndexName=INDEX,
            KeyConditionExpression="g1pk = :p",
            ExpressionAttributeValues={":p": as_s(f"L#{state}")},
            ProjectionExpression=projection,
        )

    # Sink message references -------------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding."""
        item = self._get(_ref_key(key, sink))
        return (get_s(item, "ref") or None) if item else None

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference (filling a held thread); an existing one is kept."""
        self._if(
            "put_item",
            Item={**_ref_key(key, sink), "ref": as_s(ref)},
            ConditionExpression="attribute_not_exists(pk) OR #ref = :empty",
            ExpressionAttributeNames={"#ref": "ref"},
            ExpressionAttributeValues={":empty": as_s("")},
        )

    def claim_thread(self, key: FindingKey, sink: str, claim: Claim) -> ThreadClaim:
        """Return the finding's thread, or hold its first message (an empty ref marks the hold)."""
        ref = self.message_ref(key, sink)
        if ref is not None:
            return ThreadClaim(ref=ref)
        if self._if(
            "put_item",
            Item={**_ref_key(key, sink), "ref": as_s(""), "lc": as_s(claim.token), "lu": as_n(claim.until)},
            ConditionExpression="attribute_not_exists(pk) OR (#ref = :empty AND (lu <= :now OR lc = :token))",
            ExpressionAttributeNames={"#ref": "ref"},
            ExpressionAttributeValues={":empty": as_s(""), ":now": as_n(claim.at), ":token": as_s(claim.token)},
        ):
            return ThreadClaim(mine=True)
        return ThreadClaim(ref=self.message_ref(key, sink))

    def release_thread(self, key: FindingKey, sink: str, claim: Claim) -> None:
        """Give up a held first message that was not posted (or posted without a reference)."""
        self._if(
            "delete_item",
            Key=_ref_key(key, sink),
            ConditionExpression="#ref = :empty AND lc = :token",
            ExpressionAttributeNames={"#ref": "ref"},
            ExpressionAttributeValues={":empty": as_s(""), ":token": as_s(claim.token)},
        )


def _ref_key(key: FindingKey, sink: str) -> Item:
    return {"pk": as_s(finding_pk(key)), "sk": as_s(f"M#{sink}")}
