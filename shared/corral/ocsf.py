"""OCSF 1.8.0 vocabulary and the small helpers every normalizer shares.

Findings are plain dicts shaped like OCSF (serialised with orjson); these helpers keep the
parts every source repeats (captions, times, the cloud object) in one place, so that the
normalizers only say what is particular to their source.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from corral.errors import MalformedEventError

Finding = dict[str, Any]
"""An OCSF finding document (Detection, Vulnerability or Compliance Finding)."""

VERSION: Final = "1.8.0"
PROFILES: Final = ("cloud", "container")

DETECTION: Final = 2004
VULNERABILITY: Final = 2002
COMPLIANCE: Final = 2003
CLASS_NAMES: Final = {
    DETECTION: "Detection Finding",
    VULNERABILITY: "Vulnerability Finding",
    COMPLIANCE: "Compliance Finding",
}

CREATE: Final = 1
UPDATE: Final = 2
CLOSE: Final = 3
ACTIVITY_NAMES: Final = {0: "Unknown", 1: "Create", 2: "Update", 3: "Close", 99: "Other"}

SEVERITY_NAMES: Final = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
    6: "Fatal",
    99: "Other",
}
SEVERITY_IDS: Final = {name.lower(): sid for sid, name in SEVERITY_NAMES.items()}

STATUS_NEW: Final = 1
STATUS_IN_PROGRESS: Final = 2
STATUS_SUPPRESSED: Final = 3
STATUS_RESOLVED: Final = 4
STATUS_ARCHIVED: Final = 5
STATUS_DELETED: Final = 6
STATUS_NAMES: Final = {
    0: "Unknown",
    1: "New",
    2: "In Progress",
    3: "Suppressed",
    4: "Resolved",
    5: "Archived",
    6: "Deleted",
    99: "Other",
}
CLOSED_STATUSES: Final = frozenset({STATUS_RESOLVED, STATUS_ARCHIVED, STATUS_DELETED})

COMPLIANCE_PASS: Final = 1
COMPLIANCE_WARNING: Final = 2
COMPLIANCE_FAIL: Final = 3
COMPLIANCE_NAMES: Final = {0: "Unknown", 1: "Pass", 2: "Warning", 3: "Fail", 99: "Other"}

ACCOUNT_TYPES: Final = {"AWS": (10, "AWS Account"), "GCP": (11, "GCP Project"), "Azure": (13, "Azure Subscription")}

# Seconds and milliseconds are told apart by size: 1e11 s is the year 5138, 1e11 ms is 1973.
_EPOCH_SECONDS_BELOW: Final = 1e11
_FRACTION = re.compile(r"\.(\d+)")


def timestamp_ms(value: object, field: str = "time") -> int:
    """Return epoch milliseconds for an ISO 8601 string or an epoch number (s or ms).

    Accepts what the three clouds send: `2024-01-02T03:04:05Z`, `+0000` offsets, nanosecond
    fractions (SCC), epoch seconds as floats (GuardDuty `createdAt` in some shapes) and epoch ms.

    Example:
        >>> timestamp_ms("2024-01-02T03:04:05.123456789Z")
        1704164645123
    """
    if isinstance(value, bool):
        raise MalformedEventError(f"{field} is not a time: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise MalformedEventError(f"{field} is not a time: {value!r}")
        millis = value * 1000 if value < _EPOCH_SECONDS_BELOW else value
        if millis >= 1e13:
            raise MalformedEventError(f"{field} is out of range: {value!r}")
        return int(millis)
    if isinstance(value, str) and value:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python parses at most microseconds; SCC sends nanoseconds.
        if "." in text:
            text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise MalformedEventError(f"{field} is not an ISO 8601 time: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise MalformedEventError(f"{field} is missing or not a time")


def optional_timestamp_ms(value: object, field: str = "time") -> int | None:
    """Like `timestamp_ms`, but None for a missing or empty value."""
    if value is None or value == "":
        return None
    return timestamp_ms(value, field)


def severity(severity_id: int, vendor_value: object = None) -> dict[str, Any]:
    """Return `severity_id` and `severity`; for 99 (Other) `severity` is the source's own value."""
    label = str(vendor_value) if severity_id == 99 and vendor_value is not None else SEVERITY_NAMES[severity_id]
    return {"severity_id": severity_id, "severity": label}


