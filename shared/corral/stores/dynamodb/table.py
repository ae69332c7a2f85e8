"""The DynamoDB table behind the store: the client, calls with errors mapped, batches and the schema."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, TypeVar

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from corral.errors import ConfigError, StoreUnavailableError
from corral.redaction import redact_url
from corral.stores.dynamodb.items import INDEX, INDEX_ATTRIBUTES, SCHEMA_VERSION, Item, as_n, as_s, get_s

if TYPE_CHECKING:
    from botocore.client import BaseClient

T = TypeVar("T")

WRITE_CONCURRENCY: Final = 8
MAX_CONFLICT_RETRIES: Final = 25
BATCH_RETRIES: Final = 8
BATCH_GET_KEYS: Final = 100
BATCH_WRITE_ITEMS: Final = 25
READ_OPERATIONS: Final = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DATA_OPERATIONS: Final = READ_OPERATIONS | WRITE_OPERATIONS
UNAVAILABLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
DENIED_CODES: Final = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException", "InvalidSignatureException"}
)
BOTO_CONFIG: Final = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "total_max_attempts": 4},
    max_pool_connections=WRITE_CONCURRENCY * 2,
)


class TableMissingError(StoreUnavailableError):
    """The table does not exist (yet): retryable, since a deployment may be creating it."""


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def backoff(attempt: int) -> None:
    """Sleep before retry `attempt`: full jitter, capped."""
    # Full jitter, capped: conflicting writers and throttled batches spread out instead of colliding again.
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))  # noqa: S311 - jitter, not secrecy


_SESSION_LOCK: Final = threading.Lock()


@functools.cache
def _session() -> Any:
    # One boto3 session per process: loading the service models costs about 0.3 s, and stores
    # opened later (the CLI, tests, a warm function) reuse it. Sessions are not thread-safe, so
    # clients are created under a lock; the clients themselves are.
    return boto3.session.Session()


def _new_client(region: str, endpoint: str | None) -> Any:
    with _SESSION_LOCK:
        return _session().client("dynamodb", region_name=region, endpoint_url=endpoint, config=BOTO_CONFIG)


class Table:
    """One DynamoDB table and its client: calls with errors mapped, batches, paging and the schema.

    The store's methods live in mixins of this class, one module per concern.
    """

    def __init__(self, *, url: str, table: str, region: str, endpoint: str | None = None) -> None:
        """Remember where the table is; the client is created on first use."""
        self.url = redact_url(url)
        self.table = table
        self.region = region
        self.endpoint = endpoint
        self.round_trips = 0
        self.consumed_wcu = 0.0
        self.consumed_rcu = 0.0
        self._lock = threading.Lock()
        self._client: BaseClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    # Plumbing ----------------------------------------------------------------------------------

    @property
    def client(self) -> BaseClient:
        """The boto3 DynamoDB client of this store, created once (sessions are not thread-safe)."""
        with self._lock:
            if self._client is None:
                client = _new_client(self.region, self.endpoint)
                client.meta.events.register("before-send.dynamodb", self._count_request)
                client.meta.events.register("after-call.dynamodb", self._count_capacity)
                self._client = client
            return self._client

    def _count_request(self, **_: Any) -> None:
        with self._lock:
            self.round_trips += 1

    def _count_capacity(self, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        if not consumed:
            return
        units = sum(float(c.get("CapacityUnits", 0)) for c in (consumed if isinstance(consumed, list) else [consumed]))
        with self._lock:
            if model.name in READ_OPERATIONS:
                self.consumed_rcu += units
            else:
                self.consumed_wcu += units

    def _pool_map(self, function: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WRITE_CONCURRENCY, thread_name_prefix="corral-dynamodb")
            pool = self._pool
        return list(pool.map(function, items))

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call one DynamoDB operation, with errors mapped to Corral's (conditional failures pass)."""
        name = "".join(part.capitalize() for part in operation.split("_"))
        if name in DATA_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        if "RequestItems" not in params:
            params.setdefault("TableName", self.table)
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise TableMissingError(
                    f"DynamoDB table {self.table!r} does not exist in {self.region}: run `corral store migrate`"
                    " or deploy the table"
                ) from None
            if code in UNAVAILABLE_CODES:
                raise StoreUnavailableError(
                    f"DynamoDB table {self.table!r} in {self.region}: {code} after retries"
                ) from None
            if code in DENIED_CODES:
                raise StoreUnavailableError(
                    f"DynamoDB table {self.table!r} in {self.region}: {code} (check the credentials and IAM role)"
                ) from None
            raise
        except NoCredentialsError:
            raise StoreUnavailableError(f"DynamoDB table {self.table!r}: no AWS credentials found") from None
        except (BotoConnectionError, HTTPClientError) as exc:
            where = redact_url(self.endpoint) if self.endpoint else f"dynamodb.{self.region}"
            raise StoreUnavailableError(
                f"DynamoDB table {self.table!r} at {where} is unreachable ({type(exc).__name__} after retries)"
            ) from None
        return response

    @staticmethod
    def _conditional_failed(exc: ClientError) -> bool:
        return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")

    def _batch_get(self, keys: Sequence[Item], projection: str | None = None) -> dict[str, list[Item]]:
        """Fetch items by key (100 a call, strongly consistent); return them grouped by pk."""
        found: dict[str, list[Item]] = {}
        unique = list({orjson.dumps(k, option=orjson.OPT_SORT_KEYS): k for k in keys}.values())
        for chunk in chunks(unique, BATCH_GET_KEYS):
            request: dict[str, Any] = {"Keys": list(chunk), "ConsistentRead": True}
            if projection:
                request["ProjectionExpression"] = projection
            for attempt in range(BATCH_RETRIES + 1):
                response = self._call("batch_get_item", RequestItems={self.table: request})
                for item in response.get("Responses", {}).get(self.table, []):
                    found.setdefault(get_s(item, "pk"), []).append(item)
                left = response.get("UnprocessedKeys", {}).get(self.table)
                if not left:
                    break
                if attempt == BATCH_RETRIES:
                    raise StoreUnavailableError(f"DynamoDB table {self.table!r}: reads still throttled after retries")
                request = left
                backoff(attempt + 3)
        return found

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        """Run idempotent puts and deletes, 25 a call, retrying what DynamoDB left unprocessed."""
        for chunk in chunks(requests, BATCH_WRITE_ITEMS):
            pending = list(chunk)
            for attempt in range(BATCH_RETRIES + 1):
                response = self._call("batch_write_item", RequestItems={self.table: pending})
                pending = response.get("UnprocessedItems", {}).get(self.table, [])
                if not pending:
                    break
                if attempt == BATCH_RETRIES:
                    raise StoreUnavailableError(f"DynamoDB table {self.table!r}: writes still throttled after retries")
                backoff(attempt + 3)

    def _query_all(self, **params: Any) -> Iterator[Item]:
        """Yield every item of a query, page after page (the first asked for when the first item is)."""
        yield from self._rest_of_query(self._call("query", **params), params)

    def _rest_of_query(self, response: dict[str, Any], params: dict[str, Any]) -> Iterator[Item]:
        """Yield the items of a query's answer, then of its following pages (`params` as it was sent)."""
        while True:
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            params = {**params, "ExclusiveStartKey": response["LastEvaluatedKey"]}
            response = self._call("query", **params)

    def _if(self, operation: str, **params: Any) -> bool:
        """Make one conditional write; return False (and write nothing) when its condition did not hold."""
        return self._if_answer(operation, **params) is not None

    def _if_answer(self, operation: str, **params: Any) -> dict[str, Any] | None:
        """Make one conditional write and return its answer; None (nothing written) when its condition did not hold."""
        try:
            return self._call(operation, **params)
        except ClientError as exc:
            if not self._conditional_failed(exc):
                raise
            return None

    def _get(self, key: Item) -> Item | None:
        """Read one item by key, strongly consistent."""
        item: Item | None = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return item

    def _partition(self, pk: str, **params: Any) -> Iterator[Item]:
        """Yield every item of one partition, strongly consistent (extra values merge into `:pk`'s)."""
        values = {":pk": as_s(pk), **params.pop("ExpressionAttributeValues", {})}
        return self._query_all(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues=values, ConsistentRead=True, **params
        )

    def _partitions(self, pks: Sequence[str]) -> list[Item]:
        """Every item of each partition, in the order of `pks`: one query each, in parallel.

        Reads that fan out by key (one partition per digest, namespace or shard) would otherwise
        cost a DynamoDB latency per key, one after the other.
        """
        parts = self._pool_map(lambda pk: list(self._partition(pk)), list(pks))
        return [item for part in parts for item in part]

    # Schema ------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the table and its index (on-demand billing) when absent and record the schema version."""
        try:
            description = self._call("describe_table")["Table"]
        except TableMissingError:
            description = self._create_table()
        keys = {k["AttributeName"]: k["KeyType"] for k in description.get("KeySchema", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise ConfigError(f"DynamoDB table {self.table!r} exists with another key schema ({keys}); use a new table")
        indexes = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
        if INDEX not in indexes:
            raise ConfigError(
                f"DynamoDB table {self.table!r} lacks the index {INDEX!r}; deploy it as in the module docstring"
            )
        meta = self._get({"pk": as_s("META"), "sk": as_s("schema")}) or {}
        self._upgrade(int(meta["sv"]["N"]) if "sv" in meta else 0)
        self._if(
            "update_item",
            Key={"pk": as_s("META"), "sk": as_s("schema")},
            UpdateExpression="SET #sv = :sv",
            ConditionExpression="attribute_not_exists(#sv) OR #sv < :sv",
            ExpressionAttributeNames={"#sv": "sv"},
            ExpressionAttributeValues={":sv": as_n(SCHEMA_VERSION)},
        )

    def _upgrade(self, version: int) -> None:
        """Bring the items of a table at schema `version` up to this store's (0: a new table)."""
        del version

    def _create_table(self) -> dict[str, Any]:
        attributes = [{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g1pk", "g1sk")]
        try:
            self._call(
                "create_table",
                AttributeDefinitions=attributes,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": INDEX,
                        "KeySchema": [
                            {"AttributeName": "g1pk", "KeyType": "HASH"},
                            {"AttributeName": "g1sk", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(INDEX_ATTRIBUTES)},
                    }
                ],
            )
        except ClientError as exc:
            # Another migrate created it meanwhile: wait for it like for our own.
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        table: dict[str, Any] = self._call("describe_table")["Table"]
        return table

    def close(self) -> None:
        """Stop the write pool and release the HTTP connections."""
        with self._lock:
            pool, self._pool = self._pool, None
            client, self._client = self._client, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()
