"""The coverage and dashboard commands as `corral` runs them, for subprocess tests (`-m tests.coverage.cli_app`)."""

from __future__ import annotations

import sys

import typer

from corral.cli import coverage, dashboard
from corral.errors import CorralError

app = typer.Typer(pretty_exceptions_enable=False, no_args_is_help=True)
app.command("coverage")(coverage.coverage)
app.command("sources")(coverage.sources)
app.command("serve")(dashboard.serve)
app.command("report")(dashboard.report)

if __name__ == "__main__":
    try:
        app()
    except CorralError as exc:
        print(f"corral: error: {exc}", file=sys.stderr)
        sys.exit(1)
