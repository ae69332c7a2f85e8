"""Case-insensitive, type-tolerant reading of Defender documents.

Defender sends one resource in several casings: alerts and sub-assessments PascalCase (with .NET
`$type` discriminators), assessments camelCase, Resource Graph rows lowercase `type`, and the REST
assessment rows mix PascalCase `resourceDetails` into camelCase. Every read goes through `View`,
which matches keys case-insensitively and never raises on a value of the wrong JSON type: a
wrong-typed field reads as absent, so a malformed document degrades instead of crashing.

This runs for every record, so a view indexes its object's keys only when first read, each
object at most once (`View.view` keeps the views of the objects it handed out), and objects are
tested with `isinstance(x, dict)`: documents come from a JSON decoder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

_CVE: Final = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NO_KEYS: Final[dict[str, Any]] = {}

Tree = dict[str, "Tree | bool"]
"""Lower-cased key paths as a tree: True marks a key consumed whole."""


def _index(raw: dict[Any, Any]) -> tuple[dict[str, str], bool]:
    """Map each lower-cased key to its spelling in `raw` (the first spelling wins).

    Also say whether the keys are unique case-insensitively (and all strings).
    """
    try:
        # Reversed, so that a later duplicate spelling is overwritten by the first one.
        found = {key.lower(): key for key in reversed(raw)}
    except AttributeError:  # a key that is not a string (never from JSON): skip such keys
        found = {}
        for key in raw:
            if isinstance(key, str):
                found.setdefault(key.lower(), key)
        return found, False
    return found, len(found) == len(raw)


class View:
    """A read-only, case-insensitive view of one JSON object (empty for anything else)."""

    __slots__ = ("_children", "_keys", "_unique", "raw")

    def __init__(self, raw: object) -> None:
        self.raw: dict[Any, Any] = raw if isinstance(raw, dict) else _NO_KEYS
        self._keys: dict[str, str] | None = None if self.raw else _NO_KEYS
        self._unique = True
        self._children: dict[int, View] | None = None

    def __bool__(self) -> bool:
        return bool(self.raw)

    def _index(self) -> dict[str, str]:
        keys = self._keys
        if keys is None:
            keys, self._unique = _index(self.raw)
            self._keys = keys
        return keys

    def unique(self) -> bool:
        """True when no two keys differ only in case."""
        self._index()
        return self._unique

    def key(self, name: str) -> str | None:
        """Return the key as spelled in the document, or None when absent."""
        keys = self._keys or self._index()
        return keys.get(name.lower())

    def get(self, *names: str) -> Any:
        """Return the first value among `names` that is present and not null."""
        keys = self._keys or self._index()
        for name in names:
            key = keys.get(name.lower())
            if key is not None:
                value = self.raw[key]
                if value is not None:
                    return value
        return None

    def text(self, *names: str) -> str | None:
        """Return the first non-empty string among `names`."""
        keys = self._keys or self._index()
        for name in names:
            key = keys.get(name.lower())
            if key is not None:
                value = self.raw[key]
                if isinstance(value, str) and value:
                    return value
        return None

    def child(self, value: dict[Any, Any]) -> View:
        """Return the view of `value`, an object held by this one (made once, then kept)."""
        children = self._children
        if children is None:
            children = self._children = {}
        found = children.get(id(value))
        if found is None:
            found = children[id(value)] = View(value)
        return found

    def view(self, *names: str) -> View:
        """Return the first object among `names` as a View (empty when none is an object)."""
        keys = self._keys or self._index()
        for name in names:
            key = keys.get(name.lower())
            if key is not None:
                value = self.raw[key]
                if isinstance(value, dict):
                    return self.child(value)
        return EMPTY

    def views(self, *names: str) -> list[View]:
        """Return the objects of the first list among `names` (non-objects skipped)."""
        return [View(item) for item in self.list(*names) if isinstance(item, dict)]

    def list(self, *names: str) -> list[Any]:
        """Return the first list among `names`; a JSON string holding a list is decoded."""
        for name in names:
            value = self.get(name)
            if isinstance(value, list):
                return value
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


EMPTY: Final = View(None)
"""The view of an absent object."""


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


def consumed(*paths: str) -> Tree:
    """Return the dotted, case-insensitive key paths a normalizer maps, as a tree for `without`.

    Built once per normalizer, at import.
    """
    tree: Tree = {}
    for path in paths:
        node = tree
        parts = path.lower().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # the whole object is consumed already
                break
            node = child
        else:
            node[parts[-1]] = True
    return tree


def without(doc: View, tree: Tree) -> dict[str, Any]:
    """Return the document of `doc` minus the key paths of `tree` (see `consumed`).

    This is how every normalizer fills `unmapped`: the vendor document less what it mapped,
    so that a field nobody mapped is never dropped. Objects along a consumed path are copied,
    the rest is shared (the result is only ever serialised).
    """
    raw = doc.raw
    if not doc.unique():
        # Two spellings of one key (or a key that is not a string): walk every key.
        return _strip(raw, tree)
    out = dict(raw)
    for name, rule in tree.items():
        key = doc.key(name)
        if key is None:
            continue
        if rule is True:
            del out[key]
            continue
        value = raw[key]
        if isinstance(value, dict) and isinstance(rule, dict):
            rest = without(doc.child(value), rule)
            if rest:
                out[key] = rest
            else:
                del out[key]
    return out


def _strip(doc: dict[Any, Any], tree: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        rule = tree.get(key.lower()) if isinstance(key, str) else None
        if rule is True:
            continue
        if isinstance(rule, dict) and isinstance(value, dict):
            rest = _strip(value, rule)
            if rest:
                out[key] = rest
            continue
        out[key] = value
    return out
