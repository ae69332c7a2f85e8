"""`corral serve` and `corral report`: the dashboard, live or as one self-contained HTML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from corral import coverage
from corral.cli import options
from corral.cli.options import ConfigOption, StoreOption
from corral.dashboard import DEFAULT_HOST, DEFAULT_PORT
from corral.errors import ConfigError
from corral.pipeline import now_ms

WindowOption = Annotated[
    int,
    typer.Option(
        "--window-hours", min=1, max=24 * 366 * 10, help="Coverage window: findings seen within this many hours."
    ),
]


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; beyond loopback a token is required.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=0, max=65_535, help="Port to bind (0: any free port).")] = DEFAULT_PORT,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", help="Name of the environment variable holding the access token."),
    ] = None,
    public_host: Annotated[
        str | None,
        typer.Option(
            "--public-host",
            help="A further host name to answer for (the name a reverse proxy forwards; needs --token-env); "
            "requests naming any other host get 421.",
        ),
    ] = None,
    window_hours: WindowOption = coverage.DEFAULT_WINDOW_HOURS,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the read-only dashboard and its JSON API until interrupted."""
    # The dashboard loads with the command that uses it: every other command starts without it.
    from corral.dashboard import server  # noqa: PLC0415

    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigError(f"--token-env: environment variable {token_env} is not set or empty")
    server.require_token(host, token, public_host)
    settings = options.settings(config, store)
    stores = server.StorePool(lambda: options.open_existing(settings.store))
    with stores.borrow() as db:  # open one now: a missing or unreachable store fails before listening
        url = db.url
    dashboard = server.Dashboard(
        stores,
        settings.source_windows,
        now_ms,
        token,
        window_hours * server.HOUR_MS,
        server.own_host_names(host, public_host),
        settings.priority,
    )
    httpd = server.make_server(dashboard, host, port)
    bound_host, bound_port = httpd.server_address[:2]
    shown = f"[{bound_host!s}]" if ":" in str(bound_host) else str(bound_host)
    print(f"corral: serving http://{shown}:{bound_port}/ from {url}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        stores.close()


def report(
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML file.")] = Path("report.html"),
    window_hours: WindowOption = coverage.DEFAULT_WINDOW_HOURS,
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the dashboard as one self-contained HTML file (no scripts, no external assets)."""
    from corral.dashboard import listing, view  # noqa: PLC0415 - as in `serve`
    from corral.dashboard.page import HOUR_MS, render_page  # noqa: PLC0415

    settings = options.settings(config, store)
    db = options.open_existing(settings.store)
    try:
        now = now_ms()
        base = view.build(db, settings.source_windows, now, window_hours * HOUR_MS)
        page = render_page(listing.overview(base, db, None, None, now))
    finally:
        db.close()
    try:
        # A new file is owner-only (0600) whatever the umask: the report lists findings. An existing
        # one is overwritten and keeps its mode.
        with open(out, "w", encoding="utf-8", opener=_owner_only) as handle:
            handle.write(page)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    print(f"corral: wrote {out}")


def _owner_only(path: str, flags: int) -> int:
    """`open`'s opener: a file it creates is 0600; an existing one keeps its mode."""
    return os.open(path, flags, 0o600)
