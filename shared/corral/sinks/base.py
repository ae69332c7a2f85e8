"""The sink contract: a pure `render` per kind, and `send`, which is only transport.

A sink receives `Delivery` values (one finding version for one sink) and answers one `Result`
each. It never raises for a delivery it could not make: a refusal or an outage is a Result, so
one failing sink or one bad payload cannot hold up the others. The pipeline records the results
in the delivery ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import orjson

if TYPE_CHECKING:
    from corral.ocsf import Finding
    from corral.stores.base import ChangeKind

SinkFamily = Literal["chat", "siem", "relay", "file"]


# NamedTuples, not dataclasses: the pipeline loads this contract at every cold start (see corral.records).
class Delivery(NamedTuple):
    """One finding version to deliver to one sink.

    `version` is the idempotency key (sha256 of identity, source modified time and fingerprint):
    every SIEM, webhook and relay payload carries it so that receivers can drop the rare
    duplicate. `thread_ref` is the sink's reference to the first message about this finding
    (e.g. a Slack `ts`), when there is one. `previous_severity_id` is the severity of the version
    this one replaced (None for a new finding), so that an escalation reads "High → Critical".
    `finding_json` is the finding's JSON as the ingest serialized it for the store, when it has
    it: a sink that sends the finding whole embeds it (`whole_finding`) instead of serializing
    the same document again.
    """

    sink: str
    version: str
    change: ChangeKind
    finding: Finding
    thread_ref: str | None = None
    previous_severity_id: int | None = None
    finding_json: bytes | None = None


def whole_finding(delivery: Delivery) -> Any:
    """The finding, for `orjson.dumps` of a payload that holds it whole: its JSON as made at ingest, when given.

    The same bytes `orjson.dumps(delivery.finding)` gives, without serializing it again.

    Example:
        >>> orjson.dumps({"finding": whole_finding(Delivery("x", "k", "new", {"a": 1}, finding_json=b'{"a":1}'))})
        b'{"finding":{"a":1}}'
    """
    given = delivery.finding_json
    return delivery.finding if given is None else orjson.Fragment(given)


def finding_and(delivery: Delivery, extra: Mapping[str, Any]) -> Any:
    """`{**finding, **extra}` for `orjson.dumps`: the finding's given JSON with `extra` appended, when it can be.

    Appended only when no key of `extra` is in the finding already (a relayed document may carry
    one), so the payload never holds a key twice; otherwise the merged dict, as without JSON.

    Example:
        >>> d = Delivery("x", "k", "new", {"a": 1}, finding_json=b'{"a":1}')
        >>> orjson.dumps(finding_and(d, {"b": 2})), orjson.dumps(finding_and(d, {"a": 2}))
        (b'{"a":1,"b":2}', b'{"a":2}')
    """
    finding, given = delivery.finding, delivery.finding_json
    if given is None or not finding or not extra or any(key in finding for key in extra):
        return {**finding, **extra}
    return orjson.Fragment(given[:-1] + b"," + orjson.dumps(extra)[1:])


class Result(NamedTuple):
    """What became of one delivery.

    `ok` with an optional `message_ref` (kept to thread later changes); otherwise `error` (one
    line, never a secret), `permanent` (a 4xx other than 429: retrying cannot help) and
    `retry_after` (the sink's hint, seconds). `attempted` is False for a delivery the sink held
    back without sending (the platform was rate limiting): it is rescheduled without counting an
    attempt, so a backlog never exhausts its attempts unsent.
    """

    version: str
    ok: bool
    message_ref: str | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    attempted: bool = True

    @classmethod
    def success(cls, version: str, message_ref: str | None = None) -> Result:
        """A delivery the sink accepted."""
        return cls(version, True, message_ref=message_ref)

    @classmethod
    def failure(cls, version: str, error: str, *, permanent: bool = False, retry_after: float | None = None) -> Result:
        """A delivery the sink did not accept."""
        return cls(version, False, error=error, permanent=permanent, retry_after=retry_after)

    @classmethod
    def held_back(cls, version: str, error: str, retry_after: float | None = None) -> Result:
        """A delivery not sent at all, because an earlier one in the batch met an outage."""
        return cls(version, False, error=error, retry_after=retry_after, attempted=False)


class Sink(Protocol):
    """What the pipeline needs of a sink."""

    id: str
    """`<kind>:<name>`, e.g. "slack:soc"."""

    family: SinkFamily

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Deliver a batch; return one Result per delivery, in order. Never raises for one delivery."""

    def close(self) -> None:
        """Release connections."""


class SinkFactory(Protocol):
    """Each sink module's `from_config(sink_id, settings, env)`; raises ConfigError naming the key."""

    def __call__(self, sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> Sink: ...
