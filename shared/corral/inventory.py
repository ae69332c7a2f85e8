"""Image inventory: what one normalized finding says about container images (pure).

Every source already puts the image and its container context where OCSF has room for it; this
module reads them back as four kinds of observation:

- `ImageName`: a digest is known as `repository:tag` (any finding naming both: registry scans,
  runtime findings of pinned workloads);
- `Sighting`: an image was seen running, where (cloud, account, cluster or service, namespace,
  workload), by which finding, at which source time. A report without a digest keeps the image
  as `repository:tag`; the store resolves it through the names, as a *probable* match, and
  never merges it with evidence that named the digest;
- `Exposure`: a source says a workload is reachable from the internet (a Defender attack path,
  an SCC toxic combination or attack exposure naming the workload);
- `Vulnerable`: a Vulnerability Finding's image, severity, CVEs, exploit and fix availability.

Times are the source's own (epoch ms), never arrival: evidence only moves forward in source time,
so replaying old deliveries adds nothing newer than what is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, TypeGuard

from corral import ocsf
from corral.context import ContainerContext, container_context
from corral.records import NamedTuple

FindingKey = tuple[str, str, str]

DIGEST_PREFIX: Final = "sha256:"
DIGEST_LENGTH: Final = len(DIGEST_PREFIX) + 64
"""Digests are kept as `sha256:` and 64 lower-case hex digits."""

_DIGEST: Final = re.compile(r"(sha256:[0-9a-fA-F]{64})")
# Defender's security entity ids:
# …/managedClusters/<cluster>/securityentitydata/namespace-<ns>-pod-<pod>[-container-<c>]
_ENTITY: Final = re.compile(
    r"/managedclusters/(?P<cluster>[^/]+)/securityentitydata/namespace-(?P<ns>.+?)-pod-(?P<pod>.+?)(?:-container-.+)?$",
    re.IGNORECASE,
)
_WORKLOAD_KINDS: Final = ("deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "workload")
# One search instead of a loop over the kinds: every resource of every finding passes here.
_WORKLOAD: Final = re.compile("|".join(_WORKLOAD_KINDS))
_SERVICE_TYPES: Final = ("run.googleapis.com/service", "microsoft.app/containerapps", "aws::ecs::service")
_IN_USE_COUNT: Final = ("in_use_count", "inUseCount")
_LAST_IN_USE: Final = ("last_in_use_at", "lastInUseAt")


class ImageName(NamedTuple):
    """A digest is known by a repository (and tag, "" when none) in a registry."""

    digest: str
    repository: str
    tag: str
    registry: str
    cloud: str
    account: str
    source_time: int

    @property
    def reference(self) -> str:
        """`repository:tag`, the key a tag-only report is filed under."""
        return reference(self.repository, self.tag)


class Sighting(NamedTuple):
    """Runtime evidence: `image` ran where the fields say, as `reporter` said at `source_time`.

    `image` is a digest, or `repository:tag` when the report had no digest (a probable match).
    Unknown places are "" so that they take part in the identity of the evidence.
    """

    image: str
    cloud: str
    account: str
    cluster: str
    namespace: str
    workload: str
    reporter: str
    source_time: int

    @property
    def exact(self) -> bool:
        """True when the report named the digest."""
        return self.image.startswith("sha256:")

    @property
    def place(self) -> tuple[str, str, str, str, str]:
        """Where it ran: cloud, account, cluster, namespace, workload."""
        return (self.cloud, self.account, self.cluster, self.namespace, self.workload)


class Exposure(NamedTuple):
    """A source says this workload is reachable from the internet."""

    cloud: str
    account: str
    cluster: str
    namespace: str
    workload: str
    reporter: str
    source_time: int
    active: bool = True
    """False once the source closes the finding that said so."""

    def names(self, sighting: Sighting) -> bool:
        """True when the exposure names the workload of a sighting (same cluster and namespace)."""
        if not self.workload or not sighting.workload:
            return False
        same_place = (not self.cluster or self.cluster == sighting.cluster) and self.namespace == sighting.namespace
        # Defender names a pod by its owner's name; a pod name is its owner's plus a suffix.
        return same_place and (self.workload == sighting.workload or self.workload.startswith(f"{sighting.workload}-"))


class Vulnerable(NamedTuple):
    """A Vulnerability Finding's image and what the priority needs of it."""

    key: FindingKey
    image: str
    severity_id: int
    open: bool
    cves: tuple[str, ...]
    exploit: bool | None
    fix: bool | None
    source_time: int


