"""Cold start of each entry point, from the artifact as it ships: import it and handle one delivery.

`make package` builds each cloud's artifact (function code, Corral and, for AWS, the vendored
dependencies, all with compiled bytecode, as deployed); each entry point then runs from its
artifact folder in fresh processes that write no bytecode (function code folders are read-only).
Every run makes the same delivery to a copy of the same freshly migrated SQLite store, so the
finding is new in every run (the first run's work, not a redelivery's).
The median of RUNS is set beside a fixed SDK baseline measured the same way in the same run:

- AWS: Powertools' Logger, Metrics and Tracer (constructed, as the handler does), its batch
  utility and its Lambda context type; not boto3, which the handler never imports;
- Azure: `azure.functions`;
- Google: `functions_framework`.

Corral's own share is (entry - SDK) / SDK in wall-clock time, goal at most 0.25; both are printed
in ms too. Beside it, for reading a run on a shared machine, the same share in CPU time: a process
that waits for a core loses wall-clock time that is nobody's cost, and no CPU time. The
difference is Corral's only if the baseline loads every SDK module the entry point does: each run
first compares the two processes' modules, and stops if the entry point loads an SDK module that
the baseline does not. It also names the other libraries the entry point loads (Corral's cost).
Run: `python -m benchmarks bench_cold_start` (or `make bench`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 21
GOAL = 0.25
EVENTS = ROOT / "tests" / "events"
GUARDDUTY = EVENTS / "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"
MIGRATE = "from corral.stores import open_store; import os; open_store(os.environ['CORRAL_STORE']).migrate()"

_LOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("entry", {path!r})
entry = importlib.util.module_from_spec(spec); sys.modules["entry"] = entry; spec.loader.exec_module(entry)
"""
_TIMED = (
    "import time; _t0, _c0 = time.perf_counter(), time.process_time()\n{body}\n"
    "print('ELAPSED', time.perf_counter() - _t0, time.process_time() - _c0)\n"
)
_MODULES = "\nimport json, sys\nprint('MODULES', json.dumps(sorted(sys.modules)))\n"

# Where `make package` leaves each cloud's unpacked artifact.
ARTIFACTS = {"aws": ROOT / "build/aws", "azure": ROOT / "dist/azure/corral-azure", "gcp": ROOT / "build/gcp"}
PACKAGE_TARGETS = ("dist/aws/corral-aws.zip", "package-azure", "package-gcp")

# Per entry point: the platform variable, the SDK baseline, the entry point's import and delivery,
# and the packages that make up the SDK side (for the check that the baseline loads all of it).
ENTRY_POINTS = {
    "aws eventbridge": (
        "AWS_LAMBDA_FUNCTION_NAME",
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "from aws_lambda_powertools.utilities.batch import BatchProcessor\n"
        "from aws_lambda_powertools.utilities.typing import LambdaContext\n"
        "Logger(service='corral'); Metrics(namespace='Corral', service='corral'); Tracer(service='corral')",
        _LOAD.format(path=str(ARTIFACTS["aws"] / "handler.py"))
        + "import json\nclass C:\n    function_name='corral-bench'; memory_limit_in_mb=512; aws_request_id='1'\n"
        "    invoked_function_arn='arn:aws:lambda:us-east-1:111122223333:function:corral-bench'\n"
        f"entry.eventbridge(json.load(open({str(GUARDDUTY)!r})), C())",
        ("aws_lambda_powertools", "aws_xray_sdk", "jmespath"),
    ),
    "azure defender_findings": (
        "FUNCTIONS_WORKER_RUNTIME",
        "import azure.functions",
        _LOAD.format(path=str(ARTIFACTS["azure"] / "function_app.py")) + "import azure.functions as func\n"
        "class R: retry_count = 0; max_retry_count = 5\nclass C: retry_context = R()\n"
        "class O:\n    def set(self, v): pass\n"
        f"body = open({str(EVENTS / 'azure/defender/alert-k8s-privileged-container-aks.json')!r}, 'rb').read()\n"
        "entry.defender_findings(events=[func.EventHubEvent(body=body)], kept=O(), context=C())",
        ("azure.functions", "werkzeug"),
    ),
    "gcp scc_findings": (
        "K_SERVICE",
        "import functions_framework",
        _LOAD.format(path=str(ARTIFACTS["gcp"] / "main.py"))
        + "import base64, json\nfrom cloudevents.http import CloudEvent\n"
        f"n = open({str(EVENTS / 'gcp/scc/gke-image-cve.notification.json')!r}, 'rb').read()\n"
        "data = {'message': {'data': base64.b64encode(n).decode(), 'messageId': '1'}, 'subscription': 's'}\n"
        "ce = CloudEvent({'id': '1', 'source': '//pubsub.googleapis.com/x', "
        "'type': 'google.cloud.pubsub.topic.v1.messagePublished'}, data)\n"
        "entry.scc_findings.__wrapped__(ce) if hasattr(entry.scc_findings, '__wrapped__') else entry.scc_findings(ce)",
        ("functions_framework", "flask", "werkzeug", "cloudevents", "click", "jinja2", "itsdangerous"),
    ),
}


