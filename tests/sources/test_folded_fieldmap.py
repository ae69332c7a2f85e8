"""The folded reader's fast paths: field maps, shared key folds, and the mapped tree applied in one pass."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.sources._core.folded import FieldMap, FieldRecord, Folded, rest_without, spellings, text
from corral.sources.defender import alerts, assessments, attackpaths, compliance, subassessments


class _Record(FieldRecord):
    system_alert_id: Any
    id: Any
    missing: Any


_MAP = FieldMap(_Record)


def test_a_field_map_reads_any_casing_and_takes_the_first_spelling_sent() -> None:
    found = _MAP.read({"ID": "first", "id": "second", "SystemAlertID": "x"})
    assert found == ("x", "first", None)
    assert (found.system_alert_id, found.id, found.missing) == ("x", "first", None)
    assert _MAP.read({"systemAlertId": "y", "Id": None}) == ("y", None, None)


def test_a_field_map_reads_nothing_from_what_is_not_an_object() -> None:
    assert _MAP.read(None) == (None, None, None)
    assert _MAP.read(["id"]) == (None, None, None)
    assert _MAP.read({1: "x", "id": "y"}) == (None, "y", None)


def test_folds_are_shared_by_objects_of_one_key_shape_and_kept_apart_otherwise() -> None:
    assert spellings({"A": 1, "a": 2}) == {"a": "A"}
    assert spellings({"a": 3, "A": 4}) == {"a": "a"}
    assert text("") is None
    assert text(3) is None
    assert text("x") == "x"


KEYS = st.sampled_from(["a", "A", "b", "B", "c"])
JSONISH = st.recursive(
    st.none() | st.just("") | st.integers() | st.text(max_size=2),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
TREES = st.recursive(
    st.just(True), lambda rules: st.dictionaries(st.sampled_from("abc"), rules, max_size=3), max_leaves=8
)


def _through_the_trie(doc: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    view = Folded(doc, {})
    view.mark_tree(tree)
    return view.rest(as_sent=True)


@given(st.dictionaries(KEYS, JSONISH, max_size=5), st.dictionaries(st.sampled_from("abc"), TREES, max_size=3))
def test_rest_without_is_marking_the_tree_then_the_rest_as_sent(doc: dict[str, Any], tree: dict[str, Any]) -> None:
    assert rest_without(doc, tree) == _through_the_trie(doc, tree)


def test_rest_without_matches_the_trie_for_every_defender_tree() -> None:
    doc = {
        "id": "x",
        "Name": "n",
        "properties": {"displayName": "t", "Status": {"code": "A"}, "additionalData": {}, "extra": None},
        "other": [1],
    }
    trees = [
        *alerts._CONSUMED.values(),
        assessments._CONSUMED,
        attackpaths._CONSUMED,
        compliance._CONSUMED,
        subassessments._CONSUMED,
        subassessments._PARENT_CONSUMED,
    ]
    for tree in trees:
        assert tree.rest(doc) == rest_without(doc, tree.tree) == _through_the_trie(doc, tree.tree)
