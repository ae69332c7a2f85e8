"""The `corral` command line: one Typer app, one module per command group, listed literally.

Errors an operator can act on print one line (`corral: error: …`) and exit 1; never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from corral.cli import coverage as coverage
from corral.cli import dashboard as dashboard
from corral.cli import findings as findings
from corral.cli import images as images
from corral.cli import normalize as normalize
from corral.cli import pipeline_commands as pipeline_commands
from corral.cli import store as store
from corral.errors import CorralError
from corral.redaction import redact_text

app = typer.Typer(
    name="corral",
    help="Container security findings from AWS, Azure and Google Cloud: normalized to OCSF 1.8.0, stored once, "
    "fanned out.\n\nEvery command reads ./corral.toml when it is there; --config or CORRAL_CONFIG names another.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            print(f"corral {version('corral')}")
        except PackageNotFoundError:
            print("corral (not installed as a package)")
        raise typer.Exit


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options before any command (the app's help text is set above)."""


app.command("normalize")(normalize.normalize)
app.command("ingest")(pipeline_commands.ingest)
app.command("redrive")(pipeline_commands.redrive)
app.command("coverage")(coverage.coverage)
app.command("sources")(coverage.sources)
app.command("serve")(dashboard.serve)
app.command("report")(dashboard.report)
app.add_typer(findings.app, name="findings")
app.add_typer(findings.deadletter_app, name="deadletter")
app.add_typer(images.app, name="images")
app.add_typer(store.app, name="store")


def main() -> None:
    """Run the CLI; turn Corral's own errors into one line on stderr."""
    try:
        app()
    except CorralError as exc:
        # Redacted once more here: a URL a library quoted into the message may carry a credential.
        # A configuration error lists every mistake, one per line.
        for line in redact_text(str(exc)).splitlines() or [type(exc).__name__]:
            print(f"corral: error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    except OSError as exc:
        # A file or socket the operator named: one line naming it, never a traceback.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"corral: error:{where} {exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 (the last line of defence: one line instead of a traceback)
        print(f"corral: error: internal error ({type(exc).__name__}): {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(70)
