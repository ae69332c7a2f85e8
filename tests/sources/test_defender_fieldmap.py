"""Field maps read every field in one call per key shape: a key missing, one field alone, any object."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.sources._core.folded import FieldMap, FieldRecord


class _One(FieldRecord):
    link: Any


class _Three(FieldRecord):
    alert_type: Any
    link: Any
    name: Any


_ONE = FieldMap(_One)
_THREE = FieldMap(_Three)


def _by_get(doc: dict[Any, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    """What a field map reads, spelled out: the first key sent of each name, in any casing."""
    found = []
    for name in names:
        key = next((k for k in doc if isinstance(k, str) and k.lower() == name), None)
        found.append(None if key is None else doc[key])
    return tuple(found)


def test_a_one_field_map_reads_a_record_of_one() -> None:
    assert _ONE.read({"Link": "x", "other": 1}) == ("x",)
    assert _ONE.read({"other": 1}) == (None,)
    assert _ONE.read({"LINK": None}).link is None


def test_missing_keys_read_none_and_the_document_is_left_as_sent() -> None:
    doc = {"AlertType": "t", "extra": [1]}
    assert _THREE.read(doc) == ("t", None, None)
    assert doc == {"AlertType": "t", "extra": [1]}
    assert _THREE.read(OrderedDict(name="n", LINK=0)) == (None, 0, "n")


KEYS = st.sampled_from(["alertType", "AlertType", "alerttype", "link", "Link", "name", "NAME", "other", 1])
DOCS = st.dictionaries(KEYS, st.none() | st.integers() | st.text(max_size=2), max_size=6)


@given(st.lists(DOCS, min_size=1, max_size=6))
def test_a_field_map_reads_what_a_lookup_per_field_would(docs: list[dict[Any, Any]]) -> None:
    for doc in docs * 2:  # each shape read twice: once planned, once from its plan
        assert _THREE.read(doc) == _by_get(doc, ("alerttype", "link", "name"))
        assert _ONE.read(doc) == _by_get(doc, ("link",))
