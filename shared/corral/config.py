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

import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from corral.errors import ConfigError
from corral.priority import DEFAULT_WEIGHTS, Weights, parse_weights
from corral.records import NamedTuple  # typing.NamedTuple, built without its per-field checks
from corral.redaction import url_secrets
from corral.routing import Condition, Route, Router, SuppressRule, parse_change_kinds, sink_list
from corral.stores import DEFAULT_URL

if TYPE_CHECKING:
    from corral.sinks.base import SinkFamily

# Cloud functions run from variables alone: what only a configuration table needs (the sink
# registry, difflib's suggestions, the public_url check) is imported where the table is read.

TOP_LEVEL_KEYS: Final = frozenset(
    {"store", "public_url", "sinks", "routes", "suppress", "retention", "sources", "priority"}
)


class Settings(NamedTuple):
    """Everything Corral was configured with, validated (a NamedTuple: see corral.records)."""

    store: str = DEFAULT_URL
    sinks: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    router: Router = Router()
    closed_retention_days: int | None = None
    source_windows: Mapping[str, int] = MappingProxyType({})
    origin: str = "defaults"
    priority: Weights = DEFAULT_WEIGHTS
    public_url: str | None = None
    """Where people reach the dashboard; sinks link each finding's page under it."""

    def notices(self) -> list[str]:
        """What is valid but most likely a mistake, one line each, for the caller to show or log.

        A sink no route names receives nothing: a route naming the wrong sink, or a forgotten
        route, would otherwise leave a SIEM silently empty. It is not refused: a sink defined but
        not routed is also how one is kept ready, or taken out of service without deleting it.

        Example:
            >>> Settings(sinks={"file:spare": {}}).notices()
            ['sink "file:spare" is named by no route; it will receive nothing']
        """
        routed = {sink for route in self.router.routes for sink in route.to}
        return [
            f'sink "{sink_id}" is named by no route; it will receive nothing'
            for sink_id in self.sinks
            if sink_id not in routed
        ]


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
    return settings._replace(store=url, origin=origin)


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
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


class _Problems:
    """Every mistake found in one configuration, one line each, raised together at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        """Record a ConfigError raised inside the block instead of stopping at it."""
        try:
            yield
        except ConfigError as exc:
            self.lines.extend(str(exc).splitlines())

    def raise_all(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines))


def parse(table: Mapping[str, Any], origin: str = "corral.toml", *, now: float | None = None) -> Settings:
    """Validate a parsed configuration table; every error names `origin` and the key.

    Every mistake is found before any is reported: the ConfigError holds one line per mistake.
    `now` (epoch seconds, default the current time) decides which suppressions have expired.
    """
    problems = _Problems()
    for key in table:
        if key not in TOP_LEVEL_KEYS:
            problems.add(f"{origin}: unknown key {key!r}{_did_you_mean(key, TOP_LEVEL_KEYS)}; "
                         f"expected one of {', '.join(sorted(TOP_LEVEL_KEYS))}")  # fmt: skip
    store = table.get("store", DEFAULT_URL)
    if not isinstance(store, str) or "://" not in store:
        problems.add(f"{origin}: store: expected a URL such as sqlite:///corral.db")
        store = DEFAULT_URL
    elif _written_password(store):
        problems.add(
            f"{origin}: store: a password is written in the store URL; keep the whole URL in CORRAL_STORE "
            "(set from a secret), or the PostgreSQL password in PGPASSWORD, and remove it from this file"
        )
    sink_tables = _sinks(table.get("sinks", {}), origin, problems)
    families = {sink_id: _family(sink_id, t) for sink_id, t in sink_tables.items()}
    raw_sinks = table.get("sinks")
    # Routes may name a sink whose own table is wrong: that mistake is reported once, at the sink.
    defined = list(raw_sinks) if isinstance(raw_sinks, Mapping) else []
    routes: list[Route] = []
    suppressions: list[SuppressRule] = []
    now_ms = int((time.time() if now is None else now) * 1000)
    with problems.collect():
        route_tables = _tables(table, "routes", origin)
        for i, r in enumerate(route_tables):
            with problems.collect():
                routes.append(_route(r, i, defined, origin, problems))
    with problems.collect():
        suppress_tables = _tables(table, "suppress", origin)
        for i, t in enumerate(suppress_tables):
            with problems.collect():
                suppressions.append(_suppress(t, i, origin, now_ms, problems))
    link_base = _public_url(table.get("public_url"), origin, problems)
    closed_days = _retention(table.get("retention", {}), origin, problems)
    windows = _windows(table.get("sources", {}), origin, problems)
    priority = DEFAULT_WEIGHTS
    with problems.collect():
        priority = parse_weights(table.get("priority"), origin)
    problems.raise_all()
    return Settings(
        store=store,
        sinks=sink_tables,
        router=Router(tuple(routes), tuple(suppressions), families),
        closed_retention_days=closed_days,
        source_windows=windows,
        origin=origin,
        priority=priority,
        public_url=link_base,
    )


def _written_password(url: str) -> bool:
    """True when a store URL holds a password itself (user info or query), not a path to a key file."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return True
    except ValueError:
        return bool(url_secrets(url))
    for pair in parts.query.split("&"):
        name, _, value = (unquote(part) for part in pair.partition("="))
        if any(word in name.lower() for word in ("password", "secret", "token")):
            return True
        if "://" in value and _written_password(value):
            return True
    return False


