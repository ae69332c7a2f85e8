"""One Amazon Inspector (v2) finding, as EventBridge's `detail` or an item of ListFindings, to OCSF.

- **Class**: PACKAGE_VULNERABILITY and CODE_VULNERABILITY → Vulnerability Finding 2002;
  NETWORK_REACHABILITY (an open path, not a flaw in software) → Detection Finding 2004.
- **Identity**: `findingArn`, under the member account `awsAccountId` (a delegated administrator
  receives its members' findings under its own envelope account).
- **Lifecycle**: status ACTIVE → New, SUPPRESSED → Suppressed, CLOSED → Resolved with activity
  Close; otherwise Create while `updatedAt` is still `firstObservedAt`, then Update.
- **Resources**: an ECR image becomes a "Container Image" resource whose uid is the image digest
  (the one image shape of every source), with its repository, tags, `inUseCount` and `lastInUseAt`;
  an EC2 instance keeps its tags, and the EKS or ECS cluster its tags name becomes a resource too.
"""

from __future__ import annotations

from typing import Any, Final

from corral import ocsf, traits
from corral.errors import MalformedEventError
from corral.sources._core import images
from corral.sources._core.reader import Fields
from corral.sources.inspector._facts import SOURCE

_SEVERITIES: Final = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5, "UNTRIAGED": 0}
_STATUSES: Final = {"ACTIVE": ocsf.STATUS_NEW, "SUPPRESSED": ocsf.STATUS_SUPPRESSED, "CLOSED": ocsf.STATUS_RESOLVED}
_DETECTION_TYPES: Final = frozenset({"NETWORK_REACHABILITY"})
# Tags AWS puts on EKS nodes and ECS container instances, naming their cluster.
_CLUSTER_TAGS: Final = (
    ("eks:cluster-name", "AWS::EKS::Cluster", traits.EKS),
    ("aws:eks:cluster-name", "AWS::EKS::Cluster", traits.EKS),
    ("aws:ecs:clusterName", "AWS::ECS::Cluster", traits.ECS_EC2),
)
_ECR_HOSTS: Final = {"aws-cn": "amazonaws.com.cn"}
_CONSOLE: Final = "https://{region}.console.aws.amazon.com/inspector/v2/home?region={region}#/findings/all?findingArn="
_MAX_ITEMS: Final = 100


def finding(doc: dict[str, Any], delivery_id: str | None) -> ocsf.Finding:
    """Return the OCSF finding of one Inspector finding."""
    fields = Fields(doc, {})
    arn = _required(fields.text("findingArn"), "Inspector finding has no findingArn")
    account = _required(fields.text("awsAccountId"), "Inspector finding has no awsAccountId")
    kind = fields.text("type") or "UNKNOWN"
    first = fields.time("firstObservedAt", "Inspector finding firstObservedAt")
    updated = fields.time("updatedAt", "Inspector finding updatedAt")
    last = fields.time("lastObservedAt", "Inspector finding lastObservedAt")
    modified = updated or last or first
    if modified is None:
        raise MalformedEventError("Inspector finding has no updatedAt")
    status_word = fields.peek_text("status") or ""
    status = _STATUSES.get(status_word, 99)
    if status != 99:
        fields.mark("status")
    activity = ocsf.CLOSE if status == ocsf.STATUS_RESOLVED else ocsf.CREATE if modified == first else ocsf.UPDATE
    severity_word = fields.peek_text("severity")
    severity_id = _SEVERITIES.get(severity_word or "", 99 if severity_word else 0)
    if severity_id != 99:
        fields.mark("severity")
    resources, service, layer = _resources(fields)
    class_uid = ocsf.DETECTION if kind in _DETECTION_TYPES else ocsf.VULNERABILITY
    task = traits.HARDENING if class_uid == ocsf.DETECTION else traits.VULNERABILITY_MANAGEMENT
    out = ocsf.envelope(
        class_uid=class_uid,
        activity_id=activity,
        time=modified,
        severity_id=severity_id,
        vendor_severity=severity_word,
        status_id=status,
        product={"name": "Inspector", "vendor_name": "AWS", "uid": SOURCE},
        delivery_id=delivery_id,
        log_name="Inspector2 Finding",
    )
    if status == 99:
        out["status"] = status_word or "Other"
    title = fields.text("title")
    if title:
        out["message"] = title
    info = _info(fields, arn, kind, title, first, modified, last)
    info["traits"] = traits.classify(service, layer, task)
    out["finding_info"] = info
    region = resources[0].get("region") if resources else None
    out["cloud"] = ocsf.cloud("AWS", account, region or _arn_region(arn))
    if resources:
        out["resources"] = resources
    if class_uid == ocsf.VULNERABILITY:
        out["vulnerabilities"] = [_vulnerability(fields, first, last)]
    elif (desc := fields.at("remediation", "recommendation").text("text")) is not None:
        out["remediation"] = {"desc": desc}
    unmapped = fields.rest()
    if unmapped:
        out["unmapped"] = unmapped
    return out


