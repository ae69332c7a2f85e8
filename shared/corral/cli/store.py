"""`corral store migrate`: apply schema migrations (production runtimes need no DDL rights)."""

from __future__ import annotations

import typer

from corral.cli.options import ConfigOption, StoreOption
from corral.cli.options import store as open_configured_store

app = typer.Typer(help="Manage the central store.", no_args_is_help=True)


@app.command("migrate")
def migrate(store: StoreOption = None, config: ConfigOption = None) -> None:
    """Create or upgrade the store's schema; safe when two run at once."""
    db = open_configured_store(config, store)
    try:
        db.migrate()
        print(f"{db.url}: schema is up to date")
    finally:
        db.close()
