"""Reading findings from DynamoDB: by key, history, filtered pages of the index, counts and expiry."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from botocore.exceptions import ClientError

from corral.stores._shared import (
    CLOUD_NAMES,
    SERVICE_NAMES,
    canonical,
    not_a_cursor,
    pack_cursor,
    unpack_cursor,
)
from corral.stores.base import (
    FindingKey,
    FindingQuery,
    HistoryEntry,
    MatchCount,
    Page,
    StoredFinding,
    finding_id,
    search_text,
    uid_prefix,
)
from corral.stores.dynamodb.aggregates import Aggregates, removed
from corral.stores.dynamodb.items import (
    INDEX,
    Entry,
    Item,
    as_n,
    as_s,
    finding_pk,
    get_s,
    id_pk,
    listing_partitions,
    stored_finding,
    time_key,
)
from corral.vocabulary import products_of

# Filters and cursors -----------------------------------------------------------------------------


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
            self.equal(attribute, as_s(pattern))
            return
        parts = pattern.split("*")
        if parts[0]:
            self.clauses.append(f"begins_with({self.name(attribute)}, {self.value(as_s(parts[0]))})")
        for part in parts[1:]:
            if part:
                self.clauses.append(f"contains({self.name(attribute)}, {self.value(as_s(part))})")
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


def query_filter(query: FindingQuery) -> tuple[Expression, Callable[[Mapping[str, Any]], bool]]:
    """Return the server-side filter of a query and the check done here on each index item.

    Values with a fixed vocabulary (cloud, service) are matched exactly on the server once put in
    their stored spelling; text that must match case-insensitively is checked here, since DynamoDB
    compares strings exactly: source and account on the finding's key (`key_filter`), type,
    cluster, namespace and image on the projected attributes. Text search needs the document and
    is applied after the fetch (`query`).
    """
    expr = Expression()
    if query.cloud is not None:
        expr.equal("c", as_s(canonical(query.cloud, CLOUD_NAMES)))
    if query.container_service is not None:
        expr.equal("cs", as_s(canonical(query.container_service, SERVICE_NAMES)))
    for attribute, number in (("st", query.status_id), ("cu", query.class_uid), ("sev", query.severity_id)):
        if number is not None:
            expr.equal(attribute, as_n(number))
    if query.severity_at_least is not None:
        # Unknown (0) and Other (99) have no rank, as in `decide()`: never "at least" anything.
        low = expr.value(as_n(max(query.severity_at_least, 1)))
        expr.clauses.append(f"{expr.name('sev')} BETWEEN {low} AND {expr.value(as_n(6))}")
    if query.open_only:
        expr.equal("cl", {"BOOL": False})
    if query.trait is not None:
        pair = orjson.dumps(list(query.trait)).decode()
        expr.clauses.append(f"contains({expr.name('tr')}, {expr.value(as_s(pair))})")
    checks: list[tuple[str, re.Pattern[str]]] = []
    for option, attribute in GLOB_FILTERS:
        pattern = getattr(query, option)
        if pattern is not None:
            checks.append((attribute, glob_matcher(pattern)))
    answered_by_key = key_filter(query)

    def exact(item: Mapping[str, Any]) -> bool:
        if answered_by_key is not None and not answered_by_key(_key(item)):
            return False
        return all(attr in item and matcher.fullmatch(get_s(item, attr)) for attr, matcher in checks)

    return expr, exact


def key_filter(query: FindingQuery) -> Callable[[FindingKey], bool] | None:
    """Return the check of the filters a finding key answers by itself (source, account); None without them."""
    if query.source is None and query.account is None:
        return None
    account = None if query.account is None else glob_matcher(query.account)
    products = None if query.source is None else set(products_of(query.source))

    def check(key: FindingKey) -> bool:
        if products is not None and key[0].lower() not in products:
            return False
        return account is None or account.fullmatch(key[1]) is not None

    return check


def _key(item: Mapping[str, Any]) -> FindingKey:
    # A finding item has its key's parts; a listing index item has the account, and the product in
    # its partition key (unless an identity over 1 KB was hashed there).
    if "kp" in item:
        return get_s(item, "kp"), get_s(item, "ka"), get_s(item, "kf")
    pk = get_s(item, "pk")
    product = str(orjson.loads(pk[2:])[0]) if pk.startswith("F#[") else ""
    return product, get_s(item, "ka"), ""


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """Return the case-insensitive matcher of a glob where only `*` is a wildcard."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL | re.IGNORECASE)


