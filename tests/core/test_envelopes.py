"""Unwrapping deliveries: every envelope shape Corral detects, and broken wrappers."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings

from corral import envelopes, ocsf
from corral.envelopes import unwrap
from corral.records import Item, Outcome
from tests.core import DELIVERIES

FINDING = {"schemaVersion": "2.0", "id": "f-1", "accountId": "111122223333", "type": "Recon:EC2/PortProbe"}
PLAIN = {"hello": "world"}


def items(doc: object, **kwargs: object) -> list[Item | Outcome]:
    """Return everything `unwrap` yields for `doc`."""
    return list(unwrap(doc, **kwargs))


def eventbridge(detail_type: str, detail: object, event_id: str = "evt-1") -> dict[str, object]:
    """Return an EventBridge event around `detail`."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "aws.guardduty",
        "account": "111122223333",
        "time": "2025-05-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def sqs_record(body: object, message_id: str) -> dict[str, object]:
    """Return one SQS record whose body is `body` (a string is used as is)."""
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return {"messageId": message_id, "eventSource": "aws:sqs", "body": text}


def push_body(data: object, message_id: str = "m-1", publish_time: str | None = None) -> dict[str, object]:
    """Return a Pub/Sub push body; a dict `data` is base64-encoded JSON, a string is used as is."""
    encoded = base64.b64encode(orjson.dumps(data)).decode() if isinstance(data, dict) else data
    message: dict[str, object] = {"data": encoded, "messageId": message_id}
    if publish_time is not None:
        message["publishTime"] = publish_time
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def test_guardduty_finding_event_gives_its_detail_with_the_event_id() -> None:
    """An EventBridge "GuardDuty Finding" yields its `detail`, identified by the event id."""
    [item] = items(eventbridge("GuardDuty Finding", FINDING, "evt-42"))
    assert isinstance(item, Item)
    assert item.doc == FINDING
    assert item.delivery_id == "evt-42"


@pytest.mark.parametrize(
    "detail_type", ["GuardDuty Runtime Protection Unhealthy", "AWS API Call via CloudTrail", "Something Else"]
)
def test_every_eventbridge_event_gives_its_detail_with_the_envelope(detail_type: str) -> None:
    """Whatever the source and detail type, the detail comes with the event's source, type, region, account, time."""
    event = eventbridge(detail_type, {"x": 1}, "evt-7")
    [item] = items(event)
    assert isinstance(item, Item)
    assert item.doc == {"x": 1}
    assert item.delivery_id == "evt-7"
    assert item.envelope is not None
    envelope = item.envelope
    assert (envelope.source, envelope.detail_type, envelope.region, envelope.account) == (
        "aws.guardduty",
        detail_type,
        "us-east-1",
        "111122223333",
    )
    assert envelope.time == item.received_time == 1746093600000
    assert envelope.event == event


@pytest.mark.parametrize("detail", [[1, 2], "text", None, 3])
def test_eventbridge_detail_that_is_not_an_object_is_an_error(detail: object) -> None:
    """A detail that is a list, a string or null is that event's failure, not an exception."""
    [result] = items(eventbridge("GuardDuty Finding", detail))
    assert isinstance(result, Outcome)
    assert "not a JSON object" in (result.error or "")


@pytest.mark.parametrize("region", ["eu-west-1", None])
def test_partial_envelope_gives_detail_with_its_region(region: str | None) -> None:
    """`{region, detail}` (hand-made events) yields the detail, the region in the envelope when given."""
    doc: dict[str, object] = {"detail": FINDING}
    if region is not None:
        doc["region"] = region
    [item] = items(doc)
    assert isinstance(item, Item)
    assert item.doc == FINDING
    assert item.envelope is not None
    assert item.envelope.region == region


def test_sqs_batch_unwraps_each_body_with_its_message_id() -> None:
    """Each SQS record body is parsed as JSON and unwrapped, located at `Records[i]`."""
    bodies = [PLAIN, {"other": 2}]
    batch = {"Records": [sqs_record(b, f"msg-{i}") for i, b in enumerate(bodies)]}
    found = items(batch)
    assert [i.doc for i in found] == bodies
    assert [i.where for i in found] == [f"Records[{i}]" for i in range(len(bodies))]
    assert [i.delivery_id for i in found] == [f"msg-{i}" for i in range(len(bodies))]


def test_sqs_body_holding_an_eventbridge_event_is_unwrapped_twice() -> None:
    """An SQS body that is an EventBridge GuardDuty event yields the detail with the event id."""
    batch = {"Records": [sqs_record(eventbridge("GuardDuty Finding", FINDING, "evt-9"), "msg-1")]}
    [item] = items(batch)
    assert isinstance(item, Item)
    assert item.doc == FINDING
    assert item.delivery_id == "evt-9"
    assert item.where == "Records[0]"


