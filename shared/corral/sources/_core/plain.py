"""Reading a vendor finding as plain dicts, recording what is mapped as `Fields` does.

A finding is read once, field by field, on the ingest hot path: a view object per vendor object
and a method call per field cost more than the mapping itself. So the readers here take a
`Node`, the pair (object, its node of the mapped-paths trie) that a `Fields` view wraps, and
record into that trie exactly what the `Fields` method of the same name would: `unmapped` (the
document minus the recorded paths, from `Fields.rest()`) is the same either way. The hottest
readers repeat these few lines inline rather than calling them.

A `Node` of an object the finding does not have is `MISSING`: nothing can be read from its empty
object, so nothing is ever recorded into its (shared) trie node.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

from corral.errors import MalformedEventError
from corral.sources._core.reader import _LEAF, Fields, Trie
from corral.sources._core.times import MAX_MS, MIN_MS, epoch_ms

LEAF: Final = _LEAF
"""The trie's mark of a value mapped as a whole."""

Node = tuple[dict[str, Any], Trie]
ABSENT: Final[dict[str, Any]] = {}  # the object of a missing one; never written
MISSING: Final[Node] = (ABSENT, {})
_NUMBERS: Final = (int, float)
_from_iso: Final = datetime.fromisoformat


def sub(node: Node, key: str) -> Node:
    """The node of the object at `key` (`Fields.at`); MISSING when it is not an object."""
    doc, taken = node
    value = doc.get(key)
    if not isinstance(value, dict):
        return MISSING
    child = taken.get(key)
    if child is None:
        child = taken[key] = {}
    elif child is LEAF:
        child = {}  # mapped as a whole already: what is recorded below it changes nothing
    return value, child


def subs(node: Node, key: str, limit: int = 1000) -> list[Node]:
    """The nodes of the objects in the list at `key`, among its first `limit` items (`Fields.objects`)."""
    value = node[0].get(key)
    if not isinstance(value, list):
        return []
    taken = child_trie(node[1], key)
    found = []
    for i, item in enumerate(value[:limit]):
        if isinstance(item, dict):
            child = taken.get(i)
            if child is None:
                child = taken[i] = {}
            elif child is LEAF:
                child = {}
            found.append((item, child))
    return found


def child_trie(taken: Trie, key: str | int) -> Trie:
    """The trie node below `key`, created when missing; a detached one below a mapped value."""
    child = taken.get(key)
    if child is None:
        child = taken[key] = {}
    elif child is LEAF:
        return {}
    return child


def view(node: Node) -> Fields:
    """A `Fields` view recording into the same trie, for the rarely taken paths."""
    return Fields(*node)


def text(node: Node, key: str) -> str | None:
    """A non-empty string at `key`, recorded (`Fields.text`)."""
    value = node[0].get(key)
    if isinstance(value, str) and value:
        node[1][key] = LEAF
        return value
    return None


def peek(node: Node, key: str) -> str | None:
    """A non-empty string at `key`, not recorded (`Fields.peek_text`)."""
    value = node[0].get(key)
    return value if isinstance(value, str) and value else None


def integer(node: Node, key: str) -> int | None:
    """An integer at `key`, recorded (`Fields.integer`)."""
    value = node[0].get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        node[1][key] = LEAF
        return value
    return None


def texts(node: Node, key: str, limit: int) -> list[str]:
    """The non-empty strings in the list at `key`, each recorded (`Fields.texts`)."""
    value = node[0].get(key)
    if not isinstance(value, list):
        return []
    taken = child_trie(node[1], key)
    found = []
    for i, item in enumerate(value[:limit]):
        if isinstance(item, str) and item:
            taken[i] = LEAF
            found.append(item)
    return found


def texts_at(node: Node, keys: tuple[str, ...]) -> dict[str, str]:
    """The non-empty strings at `keys`, by key, each recorded (a `text` per key in one loop)."""
    doc, taken = node
    found = {}
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            found[key] = value
    return found


def number(value: object) -> float | None:
    """`value` as a float when it is a finite JSON number."""
    if isinstance(value, _NUMBERS) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def time(node: Node, key: str, name: str) -> int | None:
    """Epoch ms at `key`, recorded; None when absent; raises for a bad value (`Fields.time`)."""
    value = node[0].get(key)
    if value is None or value == "":
        return None
    millis = _iso_ms(value) if type(value) is str else None
    if millis is None:
        millis = epoch_ms(value, name)
    node[1][key] = LEAF
    return millis


def optional_time(node: Node, key: str, name: str | None = None) -> int | None:
    """Like `time`, but None (and not recorded) for a bad value (`Fields.optional_time`)."""
    value = node[0].get(key)
    if value is None or value == "":
        return None
    millis = _iso_ms(value) if type(value) is str else None
    if millis is None:
        try:
            millis = epoch_ms(value, name or key)
        except MalformedEventError:
            return None
    node[1][key] = LEAF
    return millis


def _iso_ms(value: str) -> int | None:
    """`epoch_ms` of the ISO 8601 times AWS sends (with an offset, in range); None for any other."""
    try:
        parsed = _from_iso(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        millis = int(parsed.timestamp() * 1000)  # as `epoch_ms` computes it, to the same float rounding
    except (OverflowError, ValueError):
        return None
    return millis if MIN_MS <= millis < MAX_MS else None
