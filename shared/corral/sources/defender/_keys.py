"""Case-insensitive, type-tolerant reading of Defender documents.

Defender sends one resource in several casings: alerts and sub-assessments PascalCase (with .NET
`$type` discriminators), assessments camelCase, Resource Graph rows lowercase `type`, and the REST
assessment rows mix PascalCase `resourceDetails` into camelCase. Every read goes through `View`,
which matches keys case-insensitively and never raises on a value of the wrong JSON type: a
wrong-typed field reads as absent, so a malformed document degrades instead of crashing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

_CVE: Final = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class View:
    """A read-only, case-insensitive view of one JSON object (empty for anything else)."""

    __slots__ = ("_keys", "raw")

    def __init__(self, raw: object) -> None:
        self.raw: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        keys: dict[str, str] = {}
        for key in self.raw:
            # The first spelling wins: a document carrying both `Id` and `id` is odd, and
            # reading the first one keeps the choice deterministic.
            if isinstance(key, str):
                keys.setdefault(key.lower(), key)
        self._keys = keys

    def __bool__(self) -> bool:
        return bool(self.raw)

    def key(self, name: str) -> str | None:
        """Return the key as spelled in the document, or None when absent."""
        return self._keys.get(name.lower())

    def get(self, *names: str) -> Any:
        """Return the first value among `names` that is present and not null."""
        for name in names:
            key = self._keys.get(name.lower())
            if key is not None and self.raw[key] is not None:
                return self.raw[key]
        return None

    def text(self, *names: str) -> str | None:
        """Return the first non-empty string among `names`."""
        for name in names:
            value = self.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    def view(self, *names: str) -> View:
        """Return the first object among `names` as a View (empty when none is an object)."""
        for name in names:
            value = self.get(name)
            if isinstance(value, Mapping):
                return View(value)
        return View(None)

    def views(self, *names: str) -> list[View]:
        """Return the objects of the first list among `names` (non-objects skipped)."""
        return [View(item) for item in self.list(*names) if isinstance(item, Mapping)]

    def list(self, *names: str) -> list[Any]:
        """Return the first list among `names`; a JSON string holding a list is decoded."""
        for name in names:
            value = self.get(name)
            if isinstance(value, str):
                value = decode_json(value)
            if isinstance(value, list):
                return value
        return []

    def bool(self, *names: str) -> bool | None:
        """Return the first boolean among `names`; "true"/"false" strings are accepted."""
        for name in names:
            value = self.get(name)
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
        return None

    def number(self, *names: str) -> float | None:
        """Return the first finite number among `names`; numeric strings are accepted."""
        for name in names:
            value = self.get(name)
            if isinstance(value, bool):
                continue
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    continue
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
        return None

    def items(self) -> Iterator[tuple[str, Any]]:
        """Yield (key, value) pairs as sent."""
        for key, value in self.raw.items():
            if isinstance(key, str):
                yield key, value


def decode_json(text: str) -> Any:
    """Decode a JSON string Defender embedded in a field; None when it is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def texts(values: Iterable[Any]) -> list[str]:
    """Return the non-empty strings of `values`, in order."""
    return [v for v in values if isinstance(v, str) and v]


def cve_ids(text: str | None) -> list[str]:
    """Return the CVE ids named in `text`, upper-cased, in order and without repeats."""
    if not text:
        return []
    return list(dict.fromkeys(match.upper() for match in _CVE.findall(text)))


def is_uuid(text: str | None) -> bool:
    """True when `text` is a canonical UUID (what OCSF `uuid_t` accepts)."""
    return bool(text and _UUID.match(text))


def without(doc: Mapping[str, Any], consumed: Iterable[str]) -> dict[str, Any]:
    """Return `doc` minus the dotted, case-insensitive key paths in `consumed`.

    This is how every normalizer fills `unmapped`: the vendor document less what it mapped,
    so that a field nobody mapped is never dropped. Objects along a consumed path are copied,
    the rest is shared (the result is only ever serialised).
    """
    tree: dict[str, Any] = {}
    for path in consumed:
        node = tree
        parts = path.lower().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is True:
                break
            node = child
        else:
            node[parts[-1]] = True
    return _strip(doc, tree)


def _strip(doc: Mapping[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        rule = tree.get(key.lower()) if isinstance(key, str) else None
        if rule is True:
            continue
        if isinstance(rule, dict) and isinstance(value, Mapping):
            rest = _strip(value, rule)
            if rest:
                out[key] = rest
            continue
        out[key] = value
    return out
