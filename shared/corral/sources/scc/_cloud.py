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
from typing import Any, Final

from corral import ocsf
from corral.errors import MalformedEventError
from corral.sources.scc._spelling import _SNAKE, EMPTY, camel, inner, objects, string

PROVIDERS: Final = {
    "GOOGLE_CLOUD_PLATFORM": "GCP",
    "AMAZON_WEB_SERVICES": "AWS",
    "MICROSOFT_AZURE": "Azure",
}

_LOCATION_IN_NAME: Final = re.compile(r"/(?:locations|regions|zones)/([^/]+)")
_ZONE_IN_NAME: Final = re.compile(r"/zones/([^/]+)")
# GCP zones are their region plus a letter: us-central1-a is in us-central1.
_ZONE: Final = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
_AWS_ACCOUNT_IN_ARN: Final = re.compile(r"^arn:aws[a-z-]*:[^:]*:[^:]*:(\d{12}):")
_AZURE_SUBSCRIPTION: Final = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})", re.IGNORECASE)
_AWS_TYPE: Final = ocsf.ACCOUNT_TYPES["AWS"]
_AZURE_TYPE: Final = ocsf.ACCOUNT_TYPES["Azure"]
_GCP_TYPE_ID, _GCP_TYPE_NAME = ocsf.ACCOUNT_TYPES["GCP"]


def _segment(name: str, marker: str) -> str | None:
    """Return the path segment after `marker` (`projects/`) where it starts `name` or follows a slash.

    What `re.search(r"(?:^|/)projects/([^/]+)", name)` finds, without trying the pattern at every
    character (which costs several microseconds on a resource name without the marker).
    """
    head, found, tail = name.partition(marker)
    if found and (not head or head[-1] == "/"):  # the usual case: the first one is the one
        segment = tail.partition("/")[0]
        if segment:
            return segment
    at = name.find(marker, len(head) + 1) if found else -1
    while at != -1:
        if at == 0 or name[at - 1] == "/":
            start = at + len(marker)
            end = name.find("/", start)
            segment = name[start:] if end == -1 else name[start:end]
            if segment:
                return segment
        at = name.find(marker, at + 1)
    return None


def _org_number(finding: dict[str, Any], resource: dict[str, Any]) -> str | None:
    """The organization number in the resource path or the finding's names (without one in `gcpMetadata`)."""
    for candidate in (
        resource.get("resourcePathString"),
        finding.get("name"),
        finding.get("parent"),
    ):
        if (
            isinstance(candidate, str)
            and "organizations/" in candidate
            and (number := _segment(candidate, "organizations/"))
        ):
            return number
    return None


def _project_ids(
    finding: dict[str, Any], resource: dict[str, Any], gcp: dict[str, Any], resource_name: str
) -> tuple[str | None, str | None]:
    """Return (project id, project number) of the affected resource, each None when unknown.

    The id comes from `projectDisplayName` (v1 `resource`, v2 `resource.gcpMetadata`), else from a
    `projects/<id>/` segment of the resource name that is not all digits, else from the Security
    Health Analytics `ProjectId` source property of older findings. The number comes from
    `resource.project` / `projectName` / `gcpMetadata.project`, else from a numeric `projects/N`
    segment of the resource name or the canonical finding name.
    """
    project_id = gcp.get("projectDisplayName") if gcp else None
    if not (isinstance(project_id, str) and project_id):
        project_id = resource.get("projectDisplayName")
        if not (isinstance(project_id, str) and project_id):
            project_id = None
    if project_id is None:
        segment = _segment(resource_name, "projects/")
        if segment and not segment.isdigit():
            project_id = segment
    if project_id is None:
        properties = finding.get("sourceProperties")
        project_id = string(camel(properties).get("ProjectId")) if isinstance(properties, dict) else None
    first = gcp.get("project") if gcp else None
    if isinstance(first, str) and "projects/" in first:
        segment = _segment(first, "projects/")
        if segment and segment.isdigit():
            return project_id, segment
    for candidate in (
        resource.get("project"),
        resource.get("projectName"),
        resource_name,
        finding.get("canonicalName"),
    ):
        if isinstance(candidate, str) and "projects/" in candidate:
            segment = _segment(candidate, "projects/")
            if segment and segment.isdigit():
                return project_id, segment
    return project_id, None


