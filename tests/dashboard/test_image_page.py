"""The image page: opened from a finding page in the real Chromium, ranked CVEs linking back, hostile text inert."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.dashboard import server
from corral.dashboard.page import finding_path
from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import Running
from tests.images.support import HOUR, digest, registry_cve, runtime_alert

D, E = digest("d"), digest("e")
NOW = time.time_ns() // 1_000_000
HOSTILE_REPO = "shopacr.azurecr.io/<img src=x onerror=alert(5)>"
HOSTILE_CLUSTER = "<script>alert(6)</script>"
RUNTIME_KEY = ("google.scc", "corral-demo", "scc-d")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Running]:
    """A dashboard over a store where D runs on GCP (in a cluster named with markup) and has two CVEs,
    the critical one in a registry repository named with markup; E is only in a registry."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    findings = [
        registry_cve("d-high", D, "shopacr.azurecr.io/shop/web", tag="2.0", severity_id=4, modified=NOW - 2 * HOUR),
        registry_cve("d-critical", D, HOSTILE_REPO, severity_id=5, cve="CVE-2026-0009", exploit=True),
        registry_cve("e-medium", E, "shopacr.azurecr.io/shop/batch", severity_id=3, cve="CVE-2026-0005"),
        runtime_alert("scc-d", {"uid": D, "name": "shopacr.azurecr.io/shop/web"}, seen=NOW - HOUR,
                      cluster=HOSTILE_CLUSTER),
    ]  # fmt: skip
    Pipeline(store, clock=lambda: NOW).ingest([Inbound(f, ref=f"t{i}") for i, f in enumerate(findings)])
    store.close()
    running = Running(server.Dashboard(server.StorePool(lambda: open_store(url)), {}, lambda: NOW))
    yield running
    running.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium driven over its DevTools pipe."""
    running = Browser(tmp_path / "chromium-profile")
    try:
        yield running
    finally:
        running.close()


def test_image_page_opens_from_a_finding_page(site: Running, browser: Browser) -> None:
    """The finding's image link opens the image page: CVEs most urgent first, each linking to its finding page,
    where it runs and in which registries; attacker markup in names stays text."""
    browser.open(site.base + finding_path(RUNTIME_KEY))
    href = f"/images/{D}"
    browser.click(f'#context a[href="{href}"]')
    assert browser.evaluate("location.pathname") == href
    assert D in browser.evaluate("document.querySelector('h1').textContent")
    assert "running in 1 workload (GCP)" in browser.evaluate("document.querySelector('header').innerText")
    ranked: list[dict[str, Any]] = browser.evaluate(
        "[...document.querySelectorAll('#vulnerabilities tbody tr')].map(r => ({"
        "priority: r.querySelector('td[data-label=priority]').textContent,"
        "cves: r.querySelector('td[data-label=CVEs]').textContent,"
        "href: r.querySelector('td[data-label=finding] a').getAttribute('href')}))"
    )
    assert [r["cves"] for r in ranked] == ["CVE-2026-0009", "CVE-2026-0001"]
    assert ranked[0]["priority"].startswith("Critical")
    assert ranked[1]["href"] == finding_path(("microsoft.defender_for_cloud", "00000000-0000-0000-0000-000000000000",
                                              "d-high"))  # fmt: skip
    running = browser.evaluate("document.getElementById('running').innerText")
    assert HOSTILE_CLUSTER in running and "google.scc" in running
    registries = browser.evaluate("document.getElementById('registries').innerText")
    assert "shopacr.azurecr.io/shop/web:2.0" in registries and "<img src=x onerror=alert(5)>" in registries
    assert browser.evaluate("document.querySelectorAll('script, img').length") == 0
    browser.click(f'#vulnerabilities a[href="{ranked[0]["href"]}"]')
    assert browser.evaluate("location.pathname") == ranked[0]["href"]
    assert browser.evaluate("document.querySelector('h1').textContent") == f"CVE-2026-0009 in {HOSTILE_REPO}"
    assert browser.evaluate("document.querySelectorAll('script, img').length") == 0


def test_finding_without_a_known_image_has_no_image_link(site: Running, browser: Browser) -> None:
    """An image link appears only where the inventory knows the digest, so it never leads to a 404."""
    browser.open(site.base + f"/images/{E}")
    assert "No source has seen this image running." in browser.evaluate("document.body.innerText")
    browser.open(site.base + finding_path(RUNTIME_KEY))
    assert browser.evaluate("document.querySelectorAll('a[href^=\"/images/\"]').length") == 1


def _get(url: str) -> tuple[int, str, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], {}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/images/latest", 400),
        ("/images/sha256:" + "d" * 63, 400),
        ("/images/sha256:" + "g" * 64, 400),
        ("/images/sha256:" + "d" * 64 + "%00", 400),
        ("/images/%3Cscript%3E", 400),
        ("/images/", 400),
        ("/images/" + "sha256:" + "a" * 64, 404),
    ],
)
def test_bad_or_unknown_digest_is_a_json_error(site: Running, path: str, status: int) -> None:
    """A malformed digest is a 400 and an unknown one a 404, each as JSON saying why."""
    code, kind, body = _get(site.base + path)
    assert (code, kind) == (status, "application/json")
    assert body["error"]


def test_known_digest_in_capitals_is_served(site: Running) -> None:
    """A digest typed in capitals names the same image."""
    assert _get(site.base + "/images/" + D.upper())[0] == 200
