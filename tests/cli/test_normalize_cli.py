"""`corral normalize` end to end: real process, real files, the documented one-line errors."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ocsf import assert_valid

EVENTS = Path(__file__).resolve().parents[1] / "events"
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CORRAL, "normalize", *args], input=stdin, capture_output=True, timeout=120, check=False)


def good_delivery() -> dict[str, object]:
    """The first GuardDuty fixture that is an EventBridge event."""
    for path in sorted((EVENTS / "aws" / "guardduty").glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and doc.get("detail-type") == "GuardDuty Finding":
            return doc
    pytest.fail("no EventBridge GuardDuty fixture under tests/events/aws/guardduty")


def test_every_fixture_normalizes_to_valid_ocsf() -> None:
    """Every fixture folder goes through the CLI; every finding printed is valid OCSF 1.8.0."""
    proc = run(str(EVENTS))
    assert b"Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= 30
    for line in lines:
        assert_valid(json.loads(line))
    for line in proc.stderr.decode().splitlines():
        assert line.startswith(("corral: skip: ", "corral: error: ")), line


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("truncated", b'{"detail-type": "GuardDuty Finding", "detail": {', "invalid JSON"),
        ("unknown-envelope", b'{"hello": "world"}', "no source recognizes"),
        ("deep", b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        ("bad-utf8", b'{"a": "\xff\xfe"}', "not valid UTF-8"),
        ("bad-base64", json.dumps({"message": {"data": "%%%not-base64%%%", "messageId": "1"}}).encode(), "base64"),
    ],
)
def test_bad_input_gives_one_line_and_good_events_still_come_out(
    tmp_path: Path, name: str, payload: bytes, reason: str
) -> None:
    """A bad document gives one `corral: error: PATH#N: reason` line, exit 1, and the good ones still come out."""
    good = json.dumps(good_delivery()).encode()
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(good + b"\n" + payload + b"\n" + good + b"\n")
    proc = run(str(path))
    assert proc.returncode == 1
    errors = proc.stderr.decode().splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"corral: error: {path}#2: ")
    assert reason in errors[0]
    assert b"Traceback" not in proc.stderr
    assert len(proc.stdout.splitlines()) == 2


def test_a_finding_without_its_id_is_an_error(tmp_path: Path) -> None:
    """A GuardDuty finding stripped of its arn and id fails with a reason naming the finding."""
    event = good_delivery()
    detail = dict(event["detail"])  # type: ignore[arg-type]
    detail.pop("arn", None)
    detail.pop("id", None)
    path = tmp_path / "noid.json"
    path.write_text(json.dumps({**event, "detail": detail}))
    proc = run(str(path))
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith(f"corral: error: {path}#1: ")
    assert proc.stdout == b""


def test_a_nine_megabyte_line_is_rejected_and_the_rest_carries_on(tmp_path: Path) -> None:
    """A 9 MB line is rejected without a traceback; the lines around it still normalize."""
    good = json.dumps(good_delivery()).encode()
    huge = b'{"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    path = tmp_path / "huge.jsonl"
    path.write_bytes(good + b"\n" + huge + b"\n" + good + b"\n")
    proc = run(str(path))
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [f"corral: error: {path}#2: line is over 8 MiB"]
    assert len(proc.stdout.splitlines()) == 2


def test_stdin_and_pubsub_push_body() -> None:
    """A Pub/Sub push body on stdin is decoded; a broken one in the same array is its own error."""
    scc = next(p for p in sorted((EVENTS / "gcp" / "scc").glob("*.json")) if "finding" in json.loads(p.read_text()))
    data = base64.b64encode(scc.read_bytes()).decode()
    push = {"message": {"data": data, "messageId": "42"}, "subscription": "projects/p/subscriptions/s"}
    broken = {"message": {"data": "***", "messageId": "43"}}
    proc = run("-", stdin=json.dumps([push, broken]).encode())
    assert proc.returncode == 1
    finding = json.loads(proc.stdout.splitlines()[0])
    assert finding["metadata"]["uid"] == "42"
    assert proc.stderr.decode().startswith("corral: error: -#2: ")


def test_skips_are_reported_and_exit_zero(tmp_path: Path) -> None:
    """A CloudTrail event on the GuardDuty rule is a skip, not an error."""
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.guardduty",
        "account": "111122223333",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"eventName": "CreateSampleFindings"},
    }
    path = tmp_path / "ct.json"
    path.write_text(json.dumps(event))
    proc = run(str(path))
    assert proc.returncode == 0
    assert proc.stderr.decode().startswith(f"corral: skip: {path}#1: ")


def test_help_explains_every_command() -> None:
    """`corral --help` lists every command with a sentence."""
    proc = subprocess.run([*CORRAL, "--help"], capture_output=True, timeout=60, check=True, text=True)
    for command in ("normalize", "ingest", "findings", "deadletter", "store", "redrive"):
        assert command in proc.stdout


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_on_stdin_names_the_input_and_the_reason(damage: str) -> None:
    """What was read stands, and the damage is one line naming stdin, as for a file: never a bare 'Aborted.'."""
    packed = gzip.compress(json.dumps(good_delivery()).encode() + b"\n" + json.dumps(good_delivery()).encode())
    data = packed[: len(packed) // 2] if damage == "truncated" else packed[:2] + b"\x00" * 40
    proc = run("-", stdin=data)
    assert proc.returncode == 1
    errors = proc.stderr.decode().splitlines()
    assert errors and all(line.startswith("corral: error: -#") for line in errors)
    assert "cannot read:" in errors[-1]


@pytest.mark.parametrize("command", ["normalize", "ingest"])
def test_a_folders_other_files_are_named_on_one_safe_line(tmp_path: Path, command: str) -> None:
    """A folder's file that is not read gets one `corral: skipped` line, its name's control characters replaced."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "finding.json").write_text(json.dumps(good_delivery()))
    (folder / "notes\ncorral: error: forged.txt").write_text("not a delivery\n")
    store = ["--store", f"sqlite:///{tmp_path}/c.db"] if command == "ingest" else []
    proc = subprocess.run(
        [*CORRAL, command, *store, str(folder)],
        capture_output=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CORRAL_CONFIG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.decode().splitlines()
    name = f"{folder}/notes\ufffdcorral: error: forged.txt"
    assert lines == [f"corral: skipped {name}: not a .json, .jsonl or .ndjson file (nor its .gz)"]