def _info(
    fields: Fields, arn: str, kind: str, title: str | None, first: int | None, modified: int, last: int | None
) -> dict[str, Any]:
    info: dict[str, Any] = {"uid": arn, "types": [kind], "modified_time": modified}
    if title:
        info["title"] = title
    if desc := fields.text("description"):
        info["desc"] = desc
    if first is not None:
        info["created_time"] = info["first_seen_time"] = first
    if last is not None:
        info["last_seen_time"] = last
    region = _arn_region(arn)
    if region:
        info["src_url"] = _CONSOLE.format(region=region) + arn
    return info


def _vulnerability(fields: Fields, first: int | None, last: int | None) -> dict[str, Any]:
    present = fields.doc
    details = fields.at("packageVulnerabilityDetails")
    uid = details.text("vulnerabilityId")
    vuln: dict[str, Any] = {}
    if uid and uid.startswith("CVE-"):
        cve: dict[str, Any] = {"uid": uid}
        scores = [_cvss(item) for item in details.objects("cvss", limit=_MAX_ITEMS)]
        if scores := [s for s in scores if s]:
            cve["cvss"] = scores
        if "epss" in present and (epss := fields.at("epss").number("score")) is not None:
            cve["epss"] = {"score": str(epss)}
        vuln["cve"] = cve
    elif uid:
        vuln["advisory"] = {"uid": uid}
    code = fields.at("codeVulnerabilityDetails") if "codeVulnerabilityDetails" in present else None
    if code is not None and (cwes := code.texts("cwes", limit=_MAX_ITEMS)):
        vuln["cwe"] = {"uid": cwes[0]}
    if title := fields.peek_text("title"):
        vuln["title"] = title
    if desc := fields.peek_text("description"):
        vuln["desc"] = desc
    if severity := details.text("vendorSeverity"):
        vuln["severity"] = severity
    if vendor := details.text("source"):
        vuln["vendor_name"] = vendor
    references = details.texts("referenceUrls", limit=_MAX_ITEMS)
    if source_url := details.text("sourceUrl"):
        references = [source_url, *(r for r in references if r != source_url)]
    if references:
        vuln["references"] = references
    packages = [p for p in map(_package, details.objects("vulnerablePackages", limit=_MAX_ITEMS)) if p]
    if packages:
        vuln["affected_packages"] = packages
    _flags(fields, vuln)
    if first is not None:
        vuln["first_seen_time"] = first
    if last is not None:
        vuln["last_seen_time"] = last
    if "remediation" in present and (desc := fields.at("remediation", "recommendation").text("text")):
        vuln["remediation"] = {"desc": desc}
    return vuln


def _flags(fields: Fields, vuln: dict[str, Any]) -> None:
    fix = fields.peek_text("fixAvailable")
    if fix in ("YES", "NO", "PARTIAL"):
        fields.mark("fixAvailable")
        # PARTIAL: some of the vulnerable packages have a fix; the finding can be acted on.
        vuln["is_fix_available"] = vuln["fix_available"] = fix != "NO"
    exploit = fields.peek_text("exploitAvailable")
    if exploit in ("YES", "NO"):
        fields.mark("exploitAvailable")
        vuln["is_exploit_available"] = exploit == "YES"
    if "exploitabilityDetails" not in fields.doc:  # most findings: no view of nothing to make
        return
    if (known := fields.at("exploitabilityDetails").optional_time("lastKnownExploitAt")) is not None:
        vuln["exploit_last_seen_time"] = known


def _cvss(item: Fields) -> dict[str, Any] | None:
    score, version = item.number("baseScore"), item.text("version")
    if score is None or version is None:
        return None
    cvss: dict[str, Any] = {"base_score": score, "version": version}
    if vector := item.text("scoringVector"):
        cvss["vector_string"] = vector
    return cvss


