"""`corral store migrate|expire`: schema migrations (production runtimes need no DDL rights) and retention."""

from __future__ import annotations

import typer

from corral.cli.options import ConfigOption, StoreOption, pipeline, settings
from corral.stores import open_store

app = typer.Typer(help="Manage the central store.", no_args_is_help=True)


@app.command("expire")
def expire(store: StoreOption = None, config: ConfigOption = None) -> None:
    r"""Delete closed findings older than `\[retention] closed_days`; open findings never expire."""
    pipe = pipeline(config, store)
    try:
        print(f"{pipe.expire()} closed finding(s) expired")
    finally:
        pipe.close()


@app.command("migrate")
def migrate(store: StoreOption = None, config: ConfigOption = None) -> None:
    """Create or upgrade the store's schema; safe when two run at once."""
    db = open_store(settings(config, store).store)  # creating it is the point: no "must exist" check
    try:
        db.migrate()
        print(f"{db.url}: schema is up to date")
    finally:
        db.close()
