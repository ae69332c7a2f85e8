"""Microsoft Sentinel sink: findings as rows of a custom Log Analytics table, via the Logs Ingestion API.

Rows go through `azure-monitor-ingestion` (`LogsIngestionClient.upload`) to a data collection
endpoint, a data collection rule (`rule_id`, the DCR's immutable id) and its stream
(`Custom-CorralFindings_CL`). Authentication is Entra ID: `DefaultAzureCredential` (managed
identity in Azure), so no secret appears in configuration. The identity needs the "Monitoring
Metrics Publisher" role on the DCR.

The table `CorralFindings_CL` has the columns in `COLUMNS`: a few flat ones to filter and join
on in KQL, and `Finding`, the whole OCSF document (dynamic). The service truncates any field over
64 KB, so every text column is cut here with a visible marker, measured as JSON as the SDK
sends it, and a `Finding` too large for one field keeps its shape with its long strings cut; so
any one row fits a request. Requests stay under the API's 1 MB per call: rows are grouped here,
measured as the SDK measures them, so each `upload` is one request.

azure-core's own retries are off: the delivery ledger retries, with backoff and the service's
Retry-After. 429 and 5xx, connection errors, timeouts and token errors are retryable; any other
4xx is permanent.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from corral import ocsf, traits
from corral.context import container_context
from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily
from corral.sinks.http import CONNECT_TIMEOUT, READ_TIMEOUT, redirect_error, retry_after_seconds, send_batches
from corral.sinks.settings import MAX_TIMEOUT, ca_bundle, seconds
from corral.sinks.text import MARKER, cut_bytes, cut_chars, iso_ms

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.ingestion import LogsIngestionClient

FAMILY: Final[SinkFamily] = "siem"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`sentinel:name`).",
    "endpoint": "Logs ingestion endpoint of the data collection endpoint (DCE), `https://…ingest.monitor.azure.com`.",
    "rule_id": "Immutable id of the data collection rule (DCR), `dcr-` followed by 32 hex digits.",
    "stream": "DCR stream name (default `Custom-CorralFindings_CL`).",
    "managed_identity_client_id": (
        "Client id (a GUID) of a user-assigned managed identity (default: DefaultAzureCredential's choice)."
    ),
    "timeout": "Seconds to wait for an answer, 0.05 to 300 (default 15).",
    "ca_file": "PEM file of CA certificates to trust instead of the system store.",
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

TABLE: Final = "CorralFindings_CL"
STREAM: Final = "Custom-CorralFindings_CL"
COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("TimeGenerated", "datetime"),
    ("FindingUid", "string"),
    ("ProductUid", "string"),
    ("AccountUid", "string"),
    ("Cloud", "string"),
    ("Severity", "string"),
    ("SeverityId", "int"),
    ("Status", "string"),
    ("ChangeKind", "string"),
    ("Title", "string"),
    ("ContainerService", "string"),
    ("Cluster", "string"),
    ("Namespace", "string"),
    ("Image", "string"),
    ("IdempotencyKey", "string"),
    ("Finding", "dynamic"),
)
"""The table's (and the DCR stream declaration's) columns, in order, with Log Analytics types.

TimeGenerated is the finding version's own modified time. infra/azure declares the stream and
the table from this list, so the two cannot drift.
"""

FIELD_LIMIT_BYTES: Final = 64_000
"""Under the service's 64 KB (65,536 bytes) field limit, leaving room for JSON escaping."""
REQUEST_LIMIT_BYTES: Final = 1_000_000
"""Under the API's 1 MB per call (and the SDK's 1 MiB chunk), measured as the SDK measures."""

# The SDK chunks by json.dumps(row) size; its list adds ", " between rows and "[]" around them.
_ROW_OVERHEAD: Final = 2
_STRING_CUTS: Final = (8192, 2048, 512, 128, 32)
_RULE_ID: Final = re.compile(r"dcr-[0-9a-f]{32}")
_STREAM: Final = re.compile(r"(Custom|Microsoft)-[A-Za-z0-9_]{1,100}")
_GUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ERROR_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,80}")

log = logging.getLogger(__name__)


def stream_declaration() -> dict[str, Any]:
    """Return the DCR `streamDeclarations` entry for `STREAM` (also the table schema's columns)."""
    return {STREAM: {"columns": [{"name": name, "type": kind} for name, kind in COLUMNS]}}


