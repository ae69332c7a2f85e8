"""The delivery shapes deployments use: SNS to Lambda, SNS to SQS (raw and wrapped), GuardDuty's S3 export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from corral.envelopes import unwrap
from corral.pipeline import Inbound, Pipeline
from corral.records import Item, Outcome
from corral.stores import open_store
from corral.stores.base import FindingQuery, Store
from tests.functions.conftest import import_entry
from tests.functions.test_aws import LambdaContext, lambda_env
from tests.intake.helpers import EVENTS, ROOT, event

CORRAL = [sys.executable, "-m", "corral.cli.__main__"]
SNS = "aws/sns"
FINDING_ARN = (
    "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/"
    "5f1e2d3c4b5a69788796a5b4c3d2e1f0"
)
KEY = ("aws.guardduty", "111122223333", FINDING_ARN)


def only_item(doc: object) -> Item:
    """The one item a delivery holds."""
    [found] = list(unwrap(doc))
    assert isinstance(found, Item), found
    return found


@pytest.mark.parametrize(
    "name",
    [
        "sns-lambda-guardduty-finding.json",
        "sqs-sns-wrapped-guardduty-finding.json",
        "sqs-sns-raw-guardduty-finding.json",
    ],
)
def test_each_shape_gives_the_detail_with_the_eventbridge_envelope(name: str) -> None:
    """SNS → Lambda, SNS → SQS wrapped and raw: the GuardDuty detail, with the event's region, account, time and id."""
    item = only_item(event(f"{SNS}/{name}"))
    assert item.doc["arn"] == FINDING_ARN
    assert item.envelope is not None
    assert (item.envelope.source, item.envelope.detail_type) == ("aws.guardduty", "GuardDuty Finding")
    assert (item.envelope.region, item.envelope.account) == ("us-east-1", "111122223333")
    assert item.envelope.time == item.received_time == 1746173440000  # the EventBridge time, not SNS's or SQS's
    assert item.delivery_id == "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"


def test_an_sns_message_that_is_not_json_is_its_own_dead_letter(tmp_path: Path) -> None:
    """The letter holds the SNS message text; the other record of the batch is stored."""
    batch = event(f"{SNS}/sns-lambda-guardduty-finding.json")
    bad = json.loads(json.dumps(batch["Records"][0]))
    bad["Sns"]["Message"] = "Hello from SNS!"
    batch["Records"].insert(0, bad)
    store = open_store(f"sqlite:///{tmp_path}/c.db")
    try:
        result = Pipeline(store, clock=lambda: 1_800_000_000_000).ingest([Inbound(orjson.dumps(batch), "sns")])
        assert (result.counts["new"], result.failed) == (1, 1)
        [letter] = store.dead_letters()
        assert letter.raw == b"Hello from SNS!"
        assert "SNS message is not JSON" in letter.reason
    finally:
        store.close()


def test_sns_confirmations_are_skipped_not_dead_lettered() -> None:
    """A subscription confirmation reaching an HTTP or SQS endpoint is recognized and skipped."""
    notification = json.loads(event(f"{SNS}/sqs-sns-wrapped-guardduty-finding.json")["Records"][0]["body"])
    notification["Type"] = "SubscriptionConfirmation"
    [found] = list(unwrap(notification))
    assert isinstance(found, Outcome)
    assert found.skipped is not None
    assert found.error is None


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[ModuleType, str]]:
    """handler.py after a cold start, on a SQLite store."""
    url = f"sqlite:///{tmp_path}/corral.db"
    lambda_env(monkeypatch, url)
    module = import_entry(ROOT / "functions" / "aws" / "handler.py")
    yield module, url
    module.PIPELINE.close()


def stored(url: str) -> Store:
    """The store the handler wrote to."""
    return open_store(url)


def test_sns_to_lambda_stores_findings_and_reads_health_and_cloudtrail(handler: tuple[ModuleType, str]) -> None:
    """Findings, Runtime Protection health and CloudTrail noise alike, through the `sns` handler."""
    module, url = handler
    first = module.sns(event(f"{SNS}/sns-lambda-guardduty-finding.json"), LambdaContext())
    mixed = module.sns(event(f"{SNS}/sns-lambda-health-and-cloudtrail.json"), LambdaContext())
    assert first["new"] == 1
    assert (mixed["signals"], mixed["skipped"], mixed["failed"]) == (1, 1, 0)
    store = stored(url)
    try:
        found = store.get(KEY)
        assert found is not None
        assert found.document["cloud"]["region"] == "us-east-1"
        [signal] = store.signals()
        assert (signal.account_uid, signal.healthy) == ("111122223333", False)
    finally:
        store.close()


@pytest.mark.parametrize("name", ["sqs-sns-wrapped-guardduty-finding.json", "sqs-sns-raw-guardduty-finding.json"])
def test_sns_to_sqs_through_the_batch_handler(handler: tuple[ModuleType, str], name: str) -> None:
    """Both SQS bodies (SNS envelope or the raw message) store the same finding; nothing is reported failed."""
    module, url = handler
    response = module.guardduty_batch(event(f"{SNS}/{name}"), LambdaContext())
    assert response["batchItemFailures"] == []
    store = stored(url)
    try:
        assert store.get(KEY) is not None
        assert store.dead_letters() == []
    finally:
        store.close()


def test_guardduty_s3_export_backfills_with_corral_ingest(tmp_path: Path) -> None:
    """A folder of GuardDuty's exported .jsonl.gz files: every finding stored; a second run changes nothing."""
    folder = tmp_path / "AWSLogs" / "111122223333" / "GuardDuty" / "us-east-1" / "2025" / "05" / "02"
    folder.mkdir(parents=True)
    for export in (EVENTS / "aws" / "guardduty-s3-export").glob("*.jsonl.gz"):
        shutil.copy(export, folder / export.name)
    (tmp_path / "AWSLogs" / "README.txt").write_text("exported by GuardDuty\n")

    def ingest() -> tuple[dict[str, Any], str]:
        proc = subprocess.run(
            [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{tmp_path}/c.db", str(tmp_path / "AWSLogs")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "CORRAL_CONFIG": ""},
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout), proc.stderr

    first, stderr = ingest()
    assert (first["new"], first["failed"]) == (5, 0)
    assert "skipped" in stderr and "README.txt" in stderr
    again, _ = ingest()
    assert (again["new"], again["unchanged"]) == (0, 5)
    store = open_store(f"sqlite:///{tmp_path}/c.db")
    try:
        assert len(store.query(FindingQuery(limit=10)).items) == 5
    finally:
        store.close()
