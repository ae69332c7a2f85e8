"""Microsoft Defender for Cloud: alerts, recommendations, compliance, CVEs and attack paths → OCSF.

Continuous export sends every record kind to one Event Hub; Azure REST and Resource Graph
backfills return the same resources. A record's kind is read from its ARM `type` (any casing);
an exported alert has no `type`, and is known by its own keys (`SystemAlertId`, `AlertType`).

| record                                         | OCSF                          | module           |
|------------------------------------------------|-------------------------------|------------------|
| security alert (export or `.../alerts`)        | Detection Finding 2004        | `alerts`         |
| recommendation (`assessments`)                 | Compliance Finding 2003       | `assessments`    |
| sub-assessment (`assessments/subAssessments`)  | Vulnerability Finding 2002    | `subassessments` |
| sub-assessment naming no vulnerability         | Compliance Finding 2003       | `subassessments` |
| regulatory compliance assessment result        | Compliance Finding 2003       | `compliance`     |
| attack path (`attackPaths`)                    | Detection Finding 2004 + graph| `attackpaths`    |
| secure score, secure score control             | Skip                          |                  |

Keys are read case-insensitively throughout; `normalize` is pure and raises only
`MalformedEventError` or `UnsupportedSourceError`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from corral.errors import CorralError, MalformedEventError, UnsupportedSourceError
from corral.records import Normalized, Skip
from corral.sources._core.folded import spellings
from corral.sources.defender import alerts
from corral.sources.defender._facts import FACTS as FACTS
from corral.sources.defender._facts import SOURCE as SOURCE

# The module that maps each record kind, by ARM type (each module's `TYPE`). Alerts are what most
# functions see; the other mappers are imported on first use, so a cold start loads only those
# its delivery needs.
_BY_TYPE: Final[dict[str, str]] = {
    "microsoft.security/assessments": "assessments",
    "microsoft.security/assessments/subassessments": "subassessments",
    (
        "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols/regulatorycomplianceassessments"
    ): "compliance",
    "microsoft.security/attackpaths": "attackpaths",
}
_ASSESSMENT: Final = "microsoft.security/assessments"
_SKIPPED: Final = {
    "microsoft.security/securescores": "secure score, not a finding",
    "microsoft.security/securescores/securescorecontrols": "secure score, not a finding",
    "microsoft.security/regulatorycompliancestandards": "regulatory compliance summary, not a finding",
    "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols": (
        "regulatory compliance summary, not a finding"
    ),
}


def _kind(doc: dict[str, Any]) -> str:
    value = doc.get(spellings(doc).get("type"))  # type: ignore[arg-type]
    return value.strip().lower() if isinstance(value, str) else ""


def _nested(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The sub-assessment a Resource Graph assessment row nests in `properties.additionalData.subAssessment`."""
    found: Any = doc
    for name in ("properties", "additionaldata", "subassessment"):
        found = found.get(spellings(found).get(name))
        if not isinstance(found, dict):
            return None
    return found  # type: ignore[no-any-return]


_MAPPERS: Final[dict[str, Callable[..., Normalized]]] = {}


def _mapper(name: str) -> Callable[..., Normalized]:
    """The `normalize` of the mapper module `name` (imported once, on first use)."""
    normalize = _MAPPERS.get(name)
    if normalize is None:
        # `import_module` takes the import lock and walks `sys.modules` on every call: once is enough.
        normalize = _MAPPERS[name] = importlib.import_module(f"{__name__}.{name}").normalize
    return normalize


def recognizes(doc: Mapping[str, Any]) -> bool:
    """True when `doc` is a Defender for Cloud record this source reads (never raises)."""
    try:
        record = doc if isinstance(doc, dict) else {}
        kind = _kind(record)
        return kind in _BY_TYPE or kind in _SKIPPED or alerts.matches(record)
    except Exception:  # noqa: BLE001 - a recognizer must answer, whatever it is handed
        return False


def normalize(
    doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
) -> Normalized:
    """Return the OCSF finding for one Defender record, or a Skip for a secure score.

    `received_time` (epoch ms, e.g. the Event Hubs enqueued time) is used only by records
    that carry no time of their own (regulatory compliance results, attack paths, some
    Resource Graph rows); without it those records raise MalformedEventError.
    """
    if not isinstance(doc, dict):
        if not isinstance(doc, Mapping):
            raise MalformedEventError(f"document is a {type(doc).__name__}, not an object")
        doc = dict(doc)
    kind = _kind(doc)
    try:
        if kind in _SKIPPED:
            return Skip(_SKIPPED[kind])
        if kind == _ASSESSMENT:
            nested = _nested(doc)
            if nested is not None:
                return _mapper("subassessments")(nested, delivery_id, received_time, parent=doc)
        if kind in _BY_TYPE:
            return _mapper(_BY_TYPE[kind])(doc, delivery_id, received_time)
        top = alerts.matched(doc)
        if top is not None:
            return alerts.normalize(doc, delivery_id, received_time, top)
    except CorralError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        # A shape no test has met yet: refuse it with a reason rather than crash the batch.
        raise MalformedEventError(f"{kind or 'alert'}: unexpected shape ({type(exc).__name__}: {exc})"[:200]) from exc
    raise UnsupportedSourceError(f"type {kind[:80]!r} is not a Defender record Corral reads")
