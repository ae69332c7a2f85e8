"""The plain-dict readers (`corral.sources._core.plain`) record exactly what `Fields` records.

GuardDuty and Inspector read their findings as (object, trie node) pairs rather than `Fields` views, for
speed; `unmapped` stays right only if every reader returns what the `Fields` method of the same
name returns and leaves the same trie behind, whatever the value found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.errors import MalformedEventError
from corral.sources._core import plain
from corral.sources._core.reader import Fields

TIMES = ("2025-05-01T10:03:12.118Z", "2025-05-01T10:03:12", "1990-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00")
VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "x", *TIMES])
    | st.text(max_size=4)
    | st.lists(st.sampled_from(["", "a", 1, None, {}]), max_size=3)
    | st.dictionaries(st.sampled_from("kv"), st.sampled_from(["", "a", 1]), max_size=2)
)
KEYS = st.sampled_from(["k", "v"])
DOCS = st.dictionaries(KEYS, VALUES, max_size=2)


def _outcome(read: Callable[[], Any]) -> Any:
    try:
        return ("value", read())
    except MalformedEventError as error:
        return ("error", str(error))


def _same(doc: dict[str, Any], by_fields: Callable[[Fields], Any], by_plain: Callable[[Any], Any]) -> None:
    fields_taken: dict[Any, Any] = {}
    plain_taken: dict[Any, Any] = {}
    expected = _outcome(lambda: by_fields(Fields(doc, fields_taken)))
    actual = _outcome(lambda: by_plain((doc, plain_taken)))
    assert actual == expected
    assert Fields(doc, plain_taken).rest() == Fields(doc, fields_taken).rest()


@given(doc=DOCS, key=KEYS)
def test_scalar_readers_match_fields(doc: dict[str, Any], key: str) -> None:
    """text, peek, time and optional_time: same value (or error), same record."""
    _same(doc, lambda f: f.text(key), lambda n: plain.text(n, key))
    _same(doc, lambda f: f.peek_text(key), lambda n: plain.peek(n, key))
    _same(doc, lambda f: f.time(key, "t"), lambda n: plain.time(n, key, "t"))
    _same(doc, lambda f: f.optional_time(key), lambda n: plain.optional_time(n, key))


@given(doc=DOCS, key=KEYS, inner=KEYS)
def test_object_readers_match_fields(doc: dict[str, Any], key: str, inner: str) -> None:
    """sub and subs give the same objects, recording into the same trie nodes."""
    _same(doc, lambda f: f.at(key).text(inner), lambda n: plain.text(plain.sub(n, key), inner))
    _same(
        doc,
        lambda f: [item.text(inner) for item in f.objects(key, limit=2)],
        lambda n: [plain.text(item, inner) for item in plain.subs(n, key, limit=2)],
    )


@given(doc=DOCS, key=KEYS)
def test_integers_and_lists_of_texts_match_fields(doc: dict[str, Any], key: str) -> None:
    """integer and texts read as Fields.integer and Fields.texts do."""
    _same(doc, lambda f: f.integer(key), lambda n: plain.integer(n, key))
    _same(doc, lambda f: f.texts(key, limit=2), lambda n: plain.texts(n, key, 2))


def test_a_missing_object_records_nothing() -> None:
    """Nothing read from MISSING is ever recorded, so its shared trie node stays empty."""
    missing = plain.sub(({"k": 1}, {}), "k")
    assert missing is plain.MISSING
    assert plain.text(missing, "k") is None
    assert plain.MISSING[1] == {}
