"""The registry of sources: one line per source module, listed literally.

Each source module satisfies `corral.sources._core.source.Source`:

- `SOURCE`: its id, `<cloud>.<service>` (e.g. "aws.guardduty");
- `FACTS`: what it declares about itself (product, names, reporting window, home cloud, the
  coverage cells it can serve), read here by health, coverage and responsibility;
- `recognizes(doc) -> bool`: whether a bare document (already out of its envelope) is its own;
- `normalize(doc, delivery_id, *, received_time) -> Finding | Skip | HealthSignal`: pure, no
  I/O; raises `MalformedEventError` (with a one-line reason) and nothing else. `received_time`
  (epoch ms: the bus's publish time, else the time Corral received it) stands in only for a
  record that carries no time of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral.sources import defender, guardduty, inspector, relay, scc
from corral.sources._core.source import Capability, Facts, Source

_MODULES: Final[tuple[Source, ...]] = (
    guardduty,
    inspector,
    defender,
    scc,
    relay,
)

SOURCES: Final[dict[str, Source]] = {module.SOURCE: module for module in _MODULES}
FACTS: Final[dict[str, Facts]] = {m.SOURCE: m.FACTS for m in _MODULES if m.FACTS is not None}
# The source a finding came from, by its product: a relayed finding counts for its first source.
PRODUCT_SOURCES: Final = {facts.product_uid: facts.source for facts in FACTS.values()}
CAPABILITIES: Final[tuple[Capability, ...]] = tuple(cap for facts in FACTS.values() for cap in facts.capabilities)


def source_of(finding: Mapping[str, Any]) -> str:
    """Return the source id of a finding from its product uid (the product uid itself if unknown)."""
    product = str(finding["metadata"]["product"].get("uid", ""))
    return PRODUCT_SOURCES.get(product, product)


def detect(doc: Mapping[str, Any]) -> Source | None:
    """Return the source module that recognizes `doc`, or None."""
    for module in SOURCES.values():
        if module.recognizes(doc):
            return module
    return None
