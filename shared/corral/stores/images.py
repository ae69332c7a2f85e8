"""The image inventory's part of the store contract: records, and the pure rules every backend shares.

The inventory keeps, per image, the names it is known by, where it was seen running (each place
once, first and last source time, who reported it last), which workloads are exposed, and one
row per Vulnerability Finding with the priority last given to it. Evidence only moves forward
in source time: an older report of a place already known changes nothing, so replaying old
deliveries adds nothing newer than what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, TypeVar

from corral import priority
from corral.inventory import Exposure, FindingKey, ImageName, Observations, Sighting, Vulnerable
from corral.records import NamedTuple

_Timed = TypeVar("_Timed", ImageName, Sighting, Exposure)

NAME_COLUMNS: Final = ("digest", "repository", "tag", "registry", "cloud", "account", "first_time", "last_time")
SIGHTING_COLUMNS: Final = (
    "image",
    "cloud",
    "account",
    "cluster",
    "namespace",
    "workload",
    "reporter",
    "first_time",
    "last_time",
)
EXPOSURE_COLUMNS: Final = (
    "cloud",
    "account",
    "cluster",
    "namespace",
    "workload",
    "reporter",
    "active",
    "first_time",
    "last_time",
)
VULNERABILITY_COLUMNS: Final = (
    "product",
    "account",
    "uid",
    "image",
    "severity_id",
    "is_open",
    "cves",
    "exploit",
    "fix",
    "source_time",
)
PRIORITY_COLUMNS: Final = ("priority_id", "risk_score", "context", "exposed", "details", "basis")


class SightingRecord(NamedTuple):
    """A place an image ran, first and last (source time), and who reported it last."""

    sighting: Sighting
    first_time: int

    @property
    def last_time(self) -> int:
        """The newest source time of this evidence."""
        return self.sighting.source_time


class ImageEvidence(NamedTuple):
    """What the inventory knows of one digest."""

    digest: str
    names: list[ImageName]
    sightings: list[tuple[SightingRecord, bool]]
    """Each with `probable`: True when the report named only a tag that the names map to this digest."""
    exposures: list[Exposure]

    @classmethod
    def of(cls, digest: str) -> ImageEvidence:
        """No evidence yet of `digest`, to fill in."""
        return cls(digest, [], [], [])

    def runtime(self, *, now: int, window_ms: int) -> priority.Runtime:
        """The runtime context of this image at wall-clock `now`."""
        return priority.runtime(
            self.digest,
            [(record.sighting, probable) for record, probable in self.sightings],
            self.exposures,
            now=now,
            window_ms=window_ms,
        )


class ImageVulnerability(NamedTuple):
    """One Vulnerability Finding of an image, with the priority last given to it (None before any)."""

    vulnerable: Vulnerable
    priority: priority.Priority | None = None

    @property
    def key(self) -> FindingKey:
        """The finding's identity."""
        return self.vulnerable.key


def latest_names(batch: Iterable[Observations]) -> dict[tuple[str, ...], ImageName]:
    """The newest name per (digest, repository, tag, cloud, account) in a batch."""
    names = (name for seen in batch for name in seen.names)
    return _newest(names, lambda n: (n.digest, n.repository, n.tag, n.cloud, n.account))


def latest_sightings(batch: Iterable[Observations]) -> dict[tuple[str, ...], Sighting]:
    """The newest sighting per (image, place) in a batch."""
    return _newest((s for seen in batch for s in seen.sightings), lambda s: (s.image, *s.place))


def latest_exposures(batch: Iterable[Observations]) -> dict[tuple[str, ...], Exposure]:
    """The newest exposure per place in a batch."""
    exposures = (e for seen in batch for e in seen.exposures)
    return _newest(exposures, lambda e: (e.cloud, e.account, e.cluster, e.namespace, e.workload))


def moves_evidence(stored: int, fresh_since: int | None) -> bool:
    """True when writing a sighting over one stored at `stored` (0: none) changes its image's evidence.

    A refresh of a sighting already inside the priority window (stored at `fresh_since` or later)
    changes no priority: the places, clouds and exposure it shows stay the same.
    """
    return fresh_since is None or stored < fresh_since


def _newest(items: Iterable[_Timed], key: Callable[[_Timed], tuple[str, ...]]) -> dict[tuple[str, ...], _Timed]:
    """The item with the latest source time per key (the first of equals)."""
    found: dict[tuple[str, ...], _Timed] = {}
    for item in items:
        k = key(item)
        if k not in found or found[k].source_time < item.source_time:
            found[k] = item
    return found


def latest_vulnerabilities(batch: Iterable[Observations]) -> dict[FindingKey, Vulnerable]:
    """The newest vulnerability facts per finding in a batch."""
    found: dict[FindingKey, Vulnerable] = {}
    for seen in batch:
        v = seen.vulnerable
        if v is not None and (v.key not in found or found[v.key].source_time <= v.source_time):
            found[v.key] = v
    return found


def resolve(
    digests: Sequence[str],
    names: Iterable[ImageName],
    sightings: Iterable[SightingRecord],
    exposures: Iterable[Exposure],
) -> dict[str, ImageEvidence]:
    """Assemble each digest's evidence from rows read back (tags resolve to the digest they last named)."""
    wanted = set(digests)
    by_digest: dict[str, ImageEvidence] = {d: ImageEvidence.of(d) for d in digests}
    newest_per_ref: dict[str, ImageName] = {}
    for name in names:
        if name.digest in wanted:
            by_digest[name.digest].names.append(name)
        ref = name.reference
        if name.tag and (ref not in newest_per_ref or newest_per_ref[ref].source_time < name.source_time):
            newest_per_ref[ref] = name
    for record in sightings:
        image = record.sighting.image
        if image in by_digest:
            by_digest[image].sightings.append((record, False))
        elif image in newest_per_ref and newest_per_ref[image].digest in by_digest:
            by_digest[newest_per_ref[image].digest].sightings.append((record, True))
    exposure_list = list(exposures)
    for evidence in by_digest.values():
        evidence.exposures.extend(
            e for e in exposure_list if any(e.names(record.sighting) for record, _ in evidence.sightings)
        )
    return by_digest


def sort_sightings(rows: Iterable[SightingRecord]) -> list[SightingRecord]:
    """Newest first, then by place: the order every backend returns."""
    return sorted(rows, key=lambda r: (-r.last_time, r.sighting.image, r.sighting.place))


def references(names: Iterable[ImageName]) -> list[str]:
    """The `repository:tag` keys tag-only sightings of these names are filed under."""
    return sorted({n.reference for n in names if n.tag})


def tagged(sightings: Iterable[SightingRecord]) -> list[str]:
    """The references of the sightings that named no digest: only their names resolve anything.

    A tag names the digest it was last seen with, so the names of these references (of any
    digest) are read; references no sighting was filed under resolve nothing and go unread.
    """
    return sorted({s.sighting.image for s in sightings if not s.sighting.exact})


def priority_of(row: Mapping[str, object]) -> priority.Priority | None:
    """Read the priority columns of a vulnerability row (None before the first priority)."""
    pid = row.get("priority_id")
    if pid is None:
        return None
    context = str(row.get("context"))
    return priority.Priority(
        int(pid),  # type: ignore[call-overload]
        int(row.get("risk_score") or 0),  # type: ignore[call-overload]
        context if context in priority.CONTEXTS else "unknown",
        bool(row.get("exposed")),
        str(row.get("details") or ""),
        int(row.get("basis") or 0),  # type: ignore[call-overload]
    )
