"""The registry of sources: one module per cloud detector, listed literally.

Each source module exposes:

- `SOURCE`: its id, `<cloud>.<service>` (e.g. "aws.guardduty");
- `recognizes(doc) -> bool`: whether a bare document (already out of its envelope) is its own;
- `normalize(doc, delivery_id, *, received_time) -> Finding | Skip | HealthSignal`: pure, no
  I/O; raises `MalformedEventError` (with a one-line reason) and nothing else. `received_time`
  (epoch ms: the bus's publish time, else the time Corral received it) stands in only for a
  record that carries no time of its own.

Modules are imported on first use, and detection asks the home cloud's source first (the cloud
whose function runtime this is, from its environment), so a function loads only its own cloud's
normalizer unless a document needs another: another cloud's tables cost cold start for nothing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from types import ModuleType
from typing import Any, Final

MODULES: Final = {
    "aws.guardduty": "corral.sources.guardduty",
    "azure.defender": "corral.sources.defender",
    "gcp.scc": "corral.sources.scc",
    "corral.relay": "corral.sources.relay",
}
"""Source id → module, in detection order."""
# The variable each platform sets in its function runtime, and the source of that cloud.
HOME_SOURCES: Final = (
    ("AWS_LAMBDA_FUNCTION_NAME", "aws.guardduty"),
    ("FUNCTIONS_WORKER_RUNTIME", "azure.defender"),
    ("K_SERVICE", "gcp.scc"),
)


class Registry(MutableMapping[str, ModuleType]):
    """Source id → module, imported when first asked for; iteration keeps the detection order."""

    def __init__(self, modules: Mapping[str, str]) -> None:
        """Remember where each source lives; nothing is imported yet."""
        self._names: dict[str, str] = dict(modules)
        self._loaded: dict[str, ModuleType] = {}

    def __getitem__(self, source: str) -> ModuleType:
        module = self._loaded.get(source)
        if module is None:
            module = self._loaded[source] = importlib.import_module(self._names[source])
        return module

    def __setitem__(self, source: str, module: ModuleType) -> None:
        self._names[source] = module.__name__
        self._loaded[source] = module

    def __delitem__(self, source: str) -> None:
        del self._names[source]
        self._loaded.pop(source, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


SOURCES: Final = Registry(MODULES)


def detection_order(environ: Mapping[str, str]) -> list[str]:
    """Return the source ids in the order detection tries them: the home cloud's first."""
    order = list(SOURCES)
    home = next((source for variable, source in HOME_SOURCES if environ.get(variable) and source in order), None)
    return order if home is None else [home, *(source for source in order if source != home)]


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
    for source in detection_order(os.environ):
        module = SOURCES[source]
        if module.recognizes(doc):
            return module
    return None
