"""`Fields.rest()` is copy-on-write: it shares what it keeps as sent and never changes the document."""

from __future__ import annotations

import copy
from typing import Any

from corral import ocsf
from corral.sources._core.reader import Fields


def _deep_rest(doc: dict[str, Any], taken: dict[str, Any]) -> Any:
    """The result as a deep, copying definition gives it: the document minus what was read, pruned."""
    out = {}
    for key, value in doc.items():
        below = taken.get(key)
        if below is True:
            continue
        out[key] = _deep_rest(value, below) if below and isinstance(value, dict) else copy.deepcopy(value)
    return ocsf.prune(out)


def _document() -> dict[str, Any]:
    return {
        "id": "f-1",
        "clean": {"a": [1, {"b": "c"}], "d": {"e": True, "f": 0}},
        "dirty": {"keep": "k", "empty": "", "none": None, "list": [], "inner": {"x": {}, "y": [None, "z"]}},
        "read": {"name": "n", "other": {"deep": {"v": 1}}, "gone": {"only": "o"}},
        "items": [{"id": "i-1", "extra": "e"}, {"id": "i-2"}, "", None, [{}]],
    }


def test_rest_equals_the_deep_definition_and_leaves_the_document_as_it_was() -> None:
    """Byte-for-byte what a deep copy minus the mapped fields would give; the document is unchanged."""
    doc = _document()
    before = copy.deepcopy(doc)
    fields = Fields(doc, {})
    assert fields.text("id") == "f-1"
    read = fields.at("read")
    assert read.text("name") == "n"
    assert read.at("gone").text("only") == "o"
    for item in fields.objects("items"):
        item.text("id")
    rest = fields.rest()
    expected = _deep_rest(doc, {"id": True, "read": {"name": True, "gone": True}})
    expected["items"] = [{"extra": "e"}]
    assert rest == expected
    assert list(rest) == ["clean", "dirty", "read", "items"]
    assert doc == before


def test_rest_shares_clean_subtrees_and_copies_only_the_changed_path() -> None:
    """Untouched clean objects are the document's own; changed ones are new, and so is the top."""
    doc = _document()
    fields = Fields(doc, {})
    fields.at("read").text("name")
    rest = fields.rest()
    assert rest is not doc
    assert rest["clean"] is doc["clean"]
    assert rest["read"]["other"] is doc["read"]["other"]
    assert rest["read"] is not doc["read"]
    assert rest["dirty"] == {"keep": "k", "inner": {"y": ["z"]}}
    assert rest["dirty"] is not doc["dirty"]


def test_rest_of_an_untouched_clean_document_is_a_new_top_level_object() -> None:
    """Callers may add to what rest() returns: it is never the document itself, even when nothing goes."""
    doc = {"a": {"b": 1}, "c": "d"}
    for fields in (Fields(doc, {}), Fields.folded(doc)):
        rest = fields.rest()
        assert rest == doc
        assert rest is not doc
        assert rest["a"] is doc["a"]
        rest["added"] = 1
        assert "added" not in doc
    assert Fields({}, {}).rest() == {}
    assert Fields({"a": None, "b": [{}]}, {}).rest() == {}


def test_shared_prune_finds_the_first_value_that_goes_among_repeated_objects() -> None:
    """A value repeated by identity before and after the first one that goes is kept where it should be."""
    clean = {"k": "v"}
    dirty = {"k": None, "j": 1}
    doc = {"a": clean, "b": dirty, "c": clean, "d": dirty, "e": ""}
    assert ocsf.shared_prune(doc) == {"a": clean, "b": {"j": 1}, "c": clean, "d": {"j": 1}}
    items = [clean, "", clean, dirty, None, dirty]
    assert ocsf.shared_prune(items) == [clean, clean, {"j": 1}, {"j": 1}]
