"""The pipeline: the one call every entry point makes.

`ingest` runs the whole chain for a batch of deliveries: normalize → upsert → route → deliver.
Bad input goes to the dead letter and never stops the batch. A store that cannot be reached
raises `StoreUnavailableError` so the platform redelivers (the upsert makes that safe). A sink
that fails leaves its ledger row pending for `redrive`; it never fails the ingestion.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from corral import config, limits, ocsf, traits
from corral.errors import ConfigError, StoreUnavailableError
from corral.normalize import normalize
from corral.prioritize import Prioritizer
from corral.records import HealthSignal, NamedTuple, Outcome
from corral.routing import Router
from corral.stores import open_store
from corral.stores.base import (
    CHANGE_KINDS,
    FUTURE_ALLOWANCE_MS,
    TIMELESS_LABEL,
    Change,
    Claim,
    DeadLetter,
    FindingKey,
    HistoryEntry,
    LedgerEntry,
    SinkBacklog,
    SourceSeen,
    Store,
    Suppression,
)

if TYPE_CHECKING:
    from corral.delivery import Deliverer, Serialized
    from corral.sinks.base import Sink

BATCH: Final = 500
DAY_MS: Final = 86_400_000
LEDGER_RETENTION_DAYS: Final = 30
"""How long settled ledger rows are kept when `[retention] closed_days` is not set."""
# Where these variables are set, Corral runs inside a cloud function, where a SQLite file would be
# private to one instance and lost with it.
CLOUD_PLATFORMS: Final = {
    "AWS_LAMBDA_FUNCTION_NAME": "AWS Lambda",
    "FUNCTIONS_WORKER_RUNTIME": "Azure Functions",
    "K_SERVICE": "Google Cloud Functions",
    "FUNCTION_TARGET": "Google Cloud Functions",
}
# A batch keeps hundreds of findings alive, each of hundreds of dicts and lists. At the default
# first threshold (700 new objects) the cycle collector walks them again and again while they are
# built, and frees nothing: findings hold no cycles, and are freed as soon as their batch is stored.
# That was about a sixth of an ingest. During an ingest it runs a hundred times less often.
_INGEST_GC_THRESHOLDS: Final = (100_000, 50, 1_000)


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


# No dataclasses here: every cold start would build them through `exec` (see corral.records).
class Inbound(NamedTuple):
    """One delivery as an entry point received it: raw bytes or text, or already-parsed JSON."""

    data: object
    ref: str
    delivery_id: str | None = None
    error: str | None = None
    """Set when the delivery could not even be read (e.g. over 8 MiB); it goes to the dead letter."""
    received_time: int | None = None
    """The transport's stable time for the delivery (epoch ms: enqueued or publish time, a file's
    mtime), for records without a time of their own."""
    raw: bytes | None = None
    """The exact bytes `data` was parsed from, when the caller parsed them (dead letters keep these)."""
    sequence: int | None = None
    """The transport's sequence number (Event Hubs), ordering deliveries whose times tie."""
    decoded: bool = False
    """True when `data` is JSON already parsed (a Lambda event, a document the CLI read): a `str`
    is then a JSON string, not text to parse again."""


class _Pending(NamedTuple):
    """A normalized finding waiting for its batch to be stored, with what a dead letter of it needs."""

    finding: ocsf.Finding
    source: str
    outcome: Outcome
    ref: str
    document: bytes | None = None
    """The finding's JSON, serialized once while checking the limits."""


class IngestResult:
    """Counts per change kind, plus skipped, signals and failed; and one line per failure."""

    __slots__ = ("counts", "errors")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    @property
    def failed(self) -> int:
        """How many inputs went to the dead letter."""
        return self.counts["failed"]

    def summary(self) -> dict[str, int]:
        """Every change kind (zero included) and skipped/signals/failed, as plain data."""
        return {k: self.counts[k] for k in (*CHANGE_KINDS, "suppressed", "skipped", "signals", "failed")}


