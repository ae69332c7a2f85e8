"""The dashboard and the report, rendered by a real headless Chromium; the server as a real process."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from corral import ocsf, traits
from corral.pipeline import Inbound, Pipeline, now_ms
from tests.coverage.conftest import Clock, deliveries

DAY = 86_400_000

ROOT = Path(__file__).resolve().parents[2]
APP = [sys.executable, "-m", "tests.coverage.cli_app"]
HOSTILE = "<script>alert(1)</script>"


def chromium() -> str:
    """Return the Chromium binary, failing in CI and skipping elsewhere when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (required in CI)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(url: str, tmp: Path, *, screenshot: Path | None = None) -> str:
    """Load `url` in headless Chromium; return the DOM after rendering (and save a screenshot)."""
    args = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}", "--window-size=1400,1800",
    ]  # fmt: skip
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, timeout=120, check=True)
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
        assert screenshot.stat().st_size > 10_000
    return dom.stdout.decode()


def hostile_finding(now: int) -> dict[str, object]:
    """A critical GKE finding whose title and cluster name are markup."""
    finding = ocsf.envelope(
        class_uid=ocsf.DETECTION, activity_id=ocsf.CREATE, time=now, severity_id=5, status_id=ocsf.STATUS_NEW,
        product={"name": "Security Command Center", "uid": "google.scc"}, delivery_id=None,
    )  # fmt: skip
    finding["cloud"] = ocsf.cloud("GCP", "corral-demo", "europe-west1")
    finding["finding_info"] = {
        "uid": "hostile-1",
        "title": HOSTILE,
        "modified_time": now,
        "traits": traits.classify(traits.GKE, traits.APPLICATION, traits.THREAT_DETECTION),
    }
    finding["resources"] = [{"type": "GKE Cluster", "name": "<img src=x onerror=alert(2)>"}]
    return finding


@pytest.fixture
def filled(pipeline: Pipeline, clock: Clock) -> Pipeline:
    """The store with each cloud's fixtures on a different recent day, and one hostile finding today.

    The served page reads the wall clock, so deliveries are dated relative to it: the trend then
    has days, and GuardDuty (five days quiet, window 7 h) shows as silent.
    """
    now = now_ms()
    for days_ago, pattern in ((5, "aws/guardduty/*.json"), (3, "azure/defender/*.json"), (1, "gcp/scc/*.json")):
        clock.now = now - days_ago * DAY
        pipeline.ingest(deliveries(pattern))
    clock.now = now
    pipeline.ingest([Inbound(hostile_finding(now), ref="test")])
    return pipeline


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    store_url: str, log: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `corral serve` on a free loopback port, its output in `log`; wait until it answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*APP, "serve", "--store", store_url, "--port", str(port), *extra],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, base
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(log.read_text()) from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("corral serve did not start")


@pytest.fixture
def served(filled: Pipeline, tmp_path: Path) -> Iterator[str]:
    """A running `corral serve` over the filled store; yields its base URL."""
    proc, base = start(filled.store.url, tmp_path / "serve.log")
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET a URL; return status, headers and body, for error statuses too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def check_dom(dom: str) -> None:
    """The rendered page holds the counts, a fixture title, the matrix, and the hostile title as text only."""
    assert "Open findings by cloud and severity" in dom
    assert 'data-total="GCP"' in dom
    assert "Execution: Added Binary Executed" in dom or "Reverse Shell" in dom
    assert 'id="coverage"' in dom and "provider-managed" in dom and "Cloud Run" in dom
    assert 'data-service="EKS" data-layer="application" data-task="threat detection">unhealthy<' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert 'data-service="GKE" data-layer="application" data-task="threat detection">covered<' in dom
    assert '<td class="silent" data-label="state">silent</td>' in dom
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()


