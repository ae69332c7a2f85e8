"""Import cost: importing Corral's core loads no cloud SDK, HTTP client, database driver or chat SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("boto3", "botocore", "azure", "google", "psycopg", "slack_sdk", "urllib3")
ROOT = Path(__file__).resolve().parents[2]


def loaded_after(modules: list[str]) -> list[str]:
    """Import `modules` in a fresh interpreter; return the modules that importing them added to sys.modules.

    The interpreter's own start-up is the baseline: a `.pth` file may register an empty namespace
    package (e.g. `google`) before any import, and that is not Corral's cost.
    """
    script = (
        "import importlib, json, sys\nbefore = set(sys.modules)\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "modules",
    [
        ["corral"],
        ["corral", "corral.pipeline"],
        ["corral", "corral.pipeline", "corral.cli"],
        ["corral.config", "corral.routing", "corral.delivery", "corral.normalize", "corral.reader"],
    ],
)
def test_core_imports_nothing_heavy(modules: list[str]) -> None:
    """None of the heavy packages is in sys.modules after importing these Corral modules."""
    loaded = loaded_after(modules)
    assert set(modules) <= set(loaded)
    assert [m for m in loaded if m.partition(".")[0] in HEAVY] == []


def test_the_check_sees_heavy_imports() -> None:
    """The subprocess check does report a heavy package that was imported (here psycopg, via its store)."""
    assert "psycopg" in loaded_after(["corral.stores.postgresql"])
