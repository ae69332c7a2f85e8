"""The case-insensitive mode of the reader: `Fields.folded(doc)` (see `reader`).

Each view resolves a requested key to the document's own spelling through a lower-cased index
of its object's keys, built when the object is first read, and records that spelling, so what
the case-sensitive `Fields` does (typed reads, `rest()`) works unchanged on the vendor's casing.

Normalizers whose mapped paths are a fixed tree can skip the views on their hot path: a
`FieldMap` reads a record's keys of one object in one pass, and a `MappedTree` gives the
object less that tree, exactly as marking it on a view and taking `rest(as_sent=True)` would.
Both resolve keys once per key shape (the tuple of an object's keys), which records of one
kind repeat, so that most objects cost a lookup rather than lower-casing every key.
"""

from __future__ import annotations

import collections
import itertools
import operator
from collections.abc import Callable
from typing import Any, ClassVar, Final, Generic, TypeVar

from corral.sources._core.reader import _ABSENT, _LEAF, Fields, Key, Trie, _child


class Folded(Fields):
    """A `Fields` whose keys match case-insensitively; the first spelling sent wins."""

    __slots__ = ("_keys", "_views")

    def __init__(self, doc: dict[str, Any], taken: Trie) -> None:
        # Not through Fields.__init__: views are made for every object read, and the call costs.
        self._doc = doc
        self._taken = taken
        self._keys: dict[str, str] | None = None
        self._views: dict[str, Folded] | None = None  # each inner object is indexed once

    def _spelling(self, name: str) -> str:
        keys = self._keys
        if keys is None:
            keys = self._keys = spellings(self._doc)
        return keys.get(name.lower(), name)

    def get(self, name: str, *more: str) -> Any:
        """Return the first value among the keys `name, *more` that is present and not null; not recorded."""
        keys = self._keys
        if keys is None:
            keys = self._keys = spellings(self._doc)
        doc: dict[Any, Any] = self._doc
        value = doc.get(keys.get(_LOWER.get(name) or _lower(name)))
        if value is not None or not more:
            return value
        for other in more:
            value = doc.get(keys.get(_LOWER.get(other) or _lower(other)))
            if value is not None:
                return value
        return None

    def first_text(self, name: str, *more: str) -> str | None:
        """Return the first non-empty string among the keys `name, *more`; not recorded."""
        keys = self._keys
        if keys is None:
            keys = self._keys = spellings(self._doc)
        doc: dict[Any, Any] = self._doc
        value = doc.get(keys.get(_LOWER.get(name) or _lower(name)))
        if isinstance(value, str) and value:
            return value
        for other in more:
            value = doc.get(keys.get(_LOWER.get(other) or _lower(other)))
            if isinstance(value, str) and value:
                return value
        return None

    def view(self, name: str, *more: str) -> Fields:
        """Return the view of the first object among the keys `name, *more` (a view of nothing if none is)."""
        keys = self._keys
        if keys is None:
            keys = self._keys = spellings(self._doc)
        for each in (name, *more):
            key = keys.get(_LOWER.get(each) or _lower(each))
            if key is not None:
                found = self._inner(key)
                if found is not None:
                    return found
        return _NOTHING

    def _inner(self, key: str) -> Folded | None:
        """The view of the object at `key` (the document's own spelling), made once; None if not an object."""
        views = self._views
        if views is None:
            views = self._views = {}
        elif key in views:
            return views[key]
        value = self._doc[key]
        if not isinstance(value, dict):
            return None
        found = views[key] = Folded(value, _child(self._taken, key))
        return found

    def _mark_tree(self, tree: dict[str, Any]) -> None:
        keys = self._keys
        if keys is None:
            keys = self._keys = spellings(self._doc)
        taken = self._taken
        for name, rule in tree.items():
            key = keys.get(name)  # the keys of `tree` are lower-case (see `Fields.mark_tree`)
            if key is None:
                continue
            if rule is True:
                taken[key] = _LEAF
            elif (inner := self._inner(key)) is not None:
                if inner._doc:
                    inner._mark_tree(rule)
                else:
                    taken[key] = _LEAF  # nothing in it to keep: it goes as a whole

    def at(self, *path: str) -> Fields:
        view: Fields = self
        for key in path:
            view = view.view(key)
        return view

    def objects(self, key: str, limit: int = 1000) -> list[Fields]:
        value = self._doc.get(self._spelling(key))
        if not isinstance(value, list):
            return []
        taken = _child(self._taken, self._spelling(key))
        return [Folded(item, _child(taken, i)) for i, item in enumerate(value[:limit]) if isinstance(item, dict)]

    def raw(self, *path: str) -> Any:
        view: Fields = self
        for key in path[:-1]:
            view = view.view(key)
        return view.doc.get(view._spelling(path[-1])) if path else self._doc

    def mark(self, *path: Key) -> None:
        view: Fields = self
        for key in path[:-1]:
            view = view.view(str(key))
            if not view.exists:
                return
        last = path[-1]
        Fields.mark(view, view._spelling(last) if isinstance(last, str) else last)

    def take(self, key: str) -> Any:
        return Fields.take(self, self._spelling(key))

    def text(self, key: str) -> str | None:
        return Fields.text(self, self._spelling(key))

    def peek_text(self, *path: str) -> str | None:
        value = self.raw(*path)
        return value if isinstance(value, str) and value else None

    def integer(self, key: str) -> int | None:
        return Fields.integer(self, self._spelling(key))

    def number(self, key: str) -> float | None:
        return Fields.number(self, self._spelling(key))

    def flag(self, key: str) -> bool | None:
        return Fields.flag(self, self._spelling(key))

    def texts(self, key: str, limit: int = 1000) -> list[str]:
        return Fields.texts(self, self._spelling(key), limit)

    def ip(self, key: str) -> str | None:
        return Fields.ip(self, self._spelling(key))

    def ips(self, key: str, limit: int = 100) -> list[str]:
        return Fields.ips(self, self._spelling(key), limit)

    def port(self, key: str) -> int | None:
        return Fields.port(self, self._spelling(key))

    def time(self, key: str, name: str | None = None) -> int | None:
        return Fields.time(self, self._spelling(key), name or key)

    def optional_time(self, key: str, name: str | None = None) -> int | None:
        return Fields.optional_time(self, self._spelling(key), name or key)


