"""The one reader of vendor documents: object by object, type-checked, remembering what was mapped.

Every normalizer must keep the vendor fields it does not map (in OCSF `unmapped`). Reading
through `Fields` records each key that was mapped, so `rest()` is exactly the document minus
those fields: nothing is dropped by accident, and a field of an unexpected type is never
"consumed" (it stays in `unmapped`, as sent).

A `Fields` is a view of one JSON object; `at()` and `objects()` give views of the objects
inside it, which record into the same set of mapped paths (kept as a trie: nested dicts keyed
like the document, with `_LEAF` where a whole value was mapped). Reads are plain dict lookups,
since normalization runs once per finding and JSON decoders give dicts and lists.

`Fields.folded(doc)` reads keys case-insensitively, for vendors that send one field in several
casings. It resolves a requested key to the document's own spelling (the first one sent) through
a lower-cased index of the object's keys, built once per object and only when first read, and
records that spelling: `rest()` keeps the vendor's casing, and nothing is copied or lower-cased
for the objects a normalizer never reads. The case-sensitive views pay nothing for this mode.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any, Final

from corral.errors import MalformedEventError
from corral.sources._core.rest import LEAF, pruned_rest, rest_as_sent
from corral.sources._core.times import epoch_ms

Key = str | int
Trie = dict[Key, Any]

_LEAF: Final = LEAF  # recorded where a whole value is mapped (the name `folded` uses)

_ABSENT: Final[dict[str, Any]] = {}  # the document of a view of a missing object; never written
_MAX_IP_TEXT: Final = 45

# An IPv4 address as `ipaddress` accepts it (decimal octets, no leading zeros); anything else is
# left to `ipaddress` itself.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


class Fields:
    """A read-only view of one object of a JSON document that records the keys read as mapped."""

    __slots__ = ("_doc", "_taken")

    def __init__(self, doc: dict[str, Any], taken: Trie) -> None:
        """Wrap `doc` (not copied; never modified), recording into `taken` ({} for a whole document)."""
        self._doc = doc
        self._taken = taken

    @property
    def doc(self) -> dict[str, Any]:
        """The wrapped object ({} for a missing one)."""
        return self._doc

    @property
    def exists(self) -> bool:
        """False for the view of an object the document does not have."""
        return self._doc is not _ABSENT

    def at(self, *path: str) -> Fields:
        """Return the view of the object at `path` (a view of nothing when it is not an object)."""
        doc: Any = self._doc
        taken = self._taken
        for key in path:
            doc = doc.get(key)
            if not isinstance(doc, dict):
                return Fields(_ABSENT, {})
            child = taken.get(key)  # _child(taken, key), inlined: views are made often
            if child is None:
                child = taken[key] = {}
            elif child is _LEAF:
                child = {}
            taken = child
        return Fields(doc, taken)

    def objects(self, key: str, limit: int = 1000) -> list[Fields]:
        """Return views of the objects in the list at `key` (among its first `limit` items)."""
        value = self._doc.get(key)
        if not isinstance(value, list):
            return []
        taken = _child(self._taken, key)
        return [Fields(item, _child(taken, i)) for i, item in enumerate(value[:limit]) if isinstance(item, dict)]

    def raw(self, *path: str) -> Any:
        """Return the value at `path` (keys of nested objects), or None; not recorded."""
        node: Any = self._doc
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def mark(self, *path: Key) -> None:
        """Record the value at `path` as mapped."""
        taken = self._taken
        for key in path[:-1]:
            child = taken.get(key)
            if child is _LEAF:
                return  # already mapped as a whole
            if child is None:
                child = taken[key] = {}
            taken = child
        taken[path[-1]] = _LEAF

    def take(self, key: str) -> Any:
        """Return the value at `key` and record it as mapped (when present)."""
        value = self._doc.get(key)
        if value is not None:
            self._taken[key] = _LEAF
        return value

    def text(self, key: str) -> str | None:
        """Return a non-empty string at `key` (recorded), else None (not recorded)."""
        value = self._doc.get(key)
        if isinstance(value, str) and value:
            self._taken[key] = _LEAF
            return value
        return None

    def peek_text(self, *path: str) -> str | None:
        """Like `text` (at a path of keys), without recording: for values that only steer the mapping."""
        value = self._doc.get(path[0]) if len(path) == 1 else self.raw(*path)
        return value if isinstance(value, str) and value else None

    def integer(self, key: str) -> int | None:
        """Return an integer at `key` (recorded), else None."""
        value = self._doc.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            self._taken[key] = _LEAF
            return value
        return None

    def number(self, key: str) -> float | None:
        """Return a finite number at `key` (recorded), else None."""
        value = self._doc.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            self._taken[key] = _LEAF
            return float(value)
        return None

    def flag(self, key: str) -> bool | None:
        """Return a boolean at `key` (recorded), else None."""
        value = self._doc.get(key)
        if isinstance(value, bool):
            self._taken[key] = _LEAF
            return value
        return None

    def texts(self, key: str, limit: int = 1000) -> list[str]:
        """Return the non-empty strings in the list at `key`, each recorded."""
        value = self._doc.get(key)
        if not isinstance(value, list):
            return []
        found = []
        taken = _child(self._taken, key)
        for i, item in enumerate(value[:limit]):
            if isinstance(item, str) and item:
                taken[i] = _LEAF
                found.append(item)
        return found

    def ip(self, key: str) -> str | None:
        """Return a valid IPv4/IPv6 address at `key` (recorded), else None."""
        value = self._doc.get(key)
        if not _is_ip(value):
            return None
        self._taken[key] = _LEAF
        return value  # a str: _is_ip checked it

    def ips(self, key: str, limit: int = 100) -> list[str]:
        """Return the valid IP addresses in the list at `key`, each recorded."""
        value = self._doc.get(key)
        if not isinstance(value, list):
            return []
        found = []
        taken = _child(self._taken, key)
        for i, item in enumerate(value[:limit]):
            if _is_ip(item):
                taken[i] = _LEAF
                found.append(item)
        return found

    def port(self, key: str) -> int | None:
        """Return a TCP/UDP port number at `key` (recorded), else None."""
        value = self._doc.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
            self._taken[key] = _LEAF
            return value
        return None

    def time(self, key: str, name: str | None = None) -> int | None:
        """Return the time at `key` in epoch ms (recorded); None when absent.

        Raises:
            MalformedEventError: the value is not a time or not a plausible one (see `times`).
        """
        value = self._doc.get(key)
        if value is None or value == "":
            return None
        millis = epoch_ms(value, name or key)
        self._taken[key] = _LEAF
        return millis

    def optional_time(self, key: str, name: str | None = None) -> int | None:
        """Like `time`, but None (and not recorded, so kept in `unmapped` as sent) for a bad value."""
        value = self._doc.get(key)
        if value is None or value == "":
            return None
        try:
            millis = epoch_ms(value, name or key)
        except MalformedEventError:
            return None
        self._taken[key] = _LEAF
        return millis

    def has(self, key: str) -> bool:
        """True when the object has `key` (whatever its value)."""
        return self._spelling(key) in self._doc

    def get(self, name: str, *more: str) -> Any:
        """Return the first value among the keys `name, *more` that is present and not null; not recorded."""
        doc = self._doc
        for key in (name, *more):
            value = doc.get(key)
            if value is not None:
                return value
        return None

    def first_text(self, name: str, *more: str) -> str | None:
        """Return the first non-empty string among the keys `name, *more`; not recorded."""
        doc = self._doc
        for key in (name, *more):
            value = doc.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def view(self, name: str, *more: str) -> Fields:
        """Return the view of the first object among the keys `name, *more` (a view of nothing if none is)."""
        for key in (name, *more):
            value = self._doc.get(key)
            if isinstance(value, dict):
                return type(self)(value, _child(self._taken, key))
        return type(self)(_ABSENT, {})

    def mark_tree(self, tree: dict[str, Any]) -> None:
        """Record every path of `tree` (as `mark` would each), for a normalizer's fixed set of mapped paths.

        `tree` is nested dicts keyed like the document (lower-cased, for a folded view), with True
        where a whole value is mapped; a path that is not in the document records nothing, and an
        empty object with paths below it is recorded as a whole (nothing in it is left unmapped).
        """
        self._mark_tree(tree)

    def rest(self, *, as_sent: bool = False) -> dict[str, Any]:
        """Return the object without the recorded paths, pruned as `ocsf.prune` does.

        With `as_sent`, nothing else is dropped: nulls and empty values stay as the vendor sent
        them, and only an object left empty by what was recorded in it goes.
        """
        return rest_as_sent(self._doc, self._taken) if as_sent else pruned_rest(self._doc, self._taken)

    @staticmethod
    def folded(doc: dict[str, Any], taken: Trie | None = None) -> Fields:
        """Return a case-insensitive view of `doc` (see the module's docstring)."""
        from corral.sources._core.folded import Folded  # noqa: PLC0415 - it is built on this module

        return Folded(doc, {} if taken is None else taken)

    def _spelling(self, name: str) -> str:
        return name

    def _mark_tree(self, tree: dict[str, Any]) -> None:
        doc, taken = self._doc, self._taken
        for name, rule in tree.items():
            key = self._spelling(name)  # the document's own spelling, in a folded view
            if key not in doc:
                continue
            if rule is True or doc[key] == {}:
                taken[key] = _LEAF
            elif isinstance(doc[key], dict):
                self.view(key)._mark_tree(rule)


def _is_ip(value: object) -> bool:
    if not isinstance(value, str) or len(value) > _MAX_IP_TEXT:
        return False
    if _IPV4.fullmatch(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _child(taken: Trie, key: Key) -> Trie:
    """The trie node below `key`, created when missing; a detached one below a mapped value."""
    child = taken.get(key)
    if child is None:
        child = taken[key] = {}
    elif child is _LEAF:
        return {}  # the whole value is mapped already: what is recorded below changes nothing
    return child