def _family(sink_id: str, table: Mapping[str, Any]) -> SinkFamily:
    from corral import sinks  # noqa: PLC0415

    return sinks.family(str(table.get("kind") or sink_id.partition(":")[0]))


def _public_url(value: object, origin: str, problems: _Problems) -> str | None:
    if value is None:
        return None
    from corral.sinks.settings import public_url as public_url_setting  # noqa: PLC0415 - loads pathlib

    try:
        return public_url_setting({"public_url": value}, "public_url")
    except ConfigError:
        problems.add(
            f"{origin}: public_url: use the https:// base URL people reach the dashboard at, e.g. "
            "https://corral.example (http:// only on loopback), without a query"
        )
        return None


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    import difflib  # noqa: PLC0415 - only a mistake needs a suggestion

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _retention(retention: object, origin: str, problems: _Problems) -> int | None:
    if not isinstance(retention, Mapping):
        problems.add(f"{origin}: retention: expected a [retention] table")
        return None
    for key in retention:
        if key != "closed_days":
            problems.add(f"{origin}: retention.{key}: unknown key{_did_you_mean(key, ['closed_days'])}; "
                         "expected closed_days")  # fmt: skip
    closed_days = retention.get("closed_days")
    if closed_days is not None and (
        isinstance(closed_days, bool) or not isinstance(closed_days, int) or closed_days < 1
    ):
        problems.add(f"{origin}: retention.closed_days: expected a whole number of days, at least 1")
        return None
    return closed_days


def _windows(windows: object, origin: str, problems: _Problems) -> dict[str, int]:
    if not isinstance(windows, Mapping):
        problems.add(f'{origin}: sources: expected source = window in minutes, e.g. "aws.guardduty" = 420')
        return {}
    if not windows:
        return {}
    # Loaded only when [sources] is written: the registry imports every source module.
    from corral.sources import SOURCES  # noqa: PLC0415

    found: dict[str, int] = {}
    for name, minutes in windows.items():
        if name not in SOURCES:
            problems.add(
                f"{origin}: sources.{name}: unknown source{_did_you_mean(name, SOURCES)}; "
                f"use one of {', '.join(sorted(SOURCES))}"
            )
        elif isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            problems.add(f'{origin}: sources.{name}: expected a window in minutes, e.g. "{name}" = 420')
        else:
            found[name] = minutes
    return found


