"""The registry of sources: one line per source module, listed literally, loaded on first use.

Each source module satisfies `corral.sources._core.source.Source`:

- `SOURCE`: its id, `<cloud>.<service>` (e.g. "aws.guardduty");
- `FACTS`: what it declares about itself (product, names, reporting window, home cloud, the
  coverage cells it can serve), read here by health, coverage and responsibility;
- `recognizes(doc) -> bool`: whether a bare document (already out of its envelope) is its own;
- `normalize(doc, delivery_id, *, received_time) -> Finding | Skip | HealthSignal`: pure, no
  I/O; raises `MalformedEventError` (with a one-line reason) and nothing else. `received_time`
  (epoch ms: the bus's publish time, else the time Corral received it) stands in only for a
  record that carries no time of its own.

A function pays at cold start for every module it imports, so the modules load only when
needed: `detect` asks the home cloud's sources first (the platform sets AWS_LAMBDA_FUNCTION_NAME,
FUNCTIONS_WORKER_RUNTIME or K_SERVICE), and another cloud's normalizer is imported only for a
document its home sources do not recognize. `SOURCES`, `FACTS`, `PRODUCT_SOURCES` and
`CAPABILITIES` load every module on first access (health, coverage, the CLI, a relay hub).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from corral.sources import defender, guardduty, inspector, relay, scc
    from corral.sources._core.source import Capability, Facts, Source

    # mypy checks each module against the protocol here; at run time they are imported by name.
    _CHECKED: tuple[Source, ...] = (guardduty, inspector, defender, scc, relay)

    SOURCES: dict[str, Source]
    FACTS: dict[str, Facts]
    PRODUCT_SOURCES: dict[str, str]
    """The source a finding came from, by its product: a relayed finding counts for its first source."""
    CAPABILITIES: tuple[Capability, ...]

# (module, home cloud): the detection order; the relay is last, after every vendor source.
_MODULES: Final = (
    ("corral.sources.guardduty", "aws"),
    ("corral.sources.inspector", "aws"),
    ("corral.sources.defender", "azure"),
    ("corral.sources.scc", "gcp"),
    ("corral.sources.relay", None),
)
# By module, the top-level keys (lower-cased) of which a document must have at least one for its
# `recognizes` to hold: a necessary condition only, so a module is asked when one is present and
# skipped, without being imported, when none is. Each must stay true of its module's `recognizes`
# (tests/sources/test_detect_cues.py checks it on every sample and on mutated documents).
_CUES: Final[dict[str, frozenset[str]]] = {
    "corral.sources.guardduty": frozenset(("detail-type", "arn", "service")),
    "corral.sources.inspector": frozenset(("detail-type", "findingarn")),
    "corral.sources.defender": frozenset(("type", "systemalertid")),  # matched in any casing
    "corral.sources.scc": frozenset(("finding", "name")),
    "corral.sources.relay": frozenset(("metadata",)),
}
# The variable each platform sets in its functions' environment, by cloud.
_PLATFORMS: Final = (("AWS_LAMBDA_FUNCTION_NAME", "aws"), ("FUNCTIONS_WORKER_RUNTIME", "azure"), ("K_SERVICE", "gcp"))

_loaded: dict[str, Source] = {}
# product uid -> source id of the modules loaded so far.
_products: dict[str, str] = {}


def _load(name: str) -> Source:
    module = _loaded.get(name)
    if module is None:
        module = cast("Source", importlib.import_module(name))  # each is checked in _CHECKED
        if module.FACTS is not None:
            _products[module.FACTS.product_uid] = module.FACTS.source
        _loaded[name] = module
    return module


@functools.cache
def _order() -> tuple[str, ...]:
    """Module names in detection order: the home cloud's first, the rest as listed."""
    home = next((cloud for variable, cloud in _PLATFORMS if os.environ.get(variable)), None)
    return tuple(name for name, cloud in _MODULES if cloud == home) + tuple(
        name for name, cloud in _MODULES if cloud != home
    )