_NOTHING: Final = Folded(_ABSENT, {})
# Lower-cased key names as asked for by normalizers (constants of their code, so few): a lookup
# here is cheaper than lower-casing on every read. Bounded, in case a caller asks for vendor text.
_LOWER: Final[dict[str, str]] = {}
_MAX_LOWER: Final = 4096


def _lower(name: str) -> str:
    low = name.lower()
    if len(_LOWER) < _MAX_LOWER:
        _LOWER[name] = low
    return low


# Folds of the key sequences met, shared: records of one kind repeat a few shapes, so most objects
# cost a `tuple()` of their keys and one lookup instead of lower-casing every key. Bounded.
_SHAPES: Final[dict[tuple[Any, ...], dict[str, str]]] = {}
_MAX_SHAPES: Final = 4096
_MAX_PLANS: Final = 512  # per field map or mapped tree: dozens of those, so each keeps fewer shapes


def spellings(doc: dict[Any, Any]) -> dict[str, str]:
    """Map each lower-cased key of `doc` to its first spelling (shared between objects: never change it)."""
    shape = tuple(doc)
    found = _SHAPES.get(shape)
    if found is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        found = _SHAPES[shape] = _fold(doc)
    return found


def _property(index: int, doc: str | None) -> Any:
    return property(operator.itemgetter(index), doc=doc)


# The C field descriptor `namedtuple` itself uses, where this Python has it (CPython does).
_tuplegetter: Final[Callable[[int, str | None], Any]] = getattr(collections, "_tuplegetter", None) or _property


class _RecordType(type):
    """Makes each record a slotted tuple with one C field descriptor per annotation."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _RecordType:
        namespace.setdefault("__slots__", ())  # no per-record __dict__
        # The class's own annotations, as `inspect.get_annotations` gives them (not imported: it is slow to).
        fields = tuple(field for field in namespace.get("__annotations__", {}) if not field.startswith("_"))
        namespace.update({field: _tuplegetter(index, None) for index, field in enumerate(fields)})
        namespace["_fields"] = fields
        return super().__new__(mcs, name, bases, namespace)


class FieldRecord(tuple[Any, ...], metaclass=_RecordType):
    """The values a `FieldMap` reads, by name: subclass it with one annotation per key (snake_case).

    A tuple whose fields are set up from the subclass's annotations, without the code generation
    `NamedTuple` does: normalizers define dozens of these, at import, on the cold-start path.
    """

    _fields: ClassVar[tuple[str, ...]] = ()


Record = TypeVar("Record", bound=FieldRecord)
_new: Final = tuple.__new__  # a record made from values in order


# What a plan reads for a key the document lacks: `read` adds it (as None) to a copy of such a
# document, so that one `itemgetter` call reads every field, present or not.
_MISSING: Final = object()
_Getter = Callable[[dict[Any, Any]], tuple[Any, ...]]


class FieldMap(Generic[Record]):
    """A normalizer's fixed keys of one kind of object, read in one pass, in any casing.

    The keys are `record`'s field names without their underscores: `system_alert_id` reads
    `SystemAlertId` or `systemAlertId` (so a key spelled with underscores cannot be read here).

    Each key is resolved to the object's first spelling of it once per key shape, so a read is
    one `tuple()` of the keys, one lookup, and one `itemgetter` call for all the fields (on a
    copy holding a None for the keys missing, when some are), all without Python calls.
    Nothing is recorded: such normalizers map a fixed tree of paths (see `rest_without`).
    """

    __slots__ = ("_names", "_none", "_plans", "_record")

    def __init__(self, record: type[Record]) -> None:
        self._record = record
        self._names: tuple[str, ...] = tuple(name.replace("_", "").lower() for name in record._fields)
        # key shape → (a getter of every field's value, whether the document holds every key)
        self._plans: dict[tuple[Any, ...], tuple[_Getter, bool]] = {}
        self._none: Record = _new(record, [None] * len(self._names))  # what an absent object reads as

    def read(self, doc: object) -> Record:
        """Return the values of the record's keys in `doc` (None for a missing key, or when `doc` is no object)."""
        if not doc or (type(doc) is not dict and not isinstance(doc, dict)):
            return self._none  # absent objects are common: nothing to look up
        shape = tuple(doc)
        plan = self._plans.get(shape)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[shape] = self._plan(doc)
        getter, complete = plan
        if complete:
            return _new(self._record, getter(doc))
        padded = doc.copy()  # `copy` then one key: cheaper than a display `{**doc, ...}`
        padded[_MISSING] = None
        return _new(self._record, getter(padded))

    def _plan(self, doc: dict[Any, Any]) -> tuple[_Getter, bool]:
        keys = tuple(map(spellings(doc).get, self._names, itertools.repeat(_MISSING)))
        if len(keys) == 1:  # `itemgetter` of one key gives the value itself, not a tuple
            key = keys[0]
            return (lambda found: (found[key],)), key is not _MISSING
        return operator.itemgetter(*keys), _MISSING not in keys


