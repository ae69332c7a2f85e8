"""Findings relayed by another Corral (the hub layout): already OCSF, checked and passed through.

Spokes normalize and relay OCSF findings to one topic or queue; the hub ingests them like any
delivery. Nothing is re-mapped, but a relayed document must still carry a complete identity and
a class Corral emits, so that one broken spoke cannot poison the central store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf, priority
from corral.errors import MalformedEventError
from corral.records import Normalized
from corral.sources._core.times import MAX_MS, MIN_MS

SOURCE: Final = "corral.relay"
FACTS: Final = None  # a pass-through: a relayed finding counts for the source that first normalized it
_INFO_TIMES: Final = ("modified_time", "created_time", "first_seen_time", "last_seen_time")


def recognizes(doc: Mapping[str, Any]) -> bool:
    """True for an OCSF finding document (class_uid, metadata.version, finding_info)."""
    metadata = doc.get("metadata")
    return isinstance(metadata, Mapping) and "class_uid" in doc and "finding_info" in doc and "version" in metadata


def normalize(
    doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
) -> Normalized:
    """Return the relayed finding unchanged, after checking its class, version and identity."""
    del delivery_id, received_time  # the relayed finding keeps what its first hop gave it
    if doc.get("class_uid") not in ocsf.CLASS_NAMES:
        raise MalformedEventError(f"relayed finding has class_uid {doc.get('class_uid')!r}, not a finding class")
    if doc["metadata"].get("version") != ocsf.VERSION:
        raise MalformedEventError(
            f"relayed finding is OCSF {doc['metadata'].get('version')!r}, expected {ocsf.VERSION}"
        )
    try:
        key = ocsf.identity(doc)
    except (KeyError, TypeError):
        raise MalformedEventError("relayed finding lacks its identity") from None
    _check_times(doc)
    if not all(isinstance(part, str) and part for part in key):
        raise MalformedEventError("relayed finding has an empty identity")
    if doc["class_uid"] != ocsf.VULNERABILITY:
        return _unprioritized(doc)
    return dict(doc)  # the hub gives a Vulnerability Finding its own priority, whatever it came with


def _check_times(doc: Mapping[str, Any]) -> None:
    """Refuse a time a source could not have given: sinks and pages write a finding's times as dates.

    Relayed times are held to what a spoke's normalization could have produced: epoch
    milliseconds in the range vendor times are read in. (A time past the arrival orders no later
    than the arrival plus an allowance, so it cannot freeze the finding: see `Snapshot.of`.)
    """
    info = doc["finding_info"]
    found = [("time", doc.get("time"))]
    found += [(f"finding_info.{name}", info[name]) for name in _INFO_TIMES if info.get(name) is not None]
    for where, value in found:
        if type(value) is not int or not MIN_MS <= value < MAX_MS:
            raise MalformedEventError(f"relayed finding {where} is not a time in epoch ms: {repr(value)[:64]}")


def _unprioritized(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` without priority fields or priority traits: Corral gives a priority to Vulnerability Findings only.

    Routes match on them (`priority_at_least`, `running`), so a spoke, or whoever can write to the
    relay, must not be able to set them on a detection.
    """
    out = {k: v for k, v in doc.items() if k not in priority.FIELDS}
    info = out.get("finding_info")
    if isinstance(info, Mapping):
        traits = info.get("traits")
        if isinstance(traits, list) and any(_priority_trait(t) for t in traits):
            out["finding_info"] = {**info, "traits": [t for t in traits if not _priority_trait(t)]}
    return out


def _priority_trait(trait: object) -> bool:
    return isinstance(trait, Mapping) and trait.get("category") == priority.TRAIT_CATEGORY
