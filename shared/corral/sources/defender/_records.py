"""The objects every ARM-shaped Defender record shares, as precompiled field maps (see `FieldMap`).

Each record kind reads its top level, its `resourceDetails` and its `status` once, whatever the
casing sent; the continuous-export enrichment (action, isSnapshot) sits under one of three keys.
"""

from __future__ import annotations

from typing import Any, Final

from corral.sources._core.folded import FieldMap, FieldRecord
from corral.sources.defender._values import boolean_value


class Resource(FieldRecord):
    """The top level of an ARM resource row (assessment, sub-assessment, compliance result, attack path)."""

    id: Any
    name: Any
    type: Any
    tenant_id: Any
    subscription_id: Any
    location: Any
    properties: Any
    assessment_event_data_enrichment: Any
    sub_assessment_event_data_enrichment: Any
    security_event_data_enrichment: Any

    def export(self) -> Export:
        """Return the continuous-export enrichment (the first of its keys holding an object); empty for REST rows."""
        for value in (
            self.assessment_event_data_enrichment,
            self.sub_assessment_event_data_enrichment,
            self.security_event_data_enrichment,
        ):
            if isinstance(value, dict):
                return EXPORT.read(value)
        return NO_EXPORT


class Export(FieldRecord):
    action: Any
    is_snapshot: Any

    def snapshot(self) -> bool | None:
        """`isSnapshot` as a boolean ("true"/"false" accepted); None when absent."""
        return boolean_value(self.is_snapshot)


class Details(FieldRecord):
    """An assessment's `resourceDetails`."""

    id: Any
    source: Any
    native_resource_id: Any
    resource_name: Any
    resource_type: Any
    aws_account_id: Any
    account_id: Any
    gcp_project_id: Any
    project_id: Any
    region: Any
    location: Any


class Status(FieldRecord):
    """An assessment's or sub-assessment's `status`."""

    code: Any
    severity: Any
    cause: Any
    description: Any
    first_evaluation_date: Any
    status_change_date: Any


RESOURCE: Final = FieldMap(Resource)
EXPORT: Final = FieldMap(Export)
DETAILS: Final = FieldMap(Details)
STATUS: Final = FieldMap(Status)
NO_EXPORT: Final = EXPORT.read(None)
