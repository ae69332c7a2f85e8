"""Delivering ledger rows to sinks, and recording what became of each.

At least once, never twice after success: a row is marked delivered only after the sink
accepted it, and a delivered row is never sent again. The only duplicate left is a process that
dies between the sink's acceptance and the ledger write; every SIEM, webhook and relay payload
carries the version's idempotency key so the receiver can drop it.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final

import orjson

from corral.sinks.base import Delivery, Result, Sink
from corral.stores.base import DeadLetter, LedgerEntry, Store

BASE_DELAY_MS: Final = 30_000
MAX_DELAY_MS: Final = 3_600_000
MAX_ATTEMPTS: Final = 25  # about a day of backoff; then the row goes to the dead letter


def backoff_ms(attempts: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> int:
    """Exponential backoff with full jitter, never sooner than the sink's Retry-After."""
    ceiling = min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** max(0, attempts - 1))
    delay = int(ceiling * rng())
    if retry_after is not None:
        delay = max(delay, int(retry_after * 1000))
    return max(delay, 1_000)


class Deliverer:
    """Sends ledger rows through their sinks and writes each outcome back to the ledger."""

    def __init__(self, store: Store, sinks: Mapping[str, Sink], clock: Callable[[], int]) -> None:
        self.store = store
        self.sinks = sinks
        self.clock = clock

    def deliver(self, rows: Sequence[LedgerEntry]) -> Counter[str]:
        """Send every pending row; return counts of delivered, pending and dead."""
        totals: Counter[str] = Counter()
        by_sink: defaultdict[str, list[LedgerEntry]] = defaultdict(list)
        for row in rows:
            if row.state == "pending":
                by_sink[row.sink].append(row)
        for sink_id, pending in by_sink.items():
            sink = self.sinks.get(sink_id)
            if sink is None:
                # The sink was removed from the configuration: keep the rows for when it returns.
                totals["pending"] += len(pending)
                continue
            totals.update(self._send(sink, pending))
        return totals

    def _send(self, sink: Sink, rows: list[LedgerEntry]) -> Counter[str]:
        deliveries: list[Delivery] = []
        sendable: list[LedgerEntry] = []
        totals: Counter[str] = Counter()
        for row in rows:
            thread = self.store.message_ref(row.key, sink.id) if sink.family == "chat" else None
            if sink.family == "chat" and row.change == "closed" and thread is None:
                # A close is news only as a reply under the first message; alone it is noise.
                self.store.ledger_update(
                    replace(row, state="delivered", last_error="closed without a first message: not sent")
                )
                totals["dropped"] += 1
                continue
            deliveries.append(Delivery(sink.id, row.version, row.change, row.document, thread))
            sendable.append(row)
        if not deliveries:
            return totals
        try:
            results = sink.send(deliveries)
        except Exception as exc:  # noqa: BLE001 - the one isolation boundary: a broken sink must not stop the others
            results = [Result.failure(d.version, f"{sink.id}: sink failed ({type(exc).__name__})") for d in deliveries]
        if len(results) != len(deliveries):
            results = [
                Result.failure(d.version, f"{sink.id}: sink answered {len(results)} results") for d in deliveries
            ]
        for row, delivery, result in zip(sendable, deliveries, results, strict=True):
            totals[self._record(row, delivery, result)] += 1
        return totals

    def _record(self, row: LedgerEntry, delivery: Delivery, result: Result) -> str:
        now = self.clock()
        attempts = row.attempts + 1
        if result.ok:
            self.store.ledger_update(
                replace(row, state="delivered", attempts=attempts, delivered_at=now, last_error=None)
            )
            if result.message_ref and delivery.thread_ref is None:
                self.store.set_message_ref(row.key, row.sink, result.message_ref)
            return "delivered"
        error = result.error or "failed"
        if result.permanent or attempts >= MAX_ATTEMPTS:
            self.store.ledger_update(replace(row, state="dead", attempts=attempts, last_error=error))
            raw = orjson.dumps({"sink": row.sink, "change": row.change, "finding": row.document})
            self.store.add_dead_letters(
                [DeadLetter.of(raw, at=now, reason=error, ref=f"{row.sink} {row.version}", source=row.sink)]
            )
            return "dead"
        next_attempt = now + backoff_ms(attempts, result.retry_after)
        self.store.ledger_update(replace(row, attempts=attempts, next_attempt=next_attempt, last_error=error))
        return "pending"
