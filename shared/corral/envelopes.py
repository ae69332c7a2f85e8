"""Unwrap deliveries: find the source documents inside whatever the event bus wrapped them in.

Shapes, detected from the document itself (no configuration):

- AWS: an EventBridge event of any source gives its `detail`, with the event's source, detail
  type, region, account and time beside it (`records.Envelope`); an SQS batch whose record bodies
  are JSON (raw SNS delivery or not); an SNS notification, alone (HTTP, SNS → SQS without raw
  delivery) or in a Lambda SNS batch (`{"Records": [{"EventSource": "aws:sns", "Sns": …}]}`);
  a GuardDuty `GetFindings` result (`{"Findings": [...]}`); an Inspector `ListFindings` result (`{"findings": [...]}`);
  a Lambda asynchronous invocation record (an on-failure destination's message) gives its
  `requestPayload`, the event the function failed on, so a failure queue can be replayed as it is.
- Azure: a JSON array of continuous-export records; REST lists (`{"value": [...]}`); Resource
  Graph results (`{"data": [...]}`, `{"records": [...]}`).
- Google Cloud: a Pub/Sub push body (`{"message": {"data": base64}}`); a CloudEvent
  `google.cloud.pubsub.topic.v1.messagePublished` (structured; the binary mode's body is a push
  body); a `ListFindings` result (`{"listFindingsResults": [...]}`).

Anything else is handed on as one document for the sources to recognize. A wrapper that is
broken (an SQS body that is not JSON, invalid base64) yields an `Outcome` with the error for that
one record; the rest of the delivery carries on.

Each item carries the transport's stable order for it: the innermost publish time that the
wrappers state (EventBridge `time`, SNS `Timestamp`, SQS `SentTimestamp`, Pub/Sub `publishTime`),
which stands in for a source time only where the document has none, and never the time Corral
happened to process it. It also carries the bytes it was parsed from and its path in them, so that
a failing element is dead-lettered as its own slice of the input.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final, TypeGuard

import orjson

from corral import ocsf
from corral.errors import MalformedEventError
from corral.records import Envelope, Item, NamedTuple, Outcome, Path

MAX_DEPTH: Final = 4  # an SQS body holding an SNS notification of an EventBridge event is depth 3
PUBSUB_PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"
_EVENTBRIDGE_KEYS: Final = frozenset({"version", "id", "account", "time", "region", "resources", "detail"})
_LIST_KEYS: Final = ("Findings", "findings", "listFindingsResults", "value", "records", "data")
# Each wrapper shape `_unwrap` tells apart needs one of these keys: a document without any is bare.
_WRAPPER_KEYS: Final = frozenset(("Records", "Type", "detail", "specversion", "message", "requestPayload", *_LIST_KEYS))
# A dict is checked first: the abstract Mapping check costs far more, and parsed JSON is dicts.
_MAPPING: Final = (dict, Mapping)


class _At(NamedTuple):
    """Where the walk is: location for messages, ids and order from the wrappers, and input bytes.

    A named tuple: one is made for every element of a list, and building one must stay cheap.
    """

    where: str = ""
    delivery_id: str | None = None
    received: int | None = None
    sequence: int | None = None
    body: bytes | None = None
    path: Path = ()
    depth: int = 0

    # Built field by field: `_replace` goes through a map over the fields, several times the cost.
    def step(self, label: str, *keys: str | int) -> _At:
        path = (*self.path, *keys)
        return _At(self._label(label), self.delivery_id, self.received, self.sequence, self.body, path, self.depth)

    def element(self, label: str, *keys: str | int) -> _At:
        """Step into an element of a list, one level deeper."""
        path = (*self.path, *keys)
        return _At(self._label(label), self.delivery_id, self.received, self.sequence, self.body, path, self.depth + 1)

    def _label(self, label: str) -> str:
        return f"{self.where}.{label}" if self.where and not label.startswith("[") else f"{self.where}{label}"

    def inner(self, body: bytes | None, delivery_id: str | None, received: int | None) -> _At:
        """Enter a message whose content was parsed from its own text (an SQS body, Pub/Sub data).

        The message's own id and time, where it states them, take over from the outer ones.
        """
        return _At(
            self.where,
            self.delivery_id if delivery_id is None else delivery_id,
            self.received if received is None else received,
            self.sequence,
            body,
            (),
            self.depth + 1,
        )

    def failure(self, error: str, raw: object, path: Path | None = None) -> Outcome:
        return Outcome(self.where, error=error, raw=raw, body=self.body, path=self.path if path is None else path)

    def item(self, doc: object, envelope: Envelope | None = None) -> Item:
        return Item(doc, self.where, self.delivery_id, self.received, envelope, self.body, self.path, self.sequence)


def unwrap(
    doc: object,
    where: str = "",
    delivery_id: str | None = None,
    *,
    body: bytes | None = None,
    received_time: int | None = None,
    sequence: int | None = None,
) -> Iterator[Item | Outcome]:
    """Yield the source documents inside `doc`, or an error Outcome for each broken wrapper.

    `body` is the text `doc` was parsed from, when there was one; `received_time` and `sequence`
    are the outermost transport's own order for it (e.g. Event Hubs enqueued time and sequence).

    Example:
        >>> [i.doc for i in unwrap([{"a": 1}, {"b": 2}])]
        [{'a': 1}, {'b': 2}]
    """
    yield from _unwrap(doc, _At(where, delivery_id, received_time, sequence, body))


def single(
    doc: object,
    where: str = "",
    delivery_id: str | None = None,
    *,
    body: bytes | None = None,
    received_time: int | None = None,
    sequence: int | None = None,
) -> Item | None:
    """The one Item `unwrap` yields for `doc` when `doc` is a bare document or an EventBridge event; else None.

    Most deliveries are one of the two: they are answered here without walking every shape through
    nested generators. None says nothing about `doc` but to ask `unwrap`.

    Example:
        >>> single({"a": 1}).doc, single([{"a": 1}])
        ({'a': 1}, None)
    """
    if type(doc) is dict and doc.keys().isdisjoint(_WRAPPER_KEYS):
        return Item(doc, where, delivery_id, received_time, None, body, (), sequence)
    return _single(doc, _At(where, delivery_id, received_time, sequence, body))


def _single(doc: object, at: _At) -> Item | None:
    """What `_unwrap(doc, at)` yields when that is one Item of a bare document or an EventBridge event; else None."""
    if type(doc) is not dict or at.depth > MAX_DEPTH:
        return None
    if doc.keys().isdisjoint(_WRAPPER_KEYS):
        return at.item(doc)
    # What `_unwrap` asks before its EventBridge branch (a batch, an SNS notification) needs one of these.
    detail = doc.get("detail")
    if "Records" in doc or "Type" in doc or type(detail) is not dict:
        return None
    if ("detail-type" in doc and "source" in doc) or doc.keys() <= _EVENTBRIDGE_KEYS:
        return _eventbridge_item(doc, detail, at)
    return None


def _unwrap(doc: object, at: _At) -> Iterator[Item | Outcome]:
    if at.depth > MAX_DEPTH:
        yield at.failure("envelopes nested too deeply", doc)
        return
    if isinstance(doc, list):
        for i, element in enumerate(doc):
            yield from _unwrap(element, at.element(f"[{i}]", i))
        return
    if not isinstance(doc, _MAPPING):
        yield at.failure(f"expected a JSON object, got {_json_type(doc)}", doc)
        return
    # Each shape is first asked for the key it cannot do without: most documents are none of them.
    records = doc.get("Records")
    if records is not None and _is_batch(records, "eventSource", "aws:sqs"):
        yield from _sqs(records, at)
    elif records is not None and _is_batch(records, "EventSource", "aws:sns"):
        yield from _sns_batch(records, at)
    elif "Type" in doc and _is_sns_notification(doc):
        yield from _sns(doc, at)
    elif "detail" in doc and (("detail-type" in doc and "source" in doc) or _is_partial_eventbridge(doc)):
        # Hand-made test events keep only `detail` (and `region`) of the EventBridge envelope.
        yield _eventbridge(doc, at)
    elif doc.get("specversion") and "data" in doc:
        yield from _cloudevent(doc, at)
    elif "message" in doc and isinstance(doc["message"], _MAPPING) and "data" in doc["message"]:
        yield from _pubsub(doc["message"], at, "message", ("message",))
    elif "requestPayload" in doc and _is_invocation_record(doc):
        # The record's times are the failure's, not the event's: the event keeps its own.
        yield from _unwrap(doc["requestPayload"], at.element("requestPayload", "requestPayload"))
    elif (key := _list_key(doc)) is not None:
        for i, element in enumerate(doc[key]):
            yield from _unwrap(element, at.element(f"{key}[{i}]", key, i))
    else:
        yield at.item(doc)


def _join(where: str, label: str) -> str:
    return f"{where}.{label}" if where else label


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
    return isinstance(doc.get("detail"), _MAPPING) and doc.keys() <= _EVENTBRIDGE_KEYS


def _is_invocation_record(doc: Mapping[str, Any]) -> bool:
    """A Lambda invocation record: `requestContext` names the function that was invoked."""
    context = doc.get("requestContext")
    return isinstance(context, _MAPPING) and "functionArn" in context and "responseContext" in doc


def _is_batch(records: object, source_key: str, source: str) -> TypeGuard[list[Mapping[str, Any]]]:
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, _MAPPING) and r.get(source_key) == source for r in records)
    )


def _is_sns_notification(doc: Mapping[str, Any]) -> bool:
    return doc.get("Type") in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation") and (
        "TopicArn" in doc and "Message" in doc
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _sqs(records: list[Mapping[str, Any]], at: _At) -> Iterator[Item | Outcome]:
    for i, record in enumerate(records):
        here = at.step(f"Records[{i}]", "Records", i)
        body = record.get("body")
        if not isinstance(body, str):
            yield here.failure("SQS record has no body", record)
            continue
        attributes = record.get("attributes")
        sent = attributes.get("SentTimestamp") if isinstance(attributes, Mapping) else None
        inner = here.inner(
            body.encode("utf-8", "surrogatepass"),
            delivery_id=_text(record.get("messageId")),
            received=_time(sent, "SentTimestamp"),
        )
        yield from _message(body, inner, "SQS record body")


def _message(text: str, at: _At, what: str) -> Iterator[Item | Outcome]:
    """Parse the JSON text of one message and unwrap it; text that is not JSON is that message's failure."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        yield at.failure(f"{what} is not JSON ({exc})", text)
        return
    one = _single(parsed, at)
    if one is not None:
        yield one
    else:
        yield from _unwrap(parsed, at)


