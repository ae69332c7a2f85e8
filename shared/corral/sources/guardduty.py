"""AWS GuardDuty: findings become OCSF Detection Findings; coverage events become health signals.

What reaches this module: the `detail` of a "GuardDuty Finding" EventBridge event (a bare
camelCase finding), the same finding from S3 exports or the API, the PascalCase finding the
SDKs return, or a whole EventBridge event of another `detail-type` from `aws.guardduty`
(Runtime Protection coverage changes, CloudTrail API calls).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError, UnsupportedSourceError
from corral.records import HealthSignal, Normalized, Skip
from corral.sources.guardduty_casing import camel_finding, is_pascal_finding
from corral.sources.guardduty_context import context
from corral.sources.guardduty_fields import Fields, timestamp_ms

SOURCE: Final = "aws.guardduty"

_FINDING_EVENT: Final = "GuardDuty Finding"
_CLOUDTRAIL_EVENT: Final = "AWS API Call via CloudTrail"
_HEALTH_EVENTS: Final = {
    "GuardDuty Runtime Protection Healthy": True,
    "GuardDuty Runtime Protection Unhealthy": False,
}

# GuardDuty's numeric severity bands (User Guide "Severity levels"); 9.0-10.0 is Critical,
# which Extended Threat Detection attack sequences use.
_SEVERITY_BANDS: Final = ((1.0, 4.0, 2), (4.0, 7.0, 3), (7.0, 9.0, 4), (9.0, 10.0, 5))
_MAX_SEVERITY: Final = 10.0

_CONSOLES: Final = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
    "aws-cn": "https://console.amazonaws.cn",
}
_REGION: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_FINDING_ID: Final = re.compile(r"^[A-Za-z0-9]{1,300}$")
UNKNOWN_ACCOUNT: Final = "unknown"
_MIN_MS: Final = 10**12
_MAX_MS: Final = 10**13
_SAMPLE_VALUE_MAX: Final = 65536


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
    doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
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
    return _finding(obj, delivery_id)


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
    if detail_type == _FINDING_EVENT:
        detail = _object(event.get("detail"))
        if detail is None:
            raise MalformedEventError("GuardDuty Finding event has no detail object")
        event_id = event.get("id")
        region = event.get("region")
        return _finding(
            detail,
            delivery_id or (event_id if isinstance(event_id, str) else None),
            region if isinstance(region, str) else None,
        )
    raise UnsupportedSourceError(f"GuardDuty event detail-type {_short(detail_type)} is not supported")


def _finding(doc: dict[str, Any], delivery_id: str | None, event_region: str | None = None) -> ocsf.Finding:
    if is_pascal_finding(doc):
        doc = camel_finding(doc)
    fields = Fields(doc, {})
    # Some published test events carry only the finding id: the id is unique on its own, and a
    # finding that names no account is kept under UNKNOWN_ACCOUNT rather than dropped.
    arn = fields.text("arn") or _required(fields.text("id"), "GuardDuty finding has no arn and no id")
    arn_parts = arn.split(":")
    account = fields.text("accountId") or (arn_parts[4] if len(arn_parts) > 4 and arn_parts[4] else UNKNOWN_ACCOUNT)
    finding_type = _required(fields.text("type"), "GuardDuty finding has no type")
    region = fields.text("region") or event_region or (arn_parts[3] if len(arn_parts) > 3 else None) or None
    partition = fields.text("partition") or (arn_parts[1] if len(arn_parts) > 1 else None) or None
    finding_id = fields.text("id") or arn.rsplit("/", 1)[-1]

    created = _time(fields, "createdAt")
    updated = _time(fields, "updatedAt")
    modified = updated if updated is not None else created
    if modified is None:
        raise MalformedEventError("GuardDuty finding has no updatedAt")

    service = fields.at("service")
    count = service.integer("count")
    archived = service.flag("archived") is True
    if archived:
        activity, status = ocsf.CLOSE, ocsf.STATUS_ARCHIVED
    elif created is not None and created == updated and (count is None or count <= 1):
        activity, status = ocsf.CREATE, ocsf.STATUS_NEW
    else:
        activity, status = ocsf.UPDATE, ocsf.STATUS_NEW
    severity_id, vendor_severity = severity(fields.raw("severity"))

    ctx = context(fields, finding_type, region, partition)
    feature = service.text("featureName")
    title = fields.text("title")
    finding = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=activity,
        time=modified,
        severity_id=severity_id,
        vendor_severity=vendor_severity,
        status_id=status,
        product={"name": "GuardDuty", "vendor_name": "AWS", "uid": SOURCE, "feature": {"name": feature}},
        delivery_id=delivery_id,
        log_name=_FINDING_EVENT,
    )
    finding["metadata"]["log_version"] = fields.text("schemaVersion")
    finding["message"] = title
    finding["count"] = count if count is not None and count >= 0 else None
    finding["is_alert"] = True
    finding["finding_info"] = {
        "uid": arn,
        "uid_alt": finding_id,
        "title": title,
        "desc": fields.text("description"),
        "types": [finding_type],
        "created_time": created,
        "modified_time": modified,
        "first_seen_time": _time(service, "eventFirstSeen", lenient=True),
        "last_seen_time": _time(service, "eventLastSeen", lenient=True),
        "src_url": console_url(partition, region, finding_id),
        "analytic": {"uid": finding_type, "name": finding_type, "type_id": 1, "type": "Rule"},
        "attacks": ctx.attacks,
        "traits": traits.classify(ctx.service, ctx.layer, traits.THREAT_DETECTION, sample=_is_sample(service)),
    }
    cloud = ocsf.cloud("AWS", account, region)
    cloud["cloud_partition"] = partition
    finding["cloud"] = cloud
    finding["resources"] = ctx.resources
    finding["evidences"] = ctx.evidences
    pruned: ocsf.Finding = ocsf.prune(finding)
    # The last two need no pruning: remediation is fixed text, and `rest()` prunes as it copies.
    pruned["remediation"] = ctx.remediation
    unmapped = fields.rest()
    if unmapped:
        pruned["unmapped"] = unmapped
    return pruned


def severity(value: object) -> tuple[int, object]:
    """Return (OCSF severity_id, vendor value for `severity` when 99) for a GuardDuty severity.

    Example:
        >>> severity(5.0), severity(9), severity(11)
        ((3, None), (5, None), (99, 11))
    """
    if value is None:
        return 0, None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 99, _short_value(value)
    for low, high, severity_id in _SEVERITY_BANDS:
        if low <= value < high or (high == _MAX_SEVERITY and value == high):
            return severity_id, None
    return 99, value


def console_url(partition: str | None, region: str | None, finding_id: str) -> str | None:
    """Return the GuardDuty console link to one finding, or None when it cannot be built safely.

    Example:
        >>> console_url("aws", "us-east-1", "abc")
        'https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId=abc'
    """
    host = _CONSOLES.get(partition or "aws")
    if host is None or not region or not _REGION.match(region) or not _FINDING_ID.match(finding_id):
        return None
    return host.format(region=region) + f"/guardduty/home?region={region}#/findings?fId={finding_id}"


def _time(fields: Fields, name: str, *, lenient: bool = False) -> int | None:
    raw = fields.raw(name)
    if raw is None or raw == "":
        return None
    try:
        value = timestamp_ms(raw, name)
    except MalformedEventError:
        if lenient:
            return None  # kept in `unmapped` as sent
        raise
    if not _MIN_MS <= value < _MAX_MS:
        if lenient:
            return None
        raise MalformedEventError(f"GuardDuty finding {name} is out of range: {_short(raw)}")
    fields.mark(name)
    return value


def _is_sample(service: Fields) -> bool:
    info = service.at("additionalInfo")
    if info.flag("sample") is True:
        return True
    # The SDK form carries additionalInfo only as its JSON text, e.g. '{"sample":true}'.
    text = info.peek_text("value")
    if not text or len(text) > _SAMPLE_VALUE_MAX or '"sample"' not in text:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("sample") is True


def _health(event: dict[str, Any], *, healthy: bool) -> HealthSignal:
    fields = Fields(event, {})
    detail = fields.at("detail")
    account = _required(
        detail.text("resourceAccountId") or fields.text("account"),
        "GuardDuty health event has no account",
    )
    raw_time = detail.raw("lastUpdatedAt") or fields.raw("time")
    time = ocsf.timestamp_ms(raw_time, "lastUpdatedAt")
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
    )


def _required(value: str | None, reason: str) -> str:
    if value is None:
        raise MalformedEventError(reason)
    return value


def _short(value: object) -> str:
    return repr(value)[:80]


def _short_value(value: object) -> object:
    return value[:64] if isinstance(value, str) else _short(value) if isinstance(value, dict | list) else value
