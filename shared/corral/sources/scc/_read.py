"""Type-safe readers for SCC documents, whose every field may be absent or of another JSON type.

SCC findings reach us as protobuf JSON (camelCase), but some published renderings use the proto
field names (snake_case, e.g. `primary_tactic`, `project_display_name`), and protobuf `int64`
values arrive as strings. These readers accept both spellings and never raise.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from corral.sources._core import times

_CAMEL_HUMP: Final = re.compile(r"(?<!^)(?=[A-Z])")
# OCSF times are epoch milliseconds; the semantic checks accept 2001-09-09 .. 2286-11-20. An
# unset protobuf Timestamp renders as 1970-01-01T00:00:00Z, which must read as "no time".
_ABSENT: Final = object()


class _Spellings(dict[str, str]):
    """camelCase key -> its proto field name, worked out once per key (the readers run per field)."""

    def __missing__(self, key: str) -> str:
        name = self[key] = _CAMEL_HUMP.sub("_", key).lower()
        return name


_SNAKE: Final = _Spellings()


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `obj` without None, "", [] and {} values, one level deep (OCSF has no nulls).

    For objects built of parts that are already compact: cheaper than a deep `prune`. Of the JSON
    values, only those four are false and unequal to 0 (which keeps 0, 0.0 and False).
    """
    return {k: v for k, v in obj.items() if v or v == 0}


def snake(key: str) -> str:
    """Return the proto field name of a protobuf-JSON key: `projectDisplayName` -> `project_display_name`."""
    return _SNAKE[key]


# The readers below test `isinstance(x, dict)`, not `Mapping`: documents come from a JSON decoder,
# and the ABC check costs more than the read itself.


def field(obj: object, key: str) -> Any:
    """Return `obj[key]` under its camelCase or snake_case spelling, or None."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key, _ABSENT)
    return obj.get(_SNAKE[key]) if value is _ABSENT else value


def text(obj: object, key: str) -> str | None:
    """Return a non-empty string field, or None."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key, _ABSENT)
    if value is _ABSENT:
        value = obj.get(_SNAKE[key])
    return value if isinstance(value, str) and value else None


def mapping(obj: object, key: str) -> dict[str, Any]:
    """Return an object field, or an empty mapping."""
    if not isinstance(obj, dict):
        return {}
    value = obj.get(key, _ABSENT)
    if value is _ABSENT:
        value = obj.get(_SNAKE[key])
    return value if isinstance(value, dict) else {}


def mappings(obj: object, key: str) -> list[dict[str, Any]]:
    """Return the objects of an array field, skipping anything that is not an object."""
    value = field(obj, key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def texts(obj: object, key: str) -> list[str]:
    """Return the non-empty strings of an array field."""
    value = field(obj, key)
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def integer(value: object) -> int | None:
    """Return an integer from a JSON number or a protobuf int64 string, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def number(value: object) -> float | None:
    """Return a finite JSON number as float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def millis(value: object) -> int | None:
    """Return epoch milliseconds for a usable SCC timestamp, or None for absent, unset or invalid ones."""
    if not isinstance(value, str) or not value:
        return None
    return times.optional_ms(value)


def labels(obj: object, key: str = "labels") -> list[str]:
    """Return SCC `Label` objects ({name, value}) as OCSF `name=value` strings."""
    found = []
    for label in mappings(obj, key):
        name = text(label, "name")
        if name:
            value = field(label, "value")
            found.append(f"{name}={value}" if isinstance(value, str) else name)
    return found


def last_segment(path: str | None) -> str | None:
    """Return the last path segment of a resource name (`//x/projects/p/instances/i` -> `i`)."""
    if not path:
        return None
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    return segment or None
