"""`corral redrive` says what it sent, what is still pending per sink, and when it is next due."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from corral import config
from corral.pipeline import Inbound, Pipeline
from tests.stores.factory import make_finding
from tests.support.fake_http import FakeHTTPServer, Reply

CORRAL = [sys.executable, "-m", "corral.cli.__main__"]
HOOK = "webhook:soar"


def write_config(tmp_path: Path, hook_url: str) -> Path:
    path = tmp_path / "corral.toml"
    path.write_text(
        f'store = "sqlite:///{tmp_path / "corral.db"}"\n'
        f'[sinks."{HOOK}"]\nurl = "{hook_url}"\nsecret_env = "HOOK_SECRET"\ntimeout = 5\n'
        f'[[routes]]\nname = "everything"\nto = ["{HOOK}"]\n'
    )
    return path


def redrive(config_path: Path, *flags: str) -> str:
    proc = subprocess.run(
        [*CORRAL, "redrive", "--config", str(config_path), *flags],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOOK_SECRET": "redrive-signing-secret-0123456789"},
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_redrive_reports_the_backlog_and_the_next_attempt(tmp_path: Path) -> None:
    """Rows the receiver refused stay pending; redrive names their sink, count and next attempt."""
    with FakeHTTPServer(Reply(503, headers={"Retry-After": "3600"})) as server:
        config_path = write_config(tmp_path, server.url + "/hook")
        settings = config.load(str(config_path), {})
        pipe = Pipeline.from_settings(settings, {"HOOK_SECRET": "redrive-signing-secret-0123456789"})
        try:
            pipe.ingest([Inbound(make_finding(f"r-{i}"), ref=str(i)) for i in range(3)])
        finally:
            pipe.close()
        # The receiver asked for an hour on the first: the other two wait unsent.
        assert len(server.requests) == 1
        report = json.loads(redrive(config_path, "--json"))
        # Not due yet: nothing is sent again.
        assert len(server.requests) == 1
        assert {k: report[k] for k in ("delivered", "pending", "dead", "dropped")} == dict.fromkeys(
            ("delivered", "pending", "dead", "dropped"), 0
        )
        [backlog] = report["backlog"]
        assert (backlog["sink"], backlog["pending"], backlog["due"], backlog["held"]) == (HOOK, 3, 0, 0)
        text = redrive(config_path)
    assert text.splitlines()[0] == "0 delivered, 0 pending, 0 dead, 0 dropped"
    assert f"{HOOK}: 3 pending, next attempt in 59m" in text or f"{HOOK}: 3 pending, next attempt in 1h 00m" in text
    assert "UTC" in text


def test_redrive_with_nothing_pending_says_so(tmp_path: Path) -> None:
    """An empty ledger: nothing sent, nothing pending."""
    with FakeHTTPServer(Reply(204)) as server:
        config_path = write_config(tmp_path, server.url + "/hook")
        assert redrive(config_path) == "0 delivered, 0 pending, 0 dead, 0 dropped\nNothing is pending.\n"
        assert json.loads(redrive(config_path, "--json"))["backlog"] == []
