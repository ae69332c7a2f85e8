"""What a `Fields` view leaves of its document: the document minus the paths recorded as mapped.

The paths are a trie (nested dicts keyed like the document, `LEAF` where a whole value was
mapped). This runs once per finding over the whole vendor document, so it is copy-on-write:
what nothing was read from is shared with the document when it needs no pruning, so that the
cost beyond one walk of the document is in proportion to what was read and what is dropped. The
vendor document is never modified, and nothing downstream modifies `unmapped`; only the object
returned at the top is always a new one, since callers may add to it.
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf

Trie = dict[str | int, Any]

LEAF: Final = object()
"""Recorded where a whole value is mapped."""


def pruned_rest(doc: dict[Any, Any], taken: Trie) -> dict[Any, Any]:
    """`doc` without the paths in `taken`, pruned as `ocsf.prune` does; a new dict."""
    if taken and doc:
        return _rest_object(doc if type(doc) is dict else _plain(doc), taken)
    kept = _shared_object(doc) if doc else {}
    return dict(kept) if kept is doc else kept


def rest_as_sent(doc: dict[Any, Any], taken: Trie) -> dict[Any, Any]:
    """`doc` without the paths in `taken`, and without the objects that leaves empty; a new dict.

    Nothing else is dropped: nulls and empty values stay as the vendor sent them.
    """
    # Walks what is recorded (a few keys) over a copy of the object, rather than every key sent.
    out = dict(doc)
    for key, below in taken.items():
        if below is LEAF:
            out.pop(key, None)
        elif below and isinstance(out.get(key), dict):
            kept = rest_as_sent(out[key], below)
            if kept:
                out[key] = kept
            else:
                del out[key]
    return out


_shared_object: Final = ocsf.shared_object  # bound once: `rest()` calls these for every untouched subtree
_shared_items: Final = ocsf.shared_items
_SCALARS: Final = frozenset({int, float, bool})  # kept as they are: never None nor empty
_GONE: Final = object()  # what is left of a value that goes as a whole


def _rest_object(doc: dict[Any, Any], taken: Trie) -> dict[Any, Any]:
    # What ocsf.prune(strip(doc, taken)) would give, in one pass: a new dict (something was read
    # here, and nearly always something mapped goes), sharing each untouched value that needs no
    # pruning. Tested by type first: most values are strings, and `x == ""` is slow for others.
    # By key, the value fetched only for a key kept: most keys here are mapped ones. `doc` is a
    # plain dict (see _plain), so `doc[key]` is the value its items() give.
    out = {}
    for key in doc:  # noqa: PLC0206 - the value is fetched only for keys kept
        below = taken.get(key)
        if below is LEAF:
            continue
        value = doc[key]
        kind = type(value)
        if kind is str:
            if value:
                out[key] = value
        elif kind is dict or kind is list:  # _rest_of, inlined: objects hold many of them
            if value:
                if below:
                    kept = _rest_object(value, below) if kind is dict else _rest_list(value, below)
                else:
                    kept = _shared_object(value) if kind is dict else _shared_items(value)
                if kept:
                    out[key] = kept
        elif kind in _SCALARS:
            out[key] = value
        elif (kept := _rest_of(value, below)) is not _GONE:
            out[key] = kept
    return out


def _rest_list(items: list[Any], taken: Trie) -> list[Any]:
    # As _rest_object, for a list that something was read from (_rest_of inlined for its items).
    out = []
    for i, value in enumerate(items):
        below = taken.get(i)
        if below is LEAF:
            continue
        kind = type(value)
        if kind is str:
            if value:
                out.append(value)
        elif kind is dict or kind is list:
            if value:
                if below:
                    kept = _rest_object(value, below) if kind is dict else _rest_list(value, below)
                else:
                    kept = _shared_object(value) if kind is dict else _shared_items(value)
                if kept:
                    out.append(kept)
        elif (kept := _rest_of(value, below)) is not _GONE:
            out.append(kept)
    return out


def _rest_of(value: Any, below: Trie | None) -> Any:
    """`value` without what is recorded below it, pruned; _GONE when nothing is left of it."""
    if below is LEAF:
        return _GONE
    kind = type(value)
    if kind is dict or kind is list:
        if not value:
            return _GONE
        if below:
            kept = _rest_object(value, below) if kind is dict else _rest_list(value, below)
        else:
            kept = _shared_object(value) if kind is dict else _shared_items(value)
        return kept if kept else _GONE
    if value is None or value == "":
        return _GONE
    if below and isinstance(value, dict | list):  # a subclass (JSON decoders give none): rebuilt as before
        kept = _rest_object(_plain(value), below) if isinstance(value, dict) else _rest_list(value, below)
        return kept if kept else _GONE
    return value


def _plain(doc: dict[Any, Any]) -> dict[Any, Any]:
    """A dict subclass as the plain dict of what its items() give (JSON decoders give none)."""
    return dict(doc.items())
