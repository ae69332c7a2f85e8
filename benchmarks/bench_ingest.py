"""End-to-end `corral ingest` into SQLite, and the fan-out cost per finding.

- Ingest: N GuardDuty EventBridge deliveries (JSON lines, each a distinct finding) through the real
  CLI in a fresh process, with no sinks and with two file sinks, as a throughput ratio to a plain
  bulk INSERT of the same normalized documents into a SQLite table with their key columns,
  measured in the same run (goal >= 0.3x), with absolute findings/s and the process's peak memory
  at 20k and 100k (goal: flat, i.e. streaming). The same ratio in CPU time is printed beside it:
  on a shared machine it moves less with what else runs; so is the CPU time per finding beyond
  parsing and normalizing it (measured here too), which includes the process's start-up.
- Fan-out: the extra cost per finding of routing it to two file sinks (render + ledger rows +
  delivery records), as a ratio to normalizing the same finding.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from corral import config, ocsf
from corral.normalize import normalize
from corral.pipeline import Inbound, Pipeline, _fewer_collections
from corral.stores import _sql, open_store

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "events" / "aws" / "guardduty" / "eks-runtime-newbinaryexecuted-eventbridge.json"
SIZES = (20_000, 100_000)
FANOUT_FINDINGS = 3_000


def deliveries(count: int) -> list[bytes]:
    """`count` EventBridge deliveries, each a distinct finding (arn and id varied)."""
    event = json.loads(TEMPLATE.read_text())
    detail = event["detail"]
    arn, finding_id = detail["arn"], detail["id"]
    lines = []
    for n in range(count):
        suffix = f"{n:08x}"
        detail["id"] = finding_id[:-8] + suffix
        detail["arn"] = arn[: -len(finding_id)] + detail["id"]
        event["id"] = f"00000000-0000-4000-8000-{n:012x}"
        lines.append(orjson.dumps(event))
    return lines


def _plain_insert(documents: list[dict[str, Any]], path: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) to bulk-insert the documents with their key columns: the floor any store pays."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE plain (product TEXT, account TEXT, uid TEXT, severity INTEGER, status INTEGER,"
        " modified INTEGER, document TEXT, PRIMARY KEY (product, account, uid))"
    )
    rows = [
        (*ocsf.identity(d), d["severity_id"], d["status_id"], ocsf.modified_time(d), orjson.dumps(d).decode())
        for d in documents
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 500):
        with db:
            db.executemany("INSERT INTO plain VALUES (?, ?, ?, ?, ?, ?, ?)", rows[i : i + 500])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    return elapsed, cpu


def _schema_floor(documents: list[dict[str, Any]], path: Path) -> tuple[float, float]:
    """Seconds (wall, CPU) to insert the rows Corral writes for new findings, with no Python work.

    The same findings rows and history rows, bound ahead of time, into a store created by Corral
    (every index the reads use): the fastest any ingest could store these findings on this schema,
    so the plain INSERT ratio above which no normalizer or pipeline can go.
    """
    open_store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    rows = [_sql.plain_row(d, now=1) for d in documents]
    # The version key is a SHA-256 in hex, as the fingerprint is: a stand-in of the same size.
    history = [(*row[:3], 1, "new", row[17], row[16], row[6], row[7]) for row in rows]
    findings_sql = _sql.insert("findings", _sql.FINDING_COLUMNS, "sqlite")
    history_sql = _sql.insert("finding_history", _sql.HISTORY_COLUMNS, "sqlite")
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 500):
        with db:
            db.executemany(findings_sql, rows[i : i + 500])
            db.executemany(history_sql, history[i : i + 500])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    return elapsed, cpu


def _normalize_us(raw: list[bytes]) -> float:
    """CPU µs per delivery to parse and normalize it, as an ingest does: nothing kept, fewer collections.

    The rest of an ingest's CPU time is Corral's own (store, inventory, routing) and its start-up.
    """
    with _fewer_collections():
        started = time.process_time()
        for line in raw:
            for _ in normalize(orjson.loads(line)):
                pass
        return (time.process_time() - started) / len(raw) * 1e6


# The child reports its own peak from /proc (VmHWM of its own address space): getrusage would carry
# over the high-water mark of the (large) benchmark process it was forked from.
_MEASURED_CLI = (
    "import re, runpy, sys\n"
    "sys.argv = ['corral', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('corral.cli.__main__', run_name='__main__')\n"
    "finally:\n"
    "    status = open('/proc/self/status').read()\n"
    "    print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
)


TWO_FILE_SINKS = """
[sinks."file:a"]
kind = "file"
path = "{folder}/a.jsonl"

[sinks."file:b"]
kind = "file"
path = "{folder}/b.jsonl"
format = "ocsf"