def render(delivery: Delivery) -> dict[str, Any]:
    """Return the table row of one delivery; no field over `FIELD_LIMIT_BYTES`."""
    finding = delivery.finding
    product_uid, account_uid, finding_uid = ocsf.identity(finding)
    context = container_context(finding)
    info = finding.get("finding_info") or {}
    texts: dict[str, object] = {
        "FindingUid": finding_uid,
        "ProductUid": product_uid,
        "AccountUid": account_uid,
        "Cloud": (finding.get("cloud") or {}).get("provider"),
        "Severity": finding.get("severity"),
        "Status": finding.get("status"),
        "ChangeKind": delivery.change,
        "Title": info.get("title"),
        "ContainerService": traits.read(finding).get(traits.SERVICE),
        "Cluster": context.cluster,
        "Namespace": context.namespace,
        "Image": context.image,
        "IdempotencyKey": delivery.version,
    }
    row: dict[str, Any] = {"TimeGenerated": iso_ms(ocsf.modified_time(finding))}
    for name, value in texts.items():
        row[name] = None if value is None else cut_json(str(value), FIELD_LIMIT_BYTES)
    severity_id = finding.get("severity_id")
    row["SeverityId"] = severity_id if isinstance(severity_id, int) and not isinstance(severity_id, bool) else None
    row["Finding"] = fit(finding, FIELD_LIMIT_BYTES)
    return {name: row[name] for name, _ in COLUMNS}


def cut_json(text: str, limit: int) -> str:
    """Return `text`, or its longest start with the marker, whose JSON as the SDK measures it fits `limit` bytes.

    The SDK's JSON escapes every character outside ASCII (a control character takes 6 bytes, an
    emoji 12), so cutting the UTF-8 bytes alone would leave room for a row of several MB: with
    each text column and `Finding` under 64,000 bytes of JSON, a row stays under 900 KB and so
    always fits one request. JSON is never shorter than UTF-8, so the field limit holds too.

    Example:
        >>> cut_json("abc" * 10, 25), cut_json("é" * 10, 40)
        ('abcabc…[truncated]', 'ééé…[truncated]')
    """
    if _json_size(text) <= limit:
        return text
    room = limit - (_json_size(MARKER) - 2)  # the marker joins the cut text inside its quotes
    low, high = 0, len(text)  # the longest start that fits is in low..high
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low] + MARKER


def fit(document: Any, limit: int) -> Any:
    """Return `document`, or a copy with long strings cut, whose JSON fits `limit` bytes.

    Long strings are cut ever shorter (each ending with the truncation marker) until the document
    fits; a document that still does not fit (huge arrays) becomes its JSON text, cut.
    """
    if _json_size(document) <= limit:
        return document
    for cap in _STRING_CUTS:
        smaller = _cut_strings(document, cap)
        if _json_size(smaller) <= limit:
            return smaller
    text = orjson.dumps(document).decode()
    room = limit
    cut = cut_bytes(text, room)
    # Escaping can grow the cut text (up to 12 bytes for one emoji): shrink until it fits.
    while _json_size(cut) > limit and room > 1:
        room //= 2
        cut = cut_bytes(text, room)
    return cut


def _cut_strings(node: Any, cap: int) -> Any:
    if isinstance(node, str):
        return cut_chars(node, cap)
    if isinstance(node, dict):
        return {key: _cut_strings(value, cap) for key, value in node.items()}
    if isinstance(node, list):
        return [_cut_strings(value, cap) for value in node]
    return node


def _json_size(document: Any) -> int:
    # json.dumps escapes non-ASCII (\uXXXX), as the SDK and the service's limits see it.
    return len(json.dumps(document).encode())


