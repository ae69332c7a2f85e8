"""Elasticsearch sink: OCSF findings through `_bulk`, one `create` per delivery, `_id` = idempotency key.

`create` (not `index`) makes a duplicate delivery harmless: Elasticsearch refuses a second
document with the same `_id` with 409, which here means "already delivered" and counts as a
success. `create` is also the only operation a data stream accepts, so `index` may name an index,
an alias or a data stream. Documents are the OCSF finding plus `@timestamp` (the version's own
modified time) and `corral.change` / `corral.idempotency_key`.

The index name travels inside the NDJSON action line, never in the URL path, and is checked at
start-up against Elasticsearch's naming rules. `_bulk` answers 200 even when items fail, so each
item's own status decides its delivery: 2xx or 409 success, 429 and 5xx retryable, other 4xx
(mapping errors) permanent. A refused request (401, 5xx, timeout) fails all its items; a 413 is
sent again in halves, so that only a document refused alone fails for good.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from corral import ocsf
from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily, finding_and
from corral.sinks.http import (
    READ_TIMEOUT,
    Answer,
    Client,
    post_halving,
    require_https,
    secret_from_env,
    send_batches,
)
from corral.sinks.settings import MAX_TIMEOUT, PUBLIC_URL_HELP, ca_bundle, number, public_url, seconds
from corral.sinks.text import finding_link, iso_ms

FAMILY: Final[SinkFamily] = "siem"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`elastic:name`).",
    "url": "Elasticsearch base URL, `https://host:9200` (http only on loopback); no query string.",
    "index": "Index, alias or data stream to write to, e.g. `logs-corral.findings-default`.",
    "api_key_env": "Environment variable holding the API key in its encoded (base64) form.",
    "max_request_bytes": "Largest `_bulk` request body in bytes, 1024 to 2^30 (default 5000000).",
    "timeout": "Seconds to wait for an answer, 0.05 to 300 (default 15).",
    "ca_file": "PEM file of CA certificates to trust instead of the system store.",
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

DEFAULT_MAX_REQUEST_BYTES: Final = 5_000_000
CONFLICT: Final = 409

_API_KEY: Final = re.compile(r"[\x21-\x7e]+")
# Elasticsearch: lowercase, none of \ / * ? " < > | , # : or space, not starting with - _ +, not . or ..
_INDEX_NAME: Final = re.compile(r"[a-z0-9.][a-z0-9._-]*")
_INDEX_BYTES: Final = 255
_ERROR_TYPE: Final = re.compile(r"[a-z_]{1,80}")

log = logging.getLogger(__name__)


def render(delivery: Delivery, index: str, public_url: str | None = None) -> bytes:
    """Return the two NDJSON lines (`create` action and document) of one delivery, newline-terminated.

    With `public_url` the document carries `corral.url`, the finding's page on Corral's dashboard.
    """
    action = {"create": {"_index": index, "_id": delivery.version}}
    corral: dict[str, str] = {"change": delivery.change, "idempotency_key": delivery.version}
    link = finding_link(public_url, delivery.finding)
    if link:
        corral["url"] = link
    document = finding_and(delivery, {"@timestamp": iso_ms(ocsf.modified_time(delivery.finding)), "corral": corral})
    # orjson escapes every control character, so neither line can contain a raw newline.
    return orjson.dumps(action) + b"\n" + orjson.dumps(document) + b"\n"


def item_result(version: str, item: object, what: str) -> Result:
    """Map one `_bulk` response item to the Result of its delivery."""
    body = item.get("create") if isinstance(item, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, int) or isinstance(status, bool):
        return Result.failure(version, f"{what}: unreadable bulk item")
    if 200 <= status < 300 or status == CONFLICT:
        return Result.success(version)
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    detail = f" ({kind})" if isinstance(kind, str) and _ERROR_TYPE.fullmatch(kind) else ""
    if status == 429 or status >= 500:
        return Result.failure(version, f"{what}: item HTTP {status}{detail}")
    return Result.failure(version, f"{what}: item HTTP {status}{detail} (rejected)", permanent=True)


class ElasticSink:
    """Sends findings to one Elasticsearch index or data stream."""

    family: SinkFamily = FAMILY

    def __init__(
        self,
        sink_id: str,
        *,
        url: str,
        index: str,
        api_key: str,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        client: Client,
        public_url: str | None = None,
    ) -> None:
        self.id = sink_id
        self._public_url = public_url
        self._url = url.rstrip("/") + "/_bulk"
        self._index = index
        self._limit = max_request_bytes
        self._client = client
        self._headers = {"Authorization": f"ApiKey {api_key}", "Content-Type": "application/x-ndjson"}

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Send the deliveries in as few `_bulk` requests as the size limit allows; one Result each."""
        return send_batches(
            self.id,
            deliveries,
            render=lambda delivery: render(delivery, self._index, self._public_url),
            size=len,
            limit=self._limit,
            too_large=lambda lines: f"document of {len(lines)} bytes exceeds max_request_bytes ({self._limit})",
            send=self._post,
            log=log,
        )

    def _post(self, batch: Sequence[Delivery], lines: list[bytes]) -> list[Result]:
        return post_halving(
            lambda group: self._client.post(self._url, b"".join(group), self._headers, what=self.id),
            self._results,
            batch,
            lines,
        )

    def _results(self, answer: Answer, batch: Sequence[Delivery]) -> list[Result]:
        if not answer.ok:
            error = answer.error or f"{self.id}: failed"
            return [
                Result.failure(d.version, error, permanent=answer.permanent, retry_after=answer.retry_after)
                for d in batch
            ]
        try:
            doc = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            doc = None
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list) or len(items) != len(batch):
            # Without one item per action we cannot tell what was stored; the ledger retries, and
            # `create` turns whatever was stored into a 409 (success) next time.
            return [Result.failure(d.version, f"{self.id}: unreadable bulk answer") for d in batch]
        return [item_result(d.version, item, self.id) for d, item in zip(batch, items, strict=True)]

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()


