"""`corral coverage` and `corral sources`: who watches each container service, and which sources went quiet."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Final

import typer
from rich.table import Table

from corral import coverage as matrix_module
from corral import health, traits
from corral.cli import options
from corral.cli.options import ConfigOption, JsonOption, StoreOption
from corral.cli.text import make_console, shown, write_json
from corral.pipeline import now_ms

STYLES: Final = {
    "covered": "black on green",
    "silent": "black on yellow",
    "unhealthy": "white on red",
    "gap": "bold white on dark_red",
    "provider-managed": "dim",
    "not connected": "dim italic",
}
SILENT_EXIT: Final = 3
"""`sources --check` exit status when a source is silent: not an error (1), not a usage mistake (2)."""
SHORT: Final = {"hardening": "hard", "vulnerability management": "vuln", "threat detection": "threat"}
WindowOption = Annotated[
    int,
    typer.Option(
        "--window-hours",
        min=1,
        max=24 * 366 * 10,
        help="A cell is covered by findings seen within this many hours, from a source that is not silent (a source "
        "reporting less often, like Defender's weekly snapshot, has its own findings judged over its own window).",
    ),
]


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ms else "-"


def coverage(
    window_hours: WindowOption = matrix_module.DEFAULT_WINDOW_HOURS,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show the coverage matrix: container service by layer and task, and who covers each cell."""
    settings = options.settings(config, store)
    db = options.open_existing(settings.store)
    try:
        report = health.report(db, settings.source_windows, now_ms())
        result = matrix_module.matrix(matrix_module.observe(db, report, window_hours * 3_600_000))
    finally:
        db.close()
    if json:
        write_json(result.to_json())
        return
    table = Table(title=f"Coverage over the last {window_hours} h")
    table.add_column("service")
    for layer in traits.LAYERS:
        for task in traits.TASKS:
            table.add_column(f"{layer[:5]}/{SHORT[task]}", overflow="fold")
    for service, cells in result.rows():
        table.add_row(service, *(f"[{STYLES[c.state]}]{shown(c.state)}[/]" for c in cells))
    console = make_console()
    console.print(table)
    console.print(", ".join(f"{state}: {n}" for state, n in result.totals().items()))


def sources(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help=f"Raise or close Source Silent findings through the pipeline; exit {SILENT_EXIT} when any source "
            "is silent (for cron and CI).",
        ),
    ] = False,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show each source's last delivery per account, its window and state; --check acts on silences."""
    if check:
        pipe = options.pipeline(config, store)
        try:
            report = health.check_sources(pipe, now_ms())
        finally:
            pipe.close()
    else:
        settings = options.settings(config, store)
        db = options.open_existing(settings.store)
        try:
            report = health.report(db, settings.source_windows, now_ms())
        finally:
            db.close()
    silent = sum(1 for row in report.sources if row.state == "silent")
    if json:
        write_json(report.to_json())
    else:
        _print_sources(report)
    if check and silent:
        print(f"corral: {silent} source(s) silent", file=sys.stderr)
        raise typer.Exit(SILENT_EXIT)


def _print_sources(report: health.HealthReport) -> None:
    table = Table()
    for column in ("source", "account", "cloud", "last delivery", "window", "state", "dead letters"):
        table.add_column(column, overflow="fold")
    for row in report.sources:
        style = "green" if row.state == "ok" else "bold yellow"
        table.add_row(
            row.source,
            shown(row.account_uid),
            row.cloud,
            _time(row.last_delivery),
            f"{row.window_ms // 60_000} min",
            f"[{style}]{row.state}[/]",
            str(row.dead_letters),
        )
    console = make_console()
    console.print(table)
    age = report.oldest_pending_age_ms()
    console.print("nothing pending delivery" if age is None else f"oldest pending delivery: {age // 60_000} min old")
    for uid in report.raised:
        console.print(f"raised: {shown(uid)}")
    for uid in report.closed:
        console.print(f"closed: {shown(uid)}")