class SentinelSink:
    """Uploads findings to one DCR stream."""

    family: SinkFamily = FAMILY

    def __init__(
        self, sink_id: str, *, client: LogsIngestionClient, rule_id: str, stream: str, credential: Any = None
    ) -> None:
        self.id = sink_id
        self._client = client
        self._rule_id = rule_id
        self._stream = stream
        self._credential = credential

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Upload the deliveries in requests under 1 MB; one Result each."""
        return send_batches(
            self.id,
            deliveries,
            render=render,
            size=lambda row: _json_size(row) + _ROW_OVERHEAD,
            limit=REQUEST_LIMIT_BYTES,
            too_large=lambda _row: "row exceeds the 1 MB request limit",
            send=self._upload,
            log=log,
        )

    def _upload(self, batch: Sequence[Delivery], rows: list[dict[str, Any]]) -> list[Result]:
        from azure.core.exceptions import AzureError  # noqa: PLC0415 - azure is loaded only when Sentinel is used

        failures: list[tuple[Exception, list[Mapping[str, Any]]]] = []
        logs: list[MutableMapping[str, Any]] = list(rows)
        try:
            self._client.upload(
                rule_id=self._rule_id,
                stream_name=self._stream,
                logs=logs,
                on_error=lambda failed: failures.append((failed.error, list(failed.failed_logs))),
            )
        except AzureError as exc:
            failures.append((exc, list(rows)))
        failed_keys: dict[str, Result] = {}
        for error, failed_rows in failures:
            for row in failed_rows:
                key = row.get("IdempotencyKey")
                if isinstance(key, str):
                    failed_keys[key] = self._failure(key, error)
        return [failed_keys.get(d.version) or Result.success(d.version) for d in batch]

    def _failure(self, version: str, error: Exception) -> Result:
        message, permanent, retry_after = classify_error(error, self.id)
        return Result.failure(version, message, permanent=permanent, retry_after=retry_after)

    def close(self) -> None:
        """Close the client's connections (and the credential's, when the sink made it)."""
        self._client.close()
        closer = getattr(self._credential, "close", None)
        if callable(closer):
            closer()


def classify_error(error: Exception, what: str) -> tuple[str, bool, float | None]:
    """Map an azure-core error to (message, permanent, retry_after); the message carries no secret."""
    from azure.core.exceptions import (  # noqa: PLC0415 - azure is loaded only when Sentinel is used
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(error, "status_code", None)
    if isinstance(error, HttpResponseError) and isinstance(status, int):
        headers: Mapping[str, str] = getattr(error.response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        if retry_after is None and headers.get("retry-after-ms"):
            retry_after = (retry_after_seconds(headers.get("retry-after-ms")) or 0.0) / 1000
        if status == 429 or status >= 500:
            return f"{what}: HTTP {status}", False, retry_after
        if status == 403:
            # The identity lacks Monitoring Metrics Publisher on the rule: usually a role assignment
            # made by the same deployment, which Azure RBAC takes minutes (up to about half an hour)
            # to apply. Retried with backoff (about a day of attempts), never dropped at the first answer.
            return f"{what}: HTTP 403 (not yet allowed to publish to the data collection rule)", False, retry_after
        if 300 <= status < 400:
            request = getattr(error.response, "request", None)
            url = getattr(request, "url", "") or ""
            return redirect_error(what, status, headers.get("Location"), url), True, None
        code = getattr(getattr(error, "error", None), "code", None)
        detail = f": {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
        return f"{what}: HTTP {status} (rejected{detail})", True, None
    if isinstance(error, ClientAuthenticationError):
        # No status: the credential could not get a token (managed identity endpoint down, or
        # not configured); worth retrying, and the operator sees why in the ledger.
        return f"{what}: cannot get an Entra ID token ({type(error).__name__})", False, None
    if isinstance(error, ServiceResponseError):
        return f"{what}: no answer (timed out or connection dropped)", False, None
    if isinstance(error, ServiceRequestError):
        return f"{what}: connection failed ({type(error).__name__})", False, None
    return f"{what}: upload failed ({type(error).__name__})", False, None


def make_client(
    endpoint: str,
    credential: TokenCredential,
    *,
    timeout: float = READ_TIMEOUT,
    ca_file: str | None = None,
) -> LogsIngestionClient:
    """Return a LogsIngestionClient with Corral's timeouts and azure-core's retries turned off."""
    from azure.core.pipeline.policies import RetryPolicy  # noqa: PLC0415 - loaded only when Sentinel is used
    from azure.monitor.ingestion import LogsIngestionClient  # noqa: PLC0415

    return LogsIngestionClient(
        endpoint=endpoint,
        credential=credential,
        retry_policy=RetryPolicy.no_retries(),
        # A redirect would carry the bearer token to whatever origin it names; it fails instead.
        permit_redirects=False,
        connection_timeout=CONNECT_TIMEOUT,
        read_timeout=timeout,
        connection_verify=ca_file or True,
    )


def from_config(
    sink_id: str,
    settings: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    credential: TokenCredential | None = None,
) -> SentinelSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `endpoint = "https://corral-dce-abcd.westeurope-1.ingest.monitor.azure.com"`,
    `rule_id = "dcr-00112233445566778899aabbccddeeff"`, `stream = "Custom-CorralFindings_CL"`,
    optional `managed_identity_client_id` (a user-assigned identity), `timeout` and `ca_file`.
    `credential` replaces DefaultAzureCredential (tests, or a caller with its own identity).
    """
    where = f"sinks.{sink_id}"
    endpoint = settings.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith("https://") or len(endpoint) <= len("https://"):
        # azure-core sends bearer tokens only over TLS, so http:// is refused even on loopback.
        raise ConfigError(f"{where}.endpoint: use the https:// logs ingestion endpoint of the data collection endpoint")
    rule_id = settings.get("rule_id")
    if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
        raise ConfigError(f'{where}.rule_id: use the DCR\'s immutable id, "dcr-" followed by 32 hex digits')
    stream = settings.get("stream", STREAM)
    if not isinstance(stream, str) or not _STREAM.fullmatch(stream):
        raise ConfigError(f"{where}.stream: use the DCR stream name, e.g. {STREAM}")
    client_id = settings.get("managed_identity_client_id")
    if client_id is not None and (not isinstance(client_id, str) or not _GUID.fullmatch(client_id)):
        raise ConfigError(f"{where}.managed_identity_client_id: use the client id (a GUID) of a user-assigned identity")
    timeout = seconds(settings, "timeout", where, READ_TIMEOUT, minimum=0.05, maximum=MAX_TIMEOUT)
    ca_file = ca_bundle(settings, where)
    owned = None
    if credential is None:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415 - loaded only when Sentinel is used

        credential = owned = (
            DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
        )
    client = make_client(endpoint.rstrip("/"), credential, timeout=timeout, ca_file=ca_file)
    return SentinelSink(sink_id, client=client, rule_id=rule_id, stream=stream, credential=owned)