GLOB_FILTERS: Final = (
    ("finding_type", "ft"),
    ("cluster", "kc"),
    ("namespace", "kn"),
    ("image", "im"),
)


def encode_cursor(g1sk: str) -> str:
    """Return the keyset cursor that continues after an index item: its sort key (last seen and id)."""
    return pack_cursor([g1sk])


def decode_cursor(cursor: str) -> str:
    """Return the index sort key a cursor made by `encode_cursor` continues after; ValueError for anything else."""
    (g1sk,) = unpack_cursor(cursor, 1)
    if not isinstance(g1sk, str) or not g1sk[:13].isdigit():
        raise not_a_cursor(cursor)
    return g1sk


def _bounds(query: FindingQuery) -> tuple[str | None, str | None]:
    """Return the index sort key range of a query: at or above `low`, strictly below `high`."""
    low = None if query.since is None else time_key(query.since)
    highs = [time_key(query.until)] if query.until is not None else []
    if query.cursor is not None:
        highs.append(decode_cursor(query.cursor))
    return low, (min(highs) if highs else None)


def _sort_key(item: Mapping[str, Any]) -> str:
    """The order of a listing across shards; legacy items (sort key without the id) sort by their key."""
    g1sk = get_s(item, "g1sk")
    return g1sk if "#" in g1sk else f"{g1sk}#{get_s(item, 'pk')}"


_MATCHING_WINDOW: Final = 25
"""Most candidates `Queries.matching` reads at once: a page of 50 from a few windows when most match."""


