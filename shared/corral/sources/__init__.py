"""The registry of sources: one module per cloud detector, listed literally.

Each source module exposes:

- `SOURCE`: its id, `<cloud>.<service>` (e.g. "aws.guardduty");
- `recognizes(doc) -> bool`: whether a bare document (already out of its envelope) is its own;
- `normalize(doc, delivery_id, *, received_time) -> Finding | Skip | HealthSignal`: pure, no
  I/O; raises `MalformedEventError` (with a one-line reason) and nothing else. `received_time`
  (epoch ms: the bus's publish time, else the time Corral received it) stands in only for a
  record that carries no time of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final

from corral.sources import defender, guardduty, relay, scc

SOURCES: Final[dict[str, ModuleType]] = {module.SOURCE: module for module in (guardduty, defender, scc, relay)}
# The source a finding came from, by its product: a relayed finding counts for its first source.
PRODUCT_SOURCES: Final = {
    "aws.guardduty": "aws.guardduty",
    "microsoft.defender_for_cloud": "azure.defender",
    "google.scc": "gcp.scc",
}


def source_of(finding: Mapping[str, Any]) -> str:
    """Return the source id of a finding from its product uid (the product uid itself if unknown)."""
    product = str(finding["metadata"]["product"].get("uid", ""))
    return PRODUCT_SOURCES.get(product, product)


def detect(doc: Mapping[str, Any]) -> ModuleType | None:
    """Return the source module that recognizes `doc`, or None."""
    for module in SOURCES.values():
        if module.recognizes(doc):
            return module
    return None