def text(value: object) -> str | None:
    """`value` when it is a non-empty string, else None (what `first_text` accepts)."""
    # Exact types first: this runs for most fields read, and most are strings or missing.
    if value is None:
        return None
    if value.__class__ is str or isinstance(value, str):
        return value or None
    return None


def rest_without(doc: dict[Any, Any], tree: dict[str, Any]) -> dict[Any, Any]:
    """Return what `Folded(doc, {})` gives from `mark_tree(tree)` then `rest(as_sent=True)`, in one pass.

    For normalizers whose mapped paths are a fixed tree: nothing is recorded while reading, so
    the trie would only be built to be walked once.
    """
    keys = spellings(doc)
    out = dict(doc)
    for name, rule in tree.items():
        key = keys.get(name)
        if key is None:
            continue
        if rule is True:
            del out[key]
            continue
        value = doc[key]
        if not isinstance(value, dict):
            continue
        kept = rest_without(value, rule) if value else None
        if kept:
            out[key] = kept
        else:
            del out[key]  # emptied, or empty as sent with paths mapped below it: it goes as a whole
    return out


class MappedTree:
    """A normalizer's fixed tree of mapped paths, for `rest_without`, resolved once per key shape.

    `tree` is as `Fields.mark_tree` takes it: nested dicts of lower-cased keys, True where a
    whole value is mapped. `rest(doc)` is `rest_without(doc, tree)`.
    """

    __slots__ = ("_below", "_plans", "_whole", "tree")

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree
        self._whole = tuple(name for name, rule in tree.items() if rule is True)
        self._below = {name: MappedTree(rule) for name, rule in tree.items() if rule is not True}
        # key shape → (the document's keys mapped whole, (key, tree below it) for the others)
        self._plans: dict[tuple[Any, ...], tuple[tuple[str, ...], tuple[tuple[str, MappedTree], ...]]] = {}

    def rest(self, doc: dict[Any, Any]) -> dict[Any, Any]:
        """Return `doc` less the mapped paths, as sent (see `rest_without`)."""
        plan = self._plans.get(tuple(doc))
        if plan is None:
            plan = self._plan(doc)
        out = dict(doc)
        for key in plan[0]:
            del out[key]
        for key, below in plan[1]:
            value = doc[key]
            if value.__class__ is not dict and not isinstance(value, dict):
                continue
            kept = below.rest(value) if value else None
            if kept:
                out[key] = kept
            else:
                del out[key]  # emptied, or empty as sent with paths mapped below it: it goes as a whole
        return out

    def _plan(self, doc: dict[Any, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, MappedTree], ...]]:
        keys = spellings(doc)
        whole = tuple(filter(None, map(keys.get, self._whole)))  # no name mapped is "", so no spelling is
        below = tuple((keys[name], tree) for name, tree in self._below.items() if name in keys)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        plan = self._plans[tuple(doc)] = (whole, below)
        return plan


def _fold(doc: dict[Any, Any]) -> dict[str, str]:
    """Map each lower-cased key of `doc` to its first spelling (keys that are not strings are left out)."""
    try:
        return {key.lower(): key for key in reversed(doc)}  # reversed: the first spelling is written last
    except AttributeError:  # a key that is not a string (never from a JSON decoder)
        found: dict[str, str] = {}
        for key in doc:
            if isinstance(key, str):
                found.setdefault(key.lower(), key)
        return found