@pytest.mark.parametrize("bad_body", ["{not json", "", "[1, 2"])
def test_bad_sqs_body_is_an_error_for_that_record_only(bad_body: str) -> None:
    """A body that is not JSON gives an error Outcome at `Records[i]`; the other records carry on."""
    batch = {"Records": [sqs_record(PLAIN, "a"), sqs_record(bad_body, "b"), sqs_record({"c": 3}, "c")]}
    found = items(batch)
    assert [type(i) for i in found] == [Item, Outcome, Item]
    error = found[1]
    assert isinstance(error, Outcome)
    assert error.failed
    assert error.where == "Records[1]"
    assert "not JSON" in (error.error or "")
    assert error.raw == bad_body


def test_sqs_record_without_body_is_an_error() -> None:
    """An SQS record with no body is reported, not skipped silently."""
    batch = {"Records": [{"messageId": "x", "eventSource": "aws:sqs"}]}
    [error] = items(batch)
    assert isinstance(error, Outcome)
    assert error.where == "Records[0]"
    assert "no body" in (error.error or "")


def test_records_not_from_sqs_are_a_list_wrapper_not_a_batch() -> None:
    """`Records` whose items are not SQS records is not treated as an SQS batch."""
    doc = {"Records": [{"eventSource": "aws:s3", "body": "{}"}]}
    [item] = items(doc)
    assert isinstance(item, Item)
    assert item.doc == doc


def test_guardduty_get_findings_result_yields_each_finding() -> None:
    """`{"Findings": [...]}` yields each finding located at `Findings[i]`."""
    findings = [{**FINDING, "id": f"f-{n}"} for n in range(3)]
    found = items({"Findings": findings})
    assert [i.doc for i in found] == findings
    assert [i.where for i in found] == [f"Findings[{n}]" for n in range(3)]


def test_pubsub_push_body_decodes_base64_json() -> None:
    """A push body's base64 `data` is decoded and parsed; the message id is the delivery id."""
    [item] = items(push_body(PLAIN, "m-77"))
    assert isinstance(item, Item)
    assert item.doc == PLAIN
    assert item.delivery_id == "m-77"
    assert item.where == "message"


@pytest.mark.parametrize(
    ("data", "message"),
    [("!!!not base64!!!", "not valid base64"), (base64.b64encode(b"{oops").decode(), "not JSON"), (42, "not a base64")],
)
def test_broken_pubsub_data_is_an_error(data: object, message: str) -> None:
    """Invalid base64, non-JSON payloads and non-string data give an error Outcome."""
    [error] = items(push_body(data))
    assert isinstance(error, Outcome)
    assert message in (error.error or "")


def test_pubsub_data_already_decoded_is_read_as_is() -> None:
    """A push body stored with `data` already decoded to a dict is unwrapped directly."""
    doc = {"message": {"data": PLAIN, "messageId": "m-2"}}
    [item] = items(doc)
    assert isinstance(item, Item)
    assert item.doc == PLAIN
    assert item.delivery_id == "m-2"


@pytest.mark.parametrize("publish_time", ["2025-05-01T10:00:00.123456789Z", "2024-01-02T03:04:05Z"])
def test_pubsub_publish_time_becomes_received_time(publish_time: str) -> None:
    """`publishTime` is carried as the item's received time (epoch ms)."""
    [item] = items(push_body(PLAIN, publish_time=publish_time))
    assert isinstance(item, Item)
    assert item.received_time == ocsf.timestamp_ms(publish_time)


def test_pubsub_unreadable_publish_time_is_ignored() -> None:
    """A `publishTime` that is not a time leaves received time unset instead of failing."""
    [item] = items(push_body(PLAIN, publish_time="yesterday"))
    assert isinstance(item, Item)
    assert item.received_time is None


def test_structured_cloudevent_message_published_is_unwrapped() -> None:
    """A structured `messagePublished` CloudEvent yields the Pub/Sub message's decoded data."""
    push = push_body(PLAIN, "m-5", "2025-05-01T10:00:00Z")
    event = {"specversion": "1.0", "type": envelopes.PUBSUB_PUBLISHED, "id": "ce-1", "data": push}
    [item] = items(event)
    assert isinstance(item, Item)
    assert item.doc == PLAIN
    assert item.delivery_id == "m-5"
    assert item.where == "data.message"
    assert item.received_time == ocsf.timestamp_ms("2025-05-01T10:00:00Z")