class Pipeline:
    """Store, router and sinks, wired once per cold start and reused for every invocation."""

    def __init__(
        self,
        store: Store,
        router: Router | None = None,
        sinks: Mapping[str, Sink] | None = None,
        *,
        clock: Callable[[], int] = now_ms,
        settings: config.Settings | None = None,
    ) -> None:
        self.store = store
        self.router = router or Router()
        self.sinks = dict(sinks or {})
        self.clock = clock
        self.settings = settings or config.Settings(store=store.url)
        self.prioritizer = Prioritizer(store, self.settings.priority, clock)

    @functools.cached_property
    def deliverer(self) -> Deliverer:
        """Sends ledger rows through the sinks; loaded on first use, as a pipeline without routes never sends."""
        from corral.delivery import Deliverer  # noqa: PLC0415

        return Deliverer(self.store, self.sinks, self.clock)

    @classmethod
    def from_settings(cls, settings: config.Settings, env: Mapping[str, str]) -> Pipeline:
        """Build the pipeline a configuration describes; every sink is validated now."""
        sinks: dict[str, Sink] = {}
        if settings.sinks:
            from corral.sinks import build_all  # noqa: PLC0415 - a pipeline without sinks never loads the registry

            sinks = build_all(settings.sinks, env, settings.origin, settings.public_url)
        return cls(open_store(settings.store), settings.router, sinks, settings=settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, config_path: str | None = None) -> Pipeline:
        """Build from CORRAL_CONFIG / CORRAL_STORE; refuse a SQLite store inside a cloud function."""
        env = dict(os.environ if environ is None else environ)
        settings = config.load(config_path, env)
        platform = next((name for var, name in CLOUD_PLATFORMS.items() if env.get(var)), None)
        if platform and settings.store.startswith("sqlite:") and env.get("CORRAL_ALLOW_LOCAL_STORE") != "1":
            raise ConfigError(
                f"CORRAL_STORE: a SQLite store inside {platform} is private to one instance and lost with it; "
                "set CORRAL_STORE to a postgresql:// or dynamodb:// URL "
                "(or CORRAL_ALLOW_LOCAL_STORE=1 for local tests)"
            )
        return cls.from_settings(settings, env)

    # Ingest -----------------------------------------------------------------------------------

    def ingest(
        self, deliveries: Iterable[Inbound], *, on_progress: Callable[[int], None] | None = None
    ) -> IngestResult:
        """Normalize, store, route and deliver every finding in `deliveries`."""
        with _fewer_collections():
            return self._ingest(deliveries, on_progress)

    def _ingest(self, deliveries: Iterable[Inbound], on_progress: Callable[[int], None] | None) -> IngestResult:
        result = IngestResult()
        findings: list[_Pending] = []
        letters: list[DeadLetter] = []
        signals: list[HealthSignal] = []
        done = 0
        encoder = limits.Encoder()
        for given, finding, ref in self._outcomes(deliveries):
            done += 1
            outcome, document = _within_limits(given, finding, encoder)
            if finding is not None and outcome.error is None:
                findings.append(_Pending(finding, outcome.source or "", outcome, ref, document))
            elif outcome.signal is not None:
                signals.append(outcome.signal)
                result.counts["signals"] += 1
            elif outcome.skipped is not None:
                result.counts["skipped"] += 1
            else:
                letters.append(self._fail(outcome, ref, result))
            if len(findings) >= BATCH or len(letters) + len(signals) >= BATCH:
                # Flushed as they fill, so memory stays flat however long the input.
                self._flush(findings, letters, signals, result)
                findings, letters, signals = [], [], []
                if on_progress:
                    on_progress(done)
        self._flush(findings, letters, signals, result)
        if on_progress:
            on_progress(done)
        return result

    def _flush(
        self,
        findings: Sequence[_Pending],
        letters: list[DeadLetter],
        signals: Sequence[HealthSignal],
        result: IngestResult,
    ) -> None:
        if findings:
            self._store_batch(findings, result, letters)
        if letters:
            self.store.add_dead_letters(letters)
        if signals:
            self.store.record_signals(signals)
            # A health signal arrives on the same bus as the findings: the source is delivering.
            self.store.touch_sources(_signals_seen(signals, self.clock()))

    def _outcomes(self, deliveries: Iterable[Inbound]) -> Iterator[tuple[Outcome, ocsf.Finding | None, str]]:
        """Each outcome of the deliveries, with its finding stamped with the transport's order."""
        for inbound in deliveries:
            body = inbound.raw if inbound.raw is not None else _bytes(inbound.data)
            doc, error = _decode(inbound)
            if error is not None:
                yield Outcome("", error=error, raw=inbound.data, body=body), None, inbound.ref
                continue
            # Corral's own clock stands in only for a record with no time of its own and no
            # transport time either (stdin); the store then orders it by what it has seen.
            fallback = self.clock()
            outcomes = normalize(
                doc,
                "",
                inbound.delivery_id,
                fallback,
                body=body,
                sequence=inbound.sequence,
                transport_time=inbound.received_time,
            )
            try:
                for outcome in outcomes:
                    ref = f"{inbound.ref}: {outcome.where}" if outcome.where else inbound.ref
                    yield outcome, _stamped(outcome, fallback), ref
            except StoreUnavailableError:
                raise
            except Exception as exc:  # noqa: BLE001 - one delivery's failure must not end the batch
                # Unwrapping is held to never raising; should it, the rest of this delivery is kept whole.
                failure = Outcome("", error=_internal("reading the delivery", exc), raw=doc, body=body)
                yield failure, None, inbound.ref

    def _fail(self, outcome: Outcome, ref: str, result: IngestResult) -> DeadLetter:
        result.errors.append(f"{ref}: {outcome.error}")
        result.counts["failed"] += 1
        return self._dead_letter(outcome, ref)

    def _dead_letter(self, outcome: Outcome, ref: str) -> DeadLetter:
        raw: bytes | None = None
        if outcome.body is not None:
            from corral import spans  # noqa: PLC0415 - only a failure is cut out of its input

            raw = spans.locate(outcome.body, outcome.path) if outcome.path else outcome.body
        if raw is None:
            value = outcome.raw
            if isinstance(value, str):
                raw = value.encode("utf-8", errors="surrogatepass")
            elif isinstance(value, bytes | bytearray | memoryview):
                raw = bytes(value)
            else:
                raw = outcome.body if outcome.body is not None else limits.encode(value)
        return DeadLetter.of(raw, at=self.clock(), reason=outcome.error or "", ref=ref, source=outcome.source)

    def _store_batch(self, batch: Sequence[_Pending], result: IngestResult, letters: list[DeadLetter]) -> None:
        now = self.clock()
        try:
            prepared = self.prioritizer.prepare([p.finding for p in batch], now)
            # A finding the prioritizer left as it was is stored with the JSON its limits check wrote.
            documents = [p.document if f is p.finding else None for p, f in zip(batch, prepared.findings, strict=True)]
            stored = self.store.upsert(prepared.findings, now=now, documents=documents, contexts=prepared.contexts)
            changes = prepared.finish(stored)
            self.store.touch_sources(_seen(batch, stored, now))
        except StoreUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - one record's failure must not end the batch
            if len(batch) > 1:
                # Find the record the store refused: each on its own (the upsert makes retrying safe).
                for pending in batch:
                    self._store_batch([pending], result, letters)
                return
            letters.append(self._fail(_failure(batch[0], _internal("storing", exc)), batch[0].ref, result))
            return
        routed: list[tuple[_Pending, Change, Suppression | None]] = []
        for pending, change in zip(batch, changes, strict=True):
            try:
                routed.append((pending, change, self.router.suppression(change.finding, now)))
            except Exception as exc:  # noqa: BLE001 - a routing rule failing on one record
                letters.append(self._fail(_failure(pending, _internal("routing", exc)), pending.ref, result))
        if marks := _suppression_marks(routed):
            self.store.mark_suppressed(marks)
        entries: dict[tuple[str, str], LedgerEntry] = {}
        # Each stored document's JSON, made by the limits check: sinks embed it rather than serialize again.
        serialized: dict[str, tuple[ocsf.Finding, bytes]] = {}
        # The histories of the batch's unchanged findings, read at once (see `_ledger_entries`).
        again = [change.key for _, change, rule in routed if rule is None and change.kind == "unchanged"]
        histories = self.store.histories(again) if again and self.router.routes else {}
        for pending, change, rule in routed:
            if rule is not None:
                result.counts[change.kind] += 1
                result.counts["suppressed"] += 1
                continue
            try:
                ledger = self._ledger_entries(change, now, histories.get(change.key, []))
            except StoreUnavailableError:
                raise
            except Exception as exc:  # noqa: BLE001 - a routing rule failing on one record
                letters.append(self._fail(_failure(pending, _internal("routing", exc)), pending.ref, result))
                continue
            result.counts[change.kind] += 1
            for entry in ledger:
                # The same version twice in one batch (a bus redelivering at once) is one delivery.
                entries.setdefault((entry.version, entry.sink), entry)
            if ledger and pending.document is not None and change.finding is pending.finding:
                serialized.setdefault(change.version, (pending.finding, pending.document))
        if entries:
            self._send_held(list(entries.values()), now, serialized)
        if prepared.others:
            result.counts["reprioritized"] += self._route_changes(prepared.others, now)

    def _route_changes(self, changes: Sequence[Change], now: int) -> int:
        """Queue and send changes of findings outside the batch (reprioritizations); return how many."""
        entries = [
            entry
            for change in changes
            if self.router.suppression(change.finding, now) is None
            for entry in self._ledger_entries(change, now)
        ]
        if entries:
            self._send_held(entries, now)
        return len(changes)

    def _send_held(self, entries: Sequence[LedgerEntry], now: int, serialized: Serialized | None = None) -> None:
        # Held by this worker from the insert on: a concurrent redrive or ingest skips them.
        claim = Claim.new(now)
        self.deliverer.deliver(self.store.ledger_add(entries, claim=claim), claim, serialized)

    def _ledger_entries(self, change: Change, now: int, history: Sequence[HistoryEntry] = ()) -> list[LedgerEntry]:
        """The ledger rows of one change; `history` is the finding's (needed only when it is unchanged)."""
        kind = change.kind
        if kind == "stale" or not self.router.routes:
            return []
        previous = change.previous.severity_id if change.previous is not None else None
        if kind == "unchanged":
            # A redelivery after a crash between the upsert and the ledger write would otherwise
            # lose the notification: route it again as the change that created this version.
            # The ledger insert is insert-if-absent, so a version already queued or delivered is
            # never queued twice; a change older than the ledger's retention is not routed again,
            # because its delivered rows may have expired (GuardDuty re-exports every finding).
            since = now - self.ledger_retention_ms
            at = [i for i, h in enumerate(history) if h.version == change.version and h.at >= since]
            if not at:
                return []
            kind = history[at[-1]].kind
            previous = history[at[-1] - 1].severity_id if at[-1] > 0 else None
        # Positional: a row per finding and sink, and keywords cost more than the rest of the row.
        return [
            LedgerEntry(
                change.version,
                sink,
                change.key,
                kind,
                change.finding,
                now,
                "pending",
                0,
                now,
                None,
                None,
                None,
                previous,
            )
            for sink in self.router.destinations(kind, change.finding)
        ]

    # Maintenance ------------------------------------------------------------------------------

    def redrive(self, *, limit: int = 500, rounds: int = 20) -> dict[str, int]:
        """Send what is pending and due; return counts of delivered, pending, dead and dropped.

        Each round holds the rows it sends by a claim, so redrives and ingests running at once
        never send the same row; rows of sinks no longer configured are left alone.
        """
        totals: Counter[str] = Counter()
        for _ in range(rounds):
            claim = Claim.new(self.clock())
            due = self.store.ledger_claim(claim, limit=limit, sinks=sorted(self.sinks))
            if not due:
                break
            totals.update(self.deliverer.deliver(due, claim))
        return {k: totals[k] for k in ("delivered", "pending", "dead", "dropped")}

    def backlog(self) -> list[SinkBacklog]:
        """What is pending per sink, and when its next attempt is due."""
        return self.store.ledger_backlog(self.clock())

    def check_sources(self) -> dict[str, object]:
        """Raise or close a "Source Silent" finding per silent or recovered source; summarize health."""
        from corral.health import check_sources  # noqa: PLC0415 - only the scheduled check needs it

        report = check_sources(self, self.clock())
        # Running evidence ages out of its window by the wall clock: the hourly check notices.
        reprioritized = self._route_changes(self.prioritizer.recompute(), self.clock())
        return {
            "reprioritized": reprioritized,
            "sources": len(report.sources),
            "silent": sorted(f"{s.source}:{s.account_uid}" for s in report.sources if s.state == "silent"),
            "raised": list(report.raised),
            "closed": list(report.closed),
            "dead_letters": sum(report.dead_letters.values()),
            "oldest_pending_age_ms": report.oldest_pending_age_ms(),
        }

    @property
    def ledger_retention_ms(self) -> int:
        """How long delivered and dead ledger rows are kept: the configured retention, else 30 days."""
        return (self.settings.closed_retention_days or LEDGER_RETENTION_DAYS) * DAY_MS

    def expire(self) -> int:
        """Delete closed findings older than the configured retention (open ones never expire), and
        settled ledger rows older than the ledger's; return how many findings were deleted."""
        self.expire_ledger()
        days = self.settings.closed_retention_days
        if days is None:
            return 0
        return self.store.expire_closed(self.clock() - days * DAY_MS)

    def expire_ledger(self) -> int:
        """Delete delivered and dead ledger rows settled longer ago than the ledger's retention."""
        return self.store.ledger_expire(self.clock() - self.ledger_retention_ms)

    def close(self) -> None:
        """Release the store and the sinks."""
        for sink in self.sinks.values():
            sink.close()
        self.store.close()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the cycle collector's thresholds for the block (never lowering them), then restore them."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(mine, theirs) for mine, theirs in zip(_INGEST_GC_THRESHOLDS, before, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _decode(inbound: Inbound) -> tuple[Any, str | None]:
    """The delivery's JSON value, or the reason it has none."""
    if inbound.error:
        return None, inbound.error
    data = inbound.data
    if not inbound.decoded and isinstance(data, bytes | bytearray | memoryview | str):
        try:
            return orjson.loads(data), None
        except orjson.JSONDecodeError as exc:
            return None, f"invalid JSON: {exc}"
    return data, None