def _package(item: Fields) -> dict[str, Any] | None:
    name, version = item.text("name"), item.text("version")
    if not name or not version:
        return None
    package: dict[str, Any] = {"name": name, "version": version}
    for key, target in (
        ("arch", "architecture"),
        ("release", "release"),
        ("packageManager", "package_manager"),
        ("fixedInVersion", "fixed_in_version"),
        ("filePath", "path"),
        ("remediation", "remediation"),
    ):
        if value := item.text(key):
            package[target] = {"desc": value} if target == "remediation" else value
    epoch = item.integer("epoch")
    if epoch is not None:
        package["epoch"] = epoch
    return package


def _resources(fields: Fields) -> tuple[list[dict[str, Any]], str, str]:
    """Return the finding's resources and its (container service, layer)."""
    found: list[dict[str, Any]] = []
    service, layer = traits.NO_SERVICE, traits.INFRASTRUCTURE
    for item in fields.objects("resources", limit=_MAX_ITEMS):
        details = item.at("details")
        image = details.at("awsEcrContainerImage")
        if image.exists:
            found.append(_image(item, image))
            layer = traits.APPLICATION
        elif (instance := details.at("awsEc2Instance")).exists:
            resource, cluster, node_service = _instance(item, instance)
            found.append(resource)
            if cluster:
                found.append(cluster)
                service = node_service
        elif uid := item.text("id"):
            found.append({"uid": uid, "type": item.text("type"), **_placement(item)})
    return found, service, layer


def _image(item: Fields, image: Fields) -> dict[str, Any]:
    region, partition = item.peek_text("region"), item.peek_text("partition")
    registry, repository = image.text("registry"), image.text("repositoryName")
    reference = None
    if registry and repository:
        host = _ECR_HOSTS.get(partition or "aws", "amazonaws.com")
        reference = f"{registry}.dkr.ecr.{region}.{host}/{repository}" if region else f"{registry}/{repository}"
    tags = image.texts("imageTags", limit=_MAX_ITEMS)
    shape = images.image(reference, image.text("imageHash"), tags[0] if tags else None) or {}
    resource: dict[str, Any] = {"uid": shape.get("uid") or item.text("id"), "type": "Container Image", "role_id": 1}
    if "name" in shape:
        resource["name"] = shape["name"]
    if tags:
        resource["labels"] = [f"tag={tag}" for tag in tags]
    data: dict[str, Any] = {"resource_id": item.text("id"), "repository": repository, "registry": registry}
    if (count := image.integer("inUseCount")) is not None:
        data["in_use_count"] = count
    for key, target in (("lastInUseAt", "last_in_use_at"), ("pushedAt", "pushed_at")):
        if (when := image.optional_time(key)) is not None:
            data[target] = when
    for key in ("architecture", "platform", "author"):
        if value := image.text(key):
            data[key] = value
    resource["data"] = {k: v for k, v in data.items() if v is not None}
    resource.update(_placement(item))
    return resource


def _instance(item: Fields, instance: Fields) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    resource: dict[str, Any] = {"uid": item.text("id"), "type": "AWS::EC2::Instance", "role_id": 1}
    resource.update(_placement(item))
    tags = item.raw("tags")
    tags = tags if isinstance(tags, dict) else {}
    pairs = [{"name": k, "value": v} for k, v in list(tags.items())[:_MAX_ITEMS] if isinstance(v, str) and v]
    if pairs:
        resource["tags"] = pairs
        if len(pairs) == len(tags):
            item.mark("tags")
    names = (("imageId", "image_id"), ("type", "instance_type"), ("platform", "platform"))
    data = {target: value for key, target in names if (value := instance.text(key))}
    if data:
        resource["data"] = data
    for key, cluster_type, service in _CLUSTER_TAGS:
        name = tags.get(key)
        if isinstance(name, str) and name:
            cluster = {"name": name, "type": cluster_type, "role_id": 4, "role": "Related", **_placement(item)}
            return resource, cluster, service
    return resource, None, traits.NO_SERVICE


def _placement(item: Fields) -> dict[str, Any]:
    placed = {}
    if region := item.text("region"):
        placed["region"] = region
    if partition := item.text("partition"):
        placed["cloud_partition"] = partition
    return placed


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def _required(value: str | None, reason: str) -> str:
    if value is None:
        raise MalformedEventError(reason)
    return value
