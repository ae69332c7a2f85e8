"""The README's picture: the served dashboard over the demo's own deliveries, in the real headless Chromium.

`make screenshot` runs this with CORRAL_SCREENSHOT_UPDATE=1 to refresh docs/dashboard.png; on every
run it checks that the picture would show no test string and no temporary path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corral.dashboard import server
from corral.pipeline import Pipeline, now_ms
from corral.stores import open_store
from tests.coverage.conftest import deliveries
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import Running

ROOT = Path(__file__).resolve().parents[2]
# The deliveries `make demo` hands to the three clouds' entry points.
DEMO = (
    "aws/guardduty/*.json",
    "aws/inspector/*.json",
    "aws/sns/sns-lambda-*.json",
    "azure/defender/*.json",
    "gcp/scc/*.notification.json",
)


def test_readme_screenshot_from_the_demo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The picture shows the demo's findings, most severe first, under the demo's own store path."""
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///demo-out/corral.db"  # what `make demo` prints, not a temporary path
    pipeline = Pipeline(open_store(url))
    try:
        pipeline.ingest(deliveries(*DEMO))
    finally:
        pipeline.close()
    running = Running(server.Dashboard(server.StorePool(lambda: open_store(url)), {}, now_ms))
    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.open(running.base + "/", width=1280, height=1000)
        text = browser.evaluate("document.body.innerText")
        top = browser.evaluate("document.querySelector('#findings tbody tr td.title').textContent")
        shot = tmp_path / "dashboard.png"
        browser.screenshot(shot, full=False)
    finally:
        browser.close()
        running.stop()
    assert "<script" not in text and "alert(" not in text
    assert str(tmp_path) not in text and "pytest" not in text
    assert "from sqlite:///demo-out/corral.db" in text
    assert top == "CVE-2026-1111" or "Potential compromise of EKS cluster" in text
    assert shot.stat().st_size > 50_000
    if os.environ.get("CORRAL_SCREENSHOT_UPDATE"):
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
