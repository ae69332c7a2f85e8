"""Defender regulatory-compliance results → OCSF Compliance Finding (2003).

Record: `Microsoft.Security/regulatoryComplianceStandards/{standard}/regulatoryComplianceControls/
{control}/regulatoryComplianceAssessments/{key}` with `properties.state` Passed / Failed /
Skipped / Unsupported, resource counts, and a portal link. The standard and the control are
read from the resource id, the only place Defender names them.

Decisions:

- Identity: the resource id, lower-cased.
- Lifecycle as for recommendations (`_posture`): Failed is an open failure, Passed resolves and
  closes it, Skipped and Unsupported are Other with Defender's word.
- The record has no severity: severity Unknown (0). It also has no time: the delivery's
  `received_time` is used, and without one the record is refused (MalformedEventError) rather
  than stamped with an invented time.
- The record is subscription-scoped: `cloud.account` is the subscription, and no resource is
  listed (the counts of passed, failed and skipped resources stay in `unmapped`).
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._values import consumed, unmapped

LOG_NAME: Final = "SecurityRegulatoryCompliance"
TYPE: Final = (
    "microsoft.security/regulatorycompliancestandards/regulatorycompliancecontrols/regulatorycomplianceassessments"
)

_CONSUMED: Final = consumed(
    "id",
    "type",
    "name",
    "tenantId",
    "properties.description",
    "properties.state",
    "properties.assessmentDetailsLink",
)


def normalize(doc: Fields, delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Compliance Finding for one regulatory-compliance assessment result."""
    record_id = doc.first_text("id")
    if not record_id:
        raise MalformedEventError("id: missing or not a string")
    props = doc.view("properties")
    standard = _segment_after(record_id, "regulatorycompliancestandards")
    control = _segment_after(record_id, "regulatorycompliancecontrols")
    state = props.first_text("state")
    status_id, activity_id, status_word, compliance_id, compliance_word = posture.lifecycle(
        state, posture.enrichment(doc)
    )
    time = common.require_time(
        [common.first_time(props, "timeGenerated", "lastModifiedTime")], received_time, "regulatory compliance result"
    )
    title = props.first_text("description")
    service, layer = posture.place(None, title)

    finding = common.envelope(
        ocsf.COMPLIANCE,
        log_name=LOG_NAME,
        activity_id=activity_id,
        time=time,
        severity_id=0,
        vendor_severity=None,
        status_id=status_id,
        status_word=status_word,
        delivery_id=delivery_id,
        tenant=doc.first_text("tenantId"),
    )
    info = {
        "uid": record_id.lower(),
        "uid_alt": record_id if record_id != record_id.lower() else None,
        "title": title,
        "types": ["Regulatory Compliance"],
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": doc.first_text("name"), "name": title}),
        "src_url": common.https(props.first_text("assessmentDetailsLink")),
        "traits": traits.classify(service, layer, traits.HARDENING),
    }
    compliance = {
        "standards": [standard] if standard else None,
        "control": control,
        "desc": title,
        "status_id": compliance_id,
        "status": compliance_word or ocsf.COMPLIANCE_NAMES[compliance_id],
        "status_code": state,
    }
    finding.update(
        common.compact(
            {
                "message": title,
                "status_code": state,
                "cloud": common.azure_cloud(record_id),
                "finding_info": common.compact(info),
                "compliance": common.compact(compliance),
            }
        )
    )
    return common.finish(finding, unmapped(doc, _CONSUMED))


def _segment_after(resource_id: str, marker: str) -> str | None:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if marker in lowered:
        at = lowered.index(marker) + 1
        if at < len(parts) and parts[at]:
            return parts[at]
    return None
