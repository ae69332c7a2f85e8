"""Detection asks only the sources whose cue keys a document has: it must answer as asking them all would.

The reference is the plain rule: the first source, in detection order, whose `recognizes` holds.
It is compared with `sources.detect` on every fixture (and every object nested in one, and each
document of its envelopes), and on documents mutated by Hypothesis: keys dropped, re-cased, added.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import envelopes, sources
from corral.records import Item
from corral.sources._core.source import Source

TESTS = Path(__file__).resolve().parents[1]
SAMPLES = TESTS.parents[1] / "shared" / "samples"  # published samples, when next to the checkout
MODULES: tuple[Source, ...] = tuple(importlib.import_module(name) for name, _ in sources._MODULES)  # type: ignore[misc]


def reference(doc: Any, modules: tuple[Source, ...] = MODULES) -> Source | None:
    """The first of `modules` (by default in the order the registry lists them) that recognizes `doc`."""
    return next((module for module in modules if module.recognizes(doc)), None)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _objects(child)


def _documents() -> list[dict[str, Any]]:
    paths = sorted(TESTS.joinpath("events").rglob("*.json"))
    if SAMPLES.is_dir():
        paths += sorted(SAMPLES.rglob("*.json"))
    found: list[dict[str, Any]] = []
    for path in paths:
        try:
            parsed = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        found.extend(_objects(parsed))
        for item in envelopes.unwrap(parsed, path.name):
            if isinstance(item, Item) and isinstance(item.doc, dict):
                found.append(item.doc)
                if item.envelope is not None and isinstance(item.envelope.event, dict):
                    found.append(item.envelope.event)
    return found


DOCUMENTS = _documents()


@pytest.fixture(autouse=True)
def _whole_registry() -> None:
    """Every module loaded, so that `detect` reads the registry as the CLI does."""
    assert sources.SOURCES


def test_every_fixture_object_is_detected_as_by_asking_every_source() -> None:
    assert len(DOCUMENTS) > 500
    for doc in DOCUMENTS:
        assert sources.detect(doc) is reference(doc), sorted(doc)[:8]


def test_cues_hold_for_each_source_on_every_fixture_object() -> None:
    """Each cue set is a necessary condition of its module's `recognizes`, whatever the order."""
    for doc in DOCUMENTS:
        keys = {key.lower() for key in doc if isinstance(key, str)}
        for module in MODULES:
            if module.recognizes(doc):
                assert not sources._CUES[module.__name__].isdisjoint(keys), (module.SOURCE, sorted(doc)[:8])


def _recase(key: str, pattern: int) -> str:
    return "".join(c.upper() if pattern >> (i % 16) & 1 else c.lower() for i, c in enumerate(key))


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(st.sampled_from(DOCUMENTS))
    out: dict[str, Any] = {}
    for key, value in doc.items():
        action = draw(st.integers(0, 5))
        if action == 0:
            continue  # dropped
        if action == 1 and isinstance(key, str):
            out[_recase(key, draw(st.integers(0, 2**16 - 1)))] = value
        elif action == 2:
            out[key] = draw(st.sampled_from(["", None, 1, "x:guardduty:y", {}, [], value]))
        else:
            out[key] = value
    extra = ["type", "Type", "SystemAlertId", "AlertType", "finding", "name", "metadata", "class_uid", "arn"]
    for key in draw(st.lists(st.sampled_from(extra), max_size=3)):
        out[key] = draw(st.sampled_from([doc.get(key), "microsoft.security/assessments", "x", {}]))
    return out


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_mutated_documents_are_detected_as_by_asking_every_source(doc: dict[str, Any]) -> None:
    assert sources.detect(doc) is reference(doc)


def test_home_order_detection_imports_and_answers_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the registry is built, detection follows the home cloud's order over the same cues."""
    monkeypatch.delattr(sources, "SOURCES")
    for variable, _ in sources._PLATFORMS:
        monkeypatch.delenv(variable, raising=False)
    sources._order.cache_clear()
    try:
        order: tuple[Source, ...] = tuple(importlib.import_module(name) for name in sources._order())  # type: ignore[misc]
        for doc in DOCUMENTS:
            assert sources.detect(doc) is reference(doc, order)
    finally:
        sources._order.cache_clear()