def region_and_zone(location: str | None, resource_name: str) -> tuple[str | None, str | None]:
    """Split a GCP location into (region, zone), as `cloud.region` and `cloud.zone` want them.

    A zone has a letter after its last dash (us-central1-a) and lies in its region (us-central1); a
    region has digits (europe-west1). A zone the resource name states (`/zones/<zone>/`) is the zone.
    Used for the top-level `cloud` and for each GCP `resources[]` entry alike.
    """
    zone_match = _ZONE_IN_NAME.search(resource_name) if "/zones/" in resource_name else None
    zone = zone_match.group(1) if zone_match else None
    if location and location[-1].isalpha():
        region = _ZONE_REGIONS.get(location)
        if region is None:
            region = _zone_region(location)
        if region:
            return region, zone or location
    return location, zone


# The region of each zone-shaped location met ("" for one that is not a zone): a deployment sees a
# few dozen locations, so each is matched once rather than for every finding and resource. Bounded.
_ZONE_REGIONS: Final[dict[str, str]] = {}
_MAX_ZONE_REGIONS: Final = 1024


def _zone_region(location: str) -> str:
    zonal = _ZONE.match(location)
    region = zonal.group(1) if zonal else ""
    if len(_ZONE_REGIONS) < _MAX_ZONE_REGIONS:
        _ZONE_REGIONS[location] = region
    return region


def _gcp(finding: dict[str, Any], resource: dict[str, Any], resource_name: str) -> tuple[dict[str, Any], str | None]:
    gcp = resource.get("gcpMetadata")  # `inner(resource, "gcpMetadata")`, inlined
    if not isinstance(gcp, dict):
        gcp = EMPTY
    elif not _SNAKE.isdisjoint(gcp):
        gcp = camel(gcp)
    project_id, number = _project_ids(finding, resource, gcp, resource_name)
    # `_org_number`, with its usual case (v2 findings name it in `gcpMetadata`) first.
    org = gcp.get("organization") if gcp else None
    if not (isinstance(org, str) and "organizations/" in org and (org := _segment(org, "organizations/"))):
        org = _org_number(finding, resource)
    # `_region`, inlined: SCC nearly always states the location.
    location = resource.get("location")
    if not (isinstance(location, str) and location):
        match = _LOCATION_IN_NAME.search(resource_name)
        location = match.group(1) if match else None
    region, zone = region_and_zone(location, resource_name)
    account_uid = project_id or number
    if account_uid:
        obj: dict[str, Any] = {
            "provider": "GCP",
            "account": {"uid": account_uid, "type_id": _GCP_TYPE_ID, "type": _GCP_TYPE_NAME},
        }
    else:
        # An organization- or folder-level resource: no project to name.
        folder = _segment(resource_name, "folders/")
        holder = f"folders/{folder}" if folder else (f"organizations/{org}" if org else None)
        if holder is None:
            raise MalformedEventError("SCC finding names no project, folder or organization")
        obj = {"provider": "GCP", "account": {"uid": holder, "type_id": 99, "type": "Other"}}
    if region:
        obj["region"] = region
    if number:
        obj["project_uid"] = number
    if zone:
        obj["zone"] = zone
    if org:
        _organization(obj, org, gcp, resource)
    return obj, project_id


