"""Configuration: one `corral.toml` plus `CORRAL_*` variables, validated completely at start-up.

Precedence is flag > environment > file. Messages name the file, the key and the fix, because an
operator reads them in a deploy log. Secrets never appear here: sinks name the environment
variables that hold them.

```toml
store = "postgresql://corral@db/corral"

[sinks."slack:soc"]
kind = "slack"
token_env = "SLACK_BOT_TOKEN"
channel = "C0123456"

[[routes]]
name = "urgent"
when = { severity_at_least = "high", container_service = ["EKS", "AKS", "GKE"] }
on = ["new", "escalated", "reopened"]
to = ["slack:soc"]

[[suppress]]
when = { type = "Recon:EC2/PortProbe*", account = ["111122223333"] }
reason = "scanner subnet"
until = 2027-01-31

[retention]
closed_days = 90
```
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from corral import sinks
from corral.errors import ConfigError
from corral.priority import DEFAULT_WEIGHTS, Weights, parse_weights
from corral.routing import Condition, Route, Router, SuppressRule, parse_change_kinds, sink_list
from corral.stores import DEFAULT_URL

TOP_LEVEL_KEYS: Final = frozenset({"store", "sinks", "routes", "suppress", "retention", "sources", "priority"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Corral was configured with, validated."""

    store: str = DEFAULT_URL
    sinks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    router: Router = field(default_factory=Router)
    closed_retention_days: int | None = None
    source_windows: Mapping[str, int] = field(default_factory=dict)
    origin: str = "defaults"
    priority: Weights = DEFAULT_WEIGHTS


def load(path: str | None = None, env: Mapping[str, str] | None = None, store: str | None = None) -> Settings:
    """Load settings: `path` (flag) or CORRAL_CONFIG; store URL from `store`, CORRAL_STORE, then the file."""
    env = env if env is not None else {}
    config_path = path or env.get("CORRAL_CONFIG")
    table: dict[str, Any] = {}
    origin = "defaults"
    if config_path:
        table = _read(config_path)
        origin = config_path
    settings = parse(table, origin)
    url = store or env.get("CORRAL_STORE") or settings.store
    return Settings(
        url,
        settings.sinks,
        settings.router,
        settings.closed_retention_days,
        settings.source_windows,
        origin,
        settings.priority,
    )


def _read(path: str) -> dict[str, Any]:
    # Loaded only when a configuration file is given: cloud functions run from variables alone.
    import tomllib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found (set --config or CORRAL_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def parse(table: Mapping[str, Any], origin: str = "corral.toml") -> Settings:
    """Validate a parsed configuration table; every error names `origin` and the key."""
    for key in table:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{origin}: unknown key {key!r}; expected one of {', '.join(sorted(TOP_LEVEL_KEYS))}")
    store = table.get("store", DEFAULT_URL)
    if not isinstance(store, str) or "://" not in store:
        raise ConfigError(f"{origin}: store: expected a URL such as sqlite:///corral.db")
    sink_tables = _sinks(table.get("sinks", {}), origin)
    families = {
        sink_id: sinks.family(str(t.get("kind") or sink_id.partition(":")[0])) for sink_id, t in sink_tables.items()
    }
    routes = tuple(_route(r, i, list(sink_tables), origin) for i, r in enumerate(_tables(table, "routes", origin)))
    suppressions = tuple(_suppress(s, i, origin) for i, s in enumerate(_tables(table, "suppress", origin)))
    retention = table.get("retention", {})
    if not isinstance(retention, Mapping):
        raise ConfigError(f"{origin}: retention: expected a [retention] table")
    for key in retention:
        if key != "closed_days":
            raise ConfigError(f"{origin}: retention.{key}: unknown key; expected closed_days")
    closed_days = retention.get("closed_days")
    if closed_days is not None and (
        isinstance(closed_days, bool) or not isinstance(closed_days, int) or closed_days < 1
    ):
        raise ConfigError(f"{origin}: retention.closed_days: expected a whole number of days, at least 1")
    windows = table.get("sources", {})
    if not isinstance(windows, Mapping) or not all(isinstance(v, int) and v > 0 for v in windows.values()):
        raise ConfigError(f'{origin}: sources: expected source = window in minutes, e.g. "aws.guardduty" = 420')
    return Settings(
        store=store,
        sinks=sink_tables,
        router=Router(routes, suppressions, families),
        closed_retention_days=closed_days,
        source_windows=dict(windows),
        origin=origin,
        priority=parse_weights(table.get("priority"), origin),
    )


def _tables(table: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{origin}: {key}: expected [[{key}]] tables")
    return value


def _sinks(value: object, origin: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f'{origin}: sinks: expected [sinks."kind:name"] tables')
    found: dict[str, Mapping[str, Any]] = {}
    for sink_id, settings in value.items():
        where = f"{origin}: sinks.{sink_id}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: expected a table")
        kind = settings.get("kind") or sink_id.partition(":")[0]
        if kind not in sinks.KINDS:
            raise ConfigError(f"{where}.kind: unknown sink kind {kind!r}; use one of {', '.join(sinks.KINDS)}")
        for key in settings:
            if _looks_secret(key) and not key.endswith("_env"):
                raise ConfigError(
                    f"{where}.{key}: secrets are not written in configuration; "
                    f"set {key}_env to the name of the environment variable that holds it"
                )
        found[sink_id] = settings
    return found


def _looks_secret(key: str) -> bool:
    return any(word in key for word in ("token", "secret", "password", "api_key", "webhook_url"))


def _route(table: Mapping[str, Any], index: int, known: list[str], origin: str) -> Route:
    name = str(table.get("name") or f"routes[{index}]")
    where = f"{origin}: routes[{index}] ({name})"
    unknown = set(table) - {"name", "when", "on", "to", "samples"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected name, when, on, to, samples")
    return Route(
        name=name,
        when=Condition.parse(table.get("when"), f"{where}.when"),
        to=sink_list(table.get("to"), known, f"{where}.to"),
        on=parse_change_kinds(table.get("on"), f"{where}.on"),
        samples=_flag(table.get("samples", False), f"{where}.samples"),
    )


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false")
    return value


def _suppress(table: Mapping[str, Any], index: int, origin: str) -> SuppressRule:
    name = str(table.get("name") or f"suppress[{index}]")
    where = f"{origin}: suppress[{index}] ({name})"
    unknown = set(table) - {"name", "when", "reason", "until"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected name, when, reason, until")
    reason = table.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"{where}.reason: say why these findings are suppressed")
    if not table.get("when"):
        raise ConfigError(f"{where}.when: a suppression must say what it matches")
    return SuppressRule(
        name, Condition.parse(table["when"], f"{where}.when"), reason, _until(table.get("until"), where)
    )


def _until(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000)
    raise ConfigError(f"{where}.until: expected a TOML date such as 2027-01-31")
