"""The SCC normalizer's own `unmapped`: what `Fields.rest(as_sent=True)` leaves of a record of top-level keys."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.sources._core.reader import Fields
from corral.sources.scc._spelling import LEAF, take_texts, without

VALUES = st.none() | st.just("") | st.booleans() | st.integers() | st.text(max_size=3) | st.just({}) | st.just([])
KEYS = st.sampled_from(["name", "eventTime", "event_time", "category", "a", "b"])
DOCS = st.dictionaries(KEYS, VALUES | st.dictionaries(KEYS, VALUES, max_size=3), max_size=6)


@given(DOCS, st.lists(KEYS, max_size=6))
def test_without_is_the_rest_as_sent_of_a_flat_record(doc: dict[str, Any], keys: list[str]) -> None:
    taken: dict[str | int, Any] = {}
    record = Fields(doc, taken)
    for key in keys:
        record.mark(key)
    expected = Fields(doc, taken).rest(as_sent=True)
    assert without(doc, taken) == expected
    assert list(without(doc, taken)) == list(expected)


@given(DOCS, st.lists(KEYS, max_size=6, unique=True))
def test_take_texts_records_what_fields_text_records(doc: dict[str, Any], keys: list[str]) -> None:
    expected_taken: dict[str | int, Any] = {}
    record = Fields(doc, expected_taken)
    expected = [record.text(key) for key in keys]
    taken: dict[str | int, Any] = {}
    assert take_texts(doc, taken, tuple(keys)) == expected
    assert taken == expected_taken
    assert all(value is LEAF for value in taken.values())
