"""Upsert throughput of the SQL stores, as a ratio to a plain bulk INSERT of the same rows.

For each backend (a SQLite file; PostgreSQL on a throwaway server started like the tests' one)
the same findings go in batches of 500, into fresh databases of the same schema:

- baseline: a plain multi-row INSERT of each batch's rows into `findings` (rows built from the
  findings the same way the store builds them: indexed columns, fingerprint, JSON document),
  one transaction per batch, no reads, no history;
- upsert: `Store.upsert` of the same batches (all new), then every finding again (unchanged),
  then a newer version of every finding (updated).

Baseline and upsert alternate batch by batch (each phase's baseline into a fresh database), so
that both see the same machine load; the ratio is upsert findings/s over baseline findings/s,
measured in the same run. The goal is at least 0.5x. Run it with
`python benchmarks/bench_store_sql.py` or `make bench`.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from corral import ocsf, traits
from corral.stores import _sql, open_store
from corral.stores.base import Store

BATCH = 500
FINDINGS = 20_000
NOW = 1_717_000_000_000

_SERVICES = (
    (traits.EKS, "AWS"),
    (traits.ECS_FARGATE, "AWS"),
    (traits.AKS, "Azure"),
    (traits.CONTAINER_APPS, "Azure"),
    (traits.GKE, "GCP"),
    (traits.CLOUD_RUN, "GCP"),
)
_TYPES = (
    "Execution:Runtime/NewBinaryExecuted",
    "CryptoCurrency:Runtime/BitcoinTool.B",
    "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
    "K8S_PrivilegedContainer",
    "VULNERABILITY",
    "MISCONFIGURATION",
)


def realistic_findings(count: int, *, version: int = 0, seed: int = 7) -> list[ocsf.Finding]:
    """Return `count` findings shaped like normalized GuardDuty/Defender/SCC ones (about 3 KB each)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    return [realistic_finding(i, rng, version=version) for i in range(count)]


def realistic_finding(i: int, rng: random.Random, *, version: int = 0) -> ocsf.Finding:
    """Return finding number `i` of a realistic set (about 3 KB), drawing its random parts from `rng`."""
    from tests.stores.factory import BASE_TIME, make_finding

    service, cloud = _SERVICES[i % len(_SERVICES)]
    finding = make_finding(
        f"bench-{i:06d}-{rng.getrandbits(64):016x}",
        modified=BASE_TIME + version * 60_000,
        cloud=cloud,
        account=f"acct-{i % 40:03d}",
        severity_id=rng.randint(1, 5),
        finding_type=_TYPES[i % len(_TYPES)],
        service=service,
        cluster=f"cluster-{i % 25}",
        namespace=f"ns-{i % 60}",
        image=f"registry.example/team-{i % 30}/app-{i % 90}:{i % 7}.{version}",
        image_digest=f"sha256:{rng.getrandbits(256):064x}",
        title=f"Process {rng.choice(['xmrig', 'nc', 'curl', 'bash'])} ran in pod app-{i} (v{version})",
        delivery_id=f"delivery-{version}-{i}",
    )
    finding["unmapped"] = {
        "service": {
            "action": {"actionType": "KUBERNETES_API_CALL", "apiCallDetails": {"count": rng.randint(1, 99)}},
            "evidence": [{"threatIntelligenceDetails": [{"threatNames": ["Miner"], "threatListName": "Corral"}]}],
            "additionalInfo": {"value": "x" * 600, "type": "default"},
        },
        "resource": {
            "eksClusterDetails": {"arn": f"arn:aws:eks:us-east-1:1:cluster/c{i % 25}", "tags": [{"k": "env"}] * 5},
            "kubernetesDetails": {"kubernetesUserDetails": {"username": "system:serviceaccount:ns:sa"}},
        },
    }
    finding["evidences"][0]["process"] = {
        "name": "xmrig",
        "pid": 4000 + i % 1000,
        "cmd_line": "/usr/local/lib/.cache/xmrig --donate-level 1 -o pool.example:3333 " + "a" * 200,
        "file": {
            "path": "/usr/local/lib/.cache/xmrig",
            "hashes": [{"algorithm_id": 3, "value": f"{rng.getrandbits(256):064x}"}],
        },
    }
    return finding


def _batches(findings: Sequence[ocsf.Finding]) -> list[Sequence[ocsf.Finding]]:
    return [findings[i : i + BATCH] for i in range(0, len(findings), BATCH)]


