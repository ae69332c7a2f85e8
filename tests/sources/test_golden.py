"""Every fixture under tests/events, normalized, against its reviewed output in tests/golden/normalize.

Any change to what a normalizer emits shows up here as a golden diff to review. Rewrite the files
with `make golden-update` (CORRAL_GOLDEN_UPDATE=1) and read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import reader
from corral.normalize import normalize
from corral.records import Outcome

TESTS = Path(__file__).resolve().parents[1]
EVENTS = TESTS / "events"
GOLDEN = TESTS / "golden" / "normalize"
# Fixed, so that records without a time of their own give the same output on every run.
RECEIVED = 1_767_225_600_000
FIXTURES = sorted(p.relative_to(EVENTS).as_posix() for p in EVENTS.rglob("*.json"))


def render(outcome: Outcome) -> dict[str, Any]:
    """One outcome as plain data: exactly one of finding, signal, skipped or error."""
    if outcome.finding is not None:
        return {"where": outcome.where, "finding": outcome.finding}
    if outcome.signal is not None:
        signal = outcome.signal
        fields = ("source", "account_uid", "service", "healthy", "time", "region", "detail")
        data = {name: getattr(signal, name) for name in fields}
        if signal.resource:
            data["resource"] = signal.resource
        return {"where": outcome.where, "signal": data}
    if outcome.skipped is not None:
        return {"where": outcome.where, "skipped": outcome.skipped}
    return {"where": outcome.where, "error": outcome.error}


def golden_bytes(path: Path) -> bytes:
    """The normalized output of one input file, one outcome per line, keys sorted."""
    lines = []
    for document in reader.read(str(path)):
        assert document.error is None, document.error
        for outcome in normalize(document.parsed, received_time=RECEIVED):
            lines.append(orjson.dumps(render(outcome), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("name", FIXTURES)
def test_normalize_golden(name: str) -> None:
    actual = golden_bytes(EVENTS / name)
    path = GOLDEN / name.replace(".json", ".golden.json")
    if os.environ.get("CORRAL_GOLDEN_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    assert path.is_file(), f"missing golden file {path}; run with CORRAL_GOLDEN_UPDATE=1 and review the diff"
    assert actual == path.read_bytes(), f"{path} differs; if intended, rerun with CORRAL_GOLDEN_UPDATE=1"


def test_every_golden_file_has_its_fixture() -> None:
    stale = [
        p.relative_to(GOLDEN).as_posix()
        for p in GOLDEN.rglob("*.golden.json")
        if not (EVENTS / p.relative_to(GOLDEN).as_posix().replace(".golden.json", ".json")).is_file()
    ]
    assert stale == []
