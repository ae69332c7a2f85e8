"""Corral's own limits on the shape of what it keeps and sends, checked before anything serializes.

JSON libraries and databases each stop somewhere (orjson at 255 levels and 64-bit integers,
PostgreSQL's BIGINT, DynamoDB's numbers), and each says so differently, mid-batch. Checking once,
with limits well inside all of them, turns such a document into one dead letter with a reason that
names the place, instead of an exception from whichever layer met it first. Real vendor documents
are at most 16 levels deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

MAX_DOCUMENT_DEPTH: Final = 64
"""Levels of objects and arrays in one source document."""
MAX_FINDING_DEPTH: Final = 96
"""Levels in a normalized finding: the source document's leftovers sit a few levels down in `unmapped`."""
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
_SHOWN: Final = 6  # path steps named in a message
_ORJSON_LEVELS: Final = 254
"""The most levels of arrays and objects orjson serializes; one more is "Recursion limit reached"."""


def violation(value: object, max_depth: int = MAX_FINDING_DEPTH) -> str | None:
    """Return why `value` is outside Corral's limits (naming where), or None when it is within.

    Walks iteratively, so a document of any depth is checked without recursion.

    Example:
        >>> violation({"a": [1, 2**70]})
        'integer 1180591620717411303424 at a[1] is outside the 64-bit range'
        >>> violation([[[1]]], max_depth=2)
        'nested more than 2 levels deep at [0][0]'
    """
    # Every finding passes here on the hot path, and nearly all are within the limits: the first
    # walk carries no paths; only a document that breaks a limit is walked again to name the place.
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth >= max_depth:
                return _located(value, max_depth)
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | int))
        elif isinstance(current, Mapping):
            stack.extend((child, depth + 1) for child in current.values())
            if depth >= max_depth:
                return _located(value, max_depth)
        elif isinstance(current, int) and not isinstance(current, bool) and not INT_MIN <= current <= INT_MAX:
            return _located(value, max_depth)
    return None


class Encoder:
    """Serializes values to JSON, checking Corral's limits in the same pass.

    The store serializes every finding anyway; letting that one serialization check the limits
    spares the hot path a walk of the whole document in Python. orjson refuses integers beyond
    53 bits (`OPT_STRICT_INTEGER`) and more than 254 levels: the value is serialized inside enough
    arrays of padding that it may have no more than `max_depth` levels of its own. Only when
    orjson refuses does `violation` walk the value, to tell a real violation (named by its place)
    from an integer between 53 and 64 bits, which is within the limits and serialized again.

    One encoder per thread: the padding is reused for every value.
    """

    __slots__ = ("_max_depth", "_outer", "_padding", "_slot")

    def __init__(self, max_depth: int = MAX_FINDING_DEPTH) -> None:
        self._max_depth = max_depth
        self._padding = _ORJSON_LEVELS - max_depth
        self._slot: list[object] = [None]
        outer: list[object] = self._slot
        for _ in range(self._padding - 1):
            outer = [outer]
        self._outer = outer

    def encode(self, value: object) -> tuple[bytes | None, str | None]:
        """Return (the JSON of `value`, None) within the limits, (None, why) beyond them.

        (None, None) when orjson cannot serialize `value` for another reason (a type it does
        not know): whoever stores it meets that error as before.

        Example:
            >>> Encoder().encode({"a": [1, 2**60]})
            (b'{"a":[1,1152921504606846976]}', None)
            >>> Encoder(max_depth=2).encode([[[1]]])
            (None, 'nested more than 2 levels deep at [0][0]')
        """
        self._slot[0] = value
        try:
            padded = orjson.dumps(self._outer, option=orjson.OPT_STRICT_INTEGER)
        except orjson.JSONEncodeError:
            reason = violation(value, self._max_depth)
            if reason is not None:
                return None, reason
            try:
                return orjson.dumps(value), None
            except orjson.JSONEncodeError:
                return None, None
        finally:
            self._slot[0] = None
        return padded[self._padding : -self._padding], None


def _located(value: object, max_depth: int) -> str | None:
    """The slow walk of `violation`, keeping the path to say where the limit is broken."""
    stack: list[tuple[object, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while stack:
        current, depth, path = stack.pop()
        if isinstance(current, Mapping | list):
            if depth >= max_depth:
                return f"nested more than {max_depth} levels deep at {where(path)}"
            children = current.items() if isinstance(current, Mapping) else enumerate(current)
            stack.extend((child, depth + 1, (*path, key)) for key, child in children)
        elif isinstance(current, int) and not isinstance(current, bool) and not INT_MIN <= current <= INT_MAX:
            shown = str(current) if len(str(current)) <= 40 else f"{str(current)[:20]}…({len(str(current))} digits)"
            return f"integer {shown} at {where(path)} is outside the 64-bit range"
    return None


def where(path: tuple[str | int, ...]) -> str:
    """A path as `a.b[0]`, its first steps only."""
    text = ""
    for step in path[:_SHOWN]:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return (text + ("…" if len(path) > _SHOWN else "")) or "the top level"


def encode(value: object) -> bytes:
    """Serialize a parsed value for a dead letter, whatever its shape.

    Within the limits this is plain JSON; beyond them, the levels past the limit and integers
    out of range are written as strings, so that the letter is kept rather than lost. Text that
    is not valid Unicode (a lone surrogate, which a JSON parser other than orjson gives for
    `"\\ud800"`) is written with JSON's own escapes, as it was sent.

    Example:
        >>> encode({"note": "\\ud800"})
        b'{"note": "\\\\ud800"}'
    """
    try:
        return orjson.dumps(value, default=str)
    except (orjson.JSONEncodeError, RecursionError, TypeError, ValueError):
        pruned = _pruned(value)
    try:
        return orjson.dumps(pruned, default=str)
    except TypeError:  # orjson refuses lone surrogates; the standard library escapes them
        import json  # noqa: PLC0415 - only for such input

        return json.dumps(pruned, default=str).encode()


def _pruned(value: object) -> Any:
    """A copy of `value` cut at MAX_DOCUMENT_DEPTH, with out-of-range integers as strings (iterative)."""
    root: list[Any] = [None]
    stack: list[tuple[object, int, list[Any] | dict[str, Any], int | str]] = [(value, 0, root, 0)]
    while stack:
        current, depth, parent, slot = stack.pop()
        if isinstance(current, Mapping | list) and depth >= MAX_DOCUMENT_DEPTH:
            copy: Any = "…(nested too deeply)"
        elif isinstance(current, Mapping):
            copy = {}
            stack.extend(reversed([(child, depth + 1, copy, str(key)) for key, child in current.items()]))
        elif isinstance(current, list):
            copy = [None] * len(current)
            stack.extend((child, depth + 1, copy, i) for i, child in enumerate(current))
        elif isinstance(current, int) and not isinstance(current, bool) and not INT_MIN <= current <= INT_MAX:
            copy = str(current)
        else:
            copy = current
        parent[slot] = copy  # type: ignore[index]
    return root[0]
