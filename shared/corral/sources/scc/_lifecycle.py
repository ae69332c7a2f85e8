"""When an SCC finding happened and where it stands: its times, activity, status and severity.

An absent, unset (protobuf writes `1970-01-01T00:00:00Z`) or invalid time reads as no time; the
times are read as `times.optional_ms` reads them, taking the usual ISO text with an offset directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from corral import ocsf
from corral.errors import MalformedEventError
from corral.sources._core import times
from corral.sources._core.reader import Trie
from corral.sources.scc._details import source_properties
from corral.sources.scc._spelling import LEAF, inner
from corral.sources.scc._tables import SEVERITIES

_fromisoformat: Final = datetime.fromisoformat
_MIN_MS: Final = times.MIN_MS
_MAX_MS: Final = times.MAX_MS


def _ms(value: object) -> int | None:
    """`times.optional_ms` of a string, taking the common case (an ISO time with an offset) directly."""
    if not isinstance(value, str):
        return None
    try:
        parsed = _fromisoformat(value)
        millis = int(parsed.timestamp() * 1000) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        millis = None
    if millis is None:
        return times.optional_ms(value)  # what `fromisoformat` refuses or reads without an offset
    return millis if _MIN_MS <= millis < _MAX_MS else None


def lifecycle(
    taken: Trie, doc: dict[str, Any], received_time: int | None
) -> tuple[int | None, int, int, int, str | None]:
    """Return (created, modified, activity_id, status_id, state)."""
    # An absent, unset (1970) or invalid time reads as no time.
    event, created = doc.get("eventTime"), doc.get("createTime")
    event_ms = _ms(event)
    # A new finding's two times are often one text: it is read once.
    create_ms = event_ms if created == event and isinstance(created, str) else _ms(created)
    mute_ms = _ms(doc.get("muteUpdateTime")) if "muteUpdateTime" in doc else None
    # Muting a finding does not move its eventTime; muteUpdateTime orders that change.
    later = event_ms or 0
    if mute_ms and mute_ms > later:
        later = mute_ms
    modified = later or create_ms or received_time
    if modified is None:
        raise MalformedEventError("SCC finding has no usable eventTime or createTime")
    if event_ms is not None:
        taken["eventTime"] = LEAF
    if create_ms is not None:
        taken["createTime"] = LEAF
    state = doc.get("state")
    if not isinstance(state, str) or not state:
        state = None
    if state == "INACTIVE":
        activity_id, status_id = ocsf.CLOSE, ocsf.STATUS_RESOLVED
    else:
        activity_id = ocsf.UPDATE if create_ms is not None and later > create_ms else ocsf.CREATE
        mute = doc.get("mute")
        if not (isinstance(mute, str) and mute) and "muteInfo" in doc:
            mute = inner(inner(doc, "muteInfo"), "staticMute").get("state")
        if mute == "MUTED":
            status_id = ocsf.STATUS_SUPPRESSED
        elif state == "ACTIVE":
            status_id = ocsf.STATUS_NEW
        else:
            status_id = 0 if state in (None, "STATE_UNSPECIFIED") else 99
    if state in {"ACTIVE", "INACTIVE"}:
        taken["state"] = LEAF
    return create_ms, modified, activity_id, status_id, state


def severity(doc: dict[str, Any]) -> tuple[int, object]:
    """Return (severity_id, the severity as sent): unknown names are Other (99), kept as sent.

    Findings from before SCC had a `severity` (Security Health Analytics, 2019) carry it only as
    `sourceProperties.SeverityLevel` ("High", "Low"): read there when `severity` says nothing.
    """
    raw = doc.get("severity")
    if raw is None or raw in ("", "SEVERITY_UNSPECIFIED"):
        legacy = source_properties(doc).get("SeverityLevel")
        if isinstance(legacy, str) and legacy.upper() in SEVERITIES:
            return SEVERITIES[legacy.upper()], None
    if raw is None or raw == "":
        return 0, None
    if isinstance(raw, str) and raw in SEVERITIES:
        return SEVERITIES[raw], raw
    return 99, raw
