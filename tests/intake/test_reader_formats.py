"""The reader decides document by document: a bad or oversized line costs that line alone."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from corral import reader
from corral.reader import MAX_DOCUMENT, Document

MIB = 1024 * 1024
DOCS = [{"n": n, "name": f"doc-{n}"} for n in range(4)]
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]


def read_bytes(tmp_path: Path, data: bytes, name: str = "input.jsonl") -> list[Document]:
    """Write `data` to a file and return every document read from it."""
    path = tmp_path / name
    path.write_bytes(data)
    return list(reader.read(str(path)))


def parsed(found: list[Document]) -> list[object]:
    """The parsed value of each document (None for errors)."""
    return [d.parsed for d in found]


@pytest.mark.parametrize(
    "bad",
    [b"{not json", b'{"a": 1', b"]", b'{"a": tru}', b"\xff\xfe", b'"unterminated', b"{" * 3000],
)
def test_a_bad_first_line_costs_that_line_alone(tmp_path: Path, bad: bytes) -> None:
    """Whatever the first line is, the lines after it are read as JSON lines."""
    data = bad + b"\n" + b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n"
    found = read_bytes(tmp_path, data)
    assert parsed(found) == [None, *DOCS]
    assert found[0].raw == bad
    assert found[0].error
    assert [d.ref.rpartition("#")[2] for d in found] == ["1", "2", "3", "4", "5"]


def test_a_first_line_over_8_mib_costs_that_line_alone(tmp_path: Path) -> None:
    """A first line over the limit is one error; every later line is read."""
    big = b'{"big": "' + b"x" * (MAX_DOCUMENT + MIB) + b'"}'
    data = big + b"\n" + b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n"
    found = read_bytes(tmp_path, data)
    assert parsed(found) == [None, *DOCS]
    assert found[0].error == "line is over 8 MiB"


@pytest.mark.parametrize("position", [0, 1, 3])
def test_bad_lines_anywhere_cost_themselves_only(tmp_path: Path, position: int) -> None:
    """A truncated line in the middle of JSON lines: that line is the error, at its own number."""
    lines = [orjson.dumps(d) for d in DOCS]
    lines.insert(position, b'{"cut": ')
    found = read_bytes(tmp_path, b"\n".join(lines) + b"\n")
    expected: list[object] = list(DOCS)
    expected.insert(position, None)
    assert parsed(found) == expected
    assert found[position].ref.endswith(f"#{position + 1}")


@pytest.mark.parametrize("separator", [b"", b"\n", b" ", b"\n\n"])
@pytest.mark.parametrize("indent", [True, False])
def test_concatenated_documents(tmp_path: Path, separator: bytes, indent: bool) -> None:
    """`cat *.json`: documents one after another, pretty-printed or not, with or without newlines between."""
    option = orjson.OPT_INDENT_2 if indent else 0
    pieces = [orjson.dumps(d, option=option) for d in DOCS]
    found = read_bytes(tmp_path, separator.join(pieces), "all.json")
    assert parsed(found) == DOCS
    assert [d.raw for d in found] == pieces


def test_concatenated_documents_with_one_broken(tmp_path: Path) -> None:
    """A broken pretty-printed document among good ones: the reader resynchronizes on the next document."""
    pieces = [orjson.dumps(d, option=orjson.OPT_INDENT_2) for d in DOCS]
    broken = b'{\n  "a": 1,\n  "b": \n}'
    data = b"\n".join([pieces[0], broken, *pieces[1:]]) + b"\n"
    found = read_bytes(tmp_path, data, "all.json")
    good = [d.parsed for d in found if d.error is None]
    assert good == DOCS
    assert any(d.error for d in found)


def test_stdin_takes_concatenated_documents(tmp_path: Path) -> None:
    """`cat *.json | corral ingest -` reads each document, not one dead letter."""
    data = b"".join(orjson.dumps(d, option=orjson.OPT_INDENT_2) + b"\n" for d in DOCS)
    found = list(reader.read_stream(io.BytesIO(data), "-"))
    assert parsed(found) == DOCS
    assert [d.ref for d in found] == [f"-#{n}" for n in range(1, 5)]


def test_an_array_of_documents_over_several_lines_gives_each_element_its_own_bytes(tmp_path: Path) -> None:
    """A pretty-printed array keeps each element's exact bytes (here `1.50` and an escaped é)."""
    data = b'[\n  {"price": 1.50},\n  {"name": "caf\\u00e9"},\n  {"a": 1, "a": 2}\n]\n'
    found = read_bytes(tmp_path, data, "array.json")
    assert [d.raw for d in found] == [b'{"price": 1.50}', b'{"name": "caf\\u00e9"}', b'{"a": 1, "a": 2}']


@pytest.mark.parametrize("suffix", [".json.gz", ".jsonl.gz", ".anything"])
def test_gzip_is_recognized_by_its_magic_bytes(tmp_path: Path, suffix: str) -> None:
    """Compressed JSON lines (GuardDuty's S3 export) are read like plain ones."""
    data = gzip.compress(b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n")
    assert parsed(read_bytes(tmp_path, data, f"export{suffix}")) == DOCS


def test_a_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    """A compressed file cut short: the documents before the cut, then one error."""
    data = gzip.compress(b"\n".join(orjson.dumps(d) for d in DOCS * 2000) + b"\n")
    found = read_bytes(tmp_path, data[: len(data) // 2], "cut.jsonl.gz")
    assert found[-1].error is not None
    assert found[-1].error.startswith("cannot read")
    assert all(d.error is None for d in found[:-1])
    assert len(found) > 1


def test_a_folder_walk_reads_json_files_and_reports_the_rest(tmp_path: Path) -> None:
    """.json, .jsonl, .ndjson and their .gz forms are read; README and PROVENANCE are skipped, and said so."""
    names = ["a.json", "b.jsonl", "c.ndjson", "d.json.gz", "e.JSONL.GZ", "sub/f.json"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}")
    for other in ("README.md", "PROVENANCE", "notes.txt", "sub/data.csv"):
        (tmp_path / other).write_text("not json")
    skipped: list[str] = []
    expanded = list(reader.expand([str(tmp_path)], on_skip=skipped.append))
    assert expanded == [str(p) for p in sorted(tmp_path / n for n in names)]
    assert sorted(skipped) == sorted(
        str(tmp_path / n) for n in ("README.md", "PROVENANCE", "notes.txt", "sub/data.csv")
    )


def test_the_cli_says_what_it_skipped_and_dead_letters_none_of_it(tmp_path: Path) -> None:
    """`corral ingest FOLDER` with a README: one line saying it was skipped, no failure."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "README.md").write_text("# samples\n")
    (folder / "PROVENANCE").write_text("from the docs\n")
    (folder / "empty.json").write_text("[]")
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{tmp_path}/c.db", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["failed"] == 0
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("corral: skipped")]
    assert len(skipped) == 2
    assert any("README.md" in line for line in skipped)