def _organization(obj: dict[str, Any], org: str, gcp: dict[str, Any], resource: dict[str, Any]) -> None:
    """Add `org` (the organization number) with the finding's deepest folder, as `cloud.org`."""
    organization = {"uid": org}
    deepest = (_first_object(gcp.get("folders")) if gcp else None) or _first_object(resource.get("folders"))
    if deepest is not None:
        # Each key as `camel()` would give it: the camelCase spelling when sent, else the snake_case one.
        path = deepest["resourceFolder"] if "resourceFolder" in deepest else deepest.get("resource_folder")
        if isinstance(path, str) and (ou_uid := _segment(path, "folders/")):
            organization["ou_uid"] = ou_uid
        ou_name = (
            deepest["resourceFolderDisplayName"]
            if "resourceFolderDisplayName" in deepest
            else deepest.get("resource_folder_display_name")
        )
        if isinstance(ou_name, str) and ou_name:
            organization["ou_name"] = ou_name
    obj["org"] = organization


def _first_object(value: object) -> dict[str, Any] | None:
    """The first object in a list (the deepest folder SCC lists), else None."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                return item
    return None


def _account(given: object, in_name: re.Pattern[str], resource_name: str, missing: str) -> str:
    """The account SCC names for a resource in another cloud, else the one in the resource's name."""
    if isinstance(given, str) and given:
        return given
    match = in_name.search(resource_name)
    if match is None:
        raise MalformedEventError(missing)
    return match.group(1)


def _other(
    provider: str, uid: str, kind: tuple[int, str], name: object, region: object, org: dict[str, Any] | None
) -> dict[str, Any]:
    account = {"uid": uid, "type_id": kind[0], "type": kind[1]}
    if isinstance(name, str) and name:
        account["name"] = name
    obj: dict[str, Any] = {"provider": provider, "account": account}
    if isinstance(region, str) and region:
        obj["region"] = region
    if org:
        obj["org"] = org
    return obj


def _aws(resource: dict[str, Any], resource_name: str) -> dict[str, Any]:
    meta = inner(resource, "awsMetadata")
    account = inner(meta, "account")
    uid = _account(account.get("id"), _AWS_ACCOUNT_IN_ARN, resource_name, _NO_AWS_ACCOUNT)
    org: dict[str, Any] | None = None
    if org_uid := string(inner(meta, "organization").get("id")):
        org = {"uid": org_uid}
        units = objects(meta, "organizationalUnits")
        if units and (ou_uid := string(units[0].get("id"))):
            org["ou_uid"] = ou_uid
        if units and (ou_name := string(units[0].get("name"))):
            org["ou_name"] = ou_name
    return _other("AWS", uid, _AWS_TYPE, account.get("name"), resource.get("location"), org)


def _azure(resource: dict[str, Any], resource_name: str) -> dict[str, Any]:
    meta = inner(resource, "azureMetadata")
    subscription = inner(meta, "subscription")
    uid = _account(subscription.get("id"), _AZURE_SUBSCRIPTION, resource_name, _NO_SUBSCRIPTION)
    tenant = inner(meta, "tenant")
    org = {}
    if tenant_id := string(tenant.get("id")):
        org["uid"] = tenant_id
    if tenant_name := string(tenant.get("displayName")):
        org["name"] = tenant_name
    return _other("Azure", uid, _AZURE_TYPE, subscription.get("displayName"), resource.get("location"), org)


_NO_AWS_ACCOUNT: Final = "SCC finding on an AWS resource names no AWS account"
_NO_SUBSCRIPTION: Final = "SCC finding on an Azure resource names no subscription"


def provider(resource: dict[str, Any]) -> str:
    """Return the OCSF provider of the affected resource; GCP unless SCC says otherwise."""
    name = resource.get("cloudProvider")
    return PROVIDERS.get(name, "GCP") if isinstance(name, str) else "GCP"


def cloud(
    finding: dict[str, Any], resource: dict[str, Any], resource_name: str, kind: str
) -> tuple[dict[str, Any], str | None]:
    """Return the OCSF `cloud` of the affected resource in cloud `kind`, and its GCP project id (else None).

    `finding` and `resource` are as `camel()` spells them; `resource_name` is the affected
    resource's full name ("" when SCC names none).
    """
    if kind == "AWS":
        return _aws(resource, resource_name), None
    if kind == "Azure":
        return _azure(resource, resource_name), None
    return _gcp(finding, resource, resource_name)
