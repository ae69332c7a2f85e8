"""`corral.records.Record`: typing.NamedTuple's class syntax, built as the same collections.namedtuple."""

from __future__ import annotations

from typing import NamedTuple as TypingNamedTuple

import pytest

from corral import records
from corral.records import NamedTuple, Outcome, Record


class Point(NamedTuple):
    """A place, with an optional label."""

    x: int
    y: int
    label: str = ""
    """What the place is called."""

    @property
    def norm(self) -> int:
        """Manhattan distance from the origin."""
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> Point:
        """The same place, `dx` further along x."""
        return self._replace(x=self.x + dx)

    @classmethod
    def origin(cls) -> Point:
        """Where both coordinates are zero."""
        return cls(0, 0, "origin")


class TypedPoint(TypingNamedTuple):
    """The same class built by typing.NamedTuple, to compare against."""

    x: int
    y: int
    label: str = ""


def test_the_runtime_class_is_record_and_builds_a_namedtuple() -> None:
    """At run time `NamedTuple` here is Record, and its classes are plain tuples like typing's."""
    assert getattr(records, "NamedTuple") is Record  # noqa: B009 - type checkers see typing's
    point = Point(1, -2)
    assert isinstance(point, tuple)
    assert Point.__bases__ == TypedPoint.__bases__ == (tuple,)
    assert Point._fields == TypedPoint._fields == ("x", "y", "label")
    assert Point._field_defaults == TypedPoint._field_defaults == {"label": ""}
    assert Point.__match_args__ == TypedPoint.__match_args__


def test_values_behave_as_typing_namedtuples_do() -> None:
    """Construction, defaults, keywords, equality, copies and unpacking match typing.NamedTuple's."""
    point = Point(1, y=-2)
    assert tuple(point) == tuple(TypedPoint(1, -2)) == (1, -2, "")
    assert point.label == ""
    assert point._replace(label="a") == Point(1, -2, "a")
    assert point._asdict() == {"x": 1, "y": -2, "label": ""}
    assert Point._make([3, 4, "b"]).label == "b"
    x, y, _ = point
    assert (x, y) == (1, -2)
    assert repr(point) == "Point(x=1, y=-2, label='')"
    assert hash(point) == hash((1, -2, ""))
    with pytest.raises(AttributeError):
        point.x = 5  # type: ignore[misc]


def test_the_class_body_is_kept() -> None:
    """Docstring, methods, properties, class methods, module and qualified name come from the body."""
    assert Point.__doc__ == "A place, with an optional label."
    assert Point(3, -4).norm == 7
    assert Point(1, 1).moved(2) == Point(3, 1)
    assert Point.origin() == Point(0, 0, "origin")
    assert Point.__module__ == __name__
    assert Point.__qualname__ == "Point"
    assert Point.__annotations__ == {"x": "int", "y": "int", "label": "str"}
    assert Outcome("here", error="bad").failed


def test_a_field_without_a_default_cannot_follow_one_with_a_default() -> None:
    """The mistake typing.NamedTuple refuses is refused too, rather than defaults moving fields."""
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]


def test_namedtuple_attributes_cannot_be_overwritten() -> None:
    """Like typing.NamedTuple, a body may not redefine what makes the class a namedtuple."""
    with pytest.raises(AttributeError, match="_replace"):

        class Bad(NamedTuple):
            a: int

            def _replace(self, **changes: int) -> Bad:  # type: ignore[misc]
                return self
