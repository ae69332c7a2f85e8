"""Read a vendor document by path, type-checked, remembering what was mapped.

Every normalizer must keep the vendor fields it does not map (in OCSF `unmapped`). Reading
through `Fields` records each path that was mapped, so `rest()` is exactly the document minus
those fields: nothing is dropped by accident, and a field of an unexpected type is never
"consumed" (it stays in `unmapped`, as sent).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any, Final

Key = str | int
Path = tuple[Key, ...]

_LEAF: Final = object()


class Fields:
    """A read-only view of one JSON document that records the paths read as mapped."""

    __slots__ = ("_doc", "_taken")

    def __init__(self, doc: Mapping[str, Any]) -> None:
        """Wrap `doc` (not copied; never modified)."""
        self._doc = doc
        self._taken: list[Path] = []

    @property
    def doc(self) -> Mapping[str, Any]:
        """The wrapped document."""
        return self._doc

    def raw(self, *path: Key) -> Any:
        """Return the value at `path`, or None when any step is missing or of another type."""
        node: Any = self._doc
        for key in path:
            if isinstance(key, int):
                if not isinstance(node, list) or not 0 <= key < len(node):
                    return None
                node = node[key]
            elif isinstance(node, Mapping):
                node = node.get(key)
            else:
                return None
        return node

    def mark(self, *path: Key) -> None:
        """Record `path` as mapped."""
        self._taken.append(path)

    def take(self, *path: Key) -> Any:
        """Return the value at `path` and record it as mapped (when present)."""
        value = self.raw(*path)
        if value is not None:
            self.mark(*path)
        return value

    def text(self, *path: Key) -> str | None:
        """Return a non-empty string at `path` (recorded), else None (not recorded)."""
        value = self.raw(*path)
        if isinstance(value, str) and value:
            self.mark(*path)
            return value
        return None

    def peek_text(self, *path: Key) -> str | None:
        """Like `text`, without recording (for values that only steer the mapping)."""
        value = self.raw(*path)
        return value if isinstance(value, str) and value else None

    def integer(self, *path: Key) -> int | None:
        """Return an integer at `path` (recorded), else None."""
        value = self.raw(*path)
        if isinstance(value, int) and not isinstance(value, bool):
            self.mark(*path)
            return value
        return None

    def number(self, *path: Key) -> float | None:
        """Return a finite number at `path` (recorded), else None."""
        value = self.raw(*path)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            self.mark(*path)
            return float(value)
        return None

    def flag(self, *path: Key) -> bool | None:
        """Return a boolean at `path` (recorded), else None."""
        value = self.raw(*path)
        if isinstance(value, bool):
            self.mark(*path)
            return value
        return None

    def mapping(self, *path: Key) -> Mapping[str, Any] | None:
        """Return the object at `path` (not recorded), else None."""
        value = self.raw(*path)
        return value if isinstance(value, Mapping) else None

    def objects(self, *path: Key, limit: int = 1000) -> list[int]:
        """Return the indices of the objects in the list at `path` (at most `limit`)."""
        value = self.raw(*path)
        if not isinstance(value, list):
            return []
        return [i for i, item in enumerate(value[:limit]) if isinstance(item, Mapping)]

    def texts(self, *path: Key, limit: int = 1000) -> list[str]:
        """Return the non-empty strings in the list at `path`, each recorded."""
        value = self.raw(*path)
        if not isinstance(value, list):
            return []
        found = []
        for i, item in enumerate(value[:limit]):
            if isinstance(item, str) and item:
                self.mark(*path, i)
                found.append(item)
        return found

    def ip(self, *path: Key) -> str | None:
        """Return a valid IPv4/IPv6 address at `path` (recorded), else None."""
        value = self.raw(*path)
        if not isinstance(value, str) or len(value) > 45:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return None
        self.mark(*path)
        return value

    def ips(self, *path: Key, limit: int = 100) -> list[str]:
        """Return the valid IP addresses in the list at `path`, each recorded."""
        value = self.raw(*path)
        if not isinstance(value, list):
            return []
        return [ip for i in range(min(len(value), limit)) if (ip := self.ip(*path, i))]

    def port(self, *path: Key) -> int | None:
        """Return a TCP/UDP port number at `path` (recorded), else None."""
        value = self.raw(*path)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
            self.mark(*path)
            return value
        return None

    def rest(self) -> dict[str, Any]:
        """Return the document without the recorded paths (containers left behind stay)."""
        return dict(_strip(self._doc, _trie(self._taken)))


def _trie(paths: list[Path]) -> dict[Any, Any]:
    root: dict[Any, Any] = {}
    for path in paths:
        if not path:
            continue
        node = root
        for key in path[:-1]:
            child = node.get(key)
            if child is _LEAF:
                break
            if child is None:
                child = node[key] = {}
            node = child
        else:
            node[path[-1]] = _LEAF
    return root


def _strip(value: Any, trie: Mapping[Any, Any]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: (_strip(item, trie[key]) if key in trie else item)
            for key, item in value.items()
            if trie.get(key) is not _LEAF
        }
    if isinstance(value, list):
        return [
            (_strip(item, trie[i]) if i in trie else item) for i, item in enumerate(value) if trie.get(i) is not _LEAF
        ]
    return value
