"""`Fields.rest()` byte for byte: `unmapped` keeps the document's key order, wherever something was read."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from corral import ocsf
from corral.sources._core.reader import Fields
from tests.sources.test_reader_rest import _paths, _without

SCALARS = (
    st.none() | st.just("") | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=2)
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from("edcba"), children, max_size=5),
    max_leaves=40,
)
DOCS = st.dictionaries(st.sampled_from("edcba"), JSONISH, max_size=5)


def _rest(doc: dict[str, Any], marked: list[tuple[str | int, ...]]) -> dict[str, Any]:
    fields = Fields(doc, {})
    for path in marked:
        fields.mark(*path)
    return fields.rest()


@given(DOCS, st.data())
def test_rest_is_the_pruned_document_without_the_marked_paths_in_the_order_sent(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    paths = _paths(doc)
    marked = data.draw(st.lists(st.sampled_from(paths), max_size=8, unique=True)) if paths else []
    expected = orjson.dumps(ocsf.prune(_without(doc, marked)))
    assert orjson.dumps(_rest(doc, marked)) == expected