def _bytes(data: object) -> bytes | None:
    if isinstance(data, str):
        return data.encode("utf-8", errors="surrogatepass")
    return bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None


def _internal(stage: str, exc: BaseException) -> str:
    """The reason of a failure Corral did not foresee: the stage and the exception, on one line."""
    text = " ".join(str(exc).split())[:200]
    return f"failed while {stage}: {type(exc).__name__}" + (f": {text}" if text else "")


def _stamped(outcome: Outcome, fallback: int) -> ocsf.Finding | None:
    """The finding with the transport's order in `metadata.logged_time` and `metadata.sequence`.

    The store orders versions whose source times tie by these. A finding whose times are only
    the transport's (or, lacking one, Corral's clock) is labelled so (`TIMELESS_LABEL`): the
    store then never takes a content it has already had for news. The outcome itself is left
    as it is: what comes after reads the stamped finding, not the outcome's.
    """
    finding, item = outcome.finding, outcome.item
    if finding is None or item is None:
        return finding
    metadata = dict(finding.get("metadata") or {})
    labels = [label for label in metadata.get("labels") or () if label != TIMELESS_LABEL]
    if outcome.timeless:
        labels.append(TIMELESS_LABEL)
    if labels:
        metadata["labels"] = labels
    else:
        metadata.pop("labels", None)
    if item.received_time is not None:
        metadata["logged_time"] = item.received_time
    elif outcome.timeless:
        metadata["logged_time"] = fallback
    else:
        metadata.pop("logged_time", None)
    if item.sequence is not None:
        metadata["sequence"] = item.sequence
    else:
        metadata.pop("sequence", None)
    return {**finding, "metadata": metadata}