def status(status_id: int) -> dict[str, Any]:
    """Return `status_id` and its caption."""
    return {"status_id": status_id, "status": STATUS_NAMES[status_id]}


def cloud(provider: str, account_uid: str, region: str | None = None, **account: Any) -> dict[str, Any]:
    """Return the OCSF `cloud` object for an account of `provider` ("AWS", "Azure" or "GCP")."""
    type_id, type_name = ACCOUNT_TYPES[provider]
    if account:
        owner = prune({"uid": account_uid, "type_id": type_id, "type": type_name, **account})
    elif account_uid:  # the common case needs no prune pass: only the uid can be missing
        owner = {"uid": account_uid, "type_id": type_id, "type": type_name}
    else:
        owner = {"type_id": type_id, "type": type_name}
    obj: dict[str, Any] = {"provider": provider, "account": owner}
    if region:
        obj["region"] = region
    return obj


# Every finding carries one of these: worked out once rather than per finding.
_TYPE_NAMES: Final = {
    (class_uid, activity_id): f"{class_name}: {activity_name}"
    for class_uid, class_name in CLASS_NAMES.items()
    for activity_id, activity_name in ACTIVITY_NAMES.items()
}
# The constant fields of an envelope by (class, activity, severity, status): one copy per finding.
_HEADS: dict[tuple[int, int, int, int], Finding] = {}


def envelope(
    *,
    class_uid: int,
    activity_id: int,
    time: int,
    severity_id: int,
    vendor_severity: object = None,
    status_id: int,
    product: Mapping[str, Any],
    delivery_id: str | None,
    log_name: str | None = None,
) -> Finding:
    """Return the fields every finding carries: class, activity, type, severity, status, metadata."""
    # A fresh `profiles` list and `product` copy per finding: callers may reuse their product.
    metadata: dict[str, Any] = {"version": VERSION, "profiles": [*PROFILES], "product": {**product}}
    if delivery_id:
        metadata["uid"] = delivery_id
    if log_name:
        metadata["log_name"] = log_name
    key = (class_uid, activity_id, severity_id, status_id)
    head = _HEADS.get(key)
    if head is None:
        head = _head(*key)
    out = head.copy()  # the keys in their order, `time` and `metadata` as placeholders
    out["time"] = time
    if severity_id == 99 and vendor_severity is not None:
        out["severity"] = str(vendor_severity)
    out["metadata"] = metadata
    return out


def _head(class_uid: int, activity_id: int, severity_id: int, status_id: int) -> Finding:
    """The constant part of `envelope` for one (class, activity, severity, status), kept."""
    head = {
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": CLASS_NAMES[class_uid],
        "activity_id": activity_id,
        "activity_name": ACTIVITY_NAMES[activity_id],
        "type_uid": class_uid * 100 + activity_id,
        "type_name": _TYPE_NAMES[class_uid, activity_id],
        "time": None,
        "severity_id": severity_id,
        "severity": SEVERITY_NAMES[severity_id],
        "status_id": status_id,
        "status": STATUS_NAMES[status_id],
        "metadata": None,
    }
    # Valid keys only (unknown ones raised above), so at most 3 x 5 x 8 x 8 entries.
    _HEADS[class_uid, activity_id, severity_id, status_id] = head
    return head


def prune(obj: Any) -> Any:
    """Drop None, empty strings, empty lists and empty dicts, recursively (OCSF has no nulls).

    This runs on every finding, so it tests exact types rather than ABCs and builds each
    container once.

    Example:
        >>> prune({"a": None, "b": "", "c": [{}], "d": {"e": 0, "f": False}})
        {'d': {'e': 0, 'f': False}}
    """
    kind = type(obj)
    if kind is dict:
        out = {}
        for key, value in obj.items():
            if value is None or value == "":
                continue
            inner = type(value)
            kept = prune(value) if inner is dict or inner is list else value
            if kept is value or kept:
                out[key] = kept
        return out
    if kind is list:
        items = []
        for value in obj:
            if value is None or value == "":
                continue
            inner = type(value)
            kept = prune(value) if inner is dict or inner is list else value
            if kept is value or kept:
                items.append(kept)
        return items
    return obj


def shared_prune(obj: Any) -> Any:
    """Like `prune`, but what has nothing to drop in it is the very object given, not a copy.

    For values nobody modifies afterwards, e.g. vendor subtrees kept in `unmapped`. An empty
    container gives a new empty one, as `prune` does.
    """
    kind = type(obj)
    if kind is dict:
        return shared_object(obj) if obj else {}
    if kind is list:
        return shared_items(obj) if obj else []
    return obj