def index_name(value: object, where: str) -> str:
    """Return `value` if it is a valid Elasticsearch index, alias or data stream name."""
    if (
        not isinstance(value, str)
        or value in (".", "..")
        or len(value.encode()) > _INDEX_BYTES
        or not _INDEX_NAME.fullmatch(value)
    ):
        raise ConfigError(
            f"{where}: use an Elasticsearch index or data stream name: lowercase letters, digits, '.', '_' "
            "and '-', not starting with '-', '_' or '+', at most 255 bytes"
        )
    return value


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> ElasticSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `url = "https://es.example:9200"`, `index = "logs-corral.findings-default"`,
    `api_key_env = "ELASTIC_API_KEY"` (the base64 "encoded" API key), optional
    `max_request_bytes`, `timeout` (seconds) and `ca_file`.
    """
    where = f"sinks.{sink_id}"
    url = require_https(settings.get("url"), f"{where}.url")
    if urlsplit(url).query or urlsplit(url).fragment:
        raise ConfigError(f"{where}.url: remove the query string; credentials go in the environment variable")
    index = index_name(settings.get("index"), f"{where}.index")
    api_key = secret_from_env(settings, "api_key_env", env, where)
    if not _API_KEY.fullmatch(api_key):
        # The key goes into a header: reject anything that could split or corrupt it.
        raise ConfigError(f"{where}.api_key_env: the API key must be printable ASCII without spaces (the encoded form)")
    limit = int(number(settings, "max_request_bytes", where, DEFAULT_MAX_REQUEST_BYTES, minimum=1024, maximum=1 << 30))
    timeout = seconds(settings, "timeout", where, READ_TIMEOUT, minimum=0.05, maximum=MAX_TIMEOUT)
    return ElasticSink(
        sink_id,
        url=url,
        index=index,
        api_key=api_key,
        max_request_bytes=limit,
        client=Client(ca_certs=ca_bundle(settings, where), timeout=timeout),
        public_url=public_url(settings, where),
    )
