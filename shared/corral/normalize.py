"""Normalize one delivery: unwrap its envelopes, detect each document's source, map it to OCSF.

Pure: no I/O. Each item of a delivery gives one `Outcome` (a finding, a skip, a health signal, or
an error for the dead letter); one bad item never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from corral import envelopes, limits, ocsf, sources
from corral.errors import PermanentError
from corral.records import HealthSignal, Item, Outcome, Skip
from corral.sources._core.source import Source

# A normalizer reading an unexpected shape fails with one of these; the item is dead-lettered
# with the reason instead of taking the batch down. The property tests hold every normalizer to
# raising only PermanentError, so reaching this net is itself a bug to fix, never a way of working.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError, OverflowError)


def normalize(
    doc: object,
    where: str = "",
    delivery_id: str | None = None,
    received_time: int | None = None,
    *,
    body: bytes | None = None,
    sequence: int | None = None,
    transport_time: int | None = None,
    order: bool = True,
) -> Iterator[Outcome]:
    """Yield one Outcome per source document found in `doc`.

    `transport_time` and `sequence` are the delivery's transport order (wrappers inside it may
    state their own); `received_time` stands in for a record's time only where neither the record
    nor any transport gives one. `body` is the bytes `doc` was parsed from (for exact dead letters).
    Without `order`, `Outcome.timeless` is left False: working it out normalizes again each finding
    whose time equals the stand-in, which a caller that only prints findings does without.

    Example:
        >>> [o.error for o in normalize({"hello": "world"})]
        ['no source recognizes this document (keys: hello)']
    """
    one = envelopes.single(doc, where, delivery_id, body=body, received_time=transport_time, sequence=sequence)
    if one is not None:  # most deliveries: one bare document or one EventBridge event
        yield normalize_item(one, received_time, order=order)
        return
    for item in envelopes.unwrap(doc, where, delivery_id, body=body, received_time=transport_time, sequence=sequence):
        yield item if isinstance(item, Outcome) else normalize_item(item, received_time, order=order)


def _detect(item: Item) -> tuple[Source | None, Any]:
    """The source of an item and the document to hand it: the detail, else the whole event."""
    source = sources.detect(item.doc)
    if source is None and item.envelope is not None:
        # A source that reads whole EventBridge events (e.g. by their detail type) still can.
        source = sources.detect(item.envelope.event)
        if source is not None:
            return source, item.envelope.event
    return source, item.doc


def _takes_envelope(source: Source) -> bool:
    known = _TAKES_ENVELOPE.get(source)
    if known is None:
        code = getattr(source.normalize, "__code__", None)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] if code is not None else ()
        known = _TAKES_ENVELOPE[source] = "envelope" in names
    return known


_TAKES_ENVELOPE: dict[Source, bool] = {}  # per source module: its signature is asked once, not per item


def normalize_item(item: Item, received_time: int | None = None, *, order: bool = True) -> Outcome:
    """Normalize one unwrapped document (`order`: see `normalize`)."""
    source, doc = _detect(item)
    if source is None:
        keys = ", ".join(sorted(str(k) for k in item.doc)[:8]) if item.doc else "none"
        return _failed(item, f"no source recognizes this document (keys: {keys})")
    name: str = source.SOURCE
    extra = {"envelope": item.envelope} if item.envelope is not None and _takes_envelope(source) else {}
    stand_in = item.received_time if item.received_time is not None else received_time
    try:
        result = source.normalize(doc, item.delivery_id, received_time=stand_in, **extra)
    except PermanentError as exc:
        return _failed(item, str(exc), name)
    except _SHAPE_ERRORS as exc:
        reason = limits.violation(item.doc, limits.MAX_DOCUMENT_DEPTH) or f"unexpected {name} shape"
        return _failed(item, f"{reason} ({type(exc).__name__})", name)
    except Exception as exc:  # noqa: BLE001 - whatever one document does, the others go on
        return _failed(item, f"{name} failed on this document ({type(exc).__name__})", name)
    if isinstance(result, Skip):
        return Outcome(item.where, skipped=result.reason, source=name, item=item)
    if isinstance(result, HealthSignal):
        return Outcome(item.where, signal=result, source=name, item=item)
    timeless = order and stand_in is not None and _uses(source, doc, item, stand_in, extra, result)
    return Outcome(item.where, finding=result, source=sources.source_of(result), item=item, timeless=timeless)


def _failed(item: Item, error: str, source: str | None = None) -> Outcome:
    """The Outcome of an item that is dead-lettered: its document, bytes and place in them."""
    return Outcome(item.where, error=error, source=source, raw=item.doc, body=item.body, path=item.path, item=item)


def _uses(source: Source, doc: Any, item: Item, stand_in: int, extra: dict[str, Any], result: Any) -> bool:
    """Whether the finding's time is the stand-in: it follows when the stand-in moves (normalizing is pure).

    Only asked when the two are equal, which for a record with a time of its own is a coincidence.
    """
    try:
        if ocsf.modified_time(result) != stand_in:
            return False
        moved = source.normalize(doc, item.delivery_id, received_time=stand_in + 1, **extra)
        return isinstance(moved, dict) and ocsf.modified_time(moved) == stand_in + 1
    except Exception:  # noqa: BLE001 - the finding itself was made; this only refines how it is ordered
        return False