_SCALARS: Final = frozenset({int, float, bool})  # never None nor empty: kept as they are


def shared_object(obj: dict[Any, Any]) -> dict[Any, Any]:
    """`shared_prune` of a non-empty dict: `obj` itself when nothing in it goes.

    A clean object (the usual case) costs one walk and no allocation; only from the first value
    that goes is a pruned dict built. The result may be empty.
    """
    for value in obj.values():
        kind = type(value)
        if kind is str:
            if value:
                continue
            return _rebuilt_object(obj, value, None)
        if kind is dict or kind is list:
            if not value:
                return _rebuilt_object(obj, value, None)
            kept = shared_object(value) if kind is dict else shared_items(value)
            if kept is value:
                continue
            return _rebuilt_object(obj, value, kept)
        if kind in _SCALARS or not (value is None or value == ""):
            continue
        return _rebuilt_object(obj, value, None)
    return obj


def shared_items(obj: list[Any]) -> list[Any]:
    """`shared_prune` of a non-empty list: `obj` itself when nothing in it goes."""
    for value in obj:
        kind = type(value)
        if kind is str:
            if value:
                continue
            return _rebuilt_items(obj, value, None)
        if kind is dict or kind is list:
            if not value:
                return _rebuilt_items(obj, value, None)
            kept = shared_object(value) if kind is dict else shared_items(value)
            if kept is value:
                continue
            return _rebuilt_items(obj, value, kept)
        if kind in _SCALARS or not (value is None or value == ""):
            continue
        return _rebuilt_items(obj, value, None)
    return obj


# The first value of a container that goes is found again by identity: an object met earlier in
# the walk would have gone there too (the walk is a function of the object), so no value before
# it is that very object.


def _rebuilt_object(obj: dict[Any, Any], first: Any, kept: Any) -> dict[Any, Any]:
    """`obj` pruned, given that nothing goes before the value `first`, whose pruned value is `kept`."""
    out = {}
    items = iter(obj.items())
    for key, value in items:
        if value is first:
            if kept:
                out[key] = kept
            break
        out[key] = value
    for key, value in items:
        kind = type(value)
        if kind is str:
            if value:
                out[key] = value
        elif kind is dict or kind is list:
            if value and (kept := shared_object(value) if kind is dict else shared_items(value)):
                out[key] = kept
        elif kind in _SCALARS or not (value is None or value == ""):
            out[key] = value
    return out


def _rebuilt_items(obj: list[Any], first: Any, kept: Any) -> list[Any]:
    """As `_rebuilt_object`, for a list."""
    stop = next(i for i, value in enumerate(obj) if value is first)
    out = obj[:stop]
    if kept:
        out.append(kept)
    for value in obj[stop + 1 :]:
        kind = type(value)
        if kind is str:
            if value:
                out.append(value)
        elif kind is dict or kind is list:
            if value and (kept := shared_object(value) if kind is dict else shared_items(value)):
                out.append(kept)
        elif kind in _SCALARS or not (value is None or value == ""):
            out.append(value)
    return out


def prefix(obj: dict[Any, Any], stop: Any) -> dict[Any, Any]:
    """A new dict of the items of `obj` before the key `stop` (a key of `obj`, as iterated)."""
    out = {}
    for key, value in obj.items():
        if key is stop:
            break
        out[key] = value
    return out


def is_pruned(node: dict[Any, Any] | list[Any]) -> bool:
    """True when `prune` would keep `node` as it is: not empty, nothing None or empty inside it."""
    if not node:
        return False
    for value in node.values() if type(node) is dict else node:
        kind = type(value)
        if kind is dict or kind is list:
            if not is_pruned(value):
                return False
        elif value is None or value == "":
            return False
    return True


def identity(finding: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return a finding's identity: (product uid, account uid, finding uid), as Security Hub does."""
    return (
        finding["metadata"]["product"]["uid"],
        finding["cloud"]["account"]["uid"],
        finding["finding_info"]["uid"],
    )


def modified_time(finding: Mapping[str, Any]) -> int:
    """Return the source's own last-modified time, which orders versions of one finding.

    The store caps it for ordering where it is past the finding's arrival (`stores.base.Snapshot.of`).
    """
    info = finding.get("finding_info", {})
    return int(info.get("modified_time") or finding["time"])
