"""Amazon Inspector (v2): vulnerability findings become OCSF; coverage and scan events become health signals.

What reaches this module: an `aws.inspector2` EventBridge event ("Inspector2 Finding",
"Inspector2 Coverage", "Inspector2 Scan"), or a bare finding (the event's `detail`, or an item of a
ListFindings result, for backfill with `corral ingest`).

Coverage and scan events say whether Inspector is scanning a resource; they are kept as health
signals under no container service, since an EC2 instance id or an ECR repository alone does not
say which service it serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral import traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import HealthSignal, Normalized
from corral.sources._core.reader import Fields
from corral.sources._core.times import epoch_ms
from corral.sources.inspector._facts import FACTS, SOURCE
from corral.sources.inspector._finding import finding

__all__ = ["FACTS", "SOURCE", "normalize", "recognizes"]

_FINDING_EVENT: Final = "Inspector2 Finding"
_COVERAGE_EVENT: Final = "Inspector2 Coverage"
_SCAN_EVENT: Final = "Inspector2 Scan"
_COMPLETE_SCANS: Final = frozenset({"INITIAL_SCAN_COMPLETE", "SCAN_COMPLETE"})


def recognizes(doc: Mapping[str, Any]) -> bool:
    """True for an `aws.inspector2` EventBridge event or a bare Inspector finding.

    Example:
        >>> recognizes({"findingArn": "arn:aws:inspector2:us-east-1:1:finding/f", "awsAccountId": "1"})
        True
    """
    if "detail-type" in doc:
        return doc.get("source") == SOURCE
    arn = doc.get("findingArn")
    return isinstance(arn, str) and ":inspector2:" in arn


def normalize(
    doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
) -> Normalized:
    """Return the OCSF finding or health signal of one Inspector document.

    Raises:
        MalformedEventError: the document is not the shape Inspector documents.
        UnsupportedSourceError: an Inspector event this source does not read.
    """
    del received_time  # every Inspector finding and event carries its own time
    obj = dict(doc)
    if "detail-type" not in obj:
        return finding(obj, delivery_id)
    detail = obj.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEventError("Inspector event has no detail object")
    detail_type = obj.get("detail-type")
    event_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    if detail_type == _FINDING_EVENT:
        return finding(detail, delivery_id or event_id)
    if detail_type == _COVERAGE_EVENT:
        return _coverage(Fields(obj, {}))
    if detail_type == _SCAN_EVENT:
        return _scan(Fields(obj, {}))
    raise UnsupportedSourceError(f"Inspector event detail-type {repr(detail_type)[:80]} is not supported")


def _coverage(event: Fields) -> HealthSignal:
    detail = event.at("detail")
    status = detail.at("scanStatus")
    code = status.peek_text("statusCodeValue") or "?"
    reason = status.peek_text("reason") or ""
    scan_type = detail.peek_text("scanType") or "?"
    subject = _subject(event)
    text = f"Inspector {scan_type} scanning of {subject}: {code}" + (f" ({reason})" if reason else "")
    return _signal(event, healthy=code == "ACTIVE", when=detail.raw("eventTimestamp"), text=text)


def _scan(event: Fields) -> HealthSignal:
    detail = event.at("detail")
    status = detail.peek_text("scan-status") or "?"
    subject = detail.peek_text("repository-name") or detail.peek_text("instance-id") or _subject(event)
    digest = detail.peek_text("image-digest")
    text = f"Inspector scan of {subject}{'@' + digest if digest else ''}: {status}"
    return _signal(event, healthy=status in _COMPLETE_SCANS, when=None, text=text)


def _signal(event: Fields, *, healthy: bool, when: object, text: str) -> HealthSignal:
    account = event.peek_text("account")
    if not account:
        raise MalformedEventError("Inspector event has no account")
    return HealthSignal(
        source=SOURCE,
        account_uid=account,
        service=traits.NO_SERVICE,
        healthy=healthy,
        time=epoch_ms(when or event.raw("time"), "time"),
        region=event.peek_text("region"),
        detail=text[:500],
    )


def _subject(event: Fields) -> str:
    resources = event.raw("resources")
    first = resources[0] if isinstance(resources, list) and resources else None
    return first if isinstance(first, str) else "a resource"
