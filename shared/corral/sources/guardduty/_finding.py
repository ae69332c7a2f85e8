"""One GuardDuty finding (camelCase, as EventBridge, S3 exports and the REST API send it) to OCSF 2004."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.plain import LEAF, Node, child_trie, optional_time, text, texts_at, time
from corral.sources._core.reader import Trie
from corral.sources._core.rest import pruned_rest
from corral.sources.guardduty._casing import camel_finding, is_pascal_finding
from corral.sources.guardduty._context import Context, context
from corral.sources.guardduty._parts import Parts

SOURCE: Final = "aws.guardduty"
FINDING_EVENT: Final = "GuardDuty Finding"
UNKNOWN_ACCOUNT: Final = "unknown"

# GuardDuty's numeric severity bands (User Guide "Severity levels"); 9.0-10.0 is Critical,
# which Extended Threat Detection attack sequences use.
# [1, 4) Low, [4, 7) Medium, [7, 9) High, [9, 10] Critical; anything else is 99 with its value.
_MIN_SEVERITY: Final = 1.0
_MAX_SEVERITY: Final = 10.0

_CONSOLES: Final = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
    "aws-cn": "https://console.amazonaws.cn",
}
_REGION: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_FINDING_ID: Final = re.compile(r"^[A-Za-z0-9]{1,300}$")
_MAX_FINDING_ID: Final = 300
# Console links without the finding id, by (partition, region): a few per deployment, each checked once.
_PREFIXES: dict[tuple[str | None, str | None], str] = {}
_MAX_PREFIXES: Final = 1024
_NUMBERS: Final = (int, float)
_SAMPLE_VALUE_MAX: Final = 65536
_ACCOUNT_TYPE_ID, _ACCOUNT_TYPE = ocsf.ACCOUNT_TYPES["AWS"]
# The product every finding names (ocsf.envelope copies it into each finding's metadata).
_PRODUCT: Final = {"name": "GuardDuty", "vendor_name": "AWS", "uid": SOURCE}
# The finding's own texts, each mapped whenever it is a non-empty string.
_TEXTS: Final = ("arn", "id", "accountId", "type", "region", "partition", "title", "description", "schemaVersion")


def finding(doc: dict[str, Any], delivery_id: str | None, event_region: str | None = None) -> ocsf.Finding:
    """Return the OCSF Detection Finding of one GuardDuty finding (camelCase or PascalCase)."""
    if "arn" not in doc and is_pascal_finding(doc):  # the camelCase finding (nearly all) has its arn
        doc = camel_finding(doc)
    taken: Trie = {}
    texts = texts_at((doc, taken), _TEXTS)
    # Some published test events carry only the finding id: the id is unique on its own, and a
    # finding that names no account is kept under UNKNOWN_ACCOUNT rather than dropped.
    arn = texts.get("arn") or _required(texts.get("id"), "GuardDuty finding has no arn and no id")
    arn_parts = arn.split(":")
    account = texts.get("accountId") or (arn_parts[4] if len(arn_parts) > 4 and arn_parts[4] else UNKNOWN_ACCOUNT)
    finding_type = _required(texts.get("type"), "GuardDuty finding has no type")
    region = texts.get("region") or event_region or (arn_parts[3] if len(arn_parts) > 3 else None) or None
    partition = texts.get("partition") or (arn_parts[1] if len(arn_parts) > 1 else None) or None

    created, updated = _times(doc, taken)
    modified = updated if updated is not None else created
    if modified is None:
        raise MalformedEventError("GuardDuty finding has no updatedAt")
    parts = Parts(doc, taken)
    service = parts.service
    count = service[0].get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        service[1]["count"] = LEAF
    else:
        count = None
    archived = service[0].get("archived")
    if isinstance(archived, bool):
        service[1]["archived"] = LEAF
    if archived is True:
        activity, status = ocsf.CLOSE, ocsf.STATUS_ARCHIVED
    elif created is not None and created == updated and (count is None or count <= 1):
        activity, status = ocsf.CREATE, ocsf.STATUS_NEW
    else:
        activity, status = ocsf.UPDATE, ocsf.STATUS_NEW
    ctx = context(parts, finding_type, region, partition)
    # Built as OCSF wants it, without empty values: no prune pass over the finding.
    out = _envelope(doc, texts, service, activity, status, modified, delivery_id)
    if title := texts.get("title"):
        out["message"] = title
    if count is not None and count >= 0:
        out["count"] = count
    out["is_alert"] = True
    # The console holding the finding is its detector's, named in the ARN: for a finding from a
    # global service event, `region` may be another (GuardDuty API reference, Finding.Region).
    detector_region = arn_parts[3] if len(arn_parts) > 3 and arn_parts[3] else region
    out["finding_info"] = _info(parts, texts, arn, finding_type, ctx, (created, modified), (partition, detector_region))
    out["cloud"] = _cloud(account, region, partition)
    if ctx.resources:
        out["resources"] = ctx.resources
    if ctx.evidences:
        out["evidences"] = ctx.evidences
    out["remediation"] = ctx.remediation
    unmapped = pruned_rest(doc, taken)  # Fields(doc, taken).rest(), without the view
    if unmapped:
        out["unmapped"] = unmapped
    return out


def _cloud(account: str, region: str | None, partition: str | None) -> dict[str, Any]:
    # ocsf.cloud("AWS", account, region) built in place: the account is never empty, and has no extras.
    cloud: dict[str, Any] = {
        "provider": "AWS",
        "account": {"uid": account, "type_id": _ACCOUNT_TYPE_ID, "type": _ACCOUNT_TYPE},
    }
    if region:
        cloud["region"] = region
    if partition:
        cloud["cloud_partition"] = partition
    return cloud


def _times(doc: dict[str, Any], taken: Trie) -> tuple[int | None, int | None]:
    """The finding's createdAt and updatedAt, recorded; raises for a bad one."""
    node = (doc, taken)
    created = time(node, "createdAt", "GuardDuty finding createdAt")
    if created is not None and doc.get("updatedAt") == doc["createdAt"]:  # one parse for both, mostly
        taken["updatedAt"] = LEAF
        return created, created
    return created, time(node, "updatedAt", "GuardDuty finding updatedAt")