def _rate(count: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return count / (time.perf_counter() - start)


class _Backend:
    """A way to make a fresh store and to plain-insert rows into the same kind of database."""

    name = ""

    def fresh(self) -> tuple[Store, Callable[[list[tuple[Any, ...]]], None], Callable[[], None]]:
        """Return a new migrated store, a plain inserter into its database, and a cleanup."""
        raise NotImplementedError


class _Sqlite(_Backend):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def fresh(self) -> tuple[Store, Callable[[list[tuple[Any, ...]]], None], Callable[[], None]]:
        import sqlite3

        self.count += 1
        path = self.folder / f"bench-{self.count}.db"
        store = open_store(f"sqlite:///{path}")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA synchronous = NORMAL")  # as the store sets it
        marks = ", ".join("?" * len(_sql.FINDING_COLUMNS))
        sql = f"INSERT INTO findings ({', '.join(_sql.FINDING_COLUMNS)}) VALUES ({marks})"  # noqa: S608 - fixed column names

        def insert(rows: list[tuple[Any, ...]]) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")

        def cleanup() -> None:
            db.close()
            store.close()

        return store, insert, cleanup


class _Postgres(_Backend):
    name = "postgresql"

    def __init__(self) -> None:
        from tests.support.postgres import PostgresServer

        self.server = PostgresServer()

    def fresh(self) -> tuple[Store, Callable[[list[tuple[Any, ...]]], None], Callable[[], None]]:
        import psycopg

        from corral.stores import postgresql

        url = self.server.create_database("bench")
        store = open_store(url)
        store.migrate()
        conn = psycopg.connect(url, autocommit=True)
        # The same one-statement multi-row INSERT the store uses, without ON CONFLICT, reads or history.
        sql = _insert_sql(postgresql)

        def insert(rows: list[tuple[Any, ...]]) -> None:
            with conn.transaction():
                conn.execute(sql, [list(column) for column in zip(*rows, strict=True)])

        def cleanup() -> None:
            conn.close()
            store.close()
            self.server.drop_database(url)

        return store, insert, cleanup


def _insert_sql(module: Any) -> str:
    text: str = module._INSERT_FINDINGS
    return text.split(" ON CONFLICT", maxsplit=1)[0]


def measure(backend: _Backend, findings: list[ocsf.Finding]) -> list[tuple[str, float, float]]:
    """Return (phase, plain INSERT findings/s, upsert findings/s) for the new, unchanged and updated phases.

    Baseline and upsert alternate batch by batch, so that both see the same machine load.
    """
    unchanged = [dict(f, metadata={**f["metadata"], "uid": "again"}) for f in findings]
    updated = realistic_findings(len(findings), version=1)
    store, _, cleanup = backend.fresh()
    results = []
    try:
        for phase, docs, now in (
            ("new", findings, NOW),
            ("unchanged", unchanged, NOW + 1),
            ("updated", updated, NOW + 2),
        ):
            _, insert, cleanup_plain = backend.fresh()
            plain = upsert = 0.0
            try:
                for batch in _batches(docs):
                    start = time.perf_counter()
                    insert([_sql.plain_row(f, now=now) for f in batch])
                    middle = time.perf_counter()
                    store.upsert(batch, now=now)
                    plain += middle - start
                    upsert += time.perf_counter() - middle
            finally:
                cleanup_plain()
            results.append((phase, len(docs) / plain, len(docs) / upsert))
    finally:
        cleanup()
    return results


def main(count: int = FINDINGS) -> list[str]:
    """Run the benchmark, print each line as it comes, and return the lines."""
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"SQL store upsert vs plain bulk INSERT of the same rows: {count} findings in batches of {BATCH}")
    findings = realistic_findings(count)
    size = sum(len(_sql.dumps(f)) for f in findings) / len(findings)
    say(f"document size: {size:,.0f} bytes on average")
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as folder:
        backends: list[_Backend] = [_Sqlite(Path(folder))]
        try:
            backends.append(_Postgres())
        except Exception as exc:  # noqa: BLE001 - any reason the server cannot start is reported, not fatal
            say(f"postgresql: skipped ({str(exc).splitlines()[0]})")
        for backend in backends:
            try:
                results = measure(backend, findings)
            finally:
                if isinstance(backend, _Postgres):
                    backend.server.remove()
            for phase, plain, upsert in results:
                say(
                    f"{backend.name:<11} {phase:<10} plain INSERT {plain:>8,.0f}/s"
                    f"  upsert {upsert:>8,.0f}/s  ratio {upsert / plain:.2f}x"
                )
    return lines


if __name__ == "__main__":
    # Run as a script from the repository root: make `tests.*` (factory, server helper) importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
