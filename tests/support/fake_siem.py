"""Local counterparts of the SIEM endpoints Corral's sinks talk to, on 127.0.0.1 only.

`FakeServer` is a threaded HTTP(S) server that records every request and answers either from a
script (a queue of `Reply`, including a hung connection) or from a behaviour: `HecCollector`,
`BulkIndex`, `LogsIngestion` and `WebhookReceiver` act like Splunk HEC, Elasticsearch `_bulk`,
the Azure Monitor Logs Ingestion API and a webhook receiver, closely enough that the sinks'
requests are checked the way the real services check them. `make_tls` generates a self-signed
certificate for 127.0.0.1/localhost so that clients that insist on TLS (azure-core sends bearer
tokens only over https) have a real TLS endpoint. `make_finding` builds OCSF-shaped findings.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from corral import traits
from corral.sinks.base import Delivery
from corral.stores.base import ChangeKind

HANG_LIMIT = 20.0
"""A hung reply holds the connection at most this long (or until the server stops)."""


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return a header by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """What the server answers; `hang` holds the connection open without answering."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False

    @classmethod
    def json(cls, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON answer."""
        return cls(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})})


Behaviour = Callable[[Request], Reply]


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate (also its own CA) and its key, as PEM files."""

    cert: Path
    key: Path


def make_tls(directory: Path) -> TlsFiles:
    """Generate a self-signed certificate valid for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corral test endpoint")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "endpoint.pem", directory / "endpoint.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class FakeServer:
    """A threaded HTTP(S) server on 127.0.0.1 with scripted replies and a default behaviour."""

    def __init__(self, behaviour: Behaviour | None = None, *, tls: TlsFiles | None = None) -> None:
        self.behaviour: Behaviour = behaviour or (lambda _request: Reply(200, b"{}"))
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            # The handshake happens in the handler thread, so a stuck client cannot block accept().
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL, e.g. http://127.0.0.1:54321."""
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests, before the behaviour takes over again."""
        with self._lock:
            self._script.extend(replies)

    def answer(self, request: Request) -> Reply:
        """Record the request; answer from the script, else from the behaviour."""
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return scripted or self.behaviour(request)

    def wait_released(self) -> None:
        """Block a hung reply until the server stops (bounded)."""
        self._release.wait(HANG_LIMIT)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def _handler_class(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                "POST",
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            reply = server.answer(request)
            if reply.hang:
                server.wait_released()
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


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

    def __call__(self, request: Request) -> Reply:
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
        self.events.extend(events)
        return Reply.json(200, {"text": "Success", "code": 0})


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

    def __call__(self, request: Request) -> Reply:
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

    def __call__(self, request: Request) -> Reply:
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

    def __call__(self, request: Request) -> Reply:
        """Accept a correctly signed, fresh request; refuse others with 401."""
        from corral.sinks.webhook import verify

        if request.path != self.path:
            return Reply(404)
        ok = verify(
            self.secret,
            request.header("X-Corral-Timestamp") or "",
            request.body,
            request.header("X-Corral-Signature") or "",
            now=self.clock(),
        )
        if not ok:
            return Reply.json(401, {"error": "bad signature"})
        self.accepted.append((request.header("Idempotency-Key") or "", json.loads(request.body)))
        return Reply(202)


# --- Findings -----------------------------------------------------------------------------------


def make_finding(
    *,
    uid: str = "arn:aws:guardduty:eu-west-1:111122223333:detector/d1/finding/f1",
    title: str = "Reverse shell in a container",
    desc: str = "A process in the container opened a reverse shell to 198.51.100.7.",
    severity_id: int = 4,
    status_id: int = 1,
    time: int = 1_704_164_645_123,
    cluster: str = "prod-eks",
    namespace: str = "payments",
    image: str = "registry.example/payments/api:1.4.2",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an OCSF Detection Finding with cloud and container context."""
    severities = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
    statuses = {1: "New", 2: "In Progress", 4: "Resolved"}
    finding: dict[str, Any] = {
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": time,
        "severity_id": severity_id,
        "severity": severities.get(severity_id, "Other"),
        "status_id": status_id,
        "status": statuses.get(status_id, "Other"),
        "metadata": {
            "version": "1.8.0",
            "profiles": ["cloud", "container"],
            "product": {"name": "GuardDuty", "vendor_name": "AWS", "uid": "aws.guardduty"},
        },
        "cloud": {
            "provider": "AWS",
            "region": "eu-west-1",
            "account": {"uid": "111122223333", "type_id": 10, "type": "AWS Account"},
        },
        "finding_info": {
            "uid": uid,
            "title": title,
            "desc": desc,
            "types": ["Execution:Runtime/ReverseShell"],
            "modified_time": time,
            "traits": traits.classify(traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION),
        },
        "resources": [
            {"type": "EKS Cluster", "name": cluster, "uid": f"arn:aws:eks:eu-west-1:111122223333:cluster/{cluster}"},
            {"type": "Pod", "name": "api-7d9f", "namespace": namespace},
        ],
        "evidences": [
            {
                "process": {
                    "name": "sh",
                    "pid": 4242,
                    "container": {"name": "api", "image": {"name": image, "uid": "sha256:" + "ab" * 32}},
                }
            }
        ],
    }
    finding.update(extra or {})
    return finding


def make_delivery(
    sink: str,
    *,
    version: str = "9f2c" * 16,
    change: ChangeKind = "new",
    finding: dict[str, Any] | None = None,
    **finding_args: Any,
) -> Delivery:
    """Return a Delivery of `finding` (or of `make_finding(**finding_args)`) to `sink`."""
    return Delivery(sink=sink, version=version, change=change, finding=finding or make_finding(**finding_args))


HOSTILE_TEXTS: tuple[str, ...] = (
    "line one\nline two\r\nline three",
    'quote " and \\" backslash \\ done',
    "pipe | equals = caret ^ hash # percent %",
    "NUL \x00 inside and \x1b[31m escape",
    "RTL \u202e override \u202d and zero-width \u200b",
    "header-ish\r\nX-Injected: 1\r\n\r\nbody",
    '{"create":{"_index":"evil","_id":"x"}}\n{"pwn":1}\n',
    "A" * 100_000,
    "é漢🙂" * 20_000,
)
"""Attacker-controlled titles and descriptions that must not break any payload."""


# --- Golden files -------------------------------------------------------------------------------

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "sinks"


def check_golden(kind: str, name: str, data: bytes) -> None:
    """Compare `data` with tests/golden/sinks/<kind>/<name>; rewrite it when CORRAL_GOLDEN_UPDATE=1."""
    import os

    path = GOLDEN_DIR / kind / name
    if os.environ.get("CORRAL_GOLDEN_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.is_file(), f"missing golden file {path}; run the tests with CORRAL_GOLDEN_UPDATE=1 and review the diff"
    assert data == path.read_bytes(), f"{path} differs; if the change is intended, rerun with CORRAL_GOLDEN_UPDATE=1"
