"""One Amazon Inspector (v2) finding, as EventBridge's `detail` or an item of ListFindings, to OCSF.

- **Class**: PACKAGE_VULNERABILITY and CODE_VULNERABILITY → Vulnerability Finding 2002;
  NETWORK_REACHABILITY (an open path, not a flaw in software) → Detection Finding 2004.
- **Identity**: `findingArn`, under the member account `awsAccountId` (a delegated administrator
  receives its members' findings under its own envelope account).
- **Lifecycle**: status ACTIVE → New, SUPPRESSED → Suppressed, CLOSED → Resolved with activity
  Close; otherwise Create while `updatedAt` is still `firstObservedAt`, then Update.
- **Resources**: an ECR image becomes a "Container Image" resource whose uid is the image digest
  (the one image shape of every source), with its repository, tags, `inUseCount` and `lastInUseAt`;
  an EC2 instance keeps its tags, and the EKS or ECS cluster its tags name becomes a resource too.

The finding is read as plain dicts (see `_plain`), recording what is mapped as `Fields` would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.plain import LEAF
from corral.sources._core.reader import Trie
from corral.sources._core.rest import pruned_rest
from corral.sources._core.times import MAX_MS, MIN_MS, epoch_ms
from corral.sources.inspector._facts import SOURCE
from corral.sources.inspector._read import recommendation
from corral.sources.inspector._resources import resources as read_resources
from corral.sources.inspector._vulnerability import vulnerability

_SEVERITIES: Final = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5, "UNTRIAGED": 0}
_STATUSES: Final = {"ACTIVE": ocsf.STATUS_NEW, "SUPPRESSED": ocsf.STATUS_SUPPRESSED, "CLOSED": ocsf.STATUS_RESOLVED}
_DETECTION_TYPES: Final = frozenset({"NETWORK_REACHABILITY"})
_CONSOLE: Final = "https://{region}.console.aws.amazon.com/inspector/v2/home?region={region}#/findings/all?findingArn="
# Console links without the finding, by region: a few per deployment, each formatted once.
_CONSOLES: dict[str, str] = {}
_MAX_CONSOLES: Final = 1024
_PRODUCT: Final = {"name": "Inspector", "vendor_name": "AWS", "uid": SOURCE}
_from_iso: Final = datetime.fromisoformat


def finding(doc: dict[str, Any], delivery_id: str | None) -> ocsf.Finding:
    """Return the OCSF finding of one Inspector finding."""
    taken: Trie = {}
    node = (doc, taken)
    arn, account, kind, title, description = _texts(doc, taken)
    first, updated, last = _times(doc, taken)
    modified = updated or last or first
    if modified is None:
        raise MalformedEventError("Inspector finding has no updatedAt")
    status_word = _word(doc.get("status"))
    status = _STATUSES.get(status_word, 99)
    if status != 99:
        taken["status"] = LEAF
    activity = ocsf.CLOSE if status == ocsf.STATUS_RESOLVED else ocsf.CREATE if modified == first else ocsf.UPDATE
    severity_word = _word(doc.get("severity")) or None
    severity_id = _SEVERITIES.get(severity_word or "", 99 if severity_word else 0)
    if severity_id != 99:
        taken["severity"] = LEAF
    resources, service, layer = read_resources(node)
    class_uid = ocsf.DETECTION if kind in _DETECTION_TYPES else ocsf.VULNERABILITY
    task = traits.HARDENING if class_uid == ocsf.DETECTION else traits.VULNERABILITY_MANAGEMENT
    out = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity,
        time=modified,
        severity_id=severity_id,
        vendor_severity=severity_word,
        status_id=status,
        product=_PRODUCT,  # copied by `envelope`
        delivery_id=delivery_id,
        log_name="Inspector2 Finding",
    )
    if status == 99:
        out["status"] = status_word or "Other"
    if title:
        out["message"] = title
    arn_region = _arn_region(arn)
    info = _info(title, description, arn, kind, (first, modified, last), arn_region)
    # Built anew per finding: literal dicts cost less than copying a kept classification.
    info["traits"] = traits.classify(service, layer, task)
    out["finding_info"] = info
    region = resources[0].get("region") if resources else None
    out["cloud"] = ocsf.cloud("AWS", account, region or arn_region)
    if resources:
        out["resources"] = resources
    if class_uid == ocsf.VULNERABILITY:
        out["vulnerabilities"] = [vulnerability(node, first, last)]
    elif (desc := recommendation(node)) is not None:
        out["remediation"] = {"desc": desc}
    unmapped = pruned_rest(doc, taken)  # Fields(doc, taken).rest(), without the view
    if unmapped:
        out["unmapped"] = unmapped
    return out


def _texts(doc: dict[str, Any], taken: Trie) -> tuple[str, str, str, str | None, str | None]:
    """The finding's arn, account, type ("UNKNOWN" when none), title and description, each recorded.

    Raises:
        MalformedEventError: no findingArn or no awsAccountId.
    """
    get = doc.get
    # One by one with locals: a `plain.texts_at` loop over the keys ran twice the bytecode.
    if isinstance(arn := get("findingArn"), str) and arn:
        taken["findingArn"] = LEAF
    else:
        raise MalformedEventError("Inspector finding has no findingArn")
    if isinstance(account := get("awsAccountId"), str) and account:
        taken["awsAccountId"] = LEAF
    else:
        raise MalformedEventError("Inspector finding has no awsAccountId")
    if isinstance(kind := get("type"), str) and kind:
        taken["type"] = LEAF
    else:
        kind = "UNKNOWN"
    if isinstance(title := get("title"), str) and title:
        taken["title"] = LEAF
    else:
        title = None
    if isinstance(description := get("description"), str) and description:
        taken["description"] = LEAF
    else:
        description = None
    return arn, account, kind, title, description


def _times(doc: dict[str, Any], taken: Trie) -> tuple[int | None, int | None, int | None]:
    """firstObservedAt, updatedAt and lastObservedAt, recorded; a time sent twice is parsed once."""
    first_sent, updated_sent, last_sent = doc.get("firstObservedAt"), doc.get("updatedAt"), doc.get("lastObservedAt")
    first = _time(first_sent, "Inspector finding firstObservedAt")
    if first is not None:
        taken["firstObservedAt"] = LEAF
    if updated_sent == first_sent and first is not None and type(updated_sent) is str:
        updated: int | None = first
    else:
        updated = _time(updated_sent, "Inspector finding updatedAt")
    if updated is not None:
        taken["updatedAt"] = LEAF
    if last_sent == updated_sent and updated is not None and type(last_sent) is str:
        last: int | None = updated
    elif last_sent == first_sent and first is not None and type(last_sent) is str:
        last = first
    else:
        last = _time(last_sent, "Inspector finding lastObservedAt")
    if last is not None:
        taken["lastObservedAt"] = LEAF
    return first, updated, last


def _time(value: object, name: str) -> int | None:
    """`plain.time` of a value (None when absent), without recording; raises for a bad one."""
    if value is None or value == "":
        return None
    if type(value) is str:
        # The ISO 8601 times with an offset Inspector sends, as `epoch_ms` reads them.
        try:
            parsed = _from_iso(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            try:
                millis = int(parsed.timestamp() * 1000)
            except (OverflowError, ValueError):
                millis = 0
            if MIN_MS <= millis < MAX_MS:
                return millis
    return epoch_ms(value, name)


def _word(value: object) -> str:
    """A non-empty string as sent, else "" (`Fields.peek_text`)."""
    return value if isinstance(value, str) else ""


def _info(
    title: str | None,
    desc: str | None,
    arn: str,
    kind: str,
    times: tuple[int | None, int, int | None],
    region: str | None,
) -> dict[str, Any]:
    first, modified, last = times
    info: dict[str, Any] = {"uid": arn, "types": [kind], "modified_time": modified}
    if title:
        info["title"] = title
    if desc:
        info["desc"] = desc
    if first is not None:
        info["created_time"] = info["first_seen_time"] = first
    if last is not None:
        info["last_seen_time"] = last
    if region:
        console = _CONSOLES.get(region)
        if console is None:
            console = _CONSOLE.format(region=region)
            if len(_CONSOLES) < _MAX_CONSOLES:
                _CONSOLES[region] = console
        info["src_url"] = console + arn
    return info


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None
