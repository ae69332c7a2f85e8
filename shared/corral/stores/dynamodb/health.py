"""Source health on DynamoDB: the last delivery per (source, account) and the latest health signals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.errors import StoreUnavailableError
from corral.records import HealthSignal
from corral.stores._shared import SignalKey, SourceUpdate, latest_signals, source_updates
from corral.stores.base import SourceSeen, SourceState
from corral.stores.dynamodb.items import Item, as_n, as_s, get_n, get_s, opt_n, opt_s
from corral.stores.dynamodb.table import MAX_CONFLICT_RETRIES, Table, backoff


class Health(Table):
    """Source health: deliveries per (source, account) and health signals."""

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: times only move forward, every delivery counts.

        One update when the times move forward, as they nearly always do; otherwise a read, then a
        put conditioned on the count read.
        """
        self._pool_map(self._touch, source_updates(seen))

    def _touch(self, row: SourceUpdate) -> None:
        source, account, at, finding_time, count, cloud = row
        key = {"pk": as_s("S"), "sk": as_s(orjson.dumps([source, account]).decode())}
        if self._touch_forward(key, row):
            return
        for attempt in range(MAX_CONFLICT_RETRIES):
            current = self._get(key)
            item: Item = {**key, "src": as_s(source), "acct": as_s(account)}
            times = [t for t in (finding_time, opt_n(current or {}, "lft")) if t is not None]
            item["ld"] = as_n(max(at, get_n(current, "ld")) if current else at)
            item["n"] = as_n(count + (get_n(current, "n") if current else 0))
            if times:
                item["lft"] = as_n(max(times))
            known = cloud or opt_s(current or {}, "cld")
            if known:
                item["cld"] = as_s(known)
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            if current:
                condition = {
                    "ConditionExpression": "#n = :n",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":n": current["n"]},
                }
            if self._if("put_item", Item=item, **condition):
                return
            backoff(attempt)
        raise StoreUnavailableError(f"DynamoDB table {self.table!r}: source health kept changing under us")

    def _touch_forward(self, key: Item, row: SourceUpdate) -> bool:
        """Add the deliveries and set both times (and the cloud) in one update, if neither stored time is later."""
        source, account, at, finding_time, count, cloud = row
        sets = ["src = :src", "acct = :acct", "ld = :ld"]
        conditions = ["(attribute_not_exists(ld) OR ld <= :ld)"]
        values: dict[str, Any] = {":src": as_s(source), ":acct": as_s(account), ":ld": as_n(at), ":n": as_n(count)}
        if finding_time is not None:
            sets.append("lft = :lft")
            conditions.append("(attribute_not_exists(lft) OR lft <= :lft)")
            values[":lft"] = as_n(finding_time)
        if cloud:
            sets.append("cld = :cld")
            values[":cld"] = as_s(cloud)
        return self._if(
            "update_item",
            Key=key,
            # ADD counts atomically, so concurrent writers need no read of the count.
            UpdateExpression=f"SET {', '.join(sets)} ADD #n :n",
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues=values,
        )

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""
        return [
            SourceState(
                get_s(i, "src"), get_s(i, "acct"), get_n(i, "ld"), opt_n(i, "lft"), get_n(i, "n"), opt_s(i, "cld")
            )
            for i in self._partition("S")
        ]

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest signal per (source, account, service, region); ties go to the later one."""
        self._pool_map(self._record_signal, list(latest_signals(signals).items()))

    def _record_signal(self, entry: tuple[SignalKey, HealthSignal]) -> None:
        key, signal = entry
        item: Item = {
            "pk": as_s("G"),
            # Signals kept before resources were: the key without its resource, as they were written.
            "sk": as_s(orjson.dumps(list(key if signal.resource else key[:4])).decode()),
            "src": as_s(signal.source),
            "acct": as_s(signal.account_uid),
            "svc": as_s(signal.service),
            "ok": {"BOOL": signal.healthy},
            "t": as_n(signal.time),
            "dt": as_s(signal.detail),
        }
        if signal.region:
            item["rg"] = as_s(signal.region)
        if signal.resource:
            item["rs"] = as_s(signal.resource)
        # A failed condition means a newer signal is already kept.
        self._if(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
            ExpressionAttributeNames={"#t": "t"},
            ExpressionAttributeValues={":t": as_n(signal.time)},
        )

    def signals(self) -> list[HealthSignal]:
        """Return the latest signal per (source, account, service, region, resource)."""
        return [
            HealthSignal(
                source=get_s(i, "src"),
                account_uid=get_s(i, "acct"),
                service=get_s(i, "svc"),
                healthy=bool(i["ok"]["BOOL"]),
                time=get_n(i, "t"),
                region=opt_s(i, "rg"),
                detail=get_s(i, "dt"),
                resource=opt_s(i, "rs") or "",
            )
            for i in self._partition("G")
        ]
