"""SCC reads both protobuf-JSON spellings (camelCase, and the snake_case proto names some exports use)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from corral.sources import scc
from corral.sources._core.reader import Fields, Trie
from corral.sources.scc._cloud import _segment
from corral.sources.scc._spelling import _READ, CAMEL, both_spellings, camel

EVENTS = Path(__file__).resolve().parents[1] / "events" / "gcp" / "scc"
_HUMP = re.compile(r"(?<!^)(?=[A-Z])")
NOTIFICATIONS = sorted(p.name for p in EVENTS.glob("*.notification.json") if not p.name.startswith("scc-error"))


def snake(value: Any) -> Any:
    """`value` with every object key in its proto (snake_case) spelling, at every depth."""
    if isinstance(value, dict):
        return {_HUMP.sub("_", k).lower(): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_snake_case_export_gives_the_same_finding(name: str) -> None:
    doc = json.loads((EVENTS / name).read_text())
    spelled = {**doc, "finding": snake(doc["finding"])}
    if "resource" in doc:
        spelled["resource"] = snake(doc["resource"])
    expected, actual = scc.normalize(doc, "m"), scc.normalize(spelled, "m")
    assert isinstance(expected, dict)
    assert isinstance(actual, dict)
    expected_rest, actual_rest = expected.pop("unmapped"), actual.pop("unmapped")
    assert actual == expected
    # What is left over is what was left over, in the spelling it was sent in.
    for part in ("finding", "resource"):
        assert actual_rest.get(part) == snake(expected_rest.get(part))


def test_camel_case_wins_when_both_spellings_are_sent_and_both_are_mapped() -> None:
    doc = json.loads((EVENTS / "ctd-added-binary-executed.notification.json").read_text())
    finding = doc["finding"]
    finding["canonical_name"] = "projects/1/sources/2/findings/snake"
    finding["event_time"] = "2020-01-01T00:00:00Z"
    out = scc.normalize(doc)
    assert isinstance(out, dict)
    assert out["finding_info"]["uid"] == finding["canonicalName"]
    assert out["time"] == 1772446530123
    leftovers = out["unmapped"]["finding"]
    assert not {"canonicalName", "canonical_name", "eventTime", "event_time"} & set(leftovers)


def test_camel_hands_back_an_object_without_snake_case_keys_uncopied() -> None:
    obj = {"eventTime": "t", "name": "n", "Added_Binary_Kind": "x"}
    assert camel(obj) is obj
    mixed = {"event_time": "snake", "createTime": "camel", "create_time": "ignored"}
    assert camel(mixed) == {**mixed, "eventTime": "snake"}


def test_every_snake_case_spelling_names_one_key() -> None:
    assert len(CAMEL) == len(_READ)  # no two keys read share a snake_case spelling
    assert all(spelling != key for spelling, key in CAMEL.items())


def test_a_key_mapped_in_either_spelling_leaves_unmapped_and_the_rest_stays_as_sent() -> None:
    sent: dict[str, Any] = {"a": [], "displayName": "x", "display_name": "y", "b": None, "c": {"d": ""}}
    taken: Trie = {}
    assert Fields(camel(sent), taken).text("displayName") == "x"
    rest = Fields(sent, both_spellings(taken)).rest(as_sent=True)
    assert rest == {"a": [], "b": None, "c": {"d": ""}}
    assert rest["c"] is sent["c"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "projects/",
        "projects//x",
        "//container.googleapis.com/projects/p1/zones/z",
        "xprojects/p1/projects/p2",
        "projects/projects/p",
        "/projects/",
        "a/projects//projects/p3/",
        "organizations/1/projects/2",
    ],
)
def test_segment_finds_what_the_path_pattern_finds(name: str) -> None:
    match = re.search(r"(?:^|/)projects/([^/]+)", name)
    assert _segment(name, "projects/") == (match.group(1) if match else None)
