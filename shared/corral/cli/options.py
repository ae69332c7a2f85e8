"""Options shared by the commands that open the store, and how they build the pipeline."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from corral import config
from corral.pipeline import Pipeline
from corral.stores import open_store
from corral.stores.base import Store

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL (sqlite:///corral.db, postgresql://…, dynamodb://table?region=…); "
        "default: CORRAL_STORE, then the config file, then sqlite:///corral.db.",
    ),
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Path to corral.toml; default: CORRAL_CONFIG. Without one: the store only."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings(config_path: str | None, store_url: str | None) -> config.Settings:
    """Load settings with flag > environment > file precedence."""
    return config.load(config_path, dict(os.environ), store=store_url)


def pipeline(config_path: str | None, store_url: str | None) -> Pipeline:
    """Build the configured pipeline."""
    return Pipeline.from_settings(settings(config_path, store_url), dict(os.environ))


def store(config_path: str | None, store_url: str | None) -> Store:
    """Open the configured store without building sinks."""
    return open_store(settings(config_path, store_url).store)
