"""`corral images`, `corral images show` and `corral findings list --running/--priority-at-least`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli import app
from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store
from tests.images.support import HOUR, digest, registry_cve, runtime_alert

D, E, F = digest("d"), digest("e"), digest("f")
NOW = time.time_ns() // 1_000_000


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A store where D runs on GCP by digest, F runs on AWS by tag only, and E never ran."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    findings = [
        registry_cve("d-high", D, "shopacr.azurecr.io/shop/web", tag="2.0", severity_id=4, modified=NOW - 2 * HOUR),
        registry_cve("e-critical", E, "shopacr.azurecr.io/shop/batch", severity_id=5, cve="CVE-2026-0005"),
        registry_cve("f-medium", F, "shopacr.azurecr.io/shop/api", tag="3.1", severity_id=3, cve="CVE-2026-0006"),
        runtime_alert("scc-d", {"uid": D, "name": "shopacr.azurecr.io/shop/web"}, seen=NOW - HOUR),
        runtime_alert(
            "gd-f",
            {"name": "shopacr.azurecr.io/shop/api", "tag": "3.1"},
            seen=NOW - HOUR,
            cloud="AWS",
            account="111122223333",
            cluster="payments",
            pod="api-5f6",
        ),
    ]
    pipeline = Pipeline(store, clock=lambda: NOW)
    pipeline.ingest([Inbound(f, ref=f"t{i}") for i, f in enumerate(findings)])
    store.close()
    return url


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"CORRAL_CONFIG": "", "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout  # the "showing X of N" line goes to stderr with --json


def test_images_are_ranked_by_their_worst_running_priority(store_url: str) -> None:
    ranked = [json.loads(line) for line in run("images", "--json", "--store", store_url).splitlines()]
    assert [r["digest"] for r in ranked] == [D, F, E]
    assert [(r["runtime"], r["probable"]) for r in ranked] == [
        ("running", False),
        ("running", True),
        ("registry_only", False),
    ]
    assert ranked[0]["worst"]["priority"] == "Medium"
    assert ranked[2]["worst"]["priority"] == "Low"
    assert ranked[2]["open_by_severity"] == {"C": 1}
    table = run("images", "--store", store_url)
    assert "[probable: by tag]" in table
    assert table.index("sha256:dddd") < table.index("sha256:ffff") < table.index("sha256:eeee")


def test_images_show_says_where_it_runs_and_ranks_its_cves(store_url: str) -> None:
    shown = run("images", "show", F[:20], "--store", store_url)
    assert "shopacr.azurecr.io/shop/api:3.1" in shown
    assert "AWS 111122223333 · payments/shop/api-5f6" in shown
    assert "probable: by tag shopacr.azurecr.io/shop/api:3.1" in shown
    assert "CVE-2026-0006" in shown
    data = json.loads(run("images", "show", D, "--store", store_url, "--json"))
    assert data["sightings"][0]["reported_by"] == "google.scc|corral-demo|scc-d"
    assert data["vulnerabilities"][0]["why"].startswith("high-severity vulnerability; image running in 1 workload")


def test_images_show_unknown_digest_is_one_line(store_url: str) -> None:
    result = CliRunner().invoke(app, ["images", "show", "sha256:0000", "--store", store_url], env={"CORRAL_CONFIG": ""})
    assert result.exit_code != 0
    assert "is not in the inventory" in str(result.exception)


def test_images_show_takes_a_bare_hex_prefix(store_url: str) -> None:
    """The digest's hex digits alone, any case, name the image as `sha256:` and the digits do."""
    bare = F.removeprefix("sha256:")[:12].upper()
    assert json.loads(run("images", "show", bare, "--store", store_url, "--json"))["digest"] == F


@pytest.mark.parametrize("given", ["", "  ", "sha256:", "sha256:xyz", "web:1.0", "f" * 65])
def test_images_show_refuses_what_is_no_digest(store_url: str, given: str) -> None:
    """An empty or non-hex digest is a one-line error, not the first of every image or a silent miss."""
    result = CliRunner().invoke(app, ["images", "show", given, "--store", store_url], env={"CORRAL_CONFIG": ""})
    assert result.exit_code != 0
    assert "give a digest" in str(result.exception)


def test_findings_list_running_and_priority_at_least(store_url: str) -> None:
    def uids(*args: str) -> list[str]:
        out = run("findings", "list", "--json", "--store", store_url, *args)
        return [json.loads(line)["finding"]["finding_info"]["uid"] for line in out.splitlines()]

    assert uids("--running") == ["d-high", "f-medium"]
    assert uids("--priority-at-least", "medium") == ["d-high", "f-medium"]
    assert uids("--priority-at-least", "high") == []
    assert uids("--priority-at-least", "low", "--cloud", "Azure") == ["d-high", "f-medium", "e-critical"]
    assert uids("--running", "--severity-at-least", "high") == ["d-high"]
