"""Options shared by the commands that open the store, and how they build the pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final

import typer

from corral import config
from corral.cli.text import plain
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
        config_path = _trusted_local_config()
    return config.load(config_path, env, store=store_url)


def _trusted_local_config() -> str:
    """./corral.toml, said on stderr, when it is the user's own and nobody else can change it.

    A config names where findings go and which variables hold the tokens sent with them: a file
    someone else can write in the working directory could send any secret of the environment to
    any host, so it is refused rather than read without being asked for.
    """
    found = Path(LOCAL_CONFIG).stat()
    if found.st_uid != os.getuid():
        raise ConfigError(f"./{LOCAL_CONFIG}: not read: owned by another user (name it with --config to use it)")
    if found.st_mode & 0o022:
        raise ConfigError(
            f"./{LOCAL_CONFIG}: not read: others can write to it (mode {found.st_mode & 0o777:o};"
            f" chmod go-w {LOCAL_CONFIG}, or name it with --config)"
        )
    typer.echo(f"corral: using ./{LOCAL_CONFIG}", err=True)
    return LOCAL_CONFIG


def pipeline(config_path: str | None, store_url: str | None) -> Pipeline:
    """Build the configured pipeline; say on stderr what in its configuration looks like a mistake."""
    built = Pipeline.from_settings(settings(config_path, store_url), dict(os.environ))
    # Said once every sink is built: a configuration that fails to start still fails in one line.
    for notice in built.settings.notices():
        typer.echo(plain(f"corral: {notice}"), err=True)
    return built


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
