"""What every Defender record kind shares: product, severity, times, ARM ids, cloud, images."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf
from corral.errors import MalformedEventError
from corral.records import NamedTuple
from corral.sources._core import images, times
from corral.sources._core.folded import text
from corral.sources.defender._records import Details

PRODUCT_UID: Final = "microsoft.defender_for_cloud"
PRODUCT_NAME: Final = "Microsoft Defender for Cloud"
VENDOR: Final = "Microsoft"

# Defender alerts and recommendations say Informational/Low/Medium/High; MDVM vulnerability
# details and Exposure-Management attack paths add Critical. "Unknown" is what unscanned
# sub-assessments send, and it means exactly OCSF's 0.
SEVERITIES: Final = {
    "unknown": 0,
    "informational": 1,
    "low": 2,
    "medium": 3,
    "moderate": 3,
    "high": 4,
    "critical": 5,
}

_SUBSCRIPTION: Final = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)
_LOCATION: Final = re.compile(r"/locations?/([^/?#]+)", re.IGNORECASE)
_DIGEST: Final = re.compile(r"^[A-Za-z0-9_+.-]+:[0-9a-fA-F]{32,}$")

AKS_TYPE: Final = "microsoft.containerservice/managedclusters"

# What is read from an ARM id is the same every time the id comes back, and a subscription
# sends the same few thousand ids in every export: each is parsed once (the functions are pure
# and return immutable values).
_by_id: Final = functools.lru_cache(maxsize=8192)  # also for image references, which repeat as much


def product(feature: str | None = None) -> dict[str, Any]:
    """Return `metadata.product`, with the Defender plan (e.g. "Containers") as feature."""
    found: dict[str, Any] = {"uid": PRODUCT_UID, "name": PRODUCT_NAME, "vendor_name": VENDOR}
    if feature:
        found["feature"] = {"name": feature}
    return found


def envelope(
    class_uid: int,
    *,
    log_name: str,
    activity_id: int,
    time: int,
    severity_id: int,
    vendor_severity: object,
    status_id: int,
    status_word: str | None,
    delivery_id: str | None,
    tenant: str | None,
    feature: str | None = None,
) -> dict[str, Any]:
    """The OCSF envelope every Defender record kind starts from.

    `status_word` is Defender's own word, shown as `status` when it has no OCSF equivalent (99).
    """
    finding = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity_id,
        time=time,
        severity_id=severity_id,
        vendor_severity=vendor_severity,
        status_id=status_id,
        product=product(feature),
        delivery_id=delivery_id,
        log_name=log_name,
    )
    if status_word:
        finding["status"] = status_word
    if tenant:
        finding["metadata"]["tenant_uid"] = tenant
    return finding


def severity_id(value: object) -> int:
    """Return the OCSF severity id for a Defender severity word: 0 when absent, 99 when unknown."""
    if value is None or value == "":
        return 0
    if not isinstance(value, str):
        return 99
    return SEVERITIES.get(value.strip().lower(), 99)


def require_time(candidates: list[int | None], received_time: int | None, what: str) -> int:
    """Return the first known time, else the delivery's receive time, else raise."""
    for value in candidates:
        if value is not None:
            return value
    if received_time is not None:
        return times.epoch_ms(received_time, "received_time")
    raise MalformedEventError(f"{what} carries no time of its own and no received_time was given")


@_by_id
def subscription(resource_id: str | None) -> str | None:
    """Return the subscription id named in an ARM resource id."""
    if not resource_id:
        return None
    match = _SUBSCRIPTION.search(resource_id)
    return match.group(1) if match else None


@_by_id
def location(text: str | None) -> str | None:
    """Return the Azure region named in an ARM id (`/locations/x/`) or alert link (`/location/x`)."""
    if not text:
        return None
    match = _LOCATION.search(text)
    return match.group(1).lower() if match else None


@_by_id
def arm_type(resource_id: str | None) -> str | None:
    """Return the ARM type of the innermost resource, e.g. `Microsoft.Web/sites`.

    `/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/c`
    gives `Microsoft.ContainerService/managedClusters`; nested types are joined with `/`.
    """
    if not resource_id or not resource_id.startswith("/"):
        return None
    lowered = resource_id.lower()
    at = lowered.rfind("/providers/")
    if at < 0 or lowered.endswith("/providers"):
        parts = [p for p in lowered.split("/") if p]
        if "providers" in parts:  # only as the last segment: nothing follows the provider
            return None
        if len(parts) == 2 and parts[0] == "subscriptions":
            return "Microsoft.Resources/subscriptions"
        if len(parts) == 4 and parts[2] == "resourcegroups":
            return "Microsoft.Resources/resourceGroups"
        return None
    rest = [p for p in resource_id[at + len("/providers/") :].split("/") if p]
    if len(rest) < 2:
        return None
    return "/".join([rest[0], *rest[1::2]])


@_by_id
def last_segment(resource_id: str | None) -> str | None:
    """Return the last path segment of a resource id (the resource's name)."""
    if not resource_id:
        return None
    segment = resource_id.rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def arm_resource(resource_id: str, *, name: str | None = None, role_id: int | None = None) -> dict[str, Any]:
    """Return an OCSF resource for an ARM id: uid, name, ARM type, and role when given."""
    return compact(
        {
            "uid": resource_id,
            "name": name or last_segment(resource_id),
            "type": arm_type(resource_id),
            "role_id": role_id,
        }
    )