class Observations(NamedTuple):
    """Everything one finding says about images."""

    names: tuple[ImageName, ...] = ()
    sightings: tuple[Sighting, ...] = ()
    exposures: tuple[Exposure, ...] = ()
    vulnerable: Vulnerable | None = None

    def is_empty(self) -> bool:
        """True when the finding says nothing about images."""
        return not (self.names or self.sightings or self.exposures or self.vulnerable)


EMPTY: Final = Observations()


def capped(seen: Observations, latest: int) -> Observations:
    """`seen` with every source time after `latest` (the arrival plus an allowance) set to `latest`.

    Evidence moves forward only in source time, and runtime evidence counts while its time is in
    the window: one runtime finding dated 2099 (a sender's clock, a garbled timestamp) would keep
    its image "running", and its CVEs prioritized so, until 2099. The store caps a finding's own
    order the same way (`stores.base.Snapshot.of`).
    """

    def late(items: tuple[Any, ...]) -> bool:
        return any(item.source_time > latest for item in items)

    vulnerable = seen.vulnerable
    if not (late(seen.names) or late(seen.sightings) or late(seen.exposures)) and (
        vulnerable is None or vulnerable.source_time <= latest
    ):
        return seen

    def cap(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(i._replace(source_time=latest) if i.source_time > latest else i for i in items)

    if vulnerable is not None and vulnerable.source_time > latest:
        vulnerable = vulnerable._replace(source_time=latest)
    return Observations(cap(seen.names), cap(seen.sightings), cap(seen.exposures), vulnerable)


def reference(repository: str, tag: str) -> str:
    """Return `repository:tag` (the repository alone when there is no tag)."""
    return f"{repository}:{tag}" if tag else repository


def reporter(key: FindingKey) -> str:
    """Return the text form of a finding key that evidence records as its reporter."""
    return "|".join(key)


def digest_of(value: object) -> str | None:
    """Return the `sha256:` digest in an image uid or reference, lower-cased, or None."""
    if not isinstance(value, str):
        return None
    found = _DIGEST.search(value)
    return found.group(1).lower() if found else None


@lru_cache(maxsize=4096)
def registry_of(repository: str) -> str:
    """Return the registry host of a repository (Docker Hub when the first part is no host)."""
    head, sep, _ = repository.partition("/")
    if sep and ("." in head or ":" in head or head == "localhost"):
        return head.lower()
    return "docker.io"


def split_reference(name: str, tag: str | None) -> tuple[str, str]:
    """Return (repository, tag) from an image name that may carry `:tag` or `@digest`."""
    name = name.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], tag or name[colon + 1 :]
    return name, tag or ""


class _Image(NamedTuple):
    digest: str | None
    repository: str
    tag: str
    key: str
    """The digest, else `repository:tag`; "" when the image is not named at all."""


def _image_of(digest: str | None, repository: str, tag: str) -> _Image:
    # The key is read several times per finding: worked out once, here.
    key = digest or (reference(repository, tag) if repository and tag else "")
    return _Image(digest, repository, tag, key)


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # Plain dicts and None (an absent key) are the common answers: neither reaches the ABC check
    # that `Mapping` costs, which every finding would otherwise pay a few times over.
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


_NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})


def _mapping(value: object) -> Mapping[str, Any]:
    return value if _is_mapping(value) else _NOTHING


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if _is_mapping(v)] if isinstance(value, list) else []


# A fleet runs few images, and every runtime finding names one: each (uid, name, tag, default
# tag, host) is parsed once (two digest searches and a name split).
_IMAGES: dict[tuple[str, str, str, str, str], _Image] = {}
_IMAGES_MAX: Final = 4096


def _image(obj: Mapping[str, Any], *, tag: str = "", host: str = "") -> _Image:
    key = (_text(obj.get("uid")), _text(obj.get("name")), _text(obj.get("tag")), tag, host)
    found = _IMAGES.get(key)
    if found is None:
        found = _parse_image(*key)
        if len(_IMAGES) < _IMAGES_MAX:
            _IMAGES[key] = found
    return found


