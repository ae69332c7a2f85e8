"""The `cloud` object of an SCC finding: the cloud, account and region of the *affected resource*.

SCC Enterprise also reports AWS and Azure resources (`resource.cloudProvider`), so `cloud` follows
the resource, not the Google organization that reported it (the organization stays in `unmapped`
through the finding name).

GCP identity: `cloud.account.uid` is the project **id** (`my-project`), which SCC calls
`projectDisplayName`; the project **number** goes to `cloud.project_uid`. When only the number is
known (older notifications without `resource`), the number is the account uid. Findings on an
organization or folder (no project at all) use `organizations/N` or `folders/N` as the account uid,
with account type Other, so that the identity triple stays non-empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf
from corral.errors import MalformedEventError
from corral.sources.scc._read import compact, field, mapping, mappings, text

PROVIDERS: Final = {
    "GOOGLE_CLOUD_PLATFORM": "GCP",
    "AMAZON_WEB_SERVICES": "AWS",
    "MICROSOFT_AZURE": "Azure",
}

_PROJECT_IN_NAME: Final = re.compile(r"(?:^|/)projects/([^/]+)")
_ORG_IN_NAME: Final = re.compile(r"(?:^|/)organizations/([^/]+)")
_FOLDER_IN_NAME: Final = re.compile(r"(?:^|/)folders/([^/]+)")
_LOCATION_IN_NAME: Final = re.compile(r"/(?:locations|regions|zones)/([^/]+)")
_ZONE_IN_NAME: Final = re.compile(r"/zones/([^/]+)")
# GCP zones are their region plus a letter: us-central1-a is in us-central1.
_ZONE: Final = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
_AWS_ACCOUNT_IN_ARN: Final = re.compile(r"^arn:aws[a-z-]*:[^:]*:[^:]*:(\d{12}):")
_AZURE_SUBSCRIPTION: Final = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})", re.IGNORECASE)


def _project_segment(name: str | None) -> str | None:
    match = _PROJECT_IN_NAME.search(name or "")
    return match.group(1) if match else None


def _org_number(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    for candidate in (
        text(mapping(resource, "gcpMetadata"), "organization"),
        text(resource, "resourcePathString"),
        text(finding, "name"),
        text(finding, "parent"),
    ):
        match = _ORG_IN_NAME.search(candidate or "")
        if match:
            return match.group(1)
    return None


def project_ids(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return (project id, project number) of the affected resource, each None when unknown.

    The id comes from `projectDisplayName` (v1 `resource`, v2 `resource.gcpMetadata`), else from a
    `projects/<id>/` segment of the resource name that is not all digits, else from the Security
    Health Analytics `ProjectId` source property of older findings. The number comes from
    `resource.project` / `projectName` / `gcpMetadata.project`, else from a numeric `projects/N`
    segment of the resource name or the canonical finding name.
    """
    gcp = mapping(resource, "gcpMetadata")
    resource_name = text(finding, "resourceName") or text(resource, "name")
    project_id = text(gcp, "projectDisplayName") or text(resource, "projectDisplayName")
    if project_id is None:
        segment = _project_segment(resource_name)
        if segment and not segment.isdigit():
            project_id = segment
    if project_id is None:
        properties = field(finding, "sourceProperties")
        project_id = text(properties, "ProjectId") if isinstance(properties, dict) else None
    number = None
    for candidate in (
        text(gcp, "project"),
        text(resource, "project"),
        text(resource, "projectName"),
        resource_name,
        text(finding, "canonicalName"),
    ):
        segment = _project_segment(candidate)
        if segment and segment.isdigit():
            number = segment
            break
    return project_id, number


