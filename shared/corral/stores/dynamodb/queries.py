"""Reading findings from DynamoDB: by key, history, filtered pages of the index, counts and expiry."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from corral.stores._shared import not_a_cursor, pack_cursor, unpack_cursor
from corral.stores.base import CountRow, FindingKey, FindingQuery, HistoryEntry, Page, StoredFinding
from corral.stores.dynamodb.items import (
    INDEX,
    Entry,
    Item,
    as_n,
    as_s,
    finding_pk,
    get_n,
    get_s,
    stored_finding,
    time_key,
)
from corral.stores.dynamodb.table import Table

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


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """Return the exact matcher of a glob where only `*` is a wildcard (case-sensitive)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


GLOB_FILTERS: Final = (("finding_type", "ft"), ("cluster", "kc"), ("namespace", "kn"), ("image", "im"))


def query_filter(query: FindingQuery) -> tuple[Expression, Callable[[Mapping[str, Any]], bool]]:
    """Return the server-side filter of a query and the exact check of its globs, done here."""
    expr = Expression()
    for attribute, text in (("c", query.cloud), ("ka", query.account), ("cs", query.container_service)):
        if text is not None:
            expr.equal(attribute, as_s(text))
    for attribute, number in (("st", query.status_id), ("cu", query.class_uid)):
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
            expr.glob(attribute, pattern)
            if "*" in pattern:
                checks.append((attribute, glob_matcher(pattern)))

    def exact(item: Mapping[str, Any]) -> bool:
        return all(attr in item and matcher.fullmatch(get_s(item, attr)) for attr, matcher in checks)

    return expr, exact


def encode_cursor(item: Mapping[str, Any]) -> str:
    """Return the keyset cursor that continues after an index item (its index and table keys)."""
    return pack_cursor([get_s(item, "g1sk"), get_s(item, "pk")])


def decode_cursor(cursor: str) -> Item:
    """Return the `ExclusiveStartKey` of a cursor made by `encode_cursor`; ValueError for anything else."""
    g1sk, pk = unpack_cursor(cursor, 2)
    if not isinstance(g1sk, str) or not isinstance(pk, str) or not pk.startswith("F#"):
        raise not_a_cursor(cursor)
    return {"g1pk": as_s("F"), "g1sk": as_s(g1sk), "pk": as_s(pk), "sk": as_s("F")}


class Queries(Table):
    """The reads of findings, and the expiry of closed ones."""

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""
        item = self._get({"pk": as_s(finding_pk(key)), "sk": as_s("F")})
        return stored_finding(item) if item else None

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

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every filter, newest last seen first, paged by keyset."""
        expr, exact = query_filter(query)
        expr.names["#g1pk"] = "g1pk"
        if query.since is not None or query.until is not None:
            expr.names["#g1sk"] = "g1sk"
        key_condition = "#g1pk = :f"
        values: dict[str, Any] = {":f": as_s("F")}
        if query.since is not None and query.until is not None:
            key_condition += " AND #g1sk BETWEEN :since AND :until"
            values.update({":since": as_s(time_key(query.since)), ":until": as_s(time_key(query.until - 1))})
        elif query.since is not None:
            key_condition += " AND #g1sk >= :since"
            values[":since"] = as_s(time_key(query.since))
        elif query.until is not None:
            key_condition += " AND #g1sk < :until"
            values[":until"] = as_s(time_key(query.until))
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
        fetched = self._batch_get([{"pk": item["pk"], "sk": as_s("F")} for item in page])
        items = [stored_finding(fetched[get_s(i, "pk")][0]) for i in page if get_s(i, "pk") in fetched]
        next_cursor = encode_cursor(page[-1]) if page and len(matches) > len(page) else None
        return Page(items, next_cursor)

    def counts(self) -> list[CountRow]:
        """Return finding counts by cloud, severity and status (read from the index's projection)."""
        tally = Counter(
            (get_s(item, "c"), get_n(item, "sev"), get_n(item, "st"))
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :f",
                ExpressionAttributeValues={":f": as_s("F")},
                ProjectionExpression="c, sev, st",
            )
        )
        return [CountRow(cloud, sev, st, n) for (cloud, sev, st), n in sorted(tally.items())]

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time, with their history and message refs."""
        candidates = [
            get_s(item, "pk")
            for item in self._query_all(
                IndexName=INDEX,
                KeyConditionExpression="g1pk = :f AND g1sk < :t",
                FilterExpression="cl = :closed",
                ExpressionAttributeValues={
                    ":f": as_s("F"),
                    ":t": as_s(time_key(closed_before)),
                    ":closed": {"BOOL": True},
                },
                ProjectionExpression="pk",
            )
        ]
        return sum(self._pool_map(lambda pk: self._expire(pk, closed_before), candidates))

    def _expire(self, pk: str, closed_before: int) -> int:
        # The condition holds against a reopening or a fresh delivery that raced the query.
        if not self._if(
            "delete_item",
            Key={"pk": as_s(pk), "sk": as_s("F")},
            ConditionExpression="cl = :closed AND ls < :t",
            ExpressionAttributeValues={":closed": {"BOOL": True}, ":t": as_n(closed_before)},
        ):
            return 0
        rest = self._query_all(
            KeyConditionExpression="pk = :pk AND sk > :f",
            ExpressionAttributeValues={":pk": as_s(pk), ":f": as_s("F")},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        # History entries left by a crash here belong to a dead incarnation: invisible to `history()`.
        self._batch_write([{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in rest])
        return 1
