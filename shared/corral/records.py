"""The values that flow between stages: what a delivery holds and what normalizing it gave.

Every process builds these classes at import, so they are NamedTuples: a frozen dataclass runs
its generated methods through `exec` at import (about half a millisecond each, every cold
start), a NamedTuple a tenth of that. Copies are made with `_replace`.

`Record` builds them at run time: `typing.NamedTuple`'s class syntax without its check of every
field's annotation, which under `from __future__ import annotations` compiles each annotation's
text (about twice the cost of the class itself). `from corral.records import NamedTuple` gives
type checkers `typing.NamedTuple` itself, and `Record` at run time.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from corral.ocsf import Finding

# What typing.NamedTuple refuses to let a class body define, and what it never copies over.
_PROHIBITED = frozenset(
    {"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults", "_make", "_replace", "_asdict"}
)
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})


class _RecordType(type):
    """Turn a class body into `collections.namedtuple`, as typing.NamedTuple does, minus the checks."""

    def __new__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
        if not bases:
            return super().__new__(cls, name, bases, namespace)  # `Record` itself
        annotations: dict[str, Any] = namespace.get("__annotations__", {})
        defaults = [namespace[field] for field in annotations if field in namespace]
        if any(field in namespace for field in list(annotations)[: len(annotations) - len(defaults)]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        record = collections.namedtuple(name, annotations, defaults=defaults, module=namespace["__module__"])  # type: ignore[misc]
        record.__annotations__ = annotations
        for key, value in namespace.items():
            if key in _PROHIBITED:
                raise AttributeError(f"{name}: cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in annotations:
                setattr(record, key, value)
        return record


class Record(metaclass=_RecordType):
    """Base of a NamedTuple class built without typing's per-field checks (see the module docstring)."""


if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple  # noqa: PLC0414 - the explicit re-export type checkers need
else:
    NamedTuple = Record

Path = tuple[str | int, ...]
"""Where a value sits inside a JSON document: object keys and array indexes, outermost first."""


class Envelope(NamedTuple):
    """What an EventBridge event says about the `detail` it carries, whatever its source.

    A source reads the region, account and time from here when its detail does not carry them;
    `event` is the whole event, for a source that needs more of it (e.g. the detail type).
    """

    source: str | None
    detail_type: str | None
    region: str | None
    account: str | None
    time: int | None
    """The event's `time`, epoch ms."""
    event: Mapping[str, Any]


class Item(NamedTuple):
    """One source document found inside a delivery.

    `where` locates it inside the delivery (e.g. "Records[3]"), for error messages; `delivery_id`
    is the bus's id for it (EventBridge id, SQS, SNS or Pub/Sub message id), never a finding id.
    `received_time` and `sequence` are the transport's own stable order for it (publish or
    enqueued time in epoch ms, and a sequence number), standing in for a source time only where
    the document has none. `body` is the exact bytes the document was parsed from and `path`
    its place inside them, so that a failure can be kept as the input's own bytes.
    """

    doc: Any
    where: str = ""
    delivery_id: str | None = None
    received_time: int | None = None
    envelope: Envelope | None = None
    body: bytes | None = None
    path: Path = ()
    sequence: int | None = None


class Skip(NamedTuple):
    """A recognized document that is deliberately not a finding (CloudTrail event, secure score)."""

    reason: str


class HealthSignal(NamedTuple):
    """A source's statement about its own coverage, e.g. GuardDuty Runtime Protection Unhealthy.

    These fire on change, so they are state, not heartbeats: the coverage matrix reads them.
    """

    source: str
    account_uid: str
    service: str
    healthy: bool
    time: int
    region: str | None = None
    detail: str = ""
    resource: str = ""
    """What the signal is about (a cluster, an instance), "" when the source names nothing narrower
    than the account: each resource's state is kept apart, so one cluster's Healthy does not hide
    another's Unhealthy."""


Normalized = Finding | Skip | HealthSignal
"""What a source's `normalize` returns for one document."""


class Outcome(NamedTuple):
    """What became of one item of a delivery: a finding, a skip, a health signal or a failure.

    A failure keeps what it failed on: `body` and `path` locate the exact input bytes when the
    delivery came as bytes, and `raw` is the parsed value otherwise.
    """

    where: str
    finding: Finding | None = None
    skipped: str | None = None
    signal: HealthSignal | None = None
    error: str | None = None
    source: str | None = None
    raw: Any = None
    body: bytes | None = None
    path: Path = ()
    item: Item | None = None
    """The item this outcome is about, for stages after normalizing (store, route) to dead-letter it."""
    timeless: bool = False
    """The finding had no time of its own: its times are the transport's (or Corral's clock)."""

    @property
    def failed(self) -> bool:
        """True when the item could not be normalized and belongs in the dead letter."""
        return self.error is not None
