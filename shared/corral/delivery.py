"""Delivering ledger rows to sinks, and recording what became of each.

At least once, never twice after success: a row is marked delivered only after the sink
accepted it, and a delivered row is never sent again. Rows come to the Deliverer held by a
claim (`Store.ledger_add` or `Store.ledger_claim`), so two workers never send the same row, and a
finding's first chat message is held the same way, so a finding gets one thread. The only
duplicates left are a process that dies between the sink's acceptance and the ledger write (its
claim lapses and another worker sends again) and a worker still sending when its claim lapses;
every SIEM, webhook and relay payload carries the version's idempotency key so the receiver can
drop them.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import orjson

from corral.ocsf import Finding
from corral.sinks.base import Delivery, Result, Sink
from corral.stores.base import Claim, DeadLetter, LedgerEntry, Store

BASE_DELAY_MS: Final = 30_000
MAX_DELAY_MS: Final = 3_600_000
MAX_ATTEMPTS: Final = 25  # about a day of backoff; then the row goes to the dead letter
OUTAGE_AFTER: Final = 3  # consecutive retryable chat failures that stop the rest of a batch
CLOSE_WAIT_MS: Final = 86_400_000  # how long a chat close waits for its finding's first message
THREAD_WAIT_MS: Final = 5_000  # how long a chat message waits while another worker posts its thread's first
NO_THREADS: Final = "closed: not sent, this sink has no threads to reply in (a close is news only as a reply)"
GONE: Final = "not sent: its finding is no longer stored (expired before the row could be sent)"

Serialized = Mapping[str, tuple[Finding, bytes]]
"""Version → (document, its JSON): what an ingest serialized already, for the sinks that send it whole."""


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

    def deliver(
        self, rows: Sequence[LedgerEntry], claim: Claim | None = None, serialized: Serialized | None = None
    ) -> Counter[str]:
        """Send every pending row (each (version, sink) once); return counts per outcome.

        `rows` are held by `claim` (made now when not given): it also holds chat threads.
        `serialized` maps a version to a document and its JSON, made by the ingest that routed it:
        a row whose document is that very object is sent with that JSON (`Delivery.finding_json`).
        """
        claim = claim or Claim.new(self.clock())
        totals: Counter[str] = Counter()
        by_sink: defaultdict[str, dict[str, LedgerEntry]] = defaultdict(dict)
        gone: list[LedgerEntry] = []
        for row in sorted(rows, key=lambda r: r.created):
            if row.state != "pending":
                continue
            if row.document is None:
                gone.append(row)
            else:
                by_sink[row.sink].setdefault(row.version, row)
        if gone:
            # A row left by a crash is sent with its finding's current document; only a finding
            # expired meanwhile leaves it nothing to send.
            now = self.clock()
            self.store.ledger_update([r._replace(state="delivered", next_attempt=now, last_error=GONE) for r in gone])
            totals["dropped"] += len(gone)
        for sink_id, pending in by_sink.items():
            sink = self.sinks.get(sink_id)
            if sink is None:
                # The sink was removed from the configuration: keep the rows for when it returns.
                later = self.clock() + BASE_DELAY_MS
                self.store.ledger_update([r._replace(next_attempt=later) for r in pending.values()])
                totals["pending"] += len(pending)
                continue
            if sink.family == "chat":
                totals.update(self._send_chat(sink, list(pending.values()), claim))
            else:
                totals.update(self._send(sink, list(pending.values()), serialized or {}))
        return totals

    def _send(self, sink: Sink, rows: list[LedgerEntry], serialized: Serialized) -> Counter[str]:

        deliveries = [
            Delivery(
                sink.id, row.version, row.change, _document(row), None, row.previous_severity_id, _json(row, serialized)
            )
            for row in rows
        ]
        return self._record_all(sink, rows, deliveries)[0]

    def _send_chat(self, sink: Sink, rows: list[LedgerEntry], claim: Claim) -> Counter[str]:
        """Chat rows go one at a time, oldest first, so that a follow-up finds its first message.

        A thread reply needs the first message's reference, which exists only once that message
        was sent; a close with no first message yet waits while the first message may still go
        out, and is dropped as noise after CLOSE_WAIT_MS. The first message is held by `claim`
        while it is posted, so that a change handled by another worker meanwhile waits for the
        thread instead of starting a second one. A platform that asks to wait (429 with
        Retry-After) or fails OUTAGE_AFTER times in a row is sent nothing more until then.
        """

        totals: Counter[str] = Counter()
        resume_at: int | None = None
        failures = 0
        for row in rows:
            if resume_at is not None:
                # The platform is down or rate limiting: hold the rest back, unsent and uncounted,
                # until its Retry-After (or the base delay when it gave none).
                self.store.ledger_update([row._replace(next_attempt=resume_at)])
                totals["pending"] += 1
                continue
            threaded = getattr(sink, "threads", True)
            if not threaded:
                # Every change is its own message; a close, news only as a reply, never has a thread.
                thread, first = None, False
            elif row.change == "closed":
                thread, first = self.store.message_ref(row.key, sink.id), False
            else:
                hold = self.store.claim_thread(row.key, sink.id, claim)
                if hold.ref is None and not hold.mine:
                    totals[self._wait_for_thread(row)] += 1
                    continue
                thread, first = hold.ref, hold.mine
            if row.change == "closed" and thread is None:
                totals[self._close_without_thread(row, threaded=threaded)] += 1
                continue
            delivery = Delivery(sink.id, row.version, row.change, _document(row), thread, row.previous_severity_id)
            outcome, [result] = self._record_all(sink, [row], [delivery])
            if first and not (result.ok and result.message_ref):
                # Not posted, or posted where there are no threads: the next message may start one.
                self.store.release_thread(row.key, sink.id, claim)
            totals.update(outcome)
            failures = failures + 1 if outcome["pending"] else 0
            if result.retry_after is not None and not result.ok:
                resume_at = self.clock() + int(result.retry_after * 1000)  # rate limited: wait as told
            elif failures >= OUTAGE_AFTER:
                resume_at = self.clock() + BASE_DELAY_MS  # failing in a row: looks like an outage
        return totals

    def _wait_for_thread(self, row: LedgerEntry) -> str:
        # Another worker is posting this finding's first message: reply under it once it is there.
        self.store.ledger_update(
            [row._replace(next_attempt=self.clock() + THREAD_WAIT_MS, last_error="waiting for the first message")]
        )
        return "pending"

    def _close_without_thread(self, row: LedgerEntry, *, threaded: bool) -> str:
        now = self.clock()
        if not threaded:
            # No thread will ever come to reply in (a webhook): settled at once, not retried for a day.
            self.store.ledger_update([row._replace(state="delivered", next_attempt=now, last_error=NO_THREADS)])
            return "dropped"
        if now - row.created < CLOSE_WAIT_MS:
            # The first message may still be on its way (rate limits, an outage): wait for it.
            self.store.ledger_update(
                [row._replace(next_attempt=now + BASE_DELAY_MS, last_error="waiting for the first message")]
            )
            return "pending"
        # A close is news only as a reply under the first message; alone it is noise.
        self.store.ledger_update(
            [row._replace(state="delivered", next_attempt=now, last_error="closed without a first message: not sent")]
        )
        return "dropped"

    def _record_all(
        self, sink: Sink, rows: list[LedgerEntry], deliveries: list[Delivery]
    ) -> tuple[Counter[str], list[Result]]:

        try:
            results = sink.send(deliveries)
        except Exception as exc:  # noqa: BLE001 - the one isolation boundary: a broken sink must not stop the others
            results = [Result.failure(d.version, f"{sink.id}: sink failed ({type(exc).__name__})") for d in deliveries]
        if len(results) != len(deliveries):
            results = [
                Result.failure(d.version, f"{sink.id}: sink answered {len(results)} results") for d in deliveries
            ]
        totals: Counter[str] = Counter()
        updates: list[LedgerEntry] = []
        letters: list[DeadLetter] = []
        now = self.clock()
        for row, delivery, result in zip(rows, deliveries, results, strict=True):
            updated = self._outcome(row, result, now)
            updates.append(updated)
            totals[updated.state] += 1
            if updated.state == "dead":
                raw = orjson.dumps({"sink": row.sink, "change": row.change, "finding": row.document})
                letters.append(
                    DeadLetter.of(
                        raw, at=now, reason=updated.last_error or "", ref=f"{row.sink} {row.version}", source=row.sink
                    )
                )
            if result.ok and result.message_ref and delivery.thread_ref is None:
                # Fills the held thread: later changes reply under this message.
                self.store.set_message_ref(row.key, row.sink, result.message_ref)
        # One write for the whole batch: a success is recorded before anything else can go wrong.
        self.store.ledger_update(updates)
        if letters:
            self.store.add_dead_letters(letters)
        return totals, results

    @staticmethod
    def _outcome(row: LedgerEntry, result: Result, now: int) -> LedgerEntry:
        """The ledger row after `result`: delivered, dead, or pending with its next attempt."""
        attempts = row.attempts + 1
        # A settled row's next_attempt is when it settled: retention counts from there.
        if result.ok:
            # Built directly: every row sent passes here, and `_replace` costs several times more.
            return LedgerEntry(
                row.version,
                row.sink,
                row.key,
                row.change,
                row.document,
                row.created,
                "delivered",
                attempts,
                now,
                None,
                now,
                row.claim,
                row.previous_severity_id,
            )
        error = result.error or "failed"
        if not result.attempted:
            # Held back unsent: reschedule without spending an attempt.
            wait = max(BASE_DELAY_MS // 30, int((result.retry_after or 0) * 1000))
            return row._replace(next_attempt=now + wait, last_error=error)
        if result.permanent or attempts >= MAX_ATTEMPTS:
            return row._replace(state="dead", attempts=attempts, next_attempt=now, last_error=error)
        return row._replace(
            attempts=attempts, next_attempt=now + backoff_ms(attempts, result.retry_after), last_error=error
        )


def _json(row: LedgerEntry, serialized: Serialized) -> bytes | None:
    # Only for the object it was made from: a document changed since (a new priority) is another object.
    given = serialized.get(row.version)
    return given[1] if given is not None and given[0] is row.document else None


def _document(row: LedgerEntry) -> Finding:
    # `deliver` settles rows without a document before any reaches a sink.
    assert row.document is not None  # noqa: S101
    return row.document
