"""AWS GuardDuty: findings become OCSF Detection Findings; coverage events become health signals.

What reaches this module: the `detail` of a "GuardDuty Finding" EventBridge event (a bare
camelCase finding), the same finding from S3 exports or the API, the PascalCase finding the
SDKs return, or a whole EventBridge event of another `detail-type` from `aws.guardduty`
(Runtime Protection coverage changes, CloudTrail API calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral import traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import Envelope, HealthSignal, Normalized, Skip
from corral.sources._core.reader import Fields
from corral.sources._core.times import epoch_ms
from corral.sources.guardduty._facts import FACTS
from corral.sources.guardduty._finding import FINDING_EVENT, SOURCE, UNKNOWN_ACCOUNT, console_url, finding, severity

__all__ = ["FACTS", "SOURCE", "UNKNOWN_ACCOUNT", "console_url", "normalize", "recognizes", "severity"]

_CLOUDTRAIL_EVENT: Final = "AWS API Call via CloudTrail"
_MAX_RESOURCE: Final = 256  # cluster names and instance ids are far shorter
_HEALTH_EVENTS: Final = {
    "GuardDuty Runtime Protection Healthy": True,
    "GuardDuty Runtime Protection Unhealthy": False,
}


def recognizes(doc: Mapping[str, Any]) -> bool:
    """True for a GuardDuty finding (camelCase or PascalCase) or an `aws.guardduty` EventBridge event.

    Example:
        >>> recognizes({"schemaVersion": "2.0", "arn": "arn:aws:guardduty:us-east-1:1:detector/d/finding/f"})
        True
    """
    anything: object = doc  # callers promise a Mapping; odd input must still not raise
    if not isinstance(anything, Mapping):
        return False
    if "detail-type" in doc:
        return doc.get("source") == SOURCE
    for arn_key, version_key, type_key, service_key, name_key in (
        ("arn", "schemaVersion", "type", "service", "serviceName"),
        ("Arn", "SchemaVersion", "Type", "Service", "ServiceName"),
    ):
        arn = doc.get(arn_key)
        if isinstance(arn, str) and ":guardduty:" in arn and (version_key in doc or type_key in doc):
            return True
        service = doc.get(service_key)
        if isinstance(service, Mapping) and service.get(name_key) == "guardduty" and isinstance(doc.get(type_key), str):
            return True
    return False


def normalize(
    doc: Mapping[str, Any],
    delivery_id: str | None = None,
    *,
    received_time: int | None = None,
    envelope: Envelope | None = None,
) -> Normalized:
    """Return the OCSF Detection Finding, health signal or skip for one GuardDuty document.

    Raises:
        MalformedEventError: the document is not the shape GuardDuty documents.
        UnsupportedSourceError: an EventBridge event this source does not handle.
    """
    del received_time  # every GuardDuty finding carries its own createdAt/updatedAt
    obj = _object(doc)
    if obj is None:
        raise MalformedEventError("GuardDuty document is not a JSON object")
    if "detail-type" in obj:
        return _event(obj, delivery_id)
    # A finding's own region wins; the EventBridge event's stands in for one that has none.
    return finding(obj, delivery_id, envelope.region if envelope is not None else None)


def _object(value: object) -> dict[str, Any] | None:
    """`value` as a dict (what JSON decoders give), or None when it is not a JSON object."""
    if isinstance(value, dict):
        return value
    return dict(value) if isinstance(value, Mapping) else None


def _event(event: dict[str, Any], delivery_id: str | None) -> Normalized:
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != SOURCE:
        raise UnsupportedSourceError(f"EventBridge source {_short(source)} is not {SOURCE}")
    if not isinstance(detail_type, str):
        raise MalformedEventError("GuardDuty event detail-type is not a string")
    if detail_type == _CLOUDTRAIL_EVENT:
        return Skip("CloudTrail API call, not a finding")
    if detail_type in _HEALTH_EVENTS:
        return _health(event, healthy=_HEALTH_EVENTS[detail_type])
    if detail_type == FINDING_EVENT:
        detail = _object(event.get("detail"))
        if detail is None:
            raise MalformedEventError("GuardDuty Finding event has no detail object")
        event_id = event.get("id")
        region = event.get("region")
        return finding(
            detail,
            delivery_id or (event_id if isinstance(event_id, str) else None),
            region if isinstance(region, str) else None,
        )
    raise UnsupportedSourceError(f"GuardDuty event detail-type {_short(detail_type)} is not supported")


def _health(event: dict[str, Any], *, healthy: bool) -> HealthSignal:
    fields = Fields(event, {})
    detail = fields.at("detail")
    # The member account the signal is about: a delegated administrator receives its members'
    # events under its own envelope `account`, and real events carry the member in `accountId`
    # when the documented `resourceAccountId` is missing.
    account = (
        detail.text("resourceAccountId")
        or detail.text("accountId")
        or _required(fields.text("account"), "GuardDuty health event has no account")
    )
    time = detail.time("lastUpdatedAt") or _required_time(fields.raw("time"))
    details = detail.at("resourceDetails")
    rtype = details.peek_text("resourceType") or "resource"
    fargate_details = details.at("ecsClusterDetails", "fargateDetails")
    if rtype == "EKS":
        service, name = traits.EKS, details.peek_text("eksClusterDetails", "clusterName")
    elif rtype == "ECS":
        service = traits.ECS_FARGATE if fargate_details.exists else traits.ECS_EC2
        name = details.peek_text("ecsClusterDetails", "clusterName")
    else:
        cluster = details.peek_text("ec2InstanceDetails", "clusterArn") or ""
        service = traits.EKS if ":eks:" in cluster else traits.ECS_EC2 if ":ecs:" in cluster else traits.NO_SERVICE
        name = details.peek_text("ec2InstanceDetails", "instanceId")
    issues = [detail.peek_text("issue") or ""]
    issues += fargate_details.texts("issues", limit=10)
    previous = detail.peek_text("previousStatus") or "?"
    current = detail.peek_text("currentStatus") or ("HEALTHY" if healthy else "UNHEALTHY")
    text = f"{rtype} {name or '?'}: {previous} -> {current}"
    issue_text = "; ".join(issue for issue in issues if issue)
    region = fields.peek_text("region")
    return HealthSignal(
        source=SOURCE,
        account_uid=account,
        service=service,
        healthy=healthy,
        time=time,
        region=region,
        detail=(f"{text} ({issue_text})" if issue_text else text)[:500],
        resource=(name or "")[:_MAX_RESOURCE],
    )


def _required(value: str | None, reason: str) -> str:
    if value is None:
        raise MalformedEventError(reason)
    return value


def _required_time(value: object) -> int:
    return epoch_ms(value, "lastUpdatedAt")


def _short(value: object) -> str:
    return repr(value)[:80]