def _tables(table: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{origin}: {key}: expected [[{key}]] tables")
    return value


def _sinks(value: object, origin: str, problems: _Problems) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        problems.add(f'{origin}: sinks: expected [sinks."kind:name"] tables')
        return {}
    if not value:
        return {}
    import difflib  # noqa: PLC0415

    from corral import sinks  # noqa: PLC0415

    found: dict[str, Mapping[str, Any]] = {}
    for sink_id, settings in value.items():
        where = f"{origin}: sinks.{sink_id}"
        if not isinstance(settings, Mapping):
            problems.add(f"{where}: expected a table")
            continue
        kind = settings.get("kind") or sink_id.partition(":")[0]
        if kind not in sinks.KINDS:
            problems.add(
                f"{where}.kind: unknown sink kind {kind!r}{_did_you_mean(str(kind), sinks.KINDS)}; "
                f"use one of {', '.join(sinks.KINDS)}"
            )
            continue
        known = sinks.declared_settings(str(kind))
        # A secret written inline gets the fix for that; a typo of a known `…_env` setting is a typo.
        secrets = {
            key
            for key in settings
            if key not in known
            and _looks_secret(key)
            and not key.endswith("_env")
            and (f"{key}_env" in known or not difflib.get_close_matches(key, list(known), n=1, cutoff=0.6))
        }
        for key in sorted(secrets):
            problems.add(
                f"{where}.{key}: secrets are not written in configuration; "
                f"set {key}_env to the name of the environment variable that holds it"
            )
        for key, url in sorted(settings.items()):
            if isinstance(url, str) and "://" in url and key not in secrets and url_secrets(url):
                problems.add(
                    f"{where}.{key}: a credential is written in the URL; remove it and give it through the "
                    "sink's *_env setting (the name of an environment variable that holds it)"
                )
        with problems.collect():
            for line in sinks.unknown_settings(sink_id, {k: v for k, v in settings.items() if k not in secrets}):
                problems.add(f"{origin}: {line}")
        found[sink_id] = settings
    return found


def _looks_secret(key: str) -> bool:
    return any(word in key for word in ("token", "secret", "password", "api_key", "webhook_url"))


def _route(table: Mapping[str, Any], index: int, known: list[str], origin: str, problems: _Problems) -> Route:
    name = str(table.get("name") or f"routes[{index}]")
    where = f"{origin}: routes[{index}] ({name})"
    expected = ("name", "when", "on", "to", "samples")
    for key in sorted(set(table) - set(expected)):
        problems.add(f"{where}: unknown key {key!r}{_did_you_mean(key, expected)}; expected {', '.join(expected)}")
    when, on, samples = Condition(), None, False
    to: tuple[str, ...] = ()
    with problems.collect():
        when = Condition.parse(table.get("when"), f"{where}.when")
    with problems.collect():
        to = sink_list(table.get("to"), known, f"{where}.to")
    with problems.collect():
        on = parse_change_kinds(table.get("on"), f"{where}.on")
    with problems.collect():
        samples = _flag(table.get("samples", False), f"{where}.samples")
    return Route(name=name, when=when, to=to, on=on, samples=samples)


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false")
    return value


def _suppress(table: Mapping[str, Any], index: int, origin: str, now_ms: int, problems: _Problems) -> SuppressRule:
    name = str(table.get("name") or f"suppress[{index}]")
    where = f"{origin}: suppress[{index}] ({name})"
    expected = ("name", "when", "reason", "until")
    for key in sorted(set(table) - set(expected)):
        problems.add(f"{where}: unknown key {key!r}{_did_you_mean(key, expected)}; expected {', '.join(expected)}")
    reason = table.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.add(f"{where}.reason: say why these findings are suppressed")
        reason = ""
    condition = Condition()
    if not table.get("when"):
        problems.add(f"{where}.when: a suppression must say what it matches")
    else:
        with problems.collect():
            condition = Condition.parse(table["when"], f"{where}.when")
    until = None
    with problems.collect():
        until = _until(table.get("until"), where)
    if until is not None and until <= now_ms:
        day = dt.datetime.fromtimestamp(until / 1000, dt.UTC).date().isoformat()
        problems.add(
            f"{where}.until: {day} has passed, so this suppression no longer hides anything; "
            "delete it, or set until to a later date if it still applies"
        )
    return SuppressRule(name, condition, reason, until)


def _until(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000)
    raise ConfigError(f"{where}.until: expected a TOML date such as 2027-01-31")
