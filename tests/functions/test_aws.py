"""The Lambda handlers, called with the event shapes EventBridge and SQS deliver."""

from __future__ import annotations

import importlib.util
import json
import logging
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from corral.errors import ConfigError, StoreUnavailableError
from corral.pipeline import Inbound, IngestResult
from corral.stores import open_store

from .conftest import FUNCTIONS, UNROUTED_NOTICE, closed_store_url, import_entry, load_event, spare_sink_config

HANDLER = FUNCTIONS / "aws" / "handler.py"
QUEUE_ARN = "arn:aws:sqs:us-east-1:111122223333:corral-dev-guardduty"


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "corral-dev-guardduty"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:corral-dev-guardduty"
    log_group_name = "/aws/lambda/corral-dev-guardduty"
    log_stream_name = "2025/05/01/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left."""
        return 30_000


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event source batch, as Lambda's poller delivers it (AWS docs, 'Example SQS event')."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"AQEB{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1746093800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1746093800001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def lambda_env(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    """What Lambda and serverless.yml put in the function's environment."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "corral-dev-guardduty")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("CORRAL_STORE", store_url)
    monkeypatch.setenv("CORRAL_CONFIG", "")
    monkeypatch.setenv("CORRAL_SECRET_PARAMETERS", "")
    monkeypatch.setenv("CORRAL_ALLOW_LOCAL_STORE", "1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "corral")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here


def _dynamodb_url(moto_server: str) -> str:
    url = f"dynamodb://corral-{uuid.uuid4().hex[:8]}?region=us-east-1&endpoint={moto_server}"
    store = open_store(url)
    store.migrate()
    store.close()
    return url


@pytest.fixture(params=["sqlite", "dynamodb"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The central store the handler writes to: SQLite, or DynamoDB on moto_server."""
    if request.param == "sqlite":
        return sqlite_url
    if importlib.util.find_spec("corral.stores.dynamodb") is None:
        pytest.skip("the DynamoDB store backend (corral.stores.dynamodb) is not in this tree yet")
    return _dynamodb_url(request.getfixturevalue("moto_server"))


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, store_url: str) -> ModuleType:
    """handler.py imported as a Lambda cold start."""
    lambda_env(monkeypatch, store_url)
    return import_entry(HANDLER)


def key_of(event: dict[str, Any]) -> tuple[str, str, str]:
    """The store key of the finding in a GuardDuty event (EventBridge envelope or bare finding)."""
    finding = event.get("detail", event)
    return ("aws.guardduty", finding["accountId"], finding["arn"])


def count(store_url: str) -> int:
    """How many findings the store holds."""
    store = open_store(store_url)
    try:
        return sum(row.count for row in store.counts())
    finally:
        store.close()


def document(store_url: str, key: tuple[str, str, str]) -> dict[str, Any] | None:
    """The stored OCSF document under `key`, or None."""
    store = open_store(store_url)
    try:
        found = store.get(key)
        return None if found is None else dict(found.document)
    finally:
        store.close()


def dead_letter_refs(store_url: str) -> list[str]:
    """The refs of the dead letters in the store."""
    store = open_store(store_url)
    try:
        return [letter.ref for letter in store.dead_letters(limit=100)]
    finally:
        store.close()


def test_eventbridge_event_is_stored_once(handler: ModuleType, store_url: str) -> None:
    """An EventBridge GuardDuty event stores one finding; the same delivery again changes nothing."""
    event = load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    first = handler.eventbridge(event, LambdaContext())
    again = handler.eventbridge(event, LambdaContext())
    assert first["new"] == 1
    assert again["new"] == 0 and again["unchanged"] == 1
    assert count(store_url) == 1
    assert document(store_url, key_of(event)) is not None


def test_eventbridge_event_that_is_a_json_string_is_not_parsed_again(handler: ModuleType, store_url: str) -> None:
    """Lambda hands the event over parsed: a string event is a JSON string, even one holding a finding."""
    encoded = json.dumps(load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"))
    result = handler.eventbridge(encoded, LambdaContext())
    assert result["new"] == 0 and result["failed"] == 1
    assert count(store_url) == 0
    store = open_store(store_url)
    try:
        [letter] = store.dead_letters(limit=10)
    finally:
        store.close()
    assert letter.reason == "expected a JSON object, got a string"


def test_sqs_batch_dead_letters_poison_and_stores_the_rest(handler: ModuleType, store_url: str) -> None:
    """A record that is not JSON is dead-lettered and acknowledged; the others are stored."""
    good = load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    other = load_event("aws/guardduty/ecs-fargate-runtime-reverseshell.json")
    event = sqs_event([json.dumps(good), "{not json", json.dumps(other)])
    response = handler.guardduty_batch(event, LambdaContext())
    poison_id = event["Records"][1]["messageId"]
    assert response == {"batchItemFailures": []}
    assert count(store_url) == 2
    assert document(store_url, key_of(good)) is not None
    assert document(store_url, key_of(other)) is not None
    assert any(poison_id in ref for ref in dead_letter_refs(store_url))


def test_sqs_same_delivery_twice_stores_one_finding(handler: ModuleType, store_url: str) -> None:
    """SQS at-least-once: the same message delivered twice leaves one finding."""
    good = json.dumps(load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"))
    event = sqs_event([good])
    handler.guardduty_batch(event, LambdaContext())
    handler.guardduty_batch(event, LambdaContext())
    assert count(store_url) == 1


def test_partial_batch_response_lists_exactly_the_failed_record(
    handler: ModuleType, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the record whose ingest hit a store outage is reported for redelivery."""
    names = (
        "eks-runtime-newbinaryexecuted-eventbridge",
        "ecs-fargate-runtime-reverseshell",
        "eks-audit-privilegedcontainer",
    )
    bodies = [json.dumps(load_event(f"aws/guardduty/{name}.json")) for name in names]
    event = sqs_event(bodies)
    failing = event["Records"][1]["messageId"]
    real_ingest = handler.PIPELINE.ingest

    def ingest_with_outage(deliveries: list[Inbound]) -> IngestResult:
        # The store's contract for an outage is StoreUnavailableError; here it strikes one record only.
        if any(failing in d.ref for d in deliveries):
            raise StoreUnavailableError("store unreachable (injected for one record)")
        return real_ingest(deliveries)

    monkeypatch.setattr(handler.PIPELINE, "ingest", ingest_with_outage)
    response = handler.guardduty_batch(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": failing}]}
    assert count(store_url) == 2


def test_hub_stores_relayed_ocsf_findings(handler: ModuleType, store_url: str, sqlite_url: str) -> None:
    """An OCSF finding relayed by a spoke through SQS is stored by the hub handler."""
    event = load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    handler.eventbridge(event, LambdaContext())
    relayed = document(store_url, key_of(event))
    hub_db = sqlite_url.replace("corral.db", "hub.db")
    hub_store = open_store(hub_db)
    hub_store.migrate()
    hub_store.close()
    handler.PIPELINE = type(handler.PIPELINE).from_env({"CORRAL_STORE": hub_db})
    response = handler.hub_batch(sqs_event([json.dumps(relayed)]), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert document(hub_db, key_of(event)) == relayed


def test_store_outage_fails_every_record_and_the_async_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the store down, both invocations fail, so Lambda retries the event and SQS the whole batch."""
    lambda_env(monkeypatch, closed_store_url())
    handler = import_entry(HANDLER)
    event = load_event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    with pytest.raises(StoreUnavailableError):
        handler.eventbridge(event, LambdaContext())
    batch = sqs_event([json.dumps(event), json.dumps(event)])
    # Every record failed: Powertools fails the invocation, so every message becomes visible again.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        handler.guardduty_batch(batch, LambdaContext())


def test_redrive_and_source_check_run_on_schedule(handler: ModuleType) -> None:
    """The scheduled handlers answer with plain counts (nothing pending in a fresh store)."""
    scheduled = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "111122223333",
        "time": "2025-05-01T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/corral-dev-redrive"],
        "detail": {},
    }
    assert handler.redrive(scheduled, LambdaContext()) == {"delivered": 0, "pending": 0, "dead": 0, "dropped": 0}
    report = handler.source_check(scheduled, LambdaContext())
    assert report["sources"] == 0
    assert report["raised"] == []


def test_cold_start_refuses_sqlite_on_lambda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On Lambda, a SQLite store is refused at import unless CORRAL_ALLOW_LOCAL_STORE=1."""
    lambda_env(monkeypatch, f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("CORRAL_ALLOW_LOCAL_STORE")
    with pytest.raises(ConfigError, match=r"SQLite store inside AWS Lambda"):
        import_entry(HANDLER)


def test_cold_start_logs_a_sink_no_route_names(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink no route names is accepted, and the cold start says so once at WARNING through Powertools' logger."""
    lambda_env(monkeypatch, sqlite_url)
    monkeypatch.setenv("CORRAL_CONFIG", spare_sink_config(tmp_path))
    import_entry(HANDLER)
    warned = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [("corral", UNROUTED_NOTICE)]