class Queries(Aggregates):
    """The reads of findings, and the expiry of closed ones."""

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""
        item = self._get({"pk": as_s(finding_pk(key)), "sk": as_s("F")})
        return stored_finding(item) if item else None

    def matching(self, keys: Iterable[FindingKey], query: FindingQuery) -> list[StoredFinding]:
        """Return the open findings of `keys` that match every filter of `query`, in the keys' order.

        Up to `query.limit`; the cursor is not read. Each finding is read with a query on its own
        key that carries the listing's own filter expression (a get cannot filter), a window of
        them at a time in parallel, so that what matches is what a listing would return. `keys` is
        read only as far as the page needs.
        """
        bare = query._replace(cursor=None)
        expr, exact = query_filter(bare)
        expr.equal("cl", {"BOOL": False})
        low, high = _bounds(bare)
        if low is not None:
            expr.clauses.append(f"{expr.name('g1sk')} >= {expr.value(as_s(low))}")
        if high is not None:
            expr.clauses.append(f"{expr.name('g1sk')} < {expr.value(as_s(high))}")
        names = {**expr.names, "#pk": "pk", "#sk": "sk"}
        condition = " AND ".join(expr.clauses)
        needle = (query.text or "").lower()
        answered_by_key = key_filter(bare)  # a candidate its own key rules out costs no read

        def read(key: FindingKey) -> StoredFinding | None:
            items = self._call(
                "query",
                KeyConditionExpression="#pk = :pk AND #sk = :sk",
                FilterExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**expr.values, ":pk": as_s(finding_pk(key)), ":sk": as_s("F")},
                ConsistentRead=True,
            ).get("Items", [])
            if not items or not exact(items[0]):
                return None
            found = stored_finding(items[0])
            return found if needle in search_text(found.document) else None

        found: list[StoredFinding] = []
        candidates = iter(keys) if answered_by_key is None else filter(answered_by_key, keys)
        # No more candidates at once than the page still needs: when most match, nothing is read in vain.
        while (wanted := query.limit - len(found)) > 0 and (
            window := list(itertools.islice(candidates, min(wanted, _MATCHING_WINDOW)))
        ):
            found += [item for item in self._pool_map(read, window) if item is not None]
        return found

    def histories(self, keys: Sequence[FindingKey]) -> dict[FindingKey, list[HistoryEntry]]:
        """Return the recorded changes of each finding, oldest first (a query per finding, in parallel)."""
        unique = list(dict.fromkeys(keys))
        return dict(zip(unique, self._pool_map(self.history, unique), strict=True))

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first: its `H#` items merged with its outbox."""
        items = list(
            self._partition(
                finding_pk(key),
                ProjectionExpression="sk, inc, hx, q, #at, k, ver, mt, sev, st",
                ExpressionAttributeNames={"#at": "at"},
            )
        )
        head = next((item for item in items if get_s(item, "sk") == "F"), None)
        if head is None:
            return []
        prefix = f"H#{get_s(head, 'inc')}#"
        entries = {e.seq: e for e in (Entry.of(i) for i in items if get_s(i, "sk").startswith(prefix))}
        entries.update((e.seq, e) for e in (Entry.of(m["M"]) for m in head.get("hx", {}).get("L", [])))
        return [entries[seq].history for seq in sorted(entries)]

    def _listing(
        self, partition: str, query: FindingQuery, wanted: int, expr: Expression, exact: Callable[[Item], bool]
    ) -> list[Item]:
        """Read one listing partition, newest first, until `wanted` index items match (or it ends).

        Without filters that is one page of `wanted` items.
        """
        names = {**expr.names, "#p": "g1pk"}
        values: dict[str, Any] = {":p": as_s(partition), **expr.values}
        low, high = _bounds(query)
        condition = "#p = :p"
        if low is not None or high is not None:
            names["#s"] = "g1sk"
        if low is not None and high is not None:
            condition += " AND #s BETWEEN :low AND :high"
            values.update({":low": as_s(low), ":high": as_s(high)})
        elif low is not None:
            condition += " AND #s >= :low"
            values[":low"] = as_s(low)
        elif high is not None:
            condition += " AND #s < :high"
            values[":high"] = as_s(high)
        params: dict[str, Any] = {
            "IndexName": INDEX,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if expr.clauses:
            params["FilterExpression"] = " AND ".join(expr.clauses)
        matches: list[Item] = []
        while len(matches) < wanted:
            params["Limit"] = max(wanted - len(matches), 100 if expr.clauses else 0)
            response = self._call("query", **params)
            # BETWEEN includes its upper end; the cursor's own item is excluded here.
            matches += [i for i in response.get("Items", []) if exact(i) and (high is None or _sort_key(i) < high)]
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return matches[:wanted]

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every filter, newest last seen first, paged by keyset across the shards.

        Each listing shard is read newest first for up to limit + 1 matches (without filters: one
        page per shard), in parallel; the merged order is the sort key (last seen, then id), which
        is also the cursor. A text search checks each candidate's document after the fetch.
        """
        expr, exact = query_filter(query)
        limit = max(query.limit, 0)
        wanted = limit + 1
        if query.text:
            return self._search(query, expr, exact, limit)
        parts = self._pool_map(
            lambda partition: self._listing(partition, query, wanted, expr, exact), listing_partitions()
        )
        merged = sorted((i for part in parts for i in part), key=_sort_key, reverse=True)
        page = merged[:limit]
        fetched = self._batch_get([{"pk": item["pk"], "sk": as_s("F")} for item in page])
        items = [stored_finding(fetched[get_s(i, "pk")][0]) for i in page if get_s(i, "pk") in fetched]
        next_cursor = encode_cursor(_sort_key(page[-1])) if page and len(merged) > len(page) else None
        return Page(items, next_cursor)

    def _search(self, query: FindingQuery, expr: Expression, exact: Callable[[Item], bool], limit: int) -> Page:
        """A text search: walk the listing a page at a time and keep documents whose title or resources match."""
        needle = (query.text or "").lower()
        found: list[tuple[StoredFinding, str]] = []
        cursor = query.cursor
        while len(found) <= limit:
            step = query._replace(text=None, cursor=cursor, limit=100)
            candidates, cursor = self._page_of_candidates(step, expr, exact)
            found += [(item, key) for item, key in candidates if needle in search_text(item.document)]
            if cursor is None:
                break
        page = found[:limit]
        more = len(found) > limit or cursor is not None
        return Page([item for item, _ in page], encode_cursor(page[-1][1]) if page and more else None)

    def _page_of_candidates(
        self, query: FindingQuery, expr: Expression, exact: Callable[[Item], bool]
    ) -> tuple[list[tuple[StoredFinding, str]], str | None]:
        parts = self._pool_map(
            lambda partition: self._listing(partition, query, query.limit + 1, expr, exact), listing_partitions()
        )
        merged = sorted((i for part in parts for i in part), key=_sort_key, reverse=True)
        page = merged[: query.limit]
        fetched = self._batch_get([{"pk": item["pk"], "sk": as_s("F")} for item in page])
        items = [(stored_finding(fetched[get_s(i, "pk")][0]), _sort_key(i)) for i in page if get_s(i, "pk") in fetched]
        return items, (encode_cursor(_sort_key(page[-1])) if page and len(merged) > len(page) else None)

    def count(self, query: FindingQuery, *, at_most: int = 10_000) -> MatchCount:
        """Count matches by reading the listing index (no documents), stopping after `at_most`.

        A query on cloud, severity and status alone (the finding list's severity bands) is answered
        from the aggregate items instead, exactly.
        """
        counted = self._counted(query)
        if counted is not None:
            return MatchCount(counted)
        expr, exact = query_filter(query._replace(cursor=None))
        if query.text:
            counted = 0
            cursor = None
            while counted < at_most:
                page = self.query(query._replace(limit=500, cursor=cursor))
                counted += len(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    return MatchCount(counted)
            return MatchCount(counted, exact=False)
        bare = query._replace(cursor=None)
        total = 0
        for partition in listing_partitions():
            total += len(self._listing(partition, bare, at_most + 1 - total, expr, exact))
            if total > at_most:
                return MatchCount(at_most, exact=False)
        return MatchCount(total)

    def find(self, id_or_uid: str, *, limit: int = 2) -> list[StoredFinding]:
        """Return up to `limit` findings whose id starts with `id_or_uid` or whose uid it is, by the id pointers.

        An id prefix needs at least its first two digits (they name the pointer's partition).
        """
        pointers: list[Item] = []
        prefix = id_or_uid.lower()
        if len(prefix) >= 2 and all(c in "0123456789abcdef" for c in prefix):
            pointers += self._pointers(prefix, limit)
        by_uid = self._pointers(uid_prefix(id_or_uid), 50)
        keys = {get_s(p, "f"): get_s(p, "sk") for p in [*pointers, *by_uid]}
        fetched = self._batch_get([{"pk": as_s(pk), "sk": as_s("F")} for pk in keys])
        found = [stored_finding(items[0]) for items in fetched.values()]
        ids = {get_s(p, "sk") for p in pointers}
        kept = [f for f in found if f.id in ids or f.key[2] == id_or_uid]
        return sorted(kept, key=lambda f: f.id)[:limit]

    def _pointers(self, prefix: str, limit: int) -> list[Item]:
        return list(
            self._call(
                "query",
                KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                ExpressionAttributeValues={":p": as_s(id_pk(prefix)), ":s": as_s(prefix)},
                Limit=limit,
            ).get("Items", [])
        )

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time, with their history, id pointer and message refs."""
        candidates: list[str] = []
        for partition in listing_partitions():
            candidates += [
                get_s(item, "pk")
                for item in self._query_all(
                    IndexName=INDEX,
                    KeyConditionExpression="g1pk = :f AND g1sk < :t",
                    FilterExpression="cl = :closed",
                    ExpressionAttributeValues={
                        ":f": as_s(partition),
                        ":t": as_s(time_key(closed_before)),
                        ":closed": {"BOOL": True},
                    },
                    ProjectionExpression="pk",
                )
            ]
        gone = [item for item in self._pool_map(lambda pk: self._expire(pk, closed_before), candidates) if item]
        self._apply(removed(gone))
        return len(gone)

    def _expire(self, pk: str, closed_before: int) -> Item | None:
        # The condition holds against a reopening or a fresh delivery that raced the query.
        try:
            response = self._call(
                "delete_item",
                Key={"pk": as_s(pk), "sk": as_s("F")},
                ConditionExpression="cl = :closed AND ls < :t",
                ExpressionAttributeValues={":closed": {"BOOL": True}, ":t": as_n(closed_before)},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise
            return None
        old: Item = response.get("Attributes", {})
        rest = self._query_all(
            KeyConditionExpression="pk = :pk AND sk > :f",
            ExpressionAttributeValues={":pk": as_s(pk), ":f": as_s("F")},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        # History entries left by a crash here belong to a dead incarnation: invisible to `history()`.
        deletes = [{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in rest]
        if "kp" in old:
            fid = finding_id((get_s(old, "kp"), get_s(old, "ka"), get_s(old, "kf")))
            deletes.append({"DeleteRequest": {"Key": {"pk": as_s(id_pk(fid)), "sk": as_s(fid)}}})
        self._batch_write(deletes)
        return old
