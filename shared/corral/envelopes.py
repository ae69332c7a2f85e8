"""Unwrap deliveries: find the source documents inside whatever the event bus wrapped them in.

Shapes, detected from the document itself (no configuration):

- AWS: an EventBridge event (a "GuardDuty Finding" gives its `detail`; other detail types are
  passed whole, for the GuardDuty source to skip or read as health signals); an SQS batch whose
  record bodies are JSON; a GuardDuty `GetFindings` result (`{"Findings": [...]}`).
- Azure: a JSON array of continuous-export records; REST lists (`{"value": [...]}`); Resource
  Graph results (`{"data": [...]}`, `{"records": [...]}`).
- Google Cloud: a Pub/Sub push body (`{"message": {"data": base64}}`); a CloudEvent
  `google.cloud.pubsub.topic.v1.messagePublished` (structured; the binary mode's body is a push
  body); a `ListFindings` result (`{"listFindingsResults": [...]}`).

Anything else is handed on as one document for the sources to recognize. A wrapper that is
broken (an SQS body that is not JSON, invalid base64) yields an `Outcome` with the error for that
one record; the rest of the delivery carries on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

from corral import ocsf
from corral.errors import MalformedEventError
from corral.records import Item, Outcome

MAX_DEPTH: Final = 4  # an SQS body holding an EventBridge event is depth 2; deeper is not a delivery
PUBSUB_PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"
_EVENTBRIDGE_KEYS: Final = frozenset({"version", "id", "account", "time", "region", "resources", "detail"})
_LIST_KEYS: Final = ("Findings", "listFindingsResults", "value", "records", "data")


def unwrap(doc: object, where: str = "", delivery_id: str | None = None) -> Iterator[Item | Outcome]:
    """Yield the source documents inside `doc`, or an error Outcome for each broken wrapper.

    Example:
        >>> [i.doc for i in unwrap([{"a": 1}, {"b": 2}])]
        [{'a': 1}, {'b': 2}]
    """
    yield from _unwrap(doc, where, delivery_id, 0)


def _at(where: str, step: str) -> str:
    return f"{where}.{step}" if where and not step.startswith("[") else f"{where}{step}"


def _unwrap(
    doc: object, where: str, delivery_id: str | None, depth: int, received: int | None = None
) -> Iterator[Item | Outcome]:
    if depth > MAX_DEPTH:
        yield Outcome(where, error="envelopes nested too deeply", raw=doc)
        return
    if isinstance(doc, list):
        for i, element in enumerate(doc):
            yield from _unwrap(element, _at(where, f"[{i}]"), delivery_id, depth + 1, received)
        return
    if not isinstance(doc, Mapping):
        yield Outcome(where, error=f"expected a JSON object, got {_json_type(doc)}", raw=doc)
        return
    if _is_sqs_batch(doc):
        yield from _sqs(doc["Records"], where, depth)
    elif "detail-type" in doc and "detail" in doc and "source" in doc:
        yield from _eventbridge(doc, where)
    elif _is_partial_eventbridge(doc):
        # Hand-made test events keep only `detail` (and `region`) of the EventBridge envelope.
        detail = doc["detail"]
        region = doc.get("region")
        doc = {"region": region, **detail} if isinstance(region, str) else detail
        yield Item(doc, where, delivery_id, received)
    elif doc.get("specversion") and "data" in doc:
        yield from _cloudevent(doc, where, depth)
    elif isinstance(doc.get("message"), Mapping) and "data" in doc["message"]:
        yield from _pubsub(doc["message"], where, depth)
    elif (key := _list_key(doc)) is not None:
        for i, element in enumerate(doc[key]):
            yield from _unwrap(element, _at(where, f"{key}[{i}]"), delivery_id, depth + 1, received)
    else:
        yield Item(doc, where, delivery_id, received)


def _json_type(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _list_key(doc: Mapping[str, Any]) -> str | None:
    # Only a wrapper when the list is the point of the document: `data` or `value` beside other
    # finding fields (SCC's sourceProperties, Defender's properties) is not a wrapper.
    for key in _LIST_KEYS:
        if isinstance(doc.get(key), list) and not _looks_like_record(doc):
            return key
    return None


def _looks_like_record(doc: Mapping[str, Any]) -> bool:
    return any(k in doc for k in ("properties", "finding", "arn", "SystemAlertId", "AlertType", "schemaVersion"))


def _is_partial_eventbridge(doc: Mapping[str, Any]) -> bool:
    return isinstance(doc.get("detail"), Mapping) and set(doc) <= _EVENTBRIDGE_KEYS


def _is_sqs_batch(doc: Mapping[str, Any]) -> bool:
    records = doc.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def _sqs(records: list[Mapping[str, Any]], where: str, depth: int) -> Iterator[Item | Outcome]:
    for i, record in enumerate(records):
        here = _at(where, f"Records[{i}]")
        body = record.get("body")
        message_id = record.get("messageId") if isinstance(record.get("messageId"), str) else None
        try:
            parsed = orjson.loads(body) if isinstance(body, str) else None
        except orjson.JSONDecodeError as exc:
            yield Outcome(here, error=f"SQS record body is not JSON ({exc})", raw=body)
            continue
        if parsed is None:
            yield Outcome(here, error="SQS record has no body", raw=record)
            continue
        yield from _unwrap(parsed, here, message_id, depth + 1)


def _eventbridge(event: Mapping[str, Any], where: str) -> Iterator[Item | Outcome]:
    event_id = event.get("id") if isinstance(event.get("id"), str) else None
    if event.get("detail-type") == "GuardDuty Finding" and isinstance(event.get("detail"), Mapping):
        yield Item(event["detail"], where, event_id)
    else:
        yield Item(event, where, event_id)


def _cloudevent(event: Mapping[str, Any], where: str, depth: int) -> Iterator[Item | Outcome]:
    if event.get("type") != PUBSUB_PUBLISHED:
        yield Outcome(where, error=f"unsupported CloudEvent type {str(event.get('type'))[:80]!r}", raw=event)
        return
    data = event.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("message"), Mapping):
        yield from _pubsub(data["message"], _at(where, "data"), depth)
    else:
        yield Outcome(where, error="CloudEvent data has no Pub/Sub message", raw=event)


def _pubsub(message: Mapping[str, Any], where: str, depth: int) -> Iterator[Item | Outcome]:
    message_id = message.get("messageId") or message.get("message_id")
    message_id = message_id if isinstance(message_id, str) else None
    published = _time(message.get("publishTime") or message.get("publish_time"))
    data = message.get("data")
    if isinstance(data, Mapping):
        # Some log pipelines store push bodies with `data` already decoded.
        yield from _unwrap(data, _at(where, "message"), message_id, depth + 1, published)
        return
    if not isinstance(data, str):
        yield Outcome(where, error="Pub/Sub message data is not a base64 string", raw=message)
        return
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        yield Outcome(where, error="Pub/Sub message data is not valid base64", raw=message)
        return
    try:
        parsed = orjson.loads(decoded)
    except orjson.JSONDecodeError as exc:
        yield Outcome(where, error=f"Pub/Sub message data is not JSON ({exc})", raw=decoded)
        return
    yield from _unwrap(parsed, _at(where, "message"), message_id, depth + 1, published)


def _time(value: object) -> int | None:
    try:
        return ocsf.optional_timestamp_ms(value, "publishTime")
    except MalformedEventError:
        return None
