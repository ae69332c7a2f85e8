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
from corral.sources._core.folded import FieldMap, FieldRecord, text
from corral.sources.defender import _common as common
from corral.sources.defender import _posture as posture
from corral.sources.defender._records import RESOURCE
from corral.sources.defender._values import consumed, time_of

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


class _Props(FieldRecord):
    state: Any
    description: Any
    time_generated: Any
    last_modified_time: Any
    assessment_details_link: Any


_PROPS: Final = FieldMap(_Props)


def normalize(doc: dict[str, Any], delivery_id: str | None, received_time: int | None) -> dict[str, Any]:
    """Return the Compliance Finding for one regulatory-compliance assessment result."""
    top = RESOURCE.read(doc)
    record_id = text(top.id)
    if not record_id:
        raise MalformedEventError("id: missing or not a string")
    props = _PROPS.read(top.properties)
    parts, lowered = record_id.split("/"), record_id.lower().split("/")  # lower-casing never makes a "/"
    standard = _segment_after(parts, lowered, "regulatorycompliancestandards")
    control = _segment_after(parts, lowered, "regulatorycompliancecontrols")
    state = text(props.state)
    status_id, activity_id, status_word, compliance_id, compliance_word = posture.lifecycle(state, top.export())
    time = common.require_time([_time(props)], received_time, "regulatory compliance result")
    title = text(props.description)
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
        tenant=text(top.tenant_id),
    )
    info = {
        "uid": record_id.lower(),
        "uid_alt": record_id if record_id != record_id.lower() else None,
        "title": title,
        "types": ["Regulatory Compliance"],
        "analytic": common.compact({"type_id": 1, "type": "Rule", "uid": text(top.name), "name": title}),
        "src_url": common.https(text(props.assessment_details_link)),
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
    return common.finish(finding, _CONSUMED.rest(doc))


def _time(props: _Props) -> int | None:
    generated = props.time_generated
    if generated is not None and generated != "":
        return time_of(generated, "timeGenerated")
    return time_of(props.last_modified_time, "lastModifiedTime")


def _segment_after(parts: list[str], lowered: list[str], marker: str) -> str | None:
    if marker in lowered:
        at = lowered.index(marker) + 1
        if at < len(parts) and parts[at]:
            return parts[at]
    return None