def test_served_page_in_chromium(served: str, tmp_path: Path) -> None:
    """`corral serve` renders in Chromium with counts, a finding, the matrix, escaped hostile text and a CSP."""
    status, headers, body = get(served + "/")
    assert status == 200
    policy = headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
    dom = browse(served + "/", tmp_path, screenshot=tmp_path / "dashboard.png")
    check_dom(dom)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_report_file_in_chromium(filled: Pipeline, tmp_path: Path) -> None:
    """`corral report` writes one self-contained file with its CSP inside; Chromium renders it the same."""
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [*APP, "report", "--store", filled.store.url, "--out", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    text = out.read_text()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;' in text
    assert "src=" not in text.replace("onerror", "") or "&lt;img src=x" in text
    dom = browse(out.as_uri(), tmp_path, screenshot=tmp_path / "report.png")
    check_dom(dom)


def test_api_answers_json(served: str) -> None:
    """The JSON API pages findings with filters, shows one with history, and serves coverage, sources and counts."""
    status, _, body = get(served + "/api/findings?cloud=GCP&severity_at_least=critical&limit=5")
    assert status == 200
    page = json.loads(body)
    assert all(i["finding"]["cloud"]["provider"] == "GCP" and i["severity_id"] >= 5 for i in page["items"])
    hostile = [i for i in page["items"] if i["finding"]["finding_info"]["title"] == HOSTILE]
    assert len(hostile) == 1
    key = hostile[0]["key"]
    status, _, body = get(served + "/api/findings/" + "/".join(quote(k, safe="") for k in key))
    assert status == 200 and json.loads(body)["history"][0]["kind"] == "new"
    status, _, body = get(served + "/api/findings?limit=2")
    first = json.loads(body)
    assert len(first["items"]) == 2 and first["next_cursor"]
    status, _, body = get(served + "/api/findings?limit=2&cursor=" + quote(first["next_cursor"]))
    assert {tuple(i["key"]) for i in json.loads(body)["items"]}.isdisjoint({tuple(i["key"]) for i in first["items"]})
    coverage = json.loads(get(served + "/api/coverage?window_hours=24")[2])
    assert len(coverage["cells"]) == 72 and coverage["window_ms"] == 24 * 3_600_000
    sources = json.loads(get(served + "/api/sources")[2])
    assert {s["source"] for s in sources["sources"]} == {"aws.guardduty", "azure.defender", "gcp.scc"}
    counts = json.loads(get(served + "/api/counts")[2])
    assert sum(r["count"] for r in counts) > 20
    assert get(served + "/api/findings?limit=abc")[0] == 400
    assert get(served + "/api/nothing")[0] == 404


def test_non_loopback_bind_without_token_is_refused(filled: Pipeline) -> None:
    """Binding beyond loopback without --token-env exits with one error line and never listens."""
    proc = subprocess.run(
        [*APP, "serve", "--store", filled.store.url, "--host", "0.0.0.0", "--port", str(free_port())],
        check=False, cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("corral: error: serve: binding 0.0.0.0")


def test_a_public_host_without_token_is_refused(filled: Pipeline) -> None:
    """Behind a reverse proxy the loopback bind is no protection: --public-host needs --token-env too."""
    proc = subprocess.run(
        [*APP, "serve", "--store", filled.store.url, "--public-host", "corral.example.com", "--port", str(free_port())],
        check=False, cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("corral: error: serve: --public-host 'corral.example.com' answers")
    assert len(proc.stderr.decode().splitlines()) == 1


def test_a_public_host_is_served_with_a_token(filled: Pipeline, tmp_path: Path) -> None:
    proc, base = start(
        filled.store.url,
        tmp_path / "serve.log",
        "--public-host",
        "corral.example.com",
        "--token-env",
        "CORRAL_TEST_TOKEN",
        env={"CORRAL_TEST_TOKEN": "s3cret"},
    )
    try:
        assert get(base + "/api/counts")[0] == 401
        assert get(base + "/api/counts", {"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_token_is_required_when_set(filled: Pipeline, tmp_path: Path) -> None:
    """With --token-env, requests without the token get 401; Bearer and Basic with it get through."""
    proc, base = start(
        filled.store.url,
        tmp_path / "serve.log",
        "--token-env",
        "CORRAL_TEST_TOKEN",
        env={"CORRAL_TEST_TOKEN": "s3cret"},
    )
    try:
        assert get(base + "/api/counts")[0] == 401
        assert get(base + "/", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(base + "/api/counts", {"Authorization": "Bearer s3cret"})[0] == 200
        basic = base64.b64encode(b"me:s3cret").decode()
        assert get(base + "/", {"Authorization": f"Basic {basic}"})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
