"""Local counterparts of the SIEM endpoints Corral's sinks talk to, as behaviours of a `FakeHTTPServer`.

`HecCollector`, `BulkIndex`, `LogsIngestion` and `WebhookReceiver` act like Splunk HEC,
Elasticsearch `_bulk`, the Azure Monitor Logs Ingestion API and a webhook receiver, closely enough
that the sinks' requests are checked the way the real services check them:

    >>> with FakeHTTPServer(HecCollector("token"), tls=make_tls(tmp_path)) as server: ...

`HecCollector.keep` and `WebhookReceiver.accept` are where a subclass takes what was accepted
(tests/scenario/receivers.py turns it into the copies the scenario counts).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

from tests.support.fake_http import Recorded, Reply, TlsFiles, make_tls  # noqa: F401  (tests/support/rsyslog.py imports them here)

# --- Splunk HTTP Event Collector -----------------------------------------------------------------


class HecCollector:
    """Acts like Splunk HEC's /services/collector/event: token check, event parsing, index allow-list."""

    def __init__(
        self, token: str, *, indexes: frozenset[str] = frozenset({"main", "security"}), max_bytes: int = 1_000_000
    ) -> None:
        self.token = token
        self.indexes = indexes
        self.max_bytes = max_bytes
        self.events: list[dict[str, Any]] = []

    def __call__(self, request: Recorded) -> Reply:
        """Answer one request as HEC does."""
        if request.path != "/services/collector/event":
            return Reply.json(404, {"text": "The requested URL was not found on this server.", "code": 404})
        auth = request.header("Authorization")
        if not auth:
            return Reply.json(401, {"text": "Token is required", "code": 2})
        if auth != f"Splunk {self.token}":
            return Reply.json(403, {"text": "Invalid token", "code": 4})
        if len(request.body) > self.max_bytes:
            return Reply(413, b"Content-Length of request exceeds max_content_length")
        try:
            events = _concatenated_json(request.body.decode("utf-8"))
        except ValueError:
            return Reply.json(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})
        if not events:
            return Reply.json(400, {"text": "No data", "code": 5})
        for number, event in enumerate(events):
            if "event" not in event:
                return Reply.json(400, {"text": "Event field is required", "code": 12, "invalid-event-number": number})
            if event["event"] in ("", {}, None):
                return Reply.json(
                    400, {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": number}
                )
            if "index" in event and event["index"] not in self.indexes:
                return Reply.json(400, {"text": "Incorrect index", "code": 7, "invalid-event-number": number})
        self.keep(events)
        return Reply.json(200, {"text": "Success", "code": 0})

    def keep(self, events: list[dict[str, Any]]) -> None:
        """Keep the events of an accepted request."""
        self.events.extend(events)


def _concatenated_json(text: str) -> list[dict[str, Any]]:
    # HEC accepts JSON objects one after another, separated by any whitespace.
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position == len(text):
            return found
        doc, position = decoder.raw_decode(text, position)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        found.append(doc)


# --- Elasticsearch _bulk -------------------------------------------------------------------------


class BulkIndex:
    """Acts like Elasticsearch's _bulk for `create`: ApiKey check, NDJSON parsing, 409 on a taken _id.

    `item_failures` maps an `_id` to a (status, error type) the next create of it answers, to stand
    for the per-item refusals a cluster gives (429 rejected execution, 400 mapping errors).
    """

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.documents: dict[str, dict[str, dict[str, Any]]] = {}
        self.item_failures: dict[str, tuple[int, str]] = {}

    def __call__(self, request: Recorded) -> Reply:
        """Answer one request as Elasticsearch does."""
        if request.path != "/_bulk":
            return Reply.json(404, {"error": "no handler", "status": 404})
        if request.header("Authorization") != f"ApiKey {self.api_key}":
            return Reply.json(
                401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}, "status": 401}
            )
        if not (request.header("Content-Type") or "").startswith("application/x-ndjson"):
            return Reply.json(406, {"error": "Content-Type header is not supported", "status": 406})
        if not request.body.endswith(b"\n"):
            return Reply.json(400, _bulk_error("The bulk request must be terminated by a newline [\\n]"))
        try:
            lines = [json.loads(line) for line in request.body.decode("utf-8").split("\n")[:-1]]
        except ValueError:
            return Reply.json(400, _bulk_error("Malformed content"))
        if len(lines) % 2:
            return Reply.json(400, _bulk_error("Validation Failed: 1: no requests added;"))
        items = [self._create(action, doc) for action, doc in zip(lines[::2], lines[1::2], strict=True)]
        errors = any(item["create"]["status"] >= 300 for item in items)
        return Reply.json(200, {"took": 3, "errors": errors, "items": items})

    def _create(self, action: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        meta = action["create"]
        index, doc_id = meta["_index"], meta["_id"]
        if doc_id in self.item_failures:
            status, kind = self.item_failures.pop(doc_id)
            return {
                "create": {
                    "_index": index,
                    "_id": doc_id,
                    "status": status,
                    "error": {"type": kind, "reason": "refused"},
                }
            }
        stored = self.documents.setdefault(index, {})
        if doc_id in stored:
            return {
                "create": {
                    "_index": index,
                    "_id": doc_id,
                    "status": 409,
                    "error": {
                        "type": "version_conflict_engine_exception",
                        "reason": f"[{doc_id}]: version conflict, document already exists",
                    },
                }
            }
        stored[doc_id] = doc
        return {"create": {"_index": index, "_id": doc_id, "_version": 1, "result": "created", "status": 201}}


def _bulk_error(reason: str) -> dict[str, Any]:
    return {"error": {"type": "illegal_argument_exception", "reason": reason}, "status": 400}


# --- Azure Monitor Logs Ingestion API -------------------------------------------------------------


class LogsIngestion:
    """Acts like the Logs Ingestion API: bearer token, DCR/stream path, gzip JSON array, 1 MB limit, 204."""

    LIMIT = 1024 * 1024

    def __init__(self, token: str, rule_id: str, stream: str) -> None:
        self.token = token
        self.path = f"/dataCollectionRules/{rule_id}/streams/{stream}"
        self.rows: list[dict[str, Any]] = []
        self.uncompressed_sizes: list[int] = []

    def __call__(self, request: Recorded) -> Reply:
        """Answer one request as the ingestion endpoint does."""
        if request.path != self.path:
            return Reply.json(
                404, {"error": {"code": "NotFound", "message": "Data collection rule or stream not found"}}
            )
        if request.query.get("api-version") != ["2023-01-01"]:
            return Reply.json(400, {"error": {"code": "InvalidApiVersion", "message": "bad api-version"}})
        if request.header("Authorization") != f"Bearer {self.token}":
            return Reply.json(401, {"error": {"code": "InvalidToken", "message": "token rejected"}})
        body = request.body
        if request.header("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.uncompressed_sizes.append(len(body))
        if len(request.body) > self.LIMIT or len(body) > self.LIMIT:
            return Reply.json(413, {"error": {"code": "ContentLengthLimitExceeded", "message": "too large"}})
        try:
            rows = json.loads(body)
        except ValueError:
            return Reply.json(400, {"error": {"code": "InvalidContent", "message": "not JSON"}})
        if not isinstance(rows, list):
            return Reply.json(400, {"error": {"code": "InvalidContent", "message": "not an array"}})
        self.rows.extend(rows)
        return Reply(204)


# --- Webhook receiver ---------------------------------------------------------------------------


class WebhookReceiver:
    """A receiver that checks Corral's signature with `corral.sinks.webhook.verify` and keeps bodies."""

    def __init__(self, secret: str, path: str, clock: Callable[[], float]) -> None:
        self.secret = secret
        self.path = path
        self.clock = clock
        self.accepted: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: Recorded) -> Reply:
        """Accept a correctly signed, fresh request; refuse others with 401."""
        if request.path != self.path:
            return Reply(404)
        from corral.sinks.webhook import verify

        ok = verify(
            self.secret,
            request.header("X-Corral-Timestamp") or "",
            request.body,
            request.header("X-Corral-Signature") or "",
            now=self.clock(),
        )
        if not ok:
            return Reply.json(401, {"error": "bad signature"})
        return self.accept(request.header("Idempotency-Key") or "", json.loads(request.body))

    def accept(self, key: str, body: dict[str, Any]) -> Reply:
        """Keep a signed request's Idempotency-Key and body; answer 202."""
        self.accepted.append((key, body))
        return Reply(202)
