"""Lifecycle and placement rules shared by recommendations, sub-assessments and compliance.

Status and activity, from the assessment status code and the continuous-export action:

| source                        | status            | activity                 | compliance        |
|-------------------------------|-------------------|--------------------------|-------------------|
| action Delete                 | Deleted (6)       | Close                    | from the code     |
| Healthy / Passed              | Resolved (4)      | Close                    | Pass              |
| Unhealthy / Failed            | New (1)           | Create or Update         | Fail              |
| NotApplicable / Exempt        | Suppressed (3)    | Create or Update         | Other (99), the   |
|                               |                   |                          | vendor's word     |
| Skipped / Unsupported /       | Other (99), the   | Create or Update         | Other (99), the   |
| anything else                 | vendor's word     |                          | vendor's word     |
| no code                       | Unknown (0)       | Create or Update         | Unknown (0)       |

A Healthy result is a resolved compliance failure, so it closes the finding (Security Hub
treats Close as closed). NotApplicable and Exempt are neither a pass nor a failure: Defender
set the resource aside (an exemption, a policy turned off, an unsupported plan), which is what
OCSF's Suppressed says; the reason (`status.cause`, `status.description`) is the finding's
`status_detail`, and the compliance status stays the vendor's word rather than a result the
source never gave. Create is used for an export `Insert` that is not a weekly snapshot, and for
every REST or Resource Graph row: such a read is stateless (it cannot tell a first sighting from
a later one), so it states the record, and the store tells a new finding from an update; every
other export delivery is an Update.
"""

from __future__ import annotations

from typing import Final

from corral import ocsf, traits
from corral.sources._core.folded import text
from corral.sources.defender._records import Export
from corral.sources.defender._services import Placement, placement

_PASS: Final = frozenset({"healthy", "passed"})
_FAIL: Final = frozenset({"unhealthy", "failed"})
_SET_ASIDE: Final = frozenset({"notapplicable", "exempt"})

# Fallback placement from a recommendation's or control's own words, for records whose
# resource id does not say (subscription-scoped compliance results, multicloud connectors).
_TITLE_WORDS: Final[tuple[tuple[str, Placement], ...]] = (
    ("kubernetes", (traits.AKS, traits.PLATFORM)),
    ("aks ", (traits.AKS, traits.PLATFORM)),
    ("container app", (traits.CONTAINER_APPS, traits.PLATFORM)),
    ("function app", (traits.FUNCTION_APPS, traits.PLATFORM)),
    ("container image", (traits.NO_SERVICE, traits.APPLICATION)),
    ("container registr", (traits.NO_SERVICE, traits.APPLICATION)),
)


def lifecycle(code: str | None, export: Export) -> tuple[int, int, str | None, int, str | None]:
    """Return (status_id, activity_id, status word for 99, compliance status_id, its word)."""
    word = (code or "").strip().lower()
    compliance = ocsf.COMPLIANCE_PASS if word in _PASS else ocsf.COMPLIANCE_FAIL if word in _FAIL else 99 if word else 0
    compliance_word = code if compliance == 99 else None
    action = (text(export.action) or "").lower()
    if action == "delete":
        return ocsf.STATUS_DELETED, ocsf.CLOSE, None, compliance, compliance_word
    if word in _PASS:
        return ocsf.STATUS_RESOLVED, ocsf.CLOSE, None, compliance, compliance_word
    activity = ocsf.UPDATE if action and (action != "insert" or export.snapshot()) else ocsf.CREATE
    if word in _FAIL:
        return ocsf.STATUS_NEW, activity, None, compliance, compliance_word
    if word in _SET_ASIDE:
        return ocsf.STATUS_SUPPRESSED, activity, None, compliance, compliance_word
    if word:
        return 99, activity, code, compliance, compliance_word
    return 0, activity, None, compliance, compliance_word


def place(resource_id: str | None, title: str | None, kind: str | None = None) -> Placement:
    """Return (service, layer) from the resource id, else from the title, else none."""
    found = placement(resource_id, kind)
    if found:
        return found
    lowered = (title or "").lower()
    for words, where in _TITLE_WORDS:
        if words in lowered:
            return where
    arm = (resource_id or "").lower()
    if "/providers/microsoft.compute/" in arm or "/providers/microsoft.network/" in arm:
        return traits.NO_SERVICE, traits.INFRASTRUCTURE
    return traits.NO_SERVICE, traits.PLATFORM
