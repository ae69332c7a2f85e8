"""`corral ingest` and `corral redrive`: the whole pipeline from the command line."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from corral import reader
from corral.cli.options import ConfigOption, JsonOption, StoreOption, pipeline
from corral.pipeline import Inbound
from corral.stores.base import SinkBacklog

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
        with _Progress(enabled=not json and sys.stderr.isatty()) as tick:
            result = pipe.ingest(_inbounds(paths or ["-"]), on_progress=tick)
    finally:
        pipe.close()
    summary = result.summary()
    for line in result.errors:
        print(" ".join(f"corral: error: {line}".split()), file=sys.stderr)
    if json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        _print_summary(summary)
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
        report = {**counts, "backlog": [asdict(b) for b in backlog]}
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
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


def _inbounds(paths: list[str]) -> Iterator[Inbound]:
    for name in reader.expand(paths):
        for document in reader.read(name):
            # Unreadable input is handed on with its reason, so that it lands in the dead letter too.
            data = document.raw if document.error else document.parsed
            yield Inbound(data, document.ref, error=document.error, received_time=document.received_time)


class _Progress:
    """A progress line on stderr for long inputs; nothing when disabled or short."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)

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
    console = Console()
    console.print(table)
    stored = sum(summary[k] for k in ("new", "updated", "escalated", "deescalated", "reopened", "closed"))
    if stored == 0 and summary["unchanged"]:
        console.print("Nothing changed: every finding was already stored as it is.")