def _parse_image(uid: str, name: str, own_tag: str, tag: str, host: str) -> _Image:
    digest = digest_of(uid) or digest_of(name)
    if not name and uid and not uid.startswith("sha256:"):
        name = uid  # a reference as uid (no digest known)
    repository, found_tag = _named(name, own_tag or tag, host) if name else ("", "")
    return _image_of(digest, repository, found_tag)


@lru_cache(maxsize=4096)
def _named(name: str, tag: str, host: str) -> tuple[str, str]:
    """(repository, tag) of an image name, with the registry host where the name leaves it out.

    Cached: a fleet runs few repositories, and every runtime finding names one.
    """
    repository, found_tag = split_reference(name, tag)
    if repository and host and registry_of(repository) == "docker.io" and "/" in repository:
        repository = f"{host}/{repository}"
    return repository, found_tag


def _label_tags(resource: Mapping[str, Any]) -> list[str]:
    """Every `tag=…` label (Inspector lists all the tags of an image; SCC the one deployed)."""
    return [label[4:] for label in resource.get("labels") or [] if isinstance(label, str) and label.startswith("tag=")]


def _registry_host(resources: list[Mapping[str, Any]]) -> str:
    """The registry a finding's image lives in when the image name leaves the host out (ACR)."""
    for resource in resources:
        if _kind_of(_text(resource.get("type"))) is _REGISTRY and resource.get("name"):
            return f"{_text(resource.get('name')).lower()}.azurecr.io"
    return ""


# What a Vulnerability Finding's resource is to the inventory, by its `type`: findings repeat a
# handful of types, so each is lowered and matched once.
_IMAGE, _CONTAINER, _REGISTRY, _OTHER = "image", "container", "registry", "other"


@lru_cache(maxsize=_IMAGES_MAX)
def _kind_of(text: str) -> str:
    kind = text.lower()
    if kind == "container image" or "containerimage" in kind.replace(" ", "").replace("_", ""):
        return _IMAGE
    if kind == "kubernetes container":
        return _CONTAINER
    if kind == "microsoft.containerregistry/registries":
        return _REGISTRY
    return _OTHER


# What a resource `type` says of a place (a service, a workload, a pod, an ECS task): findings
# repeat a handful of types, so each is lowered and searched once.
_PLACE_KINDS: dict[str, tuple[bool, bool, bool, bool]] = {}


def _place_kind(text: str) -> tuple[bool, bool, bool, bool]:
    kind = text.lower()
    workload = kind.startswith("kubernetes ") and _WORKLOAD.search(kind) is not None
    flags = (kind in _SERVICE_TYPES, workload, kind == "kubernetes pod", kind == "aws::ecs::task")
    if len(_PLACE_KINDS) < _IMAGES_MAX:
        _PLACE_KINDS[text] = flags
    return flags


def _place(finding: Mapping[str, Any], ctx: ContainerContext | None = None) -> tuple[str, str, str]:
    """Cluster (or service), namespace and workload a finding names (`ctx`: its container context, if known)."""
    if ctx is None:
        ctx = container_context(finding)
    cluster, namespace = ctx.cluster or "", ctx.namespace or ""
    workload = pod = ""
    for resource in _dicts(finding.get("resources")):
        name = _text(resource.get("name"))
        if not name:
            continue
        kind = _text(resource.get("type"))
        service, is_workload, is_pod, is_task = _PLACE_KINDS.get(kind) or _place_kind(kind)
        if not cluster and service:
            cluster = name
        if is_workload:
            workload = workload or name
        elif is_pod:
            pod = pod or name
        elif is_task:
            definition = _text(_mapping(resource.get("data")).get("definition_arn"))
            workload = workload or definition.rpartition("/")[2].partition(":")[0]
    return cluster, namespace, workload or pod or ctx.pod or ctx.container or ""


def _evidence_images(finding: Mapping[str, Any]) -> list[_Image]:
    """The images of the containers a finding's evidences name (those naming no image left out)."""
    found: list[_Image] = []
    evidences = finding.get("evidences")
    for evidence in evidences if isinstance(evidences, list) else ():
        if not _is_mapping(evidence):
            continue
        for holder in (evidence, evidence.get("process"), evidence.get("device")):
            if not _is_mapping(holder) or not _is_mapping(container := holder.get("container")):
                continue
            if _is_mapping(image := container.get("image")):
                named = _image(image)
                if named.key:
                    found.append(named)
    return found