def _sns_batch(records: list[Mapping[str, Any]], at: _At) -> Iterator[Item | Outcome]:
    for i, record in enumerate(records):
        here = at.step(f"Records[{i}]", "Records", i)
        notification = record.get("Sns")
        if not isinstance(notification, Mapping):
            yield here.failure("SNS record has no Sns object", record)
            continue
        yield from _sns(notification, here.step("Sns", "Sns"))


def _sns(notification: Mapping[str, Any], at: _At) -> Iterator[Item | Outcome]:
    kind = notification.get("Type", "Notification")
    if kind != "Notification":
        yield Outcome(at.where, skipped=f"SNS {kind}, not a notification")
        return
    message = notification.get("Message")
    if not isinstance(message, str):
        yield at.failure("SNS notification has no Message string", notification)
        return
    inner = at.inner(
        message.encode("utf-8", "surrogatepass"),
        delivery_id=_text(notification.get("MessageId")),
        received=_time(notification.get("Timestamp"), "Timestamp"),
    )
    yield from _message(message, inner, "SNS message")


def _eventbridge(event: Mapping[str, Any], at: _At) -> Item | Outcome:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        # The record is the event: a failure keeps the whole event's bytes, not only its detail.
        return at.failure(f"EventBridge detail is {_json_type(detail)}, not a JSON object", event)
    return _eventbridge_item(event, detail, at)