def _envelope(
    doc: dict[str, Any],
    texts: dict[str, str],
    service: Node,
    activity: int,
    status: int,
    modified: int,
    delivery_id: str | None,
) -> ocsf.Finding:
    severity_id, vendor_severity = severity(doc.get("severity"))
    out = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=activity,
        time=modified,
        severity_id=severity_id,
        vendor_severity=vendor_severity,
        status_id=status,
        product=_PRODUCT,  # copied by envelope: the feature goes into the copy
        delivery_id=delivery_id,
        log_name=FINDING_EVENT,
    )
    if out["severity"] == "":  # an empty vendor severity has no label
        del out["severity"]
    metadata = out["metadata"]
    if feature := text(service, "featureName"):
        metadata["product"]["feature"] = {"name": feature}
    if version := texts.get("schemaVersion"):
        metadata["log_version"] = version
    return out


def _info(
    parts: Parts,
    texts: dict[str, str],
    arn: str,
    finding_type: str,
    ctx: Context,
    times: tuple[int | None, int],
    place: tuple[str | None, str | None],
) -> dict[str, Any]:
    service = parts.service
    created, modified = times
    finding_id = texts.get("id") or arn.rsplit("/", 1)[-1]
    info: dict[str, Any] = {"uid": arn}
    if finding_id:
        info["uid_alt"] = finding_id
    if title := texts.get("title"):
        info["title"] = title
    if desc := texts.get("description"):
        info["desc"] = desc
    info["types"] = [finding_type]
    if created is not None:
        info["created_time"] = created
    info["modified_time"] = modified
    first_seen = optional_time(service, "eventFirstSeen")
    if first_seen is not None:
        info["first_seen_time"] = first_seen
        if service[0].get("eventLastSeen") == service[0]["eventFirstSeen"]:
            info["last_seen_time"] = first_seen  # one parse for both, mostly
            service[1]["eventLastSeen"] = LEAF
    if "last_seen_time" not in info and (last_seen := optional_time(service, "eventLastSeen")) is not None:
        info["last_seen_time"] = last_seen
    if src_url := console_url(*place, finding_id):
        info["src_url"] = src_url
    info["analytic"] = {"uid": finding_type, "name": finding_type, "type_id": 1, "type": "Rule"}
    if ctx.attacks:
        info["attacks"] = ctx.attacks
    # Built anew per finding: literal dicts cost less than copying a kept classification.
    info["traits"] = traits.classify(ctx.service, ctx.layer, traits.THREAT_DETECTION, sample=_is_sample(service))
    return info


def severity(value: object) -> tuple[int, object]:
    """Return (OCSF severity_id, vendor value for `severity` when 99) for a GuardDuty severity.

    Example:
        >>> severity(5.0), severity(9), severity(11)
        ((3, None), (5, None), (99, 11))
    """
    if value is None:
        return 0, None
    if isinstance(value, bool) or not isinstance(value, _NUMBERS) or not math.isfinite(value):
        return 99, _short_value(value)
    if value < _MIN_SEVERITY or value > _MAX_SEVERITY:
        return 99, value
    # The bands in order, each from its own low bound (compared directly, not looped over).
    return (2 if value < 4.0 else 3 if value < 7.0 else 4 if value < 9.0 else 5), None


def console_url(partition: str | None, region: str | None, finding_id: str) -> str | None:
    """Return the GuardDuty console link to one finding, or None when it cannot be built safely.

    Example:
        >>> console_url("aws", "us-east-1", "abc")
        'https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId=abc'
    """
    place = (partition, region)
    prefix = _PREFIXES.get(place)
    if prefix is None:
        prefix = _prefix(partition, region)
        if len(_PREFIXES) < _MAX_PREFIXES:
            _PREFIXES[place] = prefix
    if not prefix:
        return None
    # ASCII letters and digits, as _FINDING_ID says; the pattern itself only for what str methods reject.
    if finding_id.isalnum() and finding_id.isascii() and len(finding_id) <= _MAX_FINDING_ID:
        return prefix + finding_id
    return prefix + finding_id if _FINDING_ID.match(finding_id) else None


def _prefix(partition: str | None, region: str | None) -> str:
    """The console link without the finding id ("" when the place cannot be linked safely)."""
    host = _CONSOLES.get(partition or "aws")
    if host is None or not region or not _REGION.match(region):
        return ""
    return host.format(region=region) + f"/guardduty/home?region={region}#/findings?fId="


def _is_sample(service: Node) -> bool:
    info = service[0].get("additionalInfo")
    if not isinstance(info, dict):
        return False
    sample = info.get("sample")
    if isinstance(sample, bool):
        child_trie(service[1], "additionalInfo")["sample"] = LEAF
        if sample:
            return True
    # The SDK form carries additionalInfo only as its JSON text, e.g. '{"sample":true}'.
    text = info.get("value")
    if not isinstance(text, str) or not text or len(text) > _SAMPLE_VALUE_MAX or '"sample"' not in text:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("sample") is True


def _required(value: str | None, reason: str) -> str:
    if value is None:
        raise MalformedEventError(reason)
    return value


def _short_value(value: object) -> object:
    if isinstance(value, str):
        return value[:64]
    return repr(value)[:80] if isinstance(value, dict | list) else value
