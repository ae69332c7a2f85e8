"""The file sink: JSON lines appended, one per delivery, fsync'd per batch, safe with hostile text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.sinks import build, family
from corral.sinks import file as file_sink
from tests.support.permissions import loose_umask, mode  # noqa: F401  (loose_umask: the fixture)
from tests.support.sinks import HOSTILE_TEXTS, check_golden, make_delivery

SINK = "file:demo"


def _sink(path: Path, fmt: str = "corral") -> file_sink.FileSink:
    return file_sink.from_config(SINK, {"kind": "file", "path": str(path), "format": fmt}, {})


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_render_corral_format_matches_golden() -> None:
    """The default line is the idempotency key, the change kind and the finding."""
    check_golden("file", "corral.jsonl", file_sink.render(make_delivery(SINK, change="escalated")))


def test_render_ocsf_format_matches_golden() -> None:
    """format = "ocsf" writes the bare OCSF finding."""
    check_golden("file", "ocsf.jsonl", file_sink.render(make_delivery(SINK), "ocsf"))


def test_send_appends_one_line_per_delivery(tmp_path: Path) -> None:
    """Two batches append three lines, in order, each the delivery it stands for."""
    path = tmp_path / "out" / "findings.jsonl"
    sink = _sink(path)
    first = [make_delivery(SINK, version="a" * 64), make_delivery(SINK, version="b" * 64, change="closed")]
    second = [make_delivery(SINK, version="c" * 64, uid="other")]
    assert all(r.ok for r in sink.send(first))
    results = sink.send(second)
    assert [r.version for r in results] == ["c" * 64]
    assert results[0].ok
    lines = _lines(path)
    assert [line["idempotency_key"] for line in lines] == ["a" * 64, "b" * 64, "c" * 64]
    assert [line["change"] for line in lines] == ["new", "closed", "new"]
    assert lines[2]["finding"] == second[0].finding


def test_ocsf_format_lines_are_the_findings(tmp_path: Path) -> None:
    """Each line of the ocsf format parses back to exactly the finding sent."""
    path = tmp_path / "ocsf.jsonl"
    delivery = make_delivery(SINK, severity_id=5)
    assert _sink(path, "ocsf").send([delivery])[0].ok
    assert _lines(path) == [delivery.finding]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_stays_on_one_line(tmp_path: Path, text: str) -> None:
    """Newlines, NUL, quotes and huge titles cannot split or corrupt a line; text round-trips exactly."""
    path = tmp_path / "hostile.jsonl"
    delivery = make_delivery(SINK, title=text, desc=text, namespace=text)
    assert _sink(path).send([delivery, make_delivery(SINK, version="d" * 64)])[0].ok
    raw = path.read_bytes()
    assert raw.count(b"\n") == 2
    lines = _lines(path)
    assert lines[0]["finding"]["finding_info"]["title"] == text  # type: ignore[index]
    assert lines[0]["finding"] == delivery.finding


def test_unrenderable_finding_fails_alone_and_permanently(tmp_path: Path) -> None:
    """A finding orjson cannot encode fails for good; the rest of the batch is still written."""
    path = tmp_path / "x.jsonl"
    bad = make_delivery(SINK, version="e" * 64, extra={"count": 2**70})
    good = make_delivery(SINK, version="f" * 64)
    results = _sink(path).send([bad, good])
    assert [r.version for r in results] == ["e" * 64, "f" * 64]
    assert not results[0].ok
    assert results[0].permanent
    assert results[1].ok
    assert [line["idempotency_key"] for line in _lines(path)] == ["f" * 64]


@pytest.mark.usefixtures("loose_umask")
def test_a_new_file_is_owner_only_in_owner_only_folders(tmp_path: Path) -> None:
    """Under umask 022 the file the sink creates is 0600 and the folders it makes for it 0700; appends keep it so."""
    path = tmp_path / "made" / "for-it" / "siem.jsonl"
    sink = _sink(path)
    assert sink.send([make_delivery(SINK)])[0].ok
    assert sink.send([make_delivery(SINK, version="d" * 64)])[0].ok
    assert len(_lines(path)) == 2
    assert (mode(path), mode(path.parent), mode(tmp_path / "made")) == (0o600, 0o700, 0o700)


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_file_and_folder_keep_their_modes(tmp_path: Path) -> None:
    """A file (and folder) the operator created is appended to as it is: its mode is the operator's choice."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    path = folder / "siem.jsonl"
    path.write_bytes(b'{"earlier":1}\n')
    path.chmod(0o640)
    assert _sink(path).send([make_delivery(SINK)])[0].ok
    assert len(_lines(path)) == 2
    assert (mode(path), mode(folder)) == (0o640, 0o750)


def test_write_failure_is_retryable_for_every_delivery(tmp_path: Path) -> None:
    """When the file cannot be written (its parent is a file), every delivery fails, retryably."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    results = _sink(blocker / "findings.jsonl").send([make_delivery(SINK), make_delivery(SINK, version="1" * 64)])
    assert [r.ok for r in results] == [False, False]
    assert not any(r.permanent for r in results)
    assert all(r.error and r.error.startswith(SINK) for r in results)


def test_each_batch_is_fsynced_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch reaches the disk: one fsync per batch, after the whole batch is written."""
    path = tmp_path / "sync.jsonl"
    seen: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        seen.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(file_sink.os, "fsync", counting_fsync)
    _sink(path).send([make_delivery(SINK), make_delivery(SINK, version="2" * 64)])
    assert seen == [path.stat().st_size]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "path"),
        ({"path": ""}, "path"),
        ({"path": 42}, "path"),
        ({"path": "a\x00b"}, "path"),
        ({"path": "out.jsonl", "format": "csv"}, "format"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, object], key: str) -> None:
    """Invalid settings raise ConfigError naming sinks.<id>.<key>."""
    with pytest.raises(ConfigError, match=rf"^sinks\.{SINK}\.{key}: "):
        file_sink.from_config(SINK, settings, {})


def test_directory_path_is_refused(tmp_path: Path) -> None:
    """A path that is a directory is refused at start-up."""
    with pytest.raises(ConfigError, match=r"\.path: .* is a directory"):
        file_sink.from_config(SINK, {"path": str(tmp_path)}, {})


def test_registry_builds_the_file_sink(tmp_path: Path) -> None:
    """The registry builds this sink, and its family agrees with the registry's."""
    sink = build(SINK, {"kind": "file", "path": str(tmp_path / "r.jsonl")}, {})
    assert sink.id == SINK
    assert sink.family == family("file") == file_sink.FAMILY