def _within_limits(
    outcome: Outcome, finding: ocsf.Finding | None, encoder: limits.Encoder
) -> tuple[Outcome, bytes | None]:
    """The outcome, or a failure when what it would store (`finding`) is beyond Corral's limits.

    A finding's check is its serialization, which is returned with it for the store.
    """
    document: bytes | None = None
    if finding is not None:
        document, reason = encoder.encode(finding)
    elif outcome.signal is not None:
        reason = limits.violation([outcome.signal.time])
    else:
        return outcome, None
    if reason is None:
        return outcome, document
    item = outcome.item
    failure = Outcome(
        outcome.where,
        error=f"normalized document is beyond Corral's limits: {reason}",
        source=outcome.source,
        raw=item.doc if item else finding,
        body=item.body if item else None,
        path=item.path if item else (),
        item=item,
    )
    return failure, None


def _suppression_marks(
    routed: Sequence[tuple[_Pending, Change, Suppression | None]],
) -> list[tuple[FindingKey, Suppression | None]]:
    """The marks to write: each suppressed finding's rule, and a clear for a marked one no rule holds now.

    A mark outlives its rule (an `until` passed, the rule removed); left in place it would show
    a finding as suppressed while its changes are being sent. A stale version says nothing of
    the finding as stored, so it neither marks nor clears. The last mark of a key wins.
    """
    marks: dict[FindingKey, Suppression | None] = {}
    for _, change, rule in routed:
        if rule is not None:
            marks[change.key] = rule
        elif change.kind != "stale" and change.previous is not None and change.previous.suppressed:
            marks[change.key] = None
    return list(marks.items())


