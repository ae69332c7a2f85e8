"""A store or sink configured without its package fails at start-up with one line saying how to include it.

Each case runs in a fresh interpreter whose import system refuses the package (a `sys.meta_path`
finder that raises ModuleNotFoundError, as a missing install does), then starts Corral the way
an operator or a cloud function would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == BLOCKED or name.startswith(BLOCKED + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
for name in [m for m in sys.modules if m == BLOCKED or m.startswith(BLOCKED + ".")]:
    del sys.modules[name]
sys.meta_path.insert(0, Missing())
"""

CLI = (
    BLOCKER
    + """
from corral.cli import main
sys.argv = ["corral", "ingest", "--config", {config!r}, "-"]
main()
"""
)

ENTRY = (
    BLOCKER
    + """
import os
from corral.errors import ConfigError
from corral.pipeline import Pipeline
try:
    Pipeline.from_env({{"CORRAL_CONFIG": {config!r}}})
except ConfigError as exc:
    alone = exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    print(type(exc).__name__, alone, str(exc), sep="|")
"""
)

SQLITE = 'store = "sqlite:///{db}"\n'
CASES = {
    "postgresql-store": ("psycopg", 'store = "postgresql://corral@127.0.0.1:1/corral"\n', "psycopg[binary]",
                         "postgresql"),
    "dynamodb-store": ("boto3", 'store = "dynamodb://corral?region=eu-west-1"\n', "boto3", "aws"),
    "sentinel-sink": (
        "azure",
        SQLITE + '[sinks."sentinel:soc"]\nendpoint = "https://dce.example"\n'
        'rule_id = "dcr-00112233445566778899aabbccddeeff"\n',
        "azure-monitor-ingestion",
        "azure",
    ),
    "pubsub-relay": (
        "google.cloud",
        SQLITE + '[sinks."relay:hub"]\ntopic = "projects/corral-project/topics/corral-relay"\n',
        "google-cloud-pubsub",
        "gcp",
    ),
    "sqs-relay": (
        "boto3",
        SQLITE + '[sinks."relay:hub"]\nqueue_url = "https://sqs.eu-west-1.amazonaws.com/1/q"\nregion = "eu-west-1"\n',
        "boto3",
        "aws",
    ),
    "slack-sink": (
        "urllib3",
        SQLITE + '[sinks."slack:soc"]\nwebhook_url_env = "HOOK"\n',
        "urllib3",
        "chat",
    ),
}  # fmt: skip


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter with Corral importable and nothing else changed."""
    return subprocess.run(
        [sys.executable, "-c", script],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOOK": "https://hooks.slack.com/services/T/B/x", "HOME": str(tmp_path)},
    )


def config_file(tmp_path: Path, text: str) -> str:
    """Write corral.toml for one case."""
    path = tmp_path / "corral.toml"
    path.write_text(text.format(db=tmp_path / "corral.db"))
    return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_says_which_package_is_missing_in_one_line(case: str, tmp_path: Path) -> None:
    """`corral ingest` prints one error line naming the package and the extra, and no traceback."""
    blocked, text, requirement, extra = CASES[case]
    done = run(CLI.format(blocked=blocked, config=config_file(tmp_path, text)), tmp_path)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("corral: error: ")
    assert f"needs the Python package {requirement}, which is not installed" in line
    assert f"install corral[{extra}]" in line and "requirements.txt" in line
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("case", ["postgresql-store", "sentinel-sink"])
def test_cold_start_raises_one_configuration_error_without_the_import_chain(case: str, tmp_path: Path) -> None:
    """What an entry point builds at import fails with a ConfigError, not the ModuleNotFoundError behind it."""
    blocked, text, requirement, _extra = CASES[case]
    done = run(ENTRY.format(blocked=blocked, config=config_file(tmp_path, text)), tmp_path)
    assert done.returncode == 0, done.stderr
    kind, detached, message = done.stdout.strip().split("|")
    assert (kind, detached) == ("ConfigError", "True")
    assert requirement in message and "\n" not in message


def test_the_blocker_is_what_fails(tmp_path: Path) -> None:
    """Without the blocker the same configuration starts: the failures above are the missing package's."""
    text = CASES["slack-sink"][1]
    script = CLI.format(blocked="left_pad_never_installed", config=config_file(tmp_path, text))
    done = run(script, tmp_path)
    assert done.returncode == 0, done.stderr