def _eventbridge_item(event: Mapping[str, Any], detail: Mapping[str, Any], at: _At) -> Item:
    envelope = Envelope(
        _text(event.get("source")),
        _text(event.get("detail-type")),
        _text(event.get("region")),
        _text(event.get("account")),
        _time(event.get("time"), "time"),
        event,
    )
    received = envelope.time if envelope.time is not None else at.received
    delivery_id = _text(event.get("id")) or at.delivery_id
    return Item(detail, at.where, delivery_id, received, envelope, at.body, at.path, at.sequence)


def _cloudevent(event: Mapping[str, Any], at: _At) -> Iterator[Item | Outcome]:
    if event.get("type") != PUBSUB_PUBLISHED:
        yield at.failure(f"unsupported CloudEvent type {str(event.get('type'))[:80]!r}", event)
        return
    data = event.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("message"), Mapping):
        yield from _pubsub(data["message"], at._replace(where=_join(at.where, "data")), "message", ("data", "message"))
    else:
        yield at.failure("CloudEvent data has no Pub/Sub message", event)


def _pubsub(message: Mapping[str, Any], at: _At, label: str, keys: Path) -> Iterator[Item | Outcome]:
    """A Pub/Sub message at `keys` below `at`; its content is located at `label`, failures at `at`."""
    message_id = _text(message.get("messageId")) or _text(message.get("message_id"))
    published = _time(message.get("publishTime") or message.get("publish_time"), "publishTime")
    here = at._replace(where=_join(at.where, label), path=(*at.path, *keys))
    data = message.get("data")
    if isinstance(data, Mapping):
        # Some log pipelines store push bodies with `data` already decoded.
        inner = here._replace(path=(*here.path, "data"), depth=at.depth + 1)
        yield from _unwrap(data, inner._replace(delivery_id=message_id or at.delivery_id, received=published))
        return
    if not isinstance(data, str):
        yield at.failure("Pub/Sub message data is not a base64 string", message)
        return
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        yield at.failure("Pub/Sub message data is not valid base64", message)
        return
    inner = here.inner(decoded, delivery_id=message_id, received=published)
    try:
        parsed = orjson.loads(decoded)
    except orjson.JSONDecodeError as exc:
        yield inner.failure(f"Pub/Sub message data is not JSON ({exc})", decoded)
        return
    yield from _unwrap(parsed, inner)


def _time(value: object, name: str) -> int | None:
    if isinstance(value, str):
        if value.isascii() and value.isdigit():  # not "²", a digit to isdigit() that int() refuses
            value = int(value)  # SQS attributes are strings of epoch milliseconds
        elif _is_plain_utc(value):
            try:
                # What `ocsf.timestamp_ms` makes of it, without its rewriting for other forms.
                return int(datetime.fromisoformat(value).timestamp() * 1000)
            except ValueError:
                pass  # read as ever below, which says how it is wrong
    try:
        return ocsf.optional_timestamp_ms(value, name)
    except (MalformedEventError, ValueError, OverflowError, TypeError):
        return None


def _is_plain_utc(text: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SSZ`, with or without a fraction: how EventBridge, SNS and Pub/Sub state times."""
    return (
        len(text) >= 20
        and text[-1] == "Z"
        and text.isascii()
        and text[4] == "-"
        and text[7] == "-"
        and text[10] == "T"
        and text[13] == ":"
        and text[16] == ":"
        and (len(text) == 20 or (text[19] == "." and text[20:-1].isdigit()))
    )
