"""GuardDuty builds its findings without empty values: there is no prune pass to catch one.

Every fixture, and every variant of it with one value emptied (None, "", [] or {}), must normalize to a
finding that `ocsf.prune` leaves as it is (or fail the way a malformed document fails).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import envelopes, ocsf
from corral.errors import MalformedEventError
from corral.records import Item
from corral.sources import guardduty

EVENTS = Path(__file__).resolve().parents[1] / "events" / "aws"
FIXTURES = [*sorted((EVENTS / "guardduty").glob("*.json")), *sorted((EVENTS / "sns").glob("*.json"))]
EMPTIES: tuple[Any, ...] = (None, "", [], {})
FINDING_EVENTS = ("GuardDuty Finding",)


def _findings(path: Path) -> Iterator[dict[str, Any]]:
    """The findings of a fixture, as the pipeline hands them to a source (envelopes taken off)."""
    for item in envelopes.unwrap(json.loads(path.read_text())):
        if isinstance(item, Item) and isinstance(item.doc, dict):
            event = item.doc
            yield event["detail"] if event.get("detail-type") in FINDING_EVENTS else event


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*prefix, i)
            yield from _paths(item, (*prefix, i))


def _variants(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield doc
    for path in _paths(doc):
        for empty in EMPTIES:
            variant = copy.deepcopy(doc)
            parent = variant
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = copy.deepcopy(empty)
            yield variant


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_findings_have_no_empty_values(path: Path) -> None:
    """No None, "", [] or {} anywhere in a finding, for the fixture and each emptied value of it."""
    for finding in _findings(path):
        if "detail-type" in finding:
            continue  # health signals and events that are not findings
        for variant in _variants(finding):
            try:
                out = guardduty.normalize(variant, "delivery")
            except MalformedEventError:
                continue
            assert isinstance(out, dict)
            # Compared as text: equal including key order, as the finding is serialised.
            assert json.dumps(out) == json.dumps(ocsf.prune(out))
