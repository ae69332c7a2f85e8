"""Azure Functions (Python v2 model): Defender for Cloud continuous export from Event Hubs.

The Event Hubs trigger checkpoints even when the function fails (Azure/Azure-Functions#947): an
exception does not bring a batch back, the next batch simply follows. So a batch the store cannot
take must be kept before the function returns:

1. Transient store failures (`StoreUnavailableError`) are retried in place by the host's retry
   policy (exponential backoff, `@app.retry`): while the host retries, the checkpoint does not move.
2. On the last attempt the raw events are written, losslessly (base64 bodies), to the blob output
   `corral-retry/<guid>.json` and the function returns, so the checkpoint moves on with nothing lost.
3. `kept_events` (blob trigger on `corral-retry/`) ingests them again. A blob, unlike a Storage
   queue message (64 KB), holds any batch; if the store is still down the blob trigger retries and
   then records a poison message, while the blob itself stays in place until the lifecycle rule
   (infra/azure) expires it, so it can be replayed by hand.

Bad records never take this path: the pipeline dead-letters them in the store and carries on.
Timers run the redrive of pending deliveries and the silent-source check; a second Event Hubs
trigger consumes findings relayed by spokes (hub layout).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC

import azure.functions as func
import orjson

from corral.startup import starting

app = func.FunctionApp()
log = logging.getLogger("corral.azure")
with starting():  # Corral's imports and the pipeline, without the cycle collector: see corral.startup
    from corral.errors import StoreUnavailableError
    from corral.pipeline import Inbound, Pipeline

    PIPELINE = Pipeline.from_env()
for notice in PIPELINE.settings.notices():  # e.g. a sink no route names: valid, but it receives nothing
    log.warning(notice)

# Shared by both Event Hubs triggers: the host's retry policy, and the blob where a batch is kept.
retry_with_backoff = app.retry(
    strategy="exponential_backoff", max_retry_count="5", minimum_interval="00:00:10", maximum_interval="00:05:00"
)
keep_in_blob = app.blob_output(arg_name="kept", path="corral-retry/{rand-guid}.json", connection="AzureWebJobsStorage")


def _enqueued_ms(event: func.EventHubEvent) -> int | None:
    when = event.enqueued_time
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # the host hands over enqueued times in UTC
    return int(when.timestamp() * 1000)


def _inbound(event: func.EventHubEvent, hub: str) -> Inbound:
    """One event as the pipeline takes it: its exact body, and Event Hubs' own order for it."""
    return Inbound(
        data=event.get_body(),
        ref=f"{hub}:{event.sequence_number}",
        received_time=_enqueued_ms(event),
        sequence=event.sequence_number,
    )


def _ingest_or_keep(events: list[func.EventHubEvent], kept: func.Out[bytes], context: func.Context, hub: str) -> None:
    deliveries = [_inbound(e, hub) for e in events]
    try:
        log.info("ingested %s", PIPELINE.ingest(deliveries).summary())
    except StoreUnavailableError as exc:
        retry = context.retry_context
        if retry is not None and retry.retry_count < retry.max_retry_count:
            raise  # the host retries this batch with backoff before the checkpoint moves
        bodies = [base64.b64encode(e.get_body()).decode() for e in events]
        kept.set(
            orjson.dumps(
                {
                    "events": [
                        {"ref": d.ref, "body": b, "enqueued": d.received_time, "sequence": d.sequence}
                        for d, b in zip(deliveries, bodies, strict=True)
                    ]
                }
            )
        )
        log.error("store unavailable after retries (%s); %d events kept in corral-retry", exc, len(events))


@app.function_name("defender_findings")
@retry_with_backoff
@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%CORRAL_EVENTHUB_NAME%",
    connection="DEFENDER_EVENTHUB",  # app-setting prefix: DEFENDER_EVENTHUB__fullyQualifiedNamespace (identity)
    consumer_group="%CORRAL_EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
)
@keep_in_blob
def defender_findings(events: list[func.EventHubEvent], kept: func.Out[bytes], context: func.Context) -> None:
    """Defender for Cloud continuous export: alerts, assessments, sub-assessments, compliance, attack paths."""
    _ingest_or_keep(events, kept, context, "defender")


@app.function_name("relayed_findings")
@retry_with_backoff
@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%CORRAL_RELAY_EVENTHUB_NAME%",
    connection="DEFENDER_EVENTHUB",  # app-setting prefix: DEFENDER_EVENTHUB__fullyQualifiedNamespace (identity)
    consumer_group="%CORRAL_EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
)
@keep_in_blob
def relayed_findings(events: list[func.EventHubEvent], kept: func.Out[bytes], context: func.Context) -> None:
    """Hub layout: OCSF findings relayed by spokes, stored once and fanned out here."""
    _ingest_or_keep(events, kept, context, "relay")


@app.function_name("kept_events")
# Flex Consumption runs only the Event Grid kind of blob trigger (infra/azure subscribes it).
@app.blob_trigger(
    arg_name="blob", path="corral-retry/{name}", connection="AzureWebJobsStorage", source=func.BlobSource.EVENT_GRID
)
def kept_events(blob: func.InputStream) -> None:
    """Re-ingest a batch kept while the store was down; raising lets the blob trigger retry it."""
    kept = orjson.loads(blob.read())["events"]
    result = PIPELINE.ingest(
        [
            Inbound(
                data=base64.b64decode(k["body"]),
                ref=f"kept:{k['ref']}",
                received_time=k.get("enqueued"),
                sequence=k.get("sequence"),
            )
            for k in kept
        ]
    )
    log.info("re-ingested %s: %s", blob.name, result.summary())


@app.function_name("redrive")
@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
def redrive(timer: func.TimerRequest) -> None:
    """Every 5 minutes: re-send the pending deliveries whose next attempt is due."""
    log.info("redrive %s", PIPELINE.redrive())


@app.function_name("source_check")
@app.timer_trigger(arg_name="timer", schedule="0 17 * * * *", run_on_startup=False, use_monitor=True)
def source_check(timer: func.TimerRequest) -> None:
    """Hourly: raise or close "Source Silent" findings; expire closed findings past retention."""
    log.info("source check %s, expired %d", PIPELINE.check_sources(), PIPELINE.expire())