def _time(code: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds `code` takes in a fresh process: wall-clock, then CPU."""
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=code)], env=env, capture_output=True, text=True, check=True, cwd=cwd
    ).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith("ELAPSED "))
    wall, cpu = line.split()[1:3]
    return float(wall), float(cpu)


def _loaded(code: str, env: dict[str, str], cwd: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + _MODULES], env=env, capture_output=True, text=True, check=True, cwd=cwd
    ).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith("MODULES "))
    return set(json.loads(line.split(" ", 1)[1]))


def beyond_sdk(sdk: str, entry: str, packages: tuple[str, ...], env: dict[str, str], cwd: Path) -> list[str]:
    """The libraries the entry point loads beyond its baseline; stop if one of them is the SDK's own.

    An SDK module loaded by the entry point alone would count as Corral's time: the baseline must
    then import it too.
    """
    extra = _loaded(entry, env, cwd) - _loaded(sdk, env, cwd)
    missing = sorted(m for m in extra if any(m == p or m.startswith(f"{p}.") for p in packages))
    if missing:
        raise SystemExit(f"bench: the SDK baseline does not load {', '.join(missing)}; add them to it")
    tops = {m.partition(".")[0] for m in extra if not m.startswith(("corral", "entry"))}
    return sorted(tops - set(sys.stdlib_module_names) - {"_sqlite3"})


def _medians(
    sdk: str, entry: str, env: dict[str, str], cwd: Path, store: Callable[[], None]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median seconds (wall-clock, CPU) of the SDK baseline and of the entry point, their runs alternating.

    Alternating puts both under the same load: on a shared machine, a batch of one then a batch of
    the other can see very different neighbours. `store` readies the store before each entry run
    (untimed), so that every run makes the same delivery to the same store.
    """
    sdk_times: list[tuple[float, float]] = []
    entry_times: list[tuple[float, float]] = []
    for _ in range(RUNS):
        sdk_times.append(_time(sdk, env, cwd))
        store()
        entry_times.append(_time(entry, env, cwd))

    def median(times: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)

    return median(sdk_times), median(entry_times)


def _fresh(migrated: Path, db: Path) -> None:
    """Make `db` a copy of the freshly migrated store: the delivery is new to it, as in the first run."""
    for leftover in (db, db.with_name(f"{db.name}-wal"), db.with_name(f"{db.name}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(migrated, db)


def package() -> None:
    """Build every artifact as `make package` does (offline: the AWS wheels come from pip's configured index)."""
    make = shutil.which("make")
    if make is None:
        raise SystemExit("bench: cold start needs make to build the artifacts")
    subprocess.run([make, "--no-print-directory", *PACKAGE_TARGETS], cwd=ROOT, check=True, capture_output=True)


def _corral_path(env: dict[str, str], cwd: Path) -> str:
    code = "import corral, sys; print(corral.__file__)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> list[str]:
    """Measure every entry point; return (and print) one line per entry point plus a header."""
    lines = [
        f"cold start from the packaged artifacts: import + one delivery, median of {RUNS} fresh processes"
        f" (goal: Corral share <= {GOAL})"
    ]
    print(lines[0], flush=True)
    package()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (platform_var, sdk, entry, packages) in ENTRY_POINTS.items():
            artifact = ARTIFACTS[name.split()[0]]
            db = Path(tmp) / f"{name.split()[0]}.db"
            base = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "POWERTOOLS_"))}
            env = base | {
                "CORRAL_STORE": f"sqlite:///{db}",
                "CORRAL_CONFIG": "",
                "CORRAL_ALLOW_LOCAL_STORE": "1",
                platform_var: "corral-bench",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_REGION": "us-east-1",
                # The artifact first, as the platform puts the function folder first; no bytecode
                # is written (function folders are read-only), the artifact's own is used.
                "PYTHONPATH": str(artifact),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            loaded_from = _corral_path(env, artifact)
            if not loaded_from.startswith(str(artifact)):
                raise SystemExit(f"bench: {name} would load Corral from {loaded_from}, not its artifact")
            store = functools.partial(_fresh, db.with_name(f"migrated-{db.name}"), db)
            subprocess.run(
                [sys.executable, "-c", MIGRATE], env=env | {"CORRAL_STORE": f"sqlite:///{store.args[0]}"}, check=True
            )
            store()
            others = beyond_sdk(sdk, entry, packages, env, artifact)
            (sdk_s, sdk_cpu), (entry_s, entry_cpu) = _medians(sdk, entry, env, artifact, store)
            share = (entry_s - sdk_s) / sdk_s
            verdict = "ok" if share <= GOAL else "over goal"
            line = (
                f"{name:26} entry {entry_s * 1000:7.1f} ms   SDK alone {sdk_s * 1000:7.1f} ms   "
                f"Corral {(entry_s - sdk_s) * 1000:6.1f} ms, share {share:5.2f} ({verdict})"
                f" [CPU share {(entry_cpu - sdk_cpu) / sdk_cpu:5.2f}]"
                f"; other libraries: {', '.join(others) or 'none'}"
            )
            print(line, flush=True)
            lines.append(line)
    return lines


if __name__ == "__main__":
    main()