def _all() -> tuple[Source, ...]:
    return tuple(_load(name) for name, _ in _MODULES)


def __getattr__(name: str) -> Any:
    """Build the registry's tables on first access (PEP 562), loading every source module."""
    if name == "SOURCES":
        value: Any = {module.SOURCE: module for module in _all()}
    elif name == "FACTS":
        value = {m.SOURCE: m.FACTS for m in _all() if m.FACTS is not None}
    elif name == "PRODUCT_SOURCES":
        value = {facts.product_uid: facts.source for facts in __getattr__("FACTS").values()}
    elif name == "CAPABILITIES":
        value = tuple(cap for facts in __getattr__("FACTS").values() for cap in facts.capabilities)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def source_of(finding: Mapping[str, Any]) -> str:
    """Return the source id of a finding from its product uid (the product uid itself if unknown)."""
    product = str(finding["metadata"]["product"].get("uid", ""))
    known = _products.get(product)
    if known is not None:
        return known
    products: dict[str, str] = __getattr__("PRODUCT_SOURCES")
    return products.get(product, product)


# Lower-cased top-level keys, by key sequence: documents of one kind repeat a few key sequences,
# so most cost a `tuple()` of their keys and one lookup. Bounded.
_FOLDED: dict[tuple[Any, ...], frozenset[str]] = {}
_MAX_FOLDED: Final = 4096


def _keys(doc: dict[Any, Any]) -> frozenset[str]:
    shape = tuple(doc)
    found = _FOLDED.get(shape)
    if found is None:
        found = frozenset(name.lower() for name in shape if isinstance(name, str))
        if len(_FOLDED) >= _MAX_FOLDED:
            _FOLDED.clear()
        _FOLDED[shape] = found
    return found


def _cued(name: str, keys: frozenset[str] | None) -> bool:
    """False when `keys` show that module `name` cannot recognize the document (no module is imported)."""
    cues = _CUES.get(name)
    return keys is None or cues is None or not cues.isdisjoint(keys)


# The registry path's candidates by key sequence: the modules whose cues a document's top-level
# keys meet, in registry order, worked out for the registry's modules as they were then
# (`_candidates_of`); a changed registry starts the table afresh. Bounded.
_CANDIDATES: dict[tuple[Any, ...], tuple[Source, ...]] = {}
_candidates_of: tuple[Source, ...] = ()


def detect(doc: Mapping[str, Any]) -> Source | None:
    """Return the source module that recognizes `doc`, or None.

    Only the modules whose cues the document's top-level keys meet are asked (or imported).
    """
    # Once the whole registry is built (health, the CLI, a relay hub), detection reads it as is.
    registry: dict[str, Source] | None = globals().get("SOURCES")
    if registry is not None:
        for module in _candidates(doc, tuple(registry.values())):
            if module.recognizes(doc):
                return module
        return None
    keys = _keys(doc) if type(doc) is dict else None
    for name in _order():
        if _cued(name, keys):
            module = _loaded.get(name) or _load(name)
            if module.recognizes(doc):
                return module
    return None


def _candidates(doc: Mapping[str, Any], modules: tuple[Source, ...]) -> tuple[Source, ...]:
    """The registry's modules whose cues `doc`'s top-level keys meet: one lookup per document's key sequence."""
    global _candidates_of  # noqa: PLW0603 - the table below belongs to one registry
    if modules != _candidates_of:
        _CANDIDATES.clear()
        _candidates_of = modules
    if type(doc) is not dict:
        return modules
    shape = tuple(doc)
    found = _CANDIDATES.get(shape)
    if found is None:
        keys = _keys(doc)
        found = tuple(module for module in modules if _cued(getattr(module, "__name__", ""), keys))
        if len(_CANDIDATES) >= _MAX_FOLDED:
            _CANDIDATES.clear()
        _CANDIDATES[shape] = found
    return found
