"""Import cost: importing Corral's core loads no cloud SDK, HTTP client, database driver or chat SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from corral.stores import open_store

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
    loaded: list[str] = json.loads(printed_by(script))
    return loaded


def printed_by(script: str, env: Mapping[str, str] | None = None) -> str:
    """What `script` prints when run in a fresh interpreter that sees only Corral's package (and `env`)."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin", **(env or {})},
    )
    return done.stdout


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


def test_the_command_line_loads_what_a_command_needs_when_it_runs() -> None:
    """`corral` starts without any source normalizer or the dashboard: every command pays only for its own."""
    vendors = tuple(f"corral.sources.{name}" for name in ("guardduty", "inspector", "defender", "scc", "relay"))
    loaded = loaded_after(["corral.cli"])
    assert [m for m in loaded if m.startswith((*vendors, "corral.dashboard."))] == []


def test_a_command_runs_without_pydantic(tmp_path: Path) -> None:
    """A command parses its options without pydantic: typer 0.29 and later import it on every run (about 100 ms)."""
    script = (
        "import sys\nfrom corral.cli import main\n"
        "sys.argv = ['corral', 'findings', 'list', '--limit', '1', '--json']\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\nelse:\n    code = 0\n"
        "print(code, 'typer' in sys.modules, 'pydantic' in sys.modules)"
    )
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    open_store(url).migrate()
    printed = printed_by(script, {"CORRAL_STORE": url, "CORRAL_CONFIG": ""})
    assert printed.splitlines()[-1] == "0 True False"


def test_the_coverage_matrix_loads_the_sources_on_first_use() -> None:
    """Which detectors serve a cell is each source's declaration: asking for one loads the sources."""
    script = (
        "import sys\nfrom corral import responsibility, traits\n"
        "responsibility.capabilities(traits.GKE, traits.APPLICATION, traits.THREAT_DETECTION)\n"
        "print('corral.sources.scc' in sys.modules)"
    )
    assert "corral.sources.scc" not in loaded_after(["corral.responsibility"])
    assert printed_by(script).strip() == "True"


def test_the_check_sees_heavy_imports() -> None:
    """The subprocess check does report a heavy package that was imported (here psycopg, via its store)."""
    assert "psycopg" in loaded_after(["corral.stores.postgresql"])


EVENTS = ROOT / "tests" / "events"
NORMALIZERS = {
    "aws": ("corral.sources.guardduty", "corral.sources.inspector"),
    "azure": ("corral.sources.defender",),
    "gcp": ("corral.sources.scc",),
}


def ingested_in(platform: str, event: Path, tmp_path: Path) -> tuple[list[str], list[str]]:
    """In a fresh isolated interpreter on `platform`, ingest `event` as an entry point does.

    The pipeline is built from the environment (configuration, a SQLite store) and ingests the
    event. Returns the source modules then in sys.modules, and its errors then its count of new findings.
    """
    script = (
        "import json, sys\nfrom corral.pipeline import Inbound, Pipeline\n"
        "pipeline = Pipeline.from_env()\npipeline.store.migrate()\n"
        f"result = pipeline.ingest([Inbound(data=json.load(open({str(event)!r})), ref='test')])\n"
        "got = [*result.errors, f'new {result.counts[\"new\"]}']\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('corral.sources.'))\n"
        "print(json.dumps([loaded, got]))"
    )
    env = {
        "PYTHONPATH": str(ROOT / "shared"),
        "PATH": "/usr/bin:/bin",
        platform: "corral-test",
        "CORRAL_STORE": f"sqlite:///{tmp_path / 'corral.db'}",
        "CORRAL_ALLOW_LOCAL_STORE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    loaded, got = json.loads(done.stdout)
    return loaded, got


@pytest.mark.parametrize(
    ("platform", "home", "event"),
    [
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            "aws",
            EVENTS / "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json",
        ),
        (
            "FUNCTIONS_WORKER_RUNTIME",
            "azure",
            EVENTS / "azure/defender/alert-k8s-privileged-container-aks.json",
        ),
        ("K_SERVICE", "gcp", EVENTS / "gcp/scc/gke-image-cve.notification.json"),
    ],
)
def test_an_entry_point_loads_only_its_home_clouds_normalizers(
    platform: str, home: str, event: Path, tmp_path: Path
) -> None:
    """On a cloud's platform, ingesting its own event imports no other cloud's source modules."""
    loaded, got = ingested_in(platform, event, tmp_path)
    assert got == ["new 1"]
    foreign = [m for cloud, names in NORMALIZERS.items() if cloud != home for m in names]
    assert [m for m in loaded if m.startswith(tuple(foreign))] == []
    assert set(NORMALIZERS[home][:1]) <= set(loaded)


def test_another_clouds_document_still_normalizes_on_a_platform(tmp_path: Path) -> None:
    """A document the home sources do not recognize loads the other sources and is normalized."""
    loaded, got = ingested_in("AWS_LAMBDA_FUNCTION_NAME", EVENTS / "gcp/scc/gke-image-cve.notification.json", tmp_path)
    assert got == ["new 1"]
    assert "corral.sources.scc" in loaded
