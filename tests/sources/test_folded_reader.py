"""The reader's case-insensitive mode, and Defender's findings built without a pruning pass."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from corral import envelopes, ocsf
from corral.records import Item
from corral.sources import defender
from corral.sources._core.reader import Fields

DEFENDER = Path(__file__).resolve().parents[1] / "events" / "azure" / "defender"


def test_a_folded_view_reads_any_casing_and_records_the_documents_own_spelling() -> None:
    doc = {"Name": "web", "Properties": {"State": "Failed", "Count": 3}, "Other": None}
    fields = Fields.folded(doc)
    assert fields.text("name") == "web"
    assert fields.at("properties").text("STATE") == "Failed"
    assert fields.rest() == {"Properties": {"Count": 3}}
    assert fields.rest(as_sent=True) == {"Properties": {"Count": 3}, "Other": None}


def test_a_folded_view_takes_the_first_spelling_sent() -> None:
    fields = Fields.folded({"ID": "first", "id": "second", "Id": ""})
    assert fields.first_text("id") == "first"
    assert fields.get("iD") == "first"
    assert fields.has("Id")
    assert not fields.has("name")


def test_the_case_sensitive_view_is_unchanged() -> None:
    fields = Fields({"Name": "web", "name": "other"}, {})
    assert fields.first_text("name") == "other"
    assert fields.get("NAME") is None
    assert not fields.view("missing").exists


def test_marking_a_tree_drops_the_objects_it_empties_and_keeps_the_rest_as_sent() -> None:
    doc = {"id": "x", "Properties": {"Status": {"code": "A"}, "extra": None}, "meta": {"only": 1}, "empty": {}}
    fields = Fields.folded(doc)
    fields.mark_tree({"id": True, "properties": {"status": True}, "meta": {"only": True}, "missing": True})
    assert fields.rest(as_sent=True) == {"Properties": {"extra": None}, "empty": {}}
    assert doc["meta"] == {"only": 1}  # the document itself is never changed


def _defender_documents() -> list[object]:
    found = []
    for path in sorted(DEFENDER.glob("*.json")):
        for item in envelopes.unwrap(orjson.loads(path.read_bytes())):
            if isinstance(item, Item):
                found.append(item.doc)
    return found


@pytest.mark.parametrize("doc", _defender_documents())
def test_defender_findings_are_built_pruned(doc: object) -> None:
    """No null, empty string, list or object anywhere in a finding outside `unmapped` (kept as sent)."""
    finding = defender.normalize(doc, "delivery", received_time=1_767_225_600_000)  # type: ignore[arg-type]
    if not isinstance(finding, dict):
        return
    finding = dict(finding)
    finding.pop("unmapped", None)
    assert ocsf.prune(finding) == finding


def test_typed_reads_and_marks_of_a_folded_view_record_the_vendor_spelling() -> None:
    doc = {
        "Items": [{"Port": 443}, {"Port": "x"}],
        "When": "2024-05-31T09:22:38.760Z",
        "Tags": ["a", ""],
        "Deep": {"X": 1},
    }
    fields = Fields.folded(doc)
    assert [item.port("port") for item in fields.objects("items")] == [443, None]
    assert fields.time("when") == 1_717_147_358_760
    assert fields.texts("tags") == ["a"]
    fields.mark("deep", "x")
    assert fields.raw("DEEP", "x") == 1
    assert fields.rest() == {"Items": [{"Port": "x"}]}