def _region(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    name = text(finding, "resourceName") or text(resource, "name") or ""
    zone_match = _ZONE_IN_NAME.search(name)
    zone = zone_match.group(1) if zone_match else None
    location = text(resource, "location")
    if location is None:
        match = _LOCATION_IN_NAME.search(name)
        location = match.group(1) if match else None
    zonal = _ZONE.match(location or "")
    if zonal:
        return zonal.group(1), zone or location
    return location, zone


def _gcp(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    project_id, number = project_ids(finding, resource)
    org = _org_number(finding, resource)
    region, zone = _region(finding, resource)
    folders = mappings(mapping(resource, "gcpMetadata"), "folders") or mappings(resource, "folders")
    deepest = folders[0] if folders else {}
    folder_match = _FOLDER_IN_NAME.search(text(deepest, "resourceFolder") or "")
    organization = compact(
        {
            "uid": org,
            "ou_uid": folder_match.group(1) if folder_match else None,
            "ou_name": text(deepest, "resourceFolderDisplayName"),
        }
    )
    account_uid = project_id or number
    if account_uid:
        obj = ocsf.cloud("GCP", account_uid, region)
    else:
        # An organization- or folder-level resource: no project to name.
        resource_name = text(finding, "resourceName") or text(resource, "name") or ""
        folder = _FOLDER_IN_NAME.search(resource_name)
        holder = f"folders/{folder.group(1)}" if folder else (f"organizations/{org}" if org else None)
        if holder is None:
            raise MalformedEventError("SCC finding names no project, folder or organization")
        obj = {"provider": "GCP", "account": {"uid": holder, "type_id": 99, "type": "Other"}}
        if region:
            obj["region"] = region
    if number:
        obj["project_uid"] = number
    if zone:
        obj["zone"] = zone
    if organization.get("uid") or organization.get("name"):
        obj["org"] = organization
    return obj


_NO_AWS_ACCOUNT: Final = "SCC finding on an AWS resource names no AWS account"
_NO_SUBSCRIPTION: Final = "SCC finding on an Azure resource names no subscription"


def _account(
    given: str | None, in_name: re.Pattern[str], finding: Mapping[str, Any], resource: Mapping[str, Any], missing: str
) -> str:
    """The account SCC names for a resource in another cloud, else the one in the resource's name."""
    if given is None:
        match = in_name.search(text(finding, "resourceName") or text(resource, "name") or "")
        given = match.group(1) if match else None
    if given is None:
        raise MalformedEventError(missing)
    return given


def _aws(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    meta = mapping(resource, "awsMetadata")
    account = mapping(meta, "account")
    uid = _account(text(account, "id"), _AWS_ACCOUNT_IN_ARN, finding, resource, _NO_AWS_ACCOUNT)
    units = mappings(meta, "organizationalUnits")
    org = compact(
        {
            "uid": text(mapping(meta, "organization"), "id"),
            "ou_uid": text(units[0], "id") if units else None,
            "ou_name": text(units[0], "name") if units else None,
        }
    )
    obj = ocsf.cloud("AWS", uid, text(resource, "location"), name=text(account, "name"))
    if org.get("uid"):
        obj["org"] = org
    return obj


def _azure(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    meta = mapping(resource, "azureMetadata")
    subscription = mapping(meta, "subscription")
    uid = _account(text(subscription, "id"), _AZURE_SUBSCRIPTION, finding, resource, _NO_SUBSCRIPTION)
    tenant = mapping(meta, "tenant")
    obj = ocsf.cloud("Azure", uid, text(resource, "location"), name=text(subscription, "displayName"))
    org = compact({"uid": text(tenant, "id"), "name": text(tenant, "displayName")})
    if org:
        obj["org"] = org
    return obj


def provider(resource: Mapping[str, Any]) -> str:
    """Return the OCSF provider of the affected resource; GCP unless SCC says otherwise."""
    return PROVIDERS.get(text(resource, "cloudProvider") or "", "GCP")


def cloud(finding: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    """Return the OCSF `cloud` object of the affected resource."""
    kind = provider(resource)
    if kind == "AWS":
        return _aws(finding, resource)
    if kind == "Azure":
        return _azure(finding, resource)
    return _gcp(finding, resource)
