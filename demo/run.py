"""`make demo`: Corral's main job, end to end, on this machine.

The real entry points of all three clouds receive bundled deliveries the way their platforms
would hand them over:

- AWS: the Lambda handlers, with EventBridge events, an SQS batch and SNS deliveries;
- Azure: the Event Hub-triggered function taken from the `FunctionApp`, with `EventHubEvent`s;
- Google Cloud: the functions-framework app, with Pub/Sub CloudEvents over its HTTP interface.

Two Defender registry scans in demo/events add what no single cloud shows: an image in Azure's
registry that GuardDuty sees running on EKS ranks above a more severe CVE in an image that never ran.

Everything lands in one embedded SQLite store (`demo-out/corral.db`) and fans out to file sinks.
Every file the demo writes is owner-only (0600, in a 0700 `demo-out`), as Corral's own files are.
The demo then prints a summary, the coverage matrix and source health, writes the dashboard as
`demo-out/report.html`, and shows what Slack, Teams and the SIEMs would receive. Running it
again changes nothing: every delivery is recognized as already stored.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
ENQUEUED_FROM = 1_793_491_200  # 2026-11-01T00:00:00Z, epoch seconds
EVENTS = ROOT / "tests" / "events"
OUT = ROOT / "demo-out"


def main() -> None:
    """Run the three clouds' entry points, then report."""
    OUT.mkdir(mode=0o700, exist_ok=True)  # findings and raw vendor records: owner-only, whatever the umask
    os.environ.update(
        COLUMNS=os.environ.get("COLUMNS", "150"),
        CORRAL_STORE=f"sqlite:///{OUT / 'corral.db'}",
        CORRAL_CONFIG=str(ROOT / "demo" / "corral.toml"),
        CORRAL_ALLOW_LOCAL_STORE="1",  # the demo is local; in the clouds the store is PostgreSQL or DynamoDB
        POWERTOOLS_SERVICE_NAME="corral",
        POWERTOOLS_METRICS_NAMESPACE="Corral",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        CORRAL_PUSH_VERIFY="off",
    )
    os.chdir(ROOT)
    before = _count_rows()
    log = _private(OUT / "functions.log", "w")
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        aws = run_aws()
        azure = run_azure()
        gcp = run_gcp()
    log.close()
    from corral.cli.options import store as open_store  # noqa: PLC0415 - after the environment is set

    store = open_store(None, None)
    try:
        _summary({"AWS Lambda": aws, "Azure Functions": azure, "Cloud Functions": gcp}, store, before)
    finally:
        store.close()
    _previews()
    _cli("coverage")
    _cli("sources")
    _cli("images", "--limit", "6")
    _cli("report", "--out", str(OUT / "report.html"))
    print(f"\nWritten to {OUT.relative_to(ROOT)}/: report.html (open it in a browser), siem.jsonl (every change),")
    print("  preview-slack.json, preview-teams.json, preview-splunk-hec.jsonl, preview-syslog-cef.txt,")
    print(
        "  functions.log (the entry points' own structured logs and metrics). Run `make demo` again: nothing changes."
    )


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"demo: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "corral-demo-guardduty"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:corral-demo-guardduty"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left."""
        return 30_000


def run_aws() -> Counter[str]:
    """GuardDuty and Inspector through the Lambda handlers: EventBridge events one by one, and an SQS batch."""
    handler = _load("corral_demo_aws", ROOT / "functions" / "aws" / "handler.py")
    totals: Counter[str] = Counter()
    deliveries = sorted((EVENTS / "aws" / "guardduty").glob("*.json"))
    deliveries += sorted((EVENTS / "aws" / "inspector").glob("*.json"))
    for path in deliveries:
        event = _json(path)
        if isinstance(event, list):  # Inspector ListFindings items: delivered as the EventBridge rule would
            for finding in event:
                totals.update(handler.eventbridge(_inspector_event(finding), LambdaContext()))
            continue
        if isinstance(event, dict) and "schemaVersion" in event:
            event = _eventbridge(event)  # a bare finding: deliver it as the EventBridge rule would
        if isinstance(event, dict) and "detail-type" in event:
            totals.update(handler.eventbridge(event, LambdaContext()))
        elif isinstance(event, dict) and "Records" in event:
            handler.guardduty_batch(event, LambdaContext())
            totals["sqs batches"] += 1
    # EventBridge → SNS → Lambda, the usual GuardDuty-to-chat layout: a finding, a health event and
    # CloudTrail noise, each an SNS record.
    for path in sorted((EVENTS / "aws" / "sns").glob("sns-lambda-*.json")):
        totals.update(handler.sns(_json(path), LambdaContext()))
        totals["sns deliveries"] += 1
    return totals


def _eventbridge(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(finding.get("arn")) + str(finding.get("updatedAt")))),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": finding.get("accountId"),
        "time": finding.get("updatedAt"),
        "region": finding.get("region"),
        "resources": [],
        "detail": finding,
    }


def _inspector_event(finding: dict[str, Any]) -> dict[str, Any]:
    region = str(finding.get("findingArn", "")).split(":")[3:4]
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(finding.get("findingArn")) + str(finding.get("updatedAt")))),
        "detail-type": "Inspector2 Finding",
        "source": "aws.inspector2",
        "account": finding.get("awsAccountId"),
        "time": finding.get("updatedAt"),
        "region": region[0] if region else None,
        "resources": [],
        "detail": finding,
    }


class _Out:
    def __init__(self) -> None:
        self.value: bytes | None = None

    def set(self, value: bytes) -> None:
        self.value = value


class _RetryContext:
    retry_count = 0
    max_retry_count = 5


class _Context:
    invocation_id = "00000000-0000-4000-8000-000000000001"
    function_name = "defender_findings"
    retry_context = _RetryContext()


def run_azure() -> Counter[str]:
    """Defender for Cloud through the Event Hub-triggered function, one batch per export file."""
    import azure.functions as func  # noqa: PLC0415

    app = _load("corral_demo_azure", ROOT / "functions" / "azure" / "function_app.py")
    functions = {f.get_function_name(): f.get_user_function() for f in app.app.get_functions()}
    trigger = functions["defender_findings"]
    totals: Counter[str] = Counter()
    # The demo's own two: registry CVEs of an image GuardDuty sees running on EKS, and of one that never ran.
    paths = sorted((EVENTS / "azure" / "defender").glob("*.json")) + sorted((ROOT / "demo" / "events").glob("*.json"))
    for n, path in enumerate(paths):
        # Event Hubs stamps each event with its enqueued time and sequence number: fixed here, as a
        # replay of the same partition would give them, so that running the demo again changes nothing.
        enqueued = datetime.fromtimestamp(ENQUEUED_FROM + n, tz=UTC)
        event = func.EventHubEvent(
            body=path.read_bytes(), sequence_number=n, offset=str(n * 4096), enqueued_time=enqueued
        )
        kept = _Out()
        trigger([event], kept, _Context())
        totals["event hub events"] += 1
        totals["kept for retry"] += kept.value is not None
    return totals


def run_gcp() -> Counter[str]:
    """SCC notifications as Pub/Sub CloudEvents, POSTed to the functions-framework app."""
    from functions_framework import create_app  # noqa: PLC0415

    client = create_app("scc_findings", str(ROOT / "functions" / "gcp" / "main.py"), "cloudevent").test_client()
    totals: Counter[str] = Counter()
    for path in sorted((EVENTS / "gcp" / "scc").glob("*.notification.json")):
        message = {
            "data": base64.b64encode(path.read_bytes()).decode(),
            "messageId": str(uuid.uuid5(uuid.NAMESPACE_URL, path.name)),
            "publishTime": "2026-11-01T00:00:00Z",
        }
        event = {
            "specversion": "1.0",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/corral-demo/topics/scc-findings",
            "id": message["messageId"],
            "datacontenttype": "application/json",
            "data": {"message": message, "subscription": "projects/corral-demo/subscriptions/scc"},
        }
        response = client.post("/", json=event, headers={"Content-Type": "application/cloudevents+json"})
        totals[f"HTTP {response.status_code}"] += 1
    return totals


def _count_rows() -> int:
    # The first run finds no store yet: open (and so create) it, where read commands would refuse.
    from corral.stores import open_store  # noqa: PLC0415

    store = open_store(os.environ["CORRAL_STORE"])
    try:
        return sum(row.count for row in store.counts())
    finally:
        store.close()


def _summary(invocations: dict[str, Counter[str]], store: Any, before: int) -> None:
    from rich.table import Table  # noqa: PLC0415

    from corral import ocsf, traits  # noqa: PLC0415
    from corral.cli.text import make_console  # noqa: PLC0415
    from corral.stores.base import FindingQuery  # noqa: PLC0415

    console = make_console()
    console.rule("[bold]Corral demo[/bold]: three clouds' entry points → one store")
    for platform, totals in invocations.items():
        console.print(f"{platform:16} " + ", ".join(f"{v} {k}" for k, v in sorted(totals.items()) if v))
    rows: Counter[tuple[str, str, str, str]] = Counter()
    cursor = None
    while True:
        page = store.query(FindingQuery(limit=500, cursor=cursor))
        for item in page.items:
            doc = item.document
            service = traits.read(doc).get(traits.SERVICE, "none")
            rows[
                (doc["cloud"]["provider"], doc["class_name"], ocsf.SEVERITY_NAMES.get(item.severity_id, "?"), service)
            ] += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    table = Table(title="Findings in the store, by cloud, class, severity and container service")
    for column in ("cloud", "class", "severity", "container service", "findings"):
        table.add_column(column)
    for (cloud, klass, severity, service), count in sorted(rows.items()):
        table.add_row(cloud, klass, severity, service, str(count))
    console.print(table)
    total = sum(rows.values())
    if before == total and before:
        console.print(f"[green]Second run: {total} findings, nothing new — every delivery was already stored.[/green]")
    else:
        console.print(f"{total} findings stored ({total - before} new this run).")


def _previews() -> None:
    """Render what Slack, Teams, Splunk and a syslog/CEF collector would receive."""
    from corral.sinks import slack, splunk_hec, syslog, teams  # noqa: PLC0415
    from corral.sinks.base import Delivery  # noqa: PLC0415

    lines = (OUT / "siem.jsonl").read_bytes().splitlines() if (OUT / "siem.jsonl").exists() else []
    records = [orjson.loads(line) for line in lines]
    slack_out, teams_out = [], []
    with _private(OUT / "preview-splunk-hec.jsonl", "wb") as hec, _private(OUT / "preview-syslog-cef.txt", "wb") as cef:
        for record in records:
            finding, change = record["finding"], record["change"]
            delivery = Delivery("preview", record["idempotency_key"], change, finding)
            hec.write(splunk_hec.render(delivery) + b"\n")
            cef.write(syslog.render(delivery) + b"\n")
            if change in ("new", "escalated", "reopened") and finding.get("severity_id", 0) >= 4:
                slack_out.append(slack.render(finding, change))
                teams_out.append(teams.render(finding, change))
    for name, previews in (("preview-slack.json", slack_out), ("preview-teams.json", teams_out)):
        with _private(OUT / name, "wb") as out:
            out.write(orjson.dumps(previews, option=orjson.OPT_INDENT_2))


def _private(path: Path, mode: str) -> IO[Any]:
    """Open `path` for writing; a file it creates is owner-only (0600), an existing one keeps its mode."""
    return open(path, mode, opener=lambda name, flags: os.open(name, flags, 0o600))


def _cli(*args: str) -> None:
    from corral.cli import app  # noqa: PLC0415

    with contextlib.suppress(SystemExit):
        app([*args], standalone_mode=True)


if __name__ == "__main__":
    main()
