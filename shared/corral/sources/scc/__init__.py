"""Google Security Command Center findings -> OCSF 1.8.0.

Input (already out of its Pub/Sub, CloudEvent or push envelope): a `NotificationMessage`
`{notificationConfigName, finding, resource}` (older ones without `resource`), a ListFindings
result `{finding, resource, stateChange}`, or a bare `Finding`. Both protobuf-JSON spellings
(camelCase, and the snake_case proto names some tools emit) are read.

Decisions, in the order a reader meets them in the output:

- **Class** by `findingClass`: THREAT, OBSERVATION, TOXIC_COMBINATION -> Detection Finding 2004;
  VULNERABILITY -> Vulnerability Finding 2002 when `vulnerability.cve.id` is present, else 2004
  (OCSF's `vulnerabilities[]` needs a CVE, CWE or advisory, and a scanner result is not a
  compliance check); MISCONFIGURATION, POSTURE_VIOLATION -> Compliance Finding 2003; SCC_ERROR ->
  `Skip`. Findings without a class (written before 2022) take it from their source's display name
  (Security Health Analytics -> MISCONFIGURATION; Event/Container/VM/Cloud Run Threat Detection ->
  THREAT), else from a CVE (VULNERABILITY), else from the category's shape: SHA categories are
  `UPPER_SNAKE` (MISCONFIGURATION), detector categories are `Tactic: Name` (THREAT). A class SCC
  adds later, or none at all, gives a 2004 with the class in `finding_info.types`.
- **Identity**: `finding_info.uid` = `canonicalName` when present, else `name`; the other goes to
  `uid_alt`. `canonicalName` is rooted at the finding's closest project/folder/organization
  whichever way the finding was read, while `name` follows the notification config's parent.
  `cloud.account.uid` = the affected resource's project id (see `_cloud`).
- **Times**: `time` = `finding_info.modified_time` = `eventTime` (the detector's last change),
  `created_time` = `createTime`. An unset protobuf time (`1970-01-01T00:00:00Z`) or an invalid one
  counts as absent: `eventTime` then falls back to `createTime`; without either the document is
  malformed.
- **Lifecycle**: `state` INACTIVE -> status Resolved, activity Close. Otherwise activity Create,
  or Update when `eventTime` or `muteUpdateTime` is later than `createTime`; status New for
  ACTIVE, Suppressed for `mute` MUTED (a muted finding is not closed: `muteInitiator` goes to
  `status_detail`, the mute fields stay in `unmapped`), Unknown without a state, Other for a state
  SCC adds later.
- **Severity**: CRITICAL 5, HIGH 4, MEDIUM 3, LOW 2, SEVERITY_UNSPECIFIED or absent 0; anything
  else 99 with the raw value as `severity`.
- **Console link**: `finding_info.src_url` = `externalUri` when it is an http(s) URL, else
  `https://console.cloud.google.com/security/command-center/findingsv2;name=<URL-encoded name>`
  with `?organizationId=<n>` for organization-rooted names or `?project=<project id>`.
- **Leftovers**: `unmapped.finding` / `unmapped.resource` hold every vendor key not mapped in
  full (objects mapped in part, such as `kubernetes`, `processes`, `access`, `vulnerability`, stay
  whole; `sourceProperties` always stays whole, in the shape it came), and the envelope's own keys
  (`notificationConfigName`, `stateChange`) sit at the top of `unmapped`. Text is kept as sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf
from corral.errors import MalformedEventError
from corral.records import HealthSignal, Skip
from corral.sources.scc import _finding
from corral.sources.scc._facts import FACTS as FACTS
from corral.sources.scc._facts import SOURCE as SOURCE
from corral.sources.scc._finding import PRODUCT as PRODUCT
from corral.sources.scc._spelling import _SNAKE, camel, inner, string
from corral.sources.scc._tables import (
    CLASS_BY_SOURCE,
    KNOWN_CLASSES,
    MISCONFIGURATION,
    SCC_ERROR,
    THREAT,
    VULNERABILITY,
)

_SHA_CATEGORY: Final = re.compile(r"^[A-Z][A-Z0-9_]*$")
_FINDING_NAME: Final = re.compile(
    r"^(?:organizations|folders|projects)/[^/]+/sources/[^/]+/(?:locations/[^/]+/)?findings/[^/]+$"
)


def _is_finding_name(value: object) -> bool:
    return isinstance(value, str) and bool(_FINDING_NAME.match(value))


def recognizes(doc: Mapping[str, Any]) -> bool:
    """True for an SCC NotificationMessage, ListFindings result or bare Finding."""
    candidate: object = doc  # callers pass whatever JSON they decoded
    if not isinstance(candidate, dict):
        return False
    finding = candidate.get("finding")
    if isinstance(finding, dict):
        name = candidate.get("notificationConfigName")
        return _is_finding_name(finding.get("name")) or (isinstance(name, str) and "notificationConfigs/" in name)
    return _is_finding_name(candidate.get("name"))


def _split(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """Return (finding, resource the envelope carries apart, envelope leftovers) of any of the three input shapes."""
    if "finding" not in doc:
        return doc, None, {}
    finding = doc["finding"]
    if not isinstance(finding, dict):
        raise MalformedEventError("SCC finding is not a JSON object")
    resource = doc.get("resource")
    if not isinstance(resource, dict):
        resource = None
    extra = dict(doc)  # the envelope's own keys, in the order sent
    del extra["finding"]
    if resource is not None:
        del extra["resource"]
    return finding, resource, extra


def finding_class(finding: dict[str, Any]) -> str:
    """Return the SCC class of a finding (as `camel()` spells it), inferred for findings that predate `findingClass`."""
    declared = finding.get("findingClass")
    if isinstance(declared, str) and declared in KNOWN_CLASSES:
        return declared
    declared = string(declared)
    if declared and declared != "FINDING_CLASS_UNSPECIFIED":
        return declared  # a class SCC added after this table: reported as it is
    source = string(finding.get("parentDisplayName")) or string(finding.get("sourceDisplayName"))
    if source in CLASS_BY_SOURCE:
        return CLASS_BY_SOURCE[source]
    if string(inner(inner(finding, "vulnerability"), "cve").get("id")):
        return VULNERABILITY
    category = string(finding.get("category")) or ""
    if _SHA_CATEGORY.match(category):
        return MISCONFIGURATION
    if ": " in category:
        return THREAT
    return declared or "FINDING_CLASS_UNSPECIFIED"


def normalize(
    doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
) -> ocsf.Finding | Skip | HealthSignal:
    """Return the OCSF finding for one SCC document, or a Skip for SCC's own error findings.

    `received_time` (epoch ms, e.g. the Pub/Sub publish time) stands in only when the finding's
    own times are unset (protobuf writes 1970-01-01 for an unset timestamp).

    Raises:
        MalformedEventError: the document is not an SCC finding in any shape SCC publishes.
    """
    candidate: object = doc  # callers pass whatever JSON they decoded
    if not isinstance(candidate, dict):
        raise MalformedEventError("SCC document is not a JSON object")
    raw, own_resource, extra = _split(candidate)
    finding = raw if _SNAKE.isdisjoint(raw) else camel(raw)  # `camel(raw)`, without the call: nearly always
    name = finding.get("name")
    if not (isinstance(name, str) and name):
        raise MalformedEventError("SCC finding has no name")
    scc_class = finding_class(finding)
    if scc_class == SCC_ERROR:
        return Skip("SCC_ERROR finding, not a security finding")
    # Some exports nest the resource inside the finding (with snake_case keys); it then stays there.
    if own_resource is not None:
        resource = own_resource if _SNAKE.isdisjoint(own_resource) else camel(own_resource)
    else:
        resource = inner(finding, "resource")
    return _finding.finding(finding, (raw, own_resource), resource, extra, scc_class, delivery_id, received_time)
