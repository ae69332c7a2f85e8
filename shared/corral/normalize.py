"""Normalize one delivery: unwrap its envelopes, detect each document's source, map it to OCSF.

Pure: no I/O. Each item of a delivery gives one `Outcome` (a finding, a skip, a health signal, or
an error for the dead letter); one bad item never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterator

from corral import envelopes, sources
from corral.errors import PermanentError
from corral.records import HealthSignal, Item, Outcome, Skip

# A normalizer reading an unexpected shape fails with one of these; the item is dead-lettered
# with the reason instead of taking the batch down. The property tests hold every normalizer to
# raising only PermanentError, so reaching this net is itself a bug to fix, never a way of working.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def normalize(
    doc: object, where: str = "", delivery_id: str | None = None, received_time: int | None = None
) -> Iterator[Outcome]:
    """Yield one Outcome per source document found in `doc`.

    Example:
        >>> [o.error for o in normalize({"hello": "world"})]
        ['no source recognizes this document (keys: hello)']
    """
    for item in envelopes.unwrap(doc, where, delivery_id):
        yield item if isinstance(item, Outcome) else normalize_item(item, received_time)


def normalize_item(item: Item, received_time: int | None = None) -> Outcome:
    """Normalize one unwrapped document."""
    source = sources.detect(item.doc)
    if source is None:
        keys = ", ".join(sorted(str(k) for k in item.doc)[:8]) if item.doc else "none"
        return Outcome(item.where, error=f"no source recognizes this document (keys: {keys})", raw=item.doc)
    name: str = source.SOURCE
    try:
        result = source.normalize(item.doc, item.delivery_id, received_time=item.received_time or received_time)
    except PermanentError as exc:
        return Outcome(item.where, error=str(exc), source=name, raw=item.doc)
    except _SHAPE_ERRORS as exc:
        return Outcome(item.where, error=f"unexpected {name} shape ({type(exc).__name__})", source=name, raw=item.doc)
    if isinstance(result, Skip):
        return Outcome(item.where, skipped=result.reason, source=name)
    if isinstance(result, HealthSignal):
        return Outcome(item.where, signal=result, source=name)
    return Outcome(item.where, finding=result, source=sources.source_of(result))
