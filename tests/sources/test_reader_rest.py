"""`Fields.rest()`: the document without what was read, pruned, sharing what nothing was read from."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral import ocsf
from corral.sources._core.reader import Fields

SCALARS = st.none() | st.just("") | st.booleans() | st.integers() | st.text(max_size=3)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("abcd"), children, max_size=4),
    max_leaves=30,
)
DOCS = st.dictionaries(st.sampled_from("abcd"), JSONISH, max_size=4)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _without(value: Any, marked: list[tuple[str | int, ...]], prefix: tuple[str | int, ...] = ()) -> Any:
    """The obvious definition: every marked path (and what is below it) removed."""
    if isinstance(value, dict):
        return {k: _without(v, marked, (*prefix, k)) for k, v in value.items() if (*prefix, k) not in marked}
    if isinstance(value, list):
        return [_without(v, marked, (*prefix, i)) for i, v in enumerate(value) if (*prefix, i) not in marked]
    return value


@given(DOCS, st.data())
def test_rest_is_the_pruned_document_without_the_marked_paths(doc: dict[str, Any], data: st.DataObject) -> None:
    """Whatever is marked, rest() equals prune(document minus the marked paths), and the document is unchanged."""
    paths = _paths(doc)
    marked = data.draw(st.lists(st.sampled_from(paths), max_size=6, unique=True)) if paths else []
    before = ocsf.prune({"doc": doc})  # a copy to compare with afterwards
    fields = Fields(doc, {})
    for path in marked:
        fields.mark(*path)
    assert fields.rest() == ocsf.prune(_without(doc, marked))
    assert ocsf.prune({"doc": doc}) == before


def test_rest_shares_untouched_subtrees_that_need_no_pruning() -> None:
    """No copy of what nothing was read from, unless it has empty values to drop."""
    clean = {"k": [1, {"v": "w"}]}
    doc = {"clean": clean, "dirty": {"x": None, "y": 2}, "read": {"a": "b", "c": "d"}}
    fields = Fields(doc, {})
    assert fields.at("read").text("a") == "b"
    rest = fields.rest()
    assert rest == {"clean": clean, "dirty": {"y": 2}, "read": {"c": "d"}}
    assert rest["clean"] is clean
    assert doc["dirty"] == {"x": None, "y": 2}
