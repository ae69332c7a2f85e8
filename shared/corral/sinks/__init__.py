"""The registry of sink kinds, listed literally; each module is imported only when configured.

A sink module exposes `FAMILY` ("chat", "siem", "relay" or "file"), a pure `render(...)`, and
`from_config(sink_id, settings, env) -> Sink`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from corral import optional
from corral.errors import ConfigError

if TYPE_CHECKING:
    # The contract is loaded by the sink modules themselves, so a pipeline with no sink never pays for it.
    from corral.sinks.base import Sink, SinkFamily

KINDS: Final[dict[str, tuple[str, SinkFamily]]] = {
    "slack": ("corral.sinks.slack", "chat"),
    "teams": ("corral.sinks.teams", "chat"),
    "splunk_hec": ("corral.sinks.splunk_hec", "siem"),
    "sentinel": ("corral.sinks.sentinel", "siem"),
    "elastic": ("corral.sinks.elastic", "siem"),
    "syslog": ("corral.sinks.syslog", "siem"),
    "webhook": ("corral.sinks.webhook", "siem"),
    "relay": ("corral.sinks.relay", "relay"),
    "file": ("corral.sinks.file", "file"),
}


def family(kind: str) -> SinkFamily:
    """Return the family of a sink kind (decides which change kinds it gets by default)."""
    return KINDS[kind][1]


def kind_of(sink_id: str, settings: Mapping[str, Any]) -> str:
    """The kind of a sink: its `kind` setting, else the part of its id before the colon."""
    kind = settings.get("kind") or sink_id.partition(":")[0]
    if kind not in KINDS:
        raise ConfigError(f"sinks.{sink_id}.kind: unknown sink kind {kind!r}; use one of {', '.join(KINDS)}")
    return str(kind)


def declared_settings(kind: str) -> Mapping[str, str]:
    """The settings a sink kind reads, each with its one-line description (the module's `SETTINGS`)."""
    declared: Mapping[str, str] = importlib.import_module(KINDS[kind][0]).SETTINGS
    return declared


def unknown_settings(sink_id: str, settings: Mapping[str, Any]) -> list[str]:
    """One line per setting the sink's kind does not read, with "did you mean" for a close typo.

    The one check of unknown settings for every kind: a mistyped `tiemout` would otherwise be
    silently ignored and the default used.

    Example:
        >>> unknown_settings("file:x", {"path": "f.jsonl", "formt": "jsonl"})
        ["sinks.file:x.formt: unknown setting (did you mean 'format'?); file sinks read format, kind, path, public_url"]
    """
    kind = kind_of(sink_id, settings)
    known = declared_settings(kind)
    unknown = sorted(set(settings) - set(known))
    if not unknown:
        return []
    import difflib  # noqa: PLC0415 - only a mistake needs a suggestion

    lines = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        lines.append(f"sinks.{sink_id}.{key}: unknown setting{hint}; {kind} sinks read {', '.join(sorted(known))}")
    return lines


def build(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> Sink:
    """Build the sink `sink_id` ("<kind>:<name>") from its settings table."""
    problems = unknown_settings(sink_id, settings)
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        module = importlib.import_module(KINDS[kind_of(sink_id, settings)][0])
        sink: Sink = module.from_config(sink_id, settings, env)
    except ModuleNotFoundError as exc:
        raise optional.missing(exc, f"sinks.{sink_id}") from None
    return sink


def build_all(
    tables: Mapping[str, Mapping[str, Any]], env: Mapping[str, str], origin: str, public_url: str | None = None
) -> dict[str, Sink]:
    """Build every configured sink; raise one ConfigError with a line per sink that cannot be built.

    Each line names `origin` (the configuration file) before the setting, so a deploy log says
    where to fix it. `public_url` (the top-level setting) is the default of each sink's own.
    """
    built: dict[str, Sink] = {}
    problems: list[str] = []
    for sink_id, table in tables.items():
        try:
            settings = table
            if public_url and "public_url" not in table and "public_url" in declared_settings(kind_of(sink_id, table)):
                settings = {**table, "public_url": public_url}
            built[sink_id] = build(sink_id, settings, env)
        except ConfigError as exc:
            problems.extend(f"{origin}: {line}" for line in str(exc).splitlines())
    if problems:
        for sink in built.values():
            sink.close()
        raise ConfigError("\n".join(problems))
    return built
