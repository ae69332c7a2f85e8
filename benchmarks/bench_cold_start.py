"""Cold start of each entry point: import it and handle one sample delivery in a fresh process.

For each entry point the median of RUNS fresh processes is set beside the import time of its
platform's SDK alone, measured in the same run; Corral's own share is (entry - SDK) / SDK, with a
goal of at most 0.25. Run: `python benchmarks/bench_cold_start.py`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
GOAL = 0.25
EVENTS = ROOT / "tests" / "events"
GUARDDUTY = EVENTS / "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"
MIGRATE = "from corral.stores import open_store; import os; open_store(os.environ['CORRAL_STORE']).migrate()"

_LOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("entry", {path!r})
entry = importlib.util.module_from_spec(spec); sys.modules["entry"] = entry; spec.loader.exec_module(entry)
"""
_TIMED = "import time; _t0 = time.perf_counter()\n{body}\nprint('ELAPSED', time.perf_counter() - _t0)\n"

ENTRY_POINTS = {
    "aws eventbridge": (
        "AWS_LAMBDA_FUNCTION_NAME",
        "import boto3\nfrom aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "from aws_lambda_powertools.utilities.batch import BatchProcessor\n"
        # serverless.yml turns active tracing on, so Powertools' Tracer loads the X-Ray SDK there.
        "import aws_xray_sdk.core",
        _LOAD.format(path=str(ROOT / "functions/aws/handler.py"))
        + "import json\nclass C:\n    function_name='corral-bench'; memory_limit_in_mb=512; aws_request_id='1'\n"
        "    invoked_function_arn='arn:aws:lambda:us-east-1:111122223333:function:corral-bench'\n"
        f"entry.eventbridge(json.load(open({str(GUARDDUTY)!r})), C())",
    ),
    "azure defender_findings": (
        "FUNCTIONS_WORKER_RUNTIME",
        "import azure.functions",
        _LOAD.format(path=str(ROOT / "functions/azure/function_app.py")) + "import azure.functions as func\n"
        "class R: retry_count = 0; max_retry_count = 5\nclass C: retry_context = R()\n"
        "class O:\n    def set(self, v): pass\n"
        f"body = open({str(EVENTS / 'azure/defender/alert-k8s-privileged-container-aks.json')!r}, 'rb').read()\n"
        "entry.defender_findings(events=[func.EventHubEvent(body=body)], kept=O(), context=C())",
    ),
    "gcp scc_findings": (
        "K_SERVICE",
        "import functions_framework",
        _LOAD.format(path=str(ROOT / "functions/gcp/main.py"))
        + "import base64, json\nfrom cloudevents.http import CloudEvent\n"
        f"n = open({str(EVENTS / 'gcp/scc/gke-image-cve.notification.json')!r}, 'rb').read()\n"
        "data = {'message': {'data': base64.b64encode(n).decode(), 'messageId': '1'}, 'subscription': 's'}\n"
        "ce = CloudEvent({'id': '1', 'source': '//pubsub.googleapis.com/x', "
        "'type': 'google.cloud.pubsub.topic.v1.messagePublished'}, data)\n"
        "entry.scc_findings.__wrapped__(ce) if hasattr(entry.scc_findings, '__wrapped__') else entry.scc_findings(ce)",
    ),
}


def _time(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=code)], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith("ELAPSED "))
    return float(line.split()[1])


def _median(code: str, env: dict[str, str]) -> float:
    return statistics.median(_time(code, env) for _ in range(RUNS))


def main() -> list[str]:
    """Measure every entry point; return (and print) one line per entry point plus a header."""
    lines = [f"cold start: import + one delivery, median of {RUNS} fresh processes (goal: Corral share <= {GOAL})"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (platform_var, sdk, entry) in ENTRY_POINTS.items():
            db = Path(tmp) / f"{name.split()[0]}.db"
            base = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "POWERTOOLS_"))}
            env = base | {
                "CORRAL_STORE": f"sqlite:///{db}",
                "CORRAL_CONFIG": "",
                "CORRAL_ALLOW_LOCAL_STORE": "1",
                platform_var: "corral-bench",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_REGION": "us-east-1",
            }
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from corral.stores import open_store; open_store({env['CORRAL_STORE']!r}).migrate()",
                ],
                env=env,
                check=True,
            )
            sdk_s = _median(sdk, env)
            entry_s = _median(entry, env)
            share = (entry_s - sdk_s) / sdk_s
            verdict = "ok" if share <= GOAL else "over goal"
            lines.append(
                f"{name:26} entry {entry_s * 1000:7.1f} ms   SDK alone {sdk_s * 1000:7.1f} ms   "
                f"Corral share {share:5.2f} ({verdict})"
            )
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    main()
