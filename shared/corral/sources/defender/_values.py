"""Defender's tolerant reads: lists sent as JSON text, booleans as "true", numbers as strings.

Values come from the normalizers' field maps (`FieldMap`: case-insensitive, nothing recorded):
what a normalizer maps is its fixed tree of `consumed` paths, applied once at the end, so that
`unmapped` is the record less exactly those paths, whatever their values were.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from corral.sources._core import times
from corral.sources._core.folded import MappedTree

_NUMBERS: Final = (int, float)  # a tuple: `int | float` would be built on every test
_from_iso: Final = datetime.fromisoformat


def consumed(*paths: str) -> MappedTree:
    """Return the dotted key paths a normalizer maps as a tree (built at import; see `MappedTree`).

    Keys are lower-cased: the tree is applied case-insensitively.
    """
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = path.lower().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is True:  # the whole object is consumed already
                break
            node = child
        else:
            node[parts[-1]] = True
    return MappedTree(tree)


def decode_json(text: str) -> Any:
    """Decode a JSON string Defender embedded in a field; None when it is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def time_of(value: Any, name: str) -> int | None:
    """Return the time `value` in epoch ms; None when absent (a malformed or implausible one raises).

    Defender sends ISO 8601 text with `Z` or an offset: that case is `times.epoch_ms` inlined
    (the same parse and float rounding), two calls less per time read; anything else, naive
    times and out-of-range ones included, goes to `epoch_ms` itself.
    """
    if value.__class__ is str and value:
        try:
            parsed = _from_iso(value)
        except ValueError:
            return times.epoch_ms(value, name)
        if parsed.tzinfo is not None:
            try:
                millis = int(parsed.timestamp() * 1000)
            except (OverflowError, ValueError):
                return times.epoch_ms(value, name)
            if times.MIN_MS <= millis < times.MAX_MS:
                return millis
        return times.epoch_ms(value, name)
    if value is None or value == "":
        return None
    return times.epoch_ms(value, name)


def listed_value(value: object) -> list[Any]:
    """Return `value` when it is a list, or the list a JSON string holds; else []."""
    if value is None:
        return []
    if value.__class__ is list or isinstance(value, list):
        return value
    if isinstance(value, str):
        value = decode_json(value)
        if isinstance(value, list):
            return value
    return []


def boolean_value(value: object) -> bool | None:
    """Return `value` as a boolean ("true"/"false" strings accepted); None for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def number_value(value: object) -> float | None:
    """Return `value` as a finite number (numeric strings accepted); None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, _NUMBERS) and math.isfinite(value):
        return float(value)
    return None


def texts(values: Iterable[Any]) -> list[str]:
    """Return the non-empty strings of `values`, in order."""
    return [v for v in values if isinstance(v, str) and v]
