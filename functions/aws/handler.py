"""Lambda entry points: EventBridge events of any source, SNS, SQS, the hub queue, and two schedules.

Each handler turns its delivery into `Inbound`s, calls the pipeline once per delivery and maps the
outcome to Lambda's retry semantics:

* EventBridge and SNS (async invoke): a `StoreUnavailableError` propagates, so Lambda retries twice and then
  hands the event to the on-failure destination (serverless.yml); bad records are dead-lettered in
  the store by the pipeline and the invocation succeeds.
* SQS (GuardDuty buffer, fed by EventBridge or by SNS with or without raw message delivery; hub):
  Powertools' `BatchProcessor` reports only the records whose ingest
  raised as `batchItemFailures`, so SQS redelivers those and deletes the rest.

Secrets are never in the function's configuration: `CORRAL_SECRET_PARAMETERS` lists
`ENV_NAME=/ssm/parameter/name` pairs, read (decrypted) from SSM Parameter Store at cold start into
the environment the configuration names. boto3 is imported only when that list is not empty.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from corral.startup import starting

logger = Logger(service="corral")
metrics = Metrics(namespace="Corral", service="corral")
tracer = Tracer(service="corral")


def _load_secret_parameters() -> None:
    # Names, not values, are deployed; the values are fetched once per cold start.
    pairs = [p.split("=", 1) for p in os.environ.get("CORRAL_SECRET_PARAMETERS", "").split(",") if "=" in p]
    if not pairs:
        return
    # Only deployments that use SSM pay for boto3's import.
    from aws_lambda_powertools.utilities.parameters import get_parameters_by_name  # noqa: PLC0415

    values = get_parameters_by_name({name.strip(): {"decrypt": True} for _, name in pairs}, max_age=0)
    for env_name, name in pairs:
        os.environ[env_name.strip()] = str(values[name.strip()])


with starting():  # Corral's imports and the pipeline, without the cycle collector: see corral.startup
    from corral.pipeline import Inbound, IngestResult, Pipeline

    _load_secret_parameters()
    PIPELINE = Pipeline.from_env()
for notice in PIPELINE.settings.notices():  # e.g. a sink no route names: valid, but it receives nothing
    logger.warning(notice)
processor = BatchProcessor(event_type=EventType.SQS)


def _invoked() -> None:
    # One data point per invocation, so that a failed invocation still publishes its metrics.
    metrics.add_metric(name="invocations", unit=MetricUnit.Count, value=1)


def _record(result: IngestResult, ref: str) -> dict[str, int]:
    summary = result.summary()
    for kind, count in summary.items():
        metrics.add_metric(name=f"findings_{kind}", unit=MetricUnit.Count, value=count)
    logger.info("ingested", extra={"delivery_ref": ref, "counts": summary, "errors": result.errors[:20]})
    return summary


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def eventbridge(event: object, context: LambdaContext) -> dict[str, int]:
    """EventBridge rule target: one event of any source per asynchronous invocation.

    Anything else Lambda hands over (a list, a string: a misconfigured target or a test invoke)
    is dead-lettered like any bad record; the invocation still succeeds.
    """
    _invoked()
    event_id = event.get("id") if isinstance(event, dict) else None
    event_id = event_id if isinstance(event_id, str) else None
    ref = f"eventbridge:{event_id or context.aws_request_id}"
    result = PIPELINE.ingest([Inbound(data=event, ref=ref, delivery_id=event_id, decoded=True)])
    return _record(result, ref)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def sns(event: object, context: LambdaContext) -> dict[str, int]:
    """SNS topic subscription (EventBridge → SNS → Lambda): each record's message is one delivery.

    Asynchronous like EventBridge: a `StoreUnavailableError` propagates so that Lambda retries.
    """
    _invoked()
    records = event.get("Records") if isinstance(event, dict) else None
    first = records[0] if isinstance(records, list) and records and isinstance(records[0], dict) else {}
    message_id = first.get("Sns", {}).get("MessageId") if isinstance(first.get("Sns"), dict) else None
    ref = f"sns:{message_id if isinstance(message_id, str) else context.aws_request_id}"
    return _record(PIPELINE.ingest([Inbound(data=event, ref=ref, decoded=True)]), ref)


def _sqs_record(record: SQSRecord) -> None:
    # Read leniently: a record the processor cannot read would be redelivered forever.
    raw = record.raw_event
    message_id = raw.get("messageId") if isinstance(raw.get("messageId"), str) else None
    ref = f"sqs:{message_id}"
    logger.append_keys(delivery_ref=ref)
    attributes = raw.get("attributes")
    sent = attributes.get("SentTimestamp") if isinstance(attributes, dict) else None
    body = raw.get("body")
    inbound = Inbound(
        data=body if isinstance(body, str) else raw,
        ref=ref,
        delivery_id=message_id,
        error=None if isinstance(body, str) else "SQS record has no body",
        received_time=int(sent) if isinstance(sent, str) and sent.isdigit() else None,
    )
    # StoreUnavailableError propagates: the processor lists this record in batchItemFailures.
    _record(PIPELINE.ingest([inbound]), ref)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def guardduty_batch(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """SQS event source (ReportBatchItemFailures): GuardDuty events buffered through a queue."""
    _invoked()
    return process_partial_response(event=event, record_handler=_sqs_record, processor=processor, context=context)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def hub_batch(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """SQS event source of the hub: OCSF findings relayed by spokes, stored once and fanned out."""
    _invoked()
    return process_partial_response(event=event, record_handler=_sqs_record, processor=processor, context=context)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def redrive(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Scheduled: re-send the pending deliveries whose next attempt is due."""
    _invoked()
    totals = PIPELINE.redrive()
    for outcome, count in totals.items():
        metrics.add_metric(name=f"redrive_{outcome}", unit=MetricUnit.Count, value=count)
    logger.info("redrive", extra={"counts": totals})
    return totals


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def source_check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduled: raise or close "Source Silent" findings; expire closed findings past retention."""
    _invoked()
    report = {**PIPELINE.check_sources(), "expired": PIPELINE.expire()}
    logger.info("source check", extra={"report": report})
    return report
