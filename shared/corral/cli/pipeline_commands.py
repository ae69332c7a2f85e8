"""`corral ingest` and `corral redrive`: the whole pipeline from the command line."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from corral import reader
from corral.cli.options import ConfigOption, JsonOption, StoreOption, pipeline
from corral.cli.text import make_console, plain, say_skipped, shown, write_json
from corral.pipeline import Inbound
from corral.stores.base import LedgerState, LedgerSummary, SinkBacklog, Store

# Every pending row is "due" before this (year 2286): the ledger read that finds this run's failures.
FAR_FUTURE: Final = 10**13

Paths = Annotated[list[str] | None, typer.Argument(help="Files or folders (recursively); '-' or nothing reads stdin.")]
PROGRESS_AFTER = 5_000


def ingest(
    paths: Paths = None, store: StoreOption = None, config: ConfigOption = None, json: JsonOption = False
) -> None:
    """Normalize, store, route and deliver findings; print what changed, per change kind.

    Re-running the same input changes nothing and says so (everything `unchanged`). Bad input goes
    to the dead letter (`corral deadletter list`) and never stops the rest.
    """
    pipe = pipeline(config, store)
    try:
        started = pipe.clock()
        before = pipe.store.ledger_summary() if pipe.sinks else LedgerSummary.empty()
        with _Progress(enabled=not json and sys.stderr.isatty()) as tick:
            result = pipe.ingest(_inbounds(paths or ["-"]), on_progress=tick)
        sinks = _sink_outcomes(pipe.store, before, started) if pipe.sinks else {}
    finally:
        pipe.close()
    summary = result.summary()
    for line in result.errors:
        print(plain(" ".join(f"corral: error: {line}".split())), file=sys.stderr)
    if json:
        write_json({**summary, "sinks": sinks})
    else:
        _print_summary(summary)
        _print_sinks(sinks)
    if summary["failed"]:
        raise typer.Exit(1)


def redrive(store: StoreOption = None, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Send every pending delivery that is due, then say what is still pending and when it is next due.

    The scheduled entry points call the same. Runs at once (here and in the functions) never send
    the same delivery twice: each holds what it sends.
    """
    pipe = pipeline(config, store)
    try:
        counts = pipe.redrive()
        backlog = pipe.backlog()
        now = pipe.clock()
    finally:
        pipe.close()
    if json:
        report = {**counts, "backlog": [b._asdict() for b in backlog]}
        write_json(report)
        return
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    if not backlog:
        print("Nothing is pending.")
    for line in backlog:
        print(_backlog_line(line, now))


def _backlog_line(b: SinkBacklog, now: int) -> str:
    """One sink's backlog as a reader wants it, e.g. "webhook:soar: 3 pending, next attempt in 4m 10s (…)"."""
    parts = [f"{b.pending:,} pending"]
    if b.due:
        parts.append(f"{b.due:,} due now")
    if b.held:
        parts.append(f"{b.held:,} being sent by another run")
    waiting = b.pending - b.due - b.held
    if waiting and b.next_attempt > now:
        at = dt.datetime.fromtimestamp(b.next_attempt / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f"next attempt in {_duration(b.next_attempt - now)} ({at})")
    parts.append(f"oldest queued {_duration(max(now - b.oldest_created, 0))} ago")
    return f"{b.sink}: " + ", ".join(parts)


def _duration(ms: int) -> str:
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def _sink_outcomes(store: Store, before: LedgerSummary, started: int) -> dict[str, dict[str, Any]]:
    """What each sink got in this run: sent, failed (dead) and pending rows, and the first failure's reason.

    The counts are the ledger's change over the run (only this run's rows move during an ingest);
    the reason is the earliest error of a row this run created, pending or dead.
    """
    after = store.ledger_summary()
    outcomes: dict[str, dict[str, Any]] = {}
    for sink in sorted({sink for sink, _ in after.counts}):

        def delta(state: LedgerState, sink: str = sink) -> int:
            return after.counts.get((sink, state), 0) - before.counts.get((sink, state), 0)

        outcomes[sink] = {"sent": delta("delivered"), "failed": delta("dead"), "pending": delta("pending"),
                          "first_failure": None}  # fmt: skip
    failures = [(row.created, row.sink, row.last_error) for row in store.ledger_due(now=FAR_FUTURE, limit=5_000)
                if row.created >= started and row.last_error]  # fmt: skip
    failures += [(letter.at, letter.source or "", letter.reason) for letter in store.dead_letters(limit=500)
                 if letter.at >= started and letter.source in outcomes]  # fmt: skip
    for _, sink, reason in sorted(failures, key=lambda f: f[0]):
        if sink in outcomes and outcomes[sink]["first_failure"] is None:
            outcomes[sink]["first_failure"] = reason
    return {sink: o for sink, o in outcomes.items() if o["sent"] or o["failed"] or o["pending"]}


def _print_sinks(sinks: dict[str, dict[str, Any]]) -> None:
    if not sinks:
        return
    table = Table(title="deliveries", show_header=True)
    for column in ("sink", "sent", "failed", "pending", "first failure"):
        table.add_column(column, justify="right" if column in ("sent", "failed", "pending") else "left")
    for sink, o in sinks.items():
        table.add_row(shown(sink), f"{o['sent']:,}", f"{o['failed']:,}", f"{o['pending']:,}",
                      shown(o["first_failure"] or "-"))  # fmt: skip
    make_console().print(table)


def _inbounds(paths: list[str]) -> Iterator[Inbound]:
    for name in reader.expand(paths, on_skip=say_skipped):
        for document in reader.read(name):
            # Unreadable input is handed on with its reason, so that it lands in the dead letter too.
            data = document.raw if document.error else document.parsed
            yield Inbound(
                data,
                document.ref,
                error=document.error,
                received_time=document.received_time,
                raw=document.raw,
                decoded=document.error is None,
            )


class _Progress:
    """A progress line on stderr for long inputs; nothing when disabled or short."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.console = make_console(stderr=True)

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, done: int) -> None:
        if self.enabled and done >= PROGRESS_AFTER:
            self.console.print(f"\r{done:,} documents…", end="")

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.console.print("\r", end="")


def _print_summary(summary: dict[str, int]) -> None:
    table = Table(title="corral ingest", show_header=True)
    table.add_column("change")
    table.add_column("count", justify="right")
    for kind, count in summary.items():
        if count:
            table.add_row(kind, f"{count:,}")
    console = make_console()
    console.print(table)
    stored = sum(summary[k] for k in ("new", "updated", "escalated", "deescalated", "reopened", "closed"))
    if stored == 0 and summary["unchanged"]:
        console.print("Nothing changed: every finding was already stored as it is.")
