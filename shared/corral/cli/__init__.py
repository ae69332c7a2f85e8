"""The `corral` command line: one Typer app, one module per command group, listed literally.

Errors an operator can act on print one line (`corral: error: …`) and exit 1; never a traceback.
"""

from __future__ import annotations

import sys

import typer

from corral.cli import coverage as coverage
from corral.cli import dashboard as dashboard
from corral.cli import findings as findings
from corral.cli import normalize as normalize
from corral.cli import pipeline_commands as pipeline_commands
from corral.cli import store as store
from corral.errors import CorralError
from corral.redaction import redact_text

app = typer.Typer(
    name="corral",
    help="Container security findings from AWS, Azure and Google Cloud: normalized to OCSF 1.8.0, stored once, "
    "fanned out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("normalize")(normalize.normalize)
app.command("ingest")(pipeline_commands.ingest)
app.command("redrive")(pipeline_commands.redrive)
app.command("coverage")(coverage.coverage)
app.command("sources")(coverage.sources)
app.command("serve")(dashboard.serve)
app.command("report")(dashboard.report)
app.add_typer(findings.app, name="findings")
app.add_typer(findings.deadletter_app, name="deadletter")
app.add_typer(store.app, name="store")


def main() -> None:
    """Run the CLI; turn Corral's own errors into one line on stderr."""
    try:
        app()
    except CorralError as exc:
        # Redacted once more here: a URL a library quoted into the message may carry a credential.
        print(f"corral: error: {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
