"""Run in `python -I -S`: import one cloud's entry point from its artifact and deliver one event through it.

Usage: python -I -S cold_start.py SPEC.json

SPEC names the cloud, the folders that make up the platform's import path (in the order the
platform puts them there) and the event. Nothing from the test environment is importable: `-I`
ignores PYTHON* variables and the script's folder, `-S` skips the interpreter's own site-packages,
so only the standard library and the listed folders are on `sys.path`.

The last line printed is a JSON report: what the entry point returned, the ledger rows per sink
and state, and every module that was loaded from outside those folders and the standard library.
This file runs only there, never under pytest; it imports nothing from Corral's tests.
"""

from __future__ import annotations

import json
import site
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "corral-dev-guardduty"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:corral-dev-guardduty"
    log_group_name = "/aws/lambda/corral-dev-guardduty"
    log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left."""
        return 30_000


@dataclass
class RetryContext:
    """The Functions host's retry state."""

    retry_count: int = 0
    max_retry_count: int = 5


@dataclass
class FunctionContext:
    """The invocation context the Azure Functions Python worker passes."""

    retry_context: RetryContext
    invocation_id: str = "00000000-0000-4000-8000-000000000001"
    function_name: str = "defender_findings"


class Out:
    """An output binding holder, as the Azure worker provides for `func.Out[T]`."""

    def __init__(self) -> None:
        self.value: bytes | None = None

    def set(self, value: bytes) -> None:
        """Record what the function writes."""
        self.value = value


def deliver(cloud: str, event: bytes) -> tuple[Any, Any]:
    """Import the cloud's entry module as its platform does, call it with `event`; return (module, result)."""
    if cloud == "aws":
        import handler  # type: ignore[import-not-found]

        return handler, handler.eventbridge(json.loads(event), LambdaContext())
    if cloud == "azure":
        import azure.functions as func  # type: ignore[import-not-found]
        import function_app  # type: ignore[import-not-found]

        functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
        user_function = functions["defender_findings"].get_user_function()
        events = [func.EventHubEvent(body=event, sequence_number=1, offset="0")]
        kept = Out()
        user_function(events=events, kept=kept, context=FunctionContext(RetryContext()))
        return function_app, {"kept": kept.value is not None}
    if cloud == "gcp":
        import main  # type: ignore[import-not-found]
        from cloudevents.http import CloudEvent  # type: ignore[import-not-found]

        structured = json.loads(event)
        data = structured.pop("data")
        return main, main.scc_findings(CloudEvent(structured, data))
    raise SystemExit(f"unknown cloud {cloud!r}")


def foreign_modules(allowed: list[str]) -> list[str]:
    """Modules loaded from a file outside the allowed folders and the standard library."""
    roots = [*allowed, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    foreign = []
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if (
            where
            and Path(where).resolve() != Path(__file__).resolve()  # this script, as __main__ and __mp_main__
            and not any(str(Path(where).resolve()).startswith(str(Path(root).resolve())) for root in roots)
        ):
            foreign.append(f"{name} ({where})")
    return sorted(foreign)


def main() -> None:
    """Set up the path, deliver, report."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    # The platforms put the function's own folder first, then the dependencies.
    sys.path[:0] = spec["paths"]
    for folder in spec["site_dirs"]:
        site.addsitedir(folder)
    module, result = deliver(spec["cloud"], Path(spec["event"]).read_bytes())
    summary = module.PIPELINE.store.ledger_summary()
    ledger: dict[str, dict[str, int]] = {}
    for (sink, state), count in summary.counts.items():
        ledger.setdefault(sink, {})[state] = count
    module.PIPELINE.close()
    allowed = spec["paths"] + spec["site_dirs"]
    print(json.dumps({"result": result, "ledger": ledger, "foreign": foreign_modules(allowed)}, default=str))


if __name__ == "__main__":
    main()
