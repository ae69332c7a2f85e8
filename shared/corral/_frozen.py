"""`@frozen`: `@dataclass(frozen=True, slots=True)` that is cheaper to define.

A dataclass compiles each method it adds from generated source, about a tenth of a millisecond
each; with some forty value classes loaded at every cold start that adds up. `frozen` lets the
dataclass machinery generate only what must be specific to a class (`__init__` and the frozen
`__setattr__`/`__delattr__`) and gives it `__eq__`, `__hash__` and `__repr__` built from shared
code. They behave as the generated ones: equality only between instances of the very same class,
field by field as tuples; the hash of the tuple of fields; `Name(field=value, ...)`, "..." on
recursion. Everything else is an ordinary dataclass: `dataclasses.replace`, `asdict`, `fields`,
pattern matching and orjson all work unchanged.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


def _values(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    """Return a function giving the named attributes of an object as a tuple (C speed)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen, slotted dataclass, as `@dataclass(frozen=True, slots=True)` would."""
    own = dict(cls.__dict__)
    made: Any = dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    declared = fields(made)
    compared = _values(tuple(f.name for f in declared if f.compare))
    hashed = _values(tuple(f.name for f in declared if (f.compare if f.hash is None else f.hash)))
    shown = tuple(f.name for f in declared if f.repr)

    def __eq__(self: object, other: object) -> bool:  # noqa: N807 - the method itself
        if other.__class__ is self.__class__:
            equal: bool = compared(self) == compared(other)
            return equal
        return NotImplemented

    def __hash__(self: object) -> int:  # noqa: N807 - the method itself
        return hash(hashed(self))

    @reprlib.recursive_repr()
    def __repr__(self: object) -> str:  # noqa: N807 - the method itself
        text = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({text})"

    # As the dataclass would: a method the class writes itself is kept (a `__hash__` only when
    # it is not the None that Python sets beside a class's own `__eq__`).
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    for method in (__eq__, __hash__, __repr__):
        name = method.__name__
        if (name == "__hash__" and not explicit_hash) or (name != "__hash__" and name not in own):
            method.__qualname__ = f"{made.__qualname__}.{name}"
            setattr(made, name, method)
    result: type[_T] = made
    return result
