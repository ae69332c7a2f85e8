"""The registry of sink kinds, listed literally; each module is imported only when configured.

A sink module exposes `FAMILY` ("chat", "siem", "relay" or "file"), a pure `render(...)`, and
`from_config(sink_id, settings, env) -> Sink`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

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


def build(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> Sink:
    """Build the sink `sink_id` ("<kind>:<name>") from its settings table."""
    kind = settings.get("kind") or sink_id.partition(":")[0]
    if kind not in KINDS:
        raise ConfigError(f"sinks.{sink_id}.kind: unknown sink kind {kind!r}; use one of {', '.join(KINDS)}")
    module = importlib.import_module(KINDS[kind][0])
    sink: Sink = module.from_config(sink_id, settings, env)
    return sink