def azure_cloud(resource_id: str | None, region: str | None = None, fallback: str | None = None) -> dict[str, Any]:
    """Return the Azure `cloud` for the subscription in `resource_id` (or in `fallback`)."""
    account = subscription(resource_id) or subscription(fallback)
    if not account:
        raise MalformedEventError("id: no /subscriptions/<id> in the resource id")
    return ocsf.cloud("Azure", account, region)


class ImageRef(NamedTuple):
    """A container image reference split into registry/repository name, tag and digest."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def ocsf(self) -> dict[str, Any]:
        """Return the one OCSF `image` shape of every source (uid: the digest when known).

        Worked out once per reference (they repeat as ARM ids do); each call gets its own copy.
        """
        return _image_shape(self).copy()


@_by_id
def _image_shape(ref: ImageRef) -> dict[str, Any]:
    """`ImageRef.ocsf`, kept: never handed out itself, only copied."""
    name = None if ref.name == ref.digest else ref.name
    return images.image(name, ref.digest, ref.tag) or {"uid": ref.name}


@_by_id
def image_ref(text: str | None, digest: str | None = None) -> ImageRef | None:
    """Parse `registry/repo[:tag][@digest]`; a bare digest (`sha256:...`) gives a nameless ref."""
    if not text and not digest:
        return None
    reference, tag, found = images.split(text or "")
    digest = digest or found
    if not reference:
        if digest and _DIGEST.match(digest):
            return ImageRef(name=digest, digest=digest)
        return None
    return ImageRef(name=reference, tag=tag, digest=digest)


def remediation_text(value: object) -> str | None:
    """Join Defender remediation steps (a list, or one string) into one description."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        steps = [step for step in value if isinstance(step, str) and step]
        return "\n".join(steps) or None
    return None


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `obj` without the values its builder found absent: None, "", [] and {} (0 and False stay).

    Every object of a finding is built through this (or holds only values known present), so the
    finding needs no pruning pass: OCSF has no nulls. Callers hand over objects they just built:
    one with nothing absent (three in four) is returned itself rather than copied.
    """
    if all(obj.values()):  # one pass in C; a kept 0 or False only takes the loop below
        return obj
    # A copy less what goes, rather than a new dict of what stays: most of the object stays,
    # and a kept value then costs no store. A loop rather than a comprehension: one frame less.
    out = obj.copy()
    for key, value in obj.items():
        if not (value or value == 0):
            del out[key]
    return out


def finish(finding: dict[str, Any], unmapped: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what OCSF cannot identify and attach what was not mapped, as sent (nulls included)."""
    # A resource OCSF can identify needs a uid or a name; a record missing both for some
    # resource says nothing about it, so that resource is left out rather than emitted empty.
    resources = finding.get("resources")
    if resources is not None:
        resources = [r for r in resources if "uid" in r or "name" in r]
        if resources:
            finding["resources"] = resources
        else:
            del finding["resources"]
    info = finding.get("finding_info", {})
    analytic = info.get("analytic")
    if analytic is not None and "uid" not in analytic and "name" not in analytic:
        del info["analytic"]
    if unmapped:
        finding["unmapped"] = unmapped
    return finding


def https(link: str | None) -> str | None:
    """Return a portal link with a scheme (`links.azurePortal` is sent without one)."""
    if not link:
        return None
    if link.lower().startswith(("https://", "http://")):
        return link
    return "https://" + link.lstrip("/")


_ASSESSMENT_KEY = re.compile(
    r"/providers/Microsoft\.Security/assessments/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/|$)",
    re.I,
)


@_by_id
def recommendation_link(assessment_id: str | None) -> str | None:
    """Return the portal page of the recommendation an assessment id names, as Defender's own `links.azurePortal`.

    Sub-assessments, and assessments of AWS and GCP resources, arrive without a portal link; the
    recommendation's key (the GUID after `/assessments/`) is all that page needs.
    """
    found = _ASSESSMENT_KEY.search(assessment_id or "")
    if found is None:
        return None
    return (
        f"https://portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/{found.group(1)}"
    )


def resource_cloud(details: Details, fallback_id: str | None) -> tuple[dict[str, Any], str | None]:
    """Return (`cloud`, resource provider) for an assessment's `resourceDetails`.

    `cloud` describes the assessed resource: for `source` Aws or Gcp the AWS account or GCP
    project (from the details, or parsed from an ARN), and the Azure subscription of the
    connector only when neither is given, because the identity triple needs an account.
    """
    source = (text(details.source) or "Azure").strip().lower()
    resource_id = text(details.id)
    if source in ("aws", "gcp"):
        provider = "AWS" if source == "aws" else "GCP"
        native = text(details.native_resource_id) or resource_id or ""
        arn = native.split(":") if native.startswith("arn:") else []
        account = first_text(
            details.aws_account_id, details.account_id, details.gcp_project_id, details.project_id
        ) or (arn[4] if len(arn) > 5 and arn[4] else None)
        region = first_text(details.region, details.location) or (arn[3] if len(arn) > 5 and arn[3] else None)
        if account:
            return ocsf.cloud(provider, account, region), provider
    arm = resource_id if resource_id and resource_id.startswith("/") else None
    return azure_cloud(arm, None, fallback=text(details.native_resource_id) or fallback_id), "Azure"


def first_text(*values: object) -> str | None:
    """Return the first non-empty string among `values`."""
    for value in values:
        if value is not None and isinstance(value, str) and value:
            return value
    return None