[[routes]]
name = "all"
to = ["file:a", "file:b"]
"""


def _cli_ingest(input_path: Path, store: Path, config: Path | None = None) -> tuple[float, float, int, dict[str, int]]:
    """Seconds (wall, CPU), peak RSS (KiB) and the summary of a `corral ingest --json` process (with a config)."""
    command = [
        sys.executable,
        "-c",
        _MEASURED_CLI,
        "ingest",
        "--json",
        "--store",
        f"sqlite:///{store}",
        str(input_path),
    ]
    env = {**os.environ, "CORRAL_CONFIG": str(config) if config else ""}
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, capture_output=True, check=True, env=env)
    elapsed, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak = int(proc.stderr.decode().split()[-1])
    summary: dict[str, int] = orjson.loads(proc.stdout)
    return elapsed, cpu, peak, summary


def ingest_lines() -> list[str]:
    """The end-to-end ingest benchmark."""
    lines = ["ingest: `corral ingest` into SQLite vs a plain bulk INSERT of the same documents (goal >= 0.3x)"]
    print(lines[0], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "two-file-sinks.toml"
        config.write_text(TWO_FILE_SINKS.format(folder=tmp))
        for count in SIZES:
            raw = deliveries(count)
            input_path = Path(tmp) / f"in-{count}.jsonl"
            input_path.write_bytes(b"\n".join(raw) + b"\n")
            normalize_us = _normalize_us(raw)
            documents = [o.finding for line in raw for o in normalize(orjson.loads(line)) if o.finding]
            plain, plain_cpu = _plain_insert(documents, Path(tmp) / f"plain-{count}.db")
            floor, floor_cpu = _schema_floor(documents, Path(tmp) / f"floor-{count}.db")
            line = (
                f"  {count:7,} findings, schema floor  : the same rows into Corral's schema with no Python work"
                f"  ratio {plain / floor:5.3f}x  (CPU time {plain_cpu / floor_cpu:5.3f}x): no ingest can do better"
            )
            lines.append(line)
            print(line, flush=True)
            del documents, raw
            for label, sinks in (("no sinks", None), ("two file sinks", config)):
                store = Path(tmp) / f"corral-{count}-{label.replace(' ', '-')}.db"
                elapsed, cpu, peak_kib, summary = _cli_ingest(input_path, store, sinks)
                if summary["new"] != count:
                    raise SystemExit(f"bench: expected {count} new findings, got {summary}")
                line = (
                    f"  {count:7,} findings, {label:<14}: {count / elapsed:8,.0f} findings/s end to end  "
                    f"plain insert {count / plain:9,.0f} rows/s  ratio {plain / elapsed:5.3f}x  "
                    f"(CPU time {plain_cpu / cpu:5.3f}x)  peak RSS {peak_kib / 1024:6.1f} MiB  "
                    f"CPU {cpu / count * 1e6:5.1f} us/finding, {cpu / count * 1e6 - normalize_us:5.1f} beyond "
                    f"normalizing ({normalize_us:.1f})"
                )
                lines.append(line)
                print(line, flush=True)
    return lines


def fanout_lines() -> list[str]:
    """Cost per finding of routing to two file sinks, as a ratio to normalizing it."""
    raw = deliveries(FANOUT_FINDINGS)
    parsed = [orjson.loads(line) for line in raw]
    start = time.perf_counter()
    for doc in parsed:
        list(normalize(doc))
    normalize_cost = (time.perf_counter() - start) / len(parsed)
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, table in (
            ("store only", {}),
            (
                "two file sinks",
                {
                    "sinks": {
                        "file:a": {"kind": "file", "path": f"{tmp}/a.jsonl"},
                        "file:b": {"kind": "file", "path": f"{tmp}/b.jsonl", "format": "ocsf"},
                    },
                    "routes": [{"name": "all", "to": ["file:a", "file:b"]}],
                },
            ),
        ):
            store = f"sqlite:///{tmp}/{label.replace(' ', '-')}.db"
            pipeline = Pipeline.from_settings(config.parse({"store": store, **table}, "bench"), {})
            inbound = [Inbound(copy.deepcopy(doc), f"bench#{n}") for n, doc in enumerate(parsed)]
            start = time.perf_counter()
            pipeline.ingest(inbound)
            costs[label] = (time.perf_counter() - start) / len(parsed)
            pipeline.close()
    fanout = costs["two file sinks"] - costs["store only"]
    line = (
        f"fan-out: two file sinks add {fanout * 1e6:6.1f} us per finding (render + ledger), "
        f"{fanout / normalize_cost:4.2f}x the normalization of the same finding ({normalize_cost * 1e6:.1f} us)"
    )
    print(line, flush=True)
    return [line]


def main() -> list[str]:
    """Run both; return the printed lines."""
    return ingest_lines() + fanout_lines()


if __name__ == "__main__":
    main()
