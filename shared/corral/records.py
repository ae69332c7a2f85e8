"""The values that flow between stages: what a delivery holds and what normalizing it gave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.ocsf import Finding


@dataclass(frozen=True, slots=True)
class Item:
    """One source document found inside a delivery.

    `where` locates it inside the delivery (e.g. "Records[3]"), for error messages; `delivery_id`
    is the bus's id for it (EventBridge id, SQS or Pub/Sub message id), never a finding id.
    """

    doc: Any
    where: str = ""
    delivery_id: str | None = None
    received_time: int | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """A recognized document that is deliberately not a finding (CloudTrail event, secure score)."""

    reason: str


@dataclass(frozen=True, slots=True)
class HealthSignal:
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


Normalized = Finding | Skip | HealthSignal
"""What a source's `normalize` returns for one document."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item of a delivery: a finding, a skip, a health signal or a failure."""

    where: str
    finding: Finding | None = None
    skipped: str | None = None
    signal: HealthSignal | None = None
    error: str | None = None
    source: str | None = None
    raw: Any = None

    @property
    def failed(self) -> bool:
        """True when the item could not be normalized and belongs in the dead letter."""
        return self.error is not None