def _source_time(finding: Mapping[str, Any]) -> int:
    last = _mapping(finding.get("finding_info")).get("last_seen_time")
    return int(last) if isinstance(last, int) and last > 0 else ocsf.modified_time(finding)


def observe(finding: Mapping[str, Any], ctx: ContainerContext | None = None) -> Observations:
    """Return the image observations one normalized finding carries (EMPTY when none).

    `ctx` is the finding's container context when the caller has it already (the store needs it too).
    """
    class_uid = finding.get("class_uid")
    if class_uid == ocsf.DETECTION:
        exposures = _exposures(finding, ctx)
        if exposures:
            return Observations(exposures=exposures)
        return _runtime(finding, ctx)
    if class_uid == ocsf.VULNERABILITY:
        return _vulnerability(finding, ctx)
    return EMPTY


def _names(images: list[_Image], cloud: str, account: str, when: int) -> tuple[ImageName, ...]:
    found = {
        (i.digest, i.repository, i.tag): ImageName(
            i.digest, i.repository, i.tag, registry_of(i.repository), cloud, account, when
        )
        for i in images
        if i.digest and i.repository
    }
    return tuple(found.values())


def _runtime(finding: Mapping[str, Any], ctx: ContainerContext | None) -> Observations:
    images = _evidence_images(finding)
    if not images:
        return EMPTY
    cloud = finding["cloud"]
    provider, account = cloud["provider"], cloud["account"]["uid"]
    when = _source_time(finding)
    cluster, namespace, workload = _place(finding, ctx)
    who = reporter(ocsf.identity(finding))
    # One sighting per image: several containers of one pod may run the same one.
    keys = dict.fromkeys(i.key for i in images)
    sightings = tuple([Sighting(key, provider, account, cluster, namespace, workload, who, when) for key in keys])
    return Observations(_names(images, provider, account, when), sightings)


def _vulnerability(finding: Mapping[str, Any], ctx: ContainerContext | None) -> Observations:
    cloud, account = finding["cloud"]["provider"], finding["cloud"]["account"]["uid"]
    when = ocsf.modified_time(finding)
    key = ocsf.identity(finding)
    who = reporter(key)
    resources = _dicts(finding.get("resources"))
    host = _registry_host(resources)
    cluster, namespace, workload = _place(finding, ctx)
    images: list[_Image] = []
    sightings: dict[tuple[str, ...], Sighting] = {}
    for resource in resources:
        kind = _kind_of(_text(resource.get("type")))
        if kind is _OTHER or kind is _REGISTRY:
            continue
        data = _mapping(resource.get("data"))
        if kind is _IMAGE:
            tags = _label_tags(resource) or [_first_tag(data)]
            image = _image(resource, tag=tags[0], host=host)
            if not image.key:
                continue
            images.append(image)
            # The image's other tags are names of the same digest too.
            images += [_image_of(image.digest, image.repository, tag) for tag in tags[1:] if image.digest]
            if data.get("workload") or data.get("container") or data.get("pod"):
                # SCC: the image of a GKE or Cloud Run workload (runtime OS scan, or deployed there).
                place = (
                    cluster,
                    _text(data.get("namespace")) or namespace,
                    _text(data.get("workload")) or _text(data.get("pod")) or workload,
                )
                sightings[(image.key, *place)] = Sighting(image.key, cloud, account, *place, who, when)
            in_use, last_use = _first(data, _IN_USE_COUNT), _epoch_ms(_first(data, _LAST_IN_USE))
            if isinstance(in_use, int) and not isinstance(in_use, bool) and in_use > 0:
                # Inspector: ECR counts the ECS tasks and EKS pods running the image, and says when it last ran.
                at = last_use or when
                sightings[(image.key, "", "", "")] = Sighting(image.key, cloud, account, "", "", "", who, at)
        elif _is_mapping(data.get("image")):
            # Defender: a running container of the assessed image, with its pod and workload.
            image = _image(data["image"], host=host)
            if not image.key:
                continue
            images.append(image)
            place = (
                _text(data.get("cluster")) or cluster,
                _text(data.get("namespace")) or _text(resource.get("namespace")),
                _text(data.get("workload")) or _text(data.get("controller")) or _text(data.get("pod")),
            )
            sightings[(image.key, *place)] = Sighting(image.key, cloud, account, *place, who, when)
    named = next((i for i in images if i.digest), images[0] if images else None)
    vulnerable = Vulnerable(
        key=key,
        image=named.key if named else "",
        severity_id=int(finding.get("severity_id", 0)),
        open=not _closed(finding),
        cves=_cves(finding),
        exploit=_any_flag(finding, "is_exploit_available"),
        fix=_any_flag(finding, "is_fix_available", "fix_available"),
        source_time=when,
    )
    return Observations(
        names=_names(images, cloud, account, when), sightings=tuple(sightings.values()), vulnerable=vulnerable
    )


