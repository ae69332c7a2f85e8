"""Options shared by the commands that open the store, and how they build the pipeline."""

from __future__ import annotations

import os
from typing import Annotated, Final

import typer

from corral import config
from corral.errors import ConfigError
from corral.pipeline import Pipeline
from corral.stores import open_store
from corral.stores.base import Store

LOCAL_CONFIG: Final = "corral.toml"
DEMO_STORE: Final = "sqlite:///demo-out/corral.db"

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
    typer.Option(
        "--config",
        help="Path to corral.toml; default: CORRAL_CONFIG, then ./corral.toml when present. "
        "Without one: the store only.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings(config_path: str | None, store_url: str | None) -> config.Settings:
    """Load settings with flag > environment > file precedence; ./corral.toml is the file when none is named."""
    env = dict(os.environ)
    if config_path is None and not env.get("CORRAL_CONFIG") and os.path.isfile(LOCAL_CONFIG):  # noqa: PTH113
        config_path = LOCAL_CONFIG
    return config.load(config_path, env, store=store_url)


def pipeline(config_path: str | None, store_url: str | None) -> Pipeline:
    """Build the configured pipeline."""
    return Pipeline.from_settings(settings(config_path, store_url), dict(os.environ))


def store(config_path: str | None, store_url: str | None) -> Store:
    """Open the configured store for reading, without building sinks; never create one."""
    return open_existing(settings(config_path, store_url).store)


def open_existing(url: str) -> Store:
    """Open a store that must already exist: a missing SQLite file is an error, not a new empty store.

    A read command under a mistyped path would otherwise create an empty database and show an
    empty table, as if nothing had been found.
    """
    if url.lower().startswith("sqlite:"):
        from corral.stores.sqlite import path_of  # noqa: PLC0415 (the SQLite module only for SQLite URLs)

        path = path_of(url)
        if path != ":memory:" and not os.path.isfile(path):  # noqa: PTH113
            raise ConfigError(
                f"store {url}: no such SQLite file {path!r}; pass --store or set CORRAL_STORE"
                f" (after `make demo` the demo's findings are in --store {DEMO_STORE})"
            )
    return open_store(url)