@pytest.mark.parametrize(
    "event",
    [
        {"specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized", "data": {"bucket": "b"}},
        {"specversion": "1.0", "type": envelopes.PUBSUB_PUBLISHED, "data": {"no": "message"}},
    ],
)
def test_other_cloudevents_are_errors(event: dict[str, object]) -> None:
    """A CloudEvent of another type, or without a Pub/Sub message, is an error Outcome."""
    [error] = items(event)
    assert isinstance(error, Outcome)
    assert error.failed


@pytest.mark.parametrize("key", ["listFindingsResults", "value", "records", "data", "Findings"])
def test_list_wrappers_yield_each_element(key: str) -> None:
    """Each list wrapper key yields its elements, located at `key[i]`."""
    elements = [{"n": n} for n in range(4)]
    found = items({key: elements, "nextPageToken": "t"})
    assert [i.doc for i in found] == elements
    assert [i.where for i in found] == [f"{key}[{n}]" for n in range(len(elements))]


@pytest.mark.parametrize("record_key", ["properties", "finding", "arn", "schemaVersion"])
def test_list_beside_record_fields_is_not_a_wrapper(record_key: str) -> None:
    """A `data`/`value` list inside a record (e.g. beside `properties`) is not unwrapped."""
    doc = {"data": [1, 2], record_key: {"x": 1}}
    [item] = items(doc)
    assert isinstance(item, Item)
    assert item.doc == doc


def test_json_array_yields_each_element_with_its_index() -> None:
    """A JSON array yields its elements located at `[i]`."""
    elements = [{"n": n} for n in range(3)]
    found = items(elements)
    assert [i.doc for i in found] == elements
    assert [i.where for i in found] == [f"[{n}]" for n in range(3)]


@pytest.mark.parametrize("value", ["text", 1, 2.5, True, None])
def test_a_scalar_is_an_error(value: object) -> None:
    """A JSON scalar is not a document: an error Outcome names what it got."""
    [error] = items(value)
    assert isinstance(error, Outcome)
    assert "expected a JSON object" in (error.error or "")


def test_unrecognized_object_is_handed_on_with_the_given_delivery_id() -> None:
    """Anything else is one document, carrying the delivery id the caller gave."""
    [item] = items(PLAIN, where="input", delivery_id="d-1")
    assert isinstance(item, Item)
    assert (item.doc, item.where, item.delivery_id) == (PLAIN, "input", "d-1")


@pytest.mark.parametrize("depth", range(envelopes.MAX_DEPTH + 3))
def test_nesting_limit(depth: int) -> None:
    """Arrays nested deeper than MAX_DEPTH give an error; up to the limit they are unwrapped."""
    doc: object = PLAIN
    for _ in range(depth):
        doc = [doc]
    [result] = items(doc)
    if depth > envelopes.MAX_DEPTH:
        assert isinstance(result, Outcome)
        assert "nested too deeply" in (result.error or "")
    else:
        assert isinstance(result, Item)
        assert result.doc == PLAIN


@settings(max_examples=300, deadline=None)
@given(DELIVERIES)
def test_unwrap_never_raises(doc: object) -> None:
    """For any JSON value, `unwrap` yields only Items and Outcomes and never raises."""
    for result in unwrap(doc):
        assert isinstance(result, Item | Outcome)


def invocation_record(event: object) -> dict[str, object]:
    """An on-failure destination's record of an asynchronous invocation, as the Lambda guide shows one."""
    return {
        "version": "1.0",
        "timestamp": "2025-05-01T10:06:12.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:corral-prod-guardduty:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "store unavailable", "errorType": "StoreUnavailableError"},
    }


def test_a_failure_queue_record_replayed_gives_the_event_it_failed_on() -> None:
    """A failure queue's message replayed into the buffer queue is the event within it, with its own id and time."""
    batch = {"Records": [sqs_record(invocation_record(eventbridge("GuardDuty Finding", FINDING, "evt-7")), "msg-1")]}
    [item] = items(batch)
    assert isinstance(item, Item)
    assert item.doc == FINDING
    assert item.delivery_id == "evt-7"
    assert item.received_time == ocsf.timestamp_ms("2025-05-01T10:00:00Z")
    assert item.where == "Records[0].requestPayload"


def test_an_invocation_record_whose_payload_is_not_an_object_is_an_error() -> None:
    [outcome] = items(invocation_record("not an event"))
    assert isinstance(outcome, Outcome)
    assert outcome.error == "expected a JSON object, got a string"
    assert outcome.where == "requestPayload"


def test_a_finding_with_a_request_payload_field_is_not_an_invocation_record() -> None:
    doc = {"requestPayload": {"a": 1}, "title": "x"}
    [item] = items(doc)
    assert isinstance(item, Item)
    assert item.doc == doc