def _failure(pending: _Pending, reason: str) -> Outcome:
    item = pending.outcome.item
    return Outcome(
        pending.outcome.where,
        error=reason,
        source=pending.source,
        raw=item.doc if item else pending.finding,
        body=item.body if item else None,
        path=item.path if item else (),
        item=item,
    )


def _seen(batch: Sequence[_Pending], changes: Sequence[Change], now: int) -> list[SourceSeen]:
    """The batch's deliveries per source and account, each at the time it shows the source speaking.

    That is the newest of the finding's own time and its transport's (EventBridge `time`, Pub/Sub
    publish time, Event Hubs enqueued time…), never later than now: a replay or a backfill of old
    findings arrives now but shows nothing of now, so it cannot end a silence. A stale one is left
    out altogether.
    """
    latest: dict[tuple[str, str], tuple[int, int, str]] = {}
    for pending, change in zip(batch, changes, strict=True):
        if change.kind == "stale":
            continue
        finding, source = pending.finding, pending.source
        cloud = finding["cloud"]
        key = (source, cloud["account"]["uid"])
        # The newest event time shown is capped as the store orders findings: one bad clock must
        # not show 2099 for ever (it only ever moves forward).
        when = min(ocsf.modified_time(finding), now + FUTURE_ALLOWANCE_MS)
        logged = finding["metadata"].get("logged_time")
        spoke = min(now, max(when, logged if isinstance(logged, int) else 0))
        if key in latest:
            spoke, when = max(spoke, latest[key][0]), max(when, latest[key][1])
        latest[key] = (spoke, when, cloud["provider"])
    return [
        SourceSeen(source, account, spoke, when, cloud) for (source, account), (spoke, when, cloud) in latest.items()
    ]


def _signals_seen(signals: Sequence[HealthSignal], now: int) -> list[SourceSeen]:
    """The health signals' deliveries per source and account, at their latest signal time (at most now)."""
    latest: dict[tuple[str, str], HealthSignal] = {}
    for signal in signals:
        key = (signal.source, signal.account_uid)
        if key not in latest or signal.time > latest[key].time:
            latest[key] = signal
    return [
        SourceSeen(source, account, min(now, signal.time), signal.time, traits.SERVICE_CLOUD.get(signal.service))
        for (source, account), signal in latest.items()
    ]
