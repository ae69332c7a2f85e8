"""`corral ingest` end to end: a real process, a real SQLite file, the counts it prints."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[1] / "events"
GUARDDUTY = EVENTS / "aws" / "guardduty"
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]


def ingest(store: Path, *paths: Path) -> tuple[int, dict[str, int], str]:
    """Run `corral ingest --json`; return the exit status, the printed counts and stderr."""
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{store}", *map(str, paths)],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
        text=True,
    )
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def dead_letters(store: Path) -> list[dict[str, object]]:
    """Run `corral deadletter list --json`; return its rows."""
    listed = subprocess.run(
        [*CORRAL, "deadletter", "list", "--json", "--store", f"sqlite:///{store}"],
        capture_output=True,
        timeout=60,
        check=True,
        text=True,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_the_same_input_twice_reports_only_unchanged(tmp_path: Path) -> None:
    """Re-running the same ingest changes nothing and says so: every finding `unchanged`."""
    store = tmp_path / "corral.db"
    status, first, _ = ingest(store, EVENTS)
    assert first["new"] >= 30
    again_status, again, _ = ingest(store, EVENTS)
    assert again_status == status
    changed = {
        k: v for k, v in again.items() if k not in ("unchanged", "stale", "skipped", "signals", "failed", "sinks")
    }
    assert set(changed.values()) == {0}, again
    assert again["unchanged"] + again["stale"] == sum(
        first[k] for k in first if k not in ("skipped", "signals", "failed", "sinks")
    )
    assert (again["skipped"], again["failed"]) == (first["skipped"], first["failed"])


def test_an_older_version_after_a_newer_one_is_stale_and_keeps_the_newer(tmp_path: Path) -> None:
    """Feeding the first version after its update reports `stale` and the store keeps the update."""
    store = tmp_path / "corral.db"
    newer = GUARDDUTY / "eks-runtime-newbinaryexecuted-update.json"
    older = GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json"
    assert ingest(store, newer)[1]["new"] == 1
    status, counts, _ = ingest(store, older)
    assert status == 0
    assert counts["stale"] == 1 and counts["new"] == counts["updated"] == 0
    arn = json.loads(newer.read_text())["arn"]
    shown = subprocess.run(
        [*CORRAL, "findings", "show", arn, "--json", "--store", f"sqlite:///{store}"],
        capture_output=True,
        timeout=60,
        check=True,
        text=True,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    stored = json.loads(shown.stdout)
    assert stored["finding"]["finding_info"]["modified_time"] == 1746096535402  # the update's updatedAt
    assert [h["kind"] for h in stored["history"]] == ["new"]


def test_bad_input_lands_in_the_dead_letter_and_the_batch_goes_on(tmp_path: Path) -> None:
    """A truncated line is dead-lettered with its reason; the good deliveries around it are stored."""
    good = json.loads((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text())
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"detail-type": "GuardDuty Finding", "detail": {' + "\n")
    store = tmp_path / "corral.db"
    status, counts, stderr = ingest(store, path)
    assert status == 1
    assert (counts["new"], counts["failed"]) == (1, 1)
    assert stderr.startswith(f"corral: error: {path}#2: invalid JSON")
    [letter] = dead_letters(store)
    assert letter["ref"] == f"{path}#2" and letter["reason"].startswith("invalid JSON")


def test_a_json_string_document_is_one_consistent_error_and_never_parsed_again(tmp_path: Path) -> None:
    """A document that is a JSON string is refused as one, as `normalize` does, even when it holds an event."""
    encoded = tmp_path / "encoded.json"
    encoded.write_text(json.dumps((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text()))
    text = tmp_path / "text.json"
    text.write_text('"hello"\n')
    store = tmp_path / "corral.db"
    status, counts, stderr = ingest(store, encoded, text)
    assert status == 1
    assert (counts["new"], counts["failed"]) == (0, 2)
    assert stderr.splitlines() == [
        f"corral: error: {encoded}#1: expected a JSON object, got a string",
        f"corral: error: {text}#1: expected a JSON object, got a string",
    ]


def test_a_pretty_printed_file_cut_short_is_one_error_and_the_next_file_is_stored(tmp_path: Path) -> None:
    """`cat broken.json good.json | corral ingest -`: one error line, one dead letter of the broken file's bytes."""
    lines = json.dumps(json.loads((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text()), indent=2)
    broken = "".join(lines.splitlines(keepends=True)[:60])
    good = (GUARDDUTY / "eks-runtime-newbinaryexecuted-update.json").read_text()
    store = tmp_path / "corral.db"
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{store}", "-"],
        input=broken + good,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
        text=True,
    )
    assert proc.returncode == 1
    counts = json.loads(proc.stdout)
    assert (counts["new"], counts["failed"]) == (1, 1)
    [error] = proc.stderr.splitlines()
    assert error.startswith("corral: error: -#1: invalid JSON: unexpected end of data")
    [letter] = dead_letters(store)
    assert (letter["ref"], letter["sha256"]) == ("-#1", hashlib.sha256(broken.rstrip("\n").encode()).hexdigest())


def test_an_array_with_its_element_on_a_line_of_its_own_is_stored(tmp_path: Path) -> None:
    """`[`, one compact event, `]`, each on its own line: the event is stored and nothing fails."""
    event = json.loads((GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json").read_text())
    path = tmp_path / "array.json"
    path.write_text("[\n" + json.dumps(event) + "\n]\n")
    status, counts, stderr = ingest(tmp_path / "corral.db", path)
    assert (status, counts["new"], counts["failed"], stderr) == (0, 1, 0, "")


def test_a_store_that_is_down_is_one_clear_retryable_error(tmp_path: Path) -> None:
    """A PostgreSQL store nobody listens on gives one `corral: error:` line naming it, exit 1, no traceback."""
    proc = subprocess.run(
        [
            *CORRAL,
            "ingest",
            "--store",
            "postgresql://corral:s3cret-password@127.0.0.1:1/corral",
            str(GUARDDUTY / "eks-runtime-newbinaryexecuted-eventbridge.json"),
        ],
        capture_output=True,
        timeout=120,
        check=False,
        text=True,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corral: error: "), proc.stderr
    assert "127.0.0.1:1" in lines[0] and "s3cret-password" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_sink_no_route_names_is_said_on_stderr(tmp_path: Path) -> None:
    """`corral ingest` says, in one line, that a defined sink is named by no route; with every sink routed, nothing."""
    routed = f'[sinks."file:archive"]\npath = "{tmp_path / "archive.jsonl"}"\n[[routes]]\nto = ["file:archive"]\n'
    spare = f'[sinks."file:spare"]\npath = "{tmp_path / "spare.jsonl"}"\n'
    outputs = []
    for text in (routed, routed + spare):
        config = tmp_path / "corral.toml"
        config.write_text(text)
        proc = subprocess.run(
            [*CORRAL, "ingest", "--json", "--config", str(config), "--store", f"sqlite:///{tmp_path / 'c.db'}", "-"],
            input="",
            capture_output=True,
            timeout=120,
            check=False,
            env={**os.environ, "CORRAL_CONFIG": ""},
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stderr)
    assert outputs == ["", 'corral: sink "file:spare" is named by no route; it will receive nothing\n']