def _closed(finding: Mapping[str, Any]) -> bool:
    return finding.get("status_id") in ocsf.CLOSED_STATUSES or finding.get("activity_id") == ocsf.CLOSE


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of `keys` in `data` or in a mapping directly inside it (vendor details kept nested)."""
    for key in keys:
        if (found := data.get(key)) is not None:
            return found
    for holder in data.values():
        if _is_mapping(holder):
            for key in keys:
                if (found := holder.get(key)) is not None:
                    return found
    return None


def _epoch_ms(value: object) -> int | None:
    """Epoch ms from epoch ms, or from an ISO 8601 text as Inspector writes `lastInUseAt`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)
    return None


def _first_tag(data: Mapping[str, Any]) -> str:
    tags = data.get("tags") or data.get("image_tags") or data.get("imageTags")
    if isinstance(tags, list) and tags and isinstance(tags[0], str):
        return tags[0]
    return ""


def _cves(finding: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    for vulnerability in _dicts(finding.get("vulnerabilities")):
        cve = vulnerability.get("cve")
        if _is_mapping(cve) and isinstance(cve.get("uid"), str):
            found.append(cve["uid"])
    return tuple(dict.fromkeys(found))


def _any_flag(finding: Mapping[str, Any], *keys: str) -> bool | None:
    values = [v.get(k) for v in _dicts(finding.get("vulnerabilities")) for k in keys]
    if any(v is True for v in values):
        return True
    return False if any(v is False for v in values) else None


def _exposures(finding: Mapping[str, Any], ctx: ContainerContext | None) -> tuple[Exposure, ...]:
    info = _mapping(finding.get("finding_info"))
    types = [t.lower() for t in info.get("types") or [] if isinstance(t, str)]
    attack_path = "attack path" in types and _internet_path(info)
    if not attack_path and "toxic_combination" not in types and not _attack_exposure(finding):
        # Nearly every Detection Finding: nothing about exposure, so nothing more to read.
        return ()
    cloud, account = finding["cloud"]["provider"], finding["cloud"]["account"]["uid"]
    who = reporter(ocsf.identity(finding))
    when = ocsf.modified_time(finding)
    places: dict[tuple[str, str, str], None] = {}
    if attack_path:
        for resource in _dicts(finding.get("resources")):
            match = _ENTITY.search(_text(resource.get("uid")))
            if match:
                places[(match["cluster"], match["ns"], match["pod"])] = None
        graph = _mapping(info.get("attack_graph"))
        for node in _dicts(graph.get("nodes")):
            if "containerapps" in _text(node.get("type")).lower() and node.get("name"):
                places[(_text(node.get("name")), "", _text(node.get("name")))] = None
    else:
        cluster, _, _ = _place(finding, ctx)
        for resource in _dicts(finding.get("resources")):
            kind = _text(resource.get("type")).lower()
            if kind == "kubernetes pod" or (kind.startswith("kubernetes ") and _WORKLOAD.search(kind)):
                name = _text(resource.get("name"))
                if name:
                    places[(cluster, _text(resource.get("namespace")), name)] = None
    active = not _closed(finding)
    return tuple(Exposure(cloud, account, c, ns, w, who, when, active) for c, ns, w in places)


def _internet_path(info: Mapping[str, Any]) -> bool:
    graph = _mapping(info.get("attack_graph"))
    if any(_text(n.get("type")).lower() == "internet" for n in _dicts(graph.get("nodes"))):
        return True
    return "internet exposed" in _text(info.get("title")).lower()


def _attack_exposure(finding: Mapping[str, Any]) -> bool:
    exposure = _mapping(_mapping(finding.get("unmapped")).get("finding")).get("attackExposure")
    score = exposure.get("score") if _is_mapping(exposure) else None
    return isinstance(score, int | float) and score > 0
