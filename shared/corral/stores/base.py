"""The store contract: what every backend keeps, and the pure rules that decide each change.

Backends (SQLite, PostgreSQL, DynamoDB) differ only in how they keep rows and make a
read-decide-write atomic; *what* a change is comes from `decide()` here, so the three cannot
disagree. Besides findings and their history, the contract holds what delivery and coverage need:
the dead letter, the delivery ledger, sink message references and source health.

Immutable records that every process builds at import are NamedTuples rather than dataclasses:
creating a frozen dataclass runs its generated methods through `exec` (about half a millisecond
each, at every cold start), a NamedTuple costs a tenth of that. Records that callers copy with
`dataclasses.replace` or read with `dataclasses.asdict` stay dataclasses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, Protocol

import orjson

from corral import inventory, ocsf, priority, traits
from corral.context import container_context
from corral.records import HealthSignal

if TYPE_CHECKING:
    from corral.stores import images

ChangeKind = Literal[
    "new", "updated", "escalated", "deescalated", "reopened", "closed", "unchanged", "stale", "reprioritized"
]
CHANGE_KINDS: Final[tuple[ChangeKind, ...]] = (
    "new",
    "updated",
    "escalated",
    "deescalated",
    "reopened",
    "closed",
    "unchanged",
    "stale",
    "reprioritized",
)
"""`reprioritized`: the content is unchanged but Corral's priority moved (see corral.prioritize)."""
FindingKey = tuple[str, str, str]
"""(metadata.product.uid, cloud.account.uid, finding_info.uid)."""

# Fields that change on every re-publication of the same content: excluded from the fingerprint,
# so that GuardDuty's 6-hourly re-export of an unchanged finding is `unchanged`, not `updated`.
VOLATILE_PATHS: Final[tuple[tuple[str, ...], ...]] = (
    ("time",),
    ("count",),
    ("activity_id",),
    ("activity_name",),
    ("type_uid",),
    ("type_name",),
    ("end_time",),
    ("metadata", "uid"),
    ("metadata", "processed_time"),
    ("finding_info", "modified_time"),
    ("finding_info", "last_seen_time"),
)


def fingerprint(finding: Mapping[str, Any]) -> str:
    """Return a sha256 of the finding without its volatile fields (hex)."""
    # Corral's own priority is no vendor content: a new priority is `reprioritized`, not `updated`.
    doc: dict[str, Any] = priority.without(finding) if "priority_id" in finding else dict(finding)
    for path in VOLATILE_PATHS:
        _drop(doc, path)
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _drop(doc: dict[str, Any], path: tuple[str, ...]) -> None:
    head, *rest = path
    if not rest:
        doc.pop(head, None)
    elif isinstance(doc.get(head), Mapping):
        doc[head] = inner = dict(doc[head])
        _drop(inner, tuple(rest))


FINDING_ID_LENGTH: Final = 20
FINDING_ID_UID_PART: Final = 12
"""The first 12 hex digits of an id come from the finding's own uid, so a uid lookup is an id-prefix lookup."""


def finding_id(key: FindingKey) -> str:
    """Return a finding's short stable id: 20 hex digits, unique in practice, for links and the CLI.

    The first 12 digits hash the finding's own uid (`uid_prefix`), the last 8 its product and
    account: every store finds a finding by id prefix or by uid with one index.
    """
    product, account, uid = key
    tail = hashlib.sha256(f"{product}\x1f{account}".encode()).hexdigest()
    return uid_prefix(uid) + tail[: FINDING_ID_LENGTH - FINDING_ID_UID_PART]


def uid_prefix(uid: str) -> str:
    """Return the id prefix that every finding with this `finding_info.uid` shares."""
    return hashlib.sha256(uid.encode()).hexdigest()[:FINDING_ID_UID_PART]


def version_key(key: FindingKey, modified_time: int, fp: str) -> str:
    """Return the idempotency key of one finding version: sha256 of identity, modified time, fingerprint."""
    text = "\x1f".join((*key, str(modified_time), fp))
    return hashlib.sha256(text.encode()).hexdigest()


def is_closed(finding: Mapping[str, Any]) -> bool:
    """Closed means resolved, archived, deleted, or an explicit Close; suppressed is not closed."""
    return finding.get("status_id") in ocsf.CLOSED_STATUSES or finding.get("activity_id") == ocsf.CLOSE


def _severity_rank(severity_id: int) -> int:
    # Unknown (0) and Other (99) carry no order: a change to or from them is not an escalation.
    return severity_id if 1 <= severity_id <= 6 else 0


class Snapshot(NamedTuple):
    """What `decide()` compares between the stored and the incoming version of a finding."""

    modified_time: int
    fingerprint: str
    severity_id: int
    status_id: int
    closed: bool

    @classmethod
    def of(cls, finding: Mapping[str, Any], fp: str | None = None) -> Snapshot:
        """Take the snapshot of one OCSF finding."""
        return cls(
            modified_time=ocsf.modified_time(finding),
            fingerprint=fp or fingerprint(finding),
            severity_id=int(finding.get("severity_id", 0)),
            status_id=int(finding.get("status_id", 0)),
            closed=is_closed(finding),
        )


def decide(current: Snapshot | None, incoming: Snapshot) -> ChangeKind:
    """Return the change kind of `incoming` over `current` (None when never seen).

    Order is the source's own modified time, never arrival: an older version is `stale`, and of
    two versions with the same time the one with the greater fingerprint wins. The same
    fingerprint is `unchanged`. Otherwise, by precedence: reopened, closed, escalated,
    deescalated, updated.
    """
    if current is None:
        return "new"
    if incoming.modified_time < current.modified_time:
        return "stale"
    if incoming.modified_time == current.modified_time and incoming.fingerprint < current.fingerprint:
        # Two versions that claim the same time: the content decides, not arrival, so redelivering
        # both in any order converges on one version instead of flipping between them.
        return "stale"
    if incoming.fingerprint == current.fingerprint and incoming.closed == current.closed:
        # Activity is volatile (Create/Update flip on re-publication), but a Close is a change.
        return "unchanged"
    if current.closed and not incoming.closed:
        return "reopened"
    if incoming.closed and not current.closed:
        return "closed"
    before, after = _severity_rank(current.severity_id), _severity_rank(incoming.severity_id)
    if before and after and after > before:
        return "escalated"
    if before and after and after < before:
        return "deescalated"
    return "updated"


class Columns(NamedTuple):
    """The indexed columns a backend keeps beside the OCSF document, for queries."""

    cloud: str
    region: str | None
    class_uid: int
    severity_id: int
    status_id: int
    closed: bool
    finding_type: str | None
    container_service: str | None
    layer: str | None
    task: str | None
    cluster: str | None
    namespace: str | None
    image: str | None
    modified_time: int
    fingerprint: str
    sample: bool
    search: str


def search_text(finding: Mapping[str, Any]) -> str:
    """Return what a text search looks in: the title and every resource's name, lower-cased, a line each."""
    parts = [str(finding.get("finding_info", {}).get("title") or "")]
    for resource in finding.get("resources") or ():
        if isinstance(resource, Mapping) and resource.get("name"):
            parts.append(str(resource["name"]))
    return "\n".join(parts).lower()


def columns(finding: Mapping[str, Any], fp: str | None = None) -> Columns:
    """Derive the indexed columns of one finding (pure)."""
    info = finding.get("finding_info", {})
    types = info.get("types") or []
    classification = traits.read(finding)
    ctx = container_context(finding)
    return Columns(
        cloud=finding["cloud"]["provider"],
        region=finding["cloud"].get("region"),
        class_uid=int(finding["class_uid"]),
        severity_id=int(finding.get("severity_id", 0)),
        status_id=int(finding.get("status_id", 0)),
        closed=is_closed(finding),
        finding_type=types[0] if types else None,
        container_service=classification.get(traits.SERVICE),
        layer=classification.get(traits.LAYER),
        task=classification.get(traits.TASK),
        cluster=ctx.cluster,
        namespace=ctx.namespace,
        image=ctx.image_digest or ctx.image,
        modified_time=ocsf.modified_time(finding),
        fingerprint=fp or fingerprint(finding),
        sample=classification.get(traits.SAMPLE) == "true",
        search=search_text(finding),
    )


@dataclass(frozen=True, slots=True)
class Change:
    """What one upsert did to one finding; `version` is the idempotency key of this version."""

    kind: ChangeKind
    key: FindingKey
    version: str
    finding: ocsf.Finding
    previous: Snapshot | None = None


class Suppression(NamedTuple):
    """Why a finding is stored but not sent: the rule's reason, which rule, and until when."""

    reason: str
    by: str
    until: int | None = None


class StoredFinding(NamedTuple):
    """A finding as the store keeps it: the latest document plus what the store learned."""

    key: FindingKey
    document: ocsf.Finding
    first_seen: int
    last_seen: int
    versions: int
    severity_id: int
    status_id: int
    closed: bool
    modified_time: int
    suppression: Suppression | None = None

    @property
    def id(self) -> str:
        """The finding's short stable id (see `finding_id`)."""
        return finding_id(self.key)

    def as_data(self) -> dict[str, Any]:
        """Plain JSON-ready data, as the CLI's `--json` and the dashboard's API give it."""
        return {
            "id": self.id,
            "key": list(self.key),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "versions": self.versions,
            "severity_id": self.severity_id,
            "status_id": self.status_id,
            "closed": self.closed,
            "suppression": None
            if self.suppression is None
            else {"reason": self.suppression.reason, "by": self.suppression.by, "until": self.suppression.until},
            "finding": self.document,
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One recorded change of a finding (unchanged and stale deliveries are not history)."""

    at: int
    kind: ChangeKind
    version: str
    modified_time: int
    severity_id: int
    status_id: int


@dataclass(frozen=True, slots=True)
class FindingQuery:
    """Filters for `Store.query`; None means no filter. Times are epoch ms on `last_seen`.

    Text filters match case-insensitively: `cloud` and `container_service` against their fixed
    vocabularies, the others (`*` globs allowed in type, cluster, namespace and image) as text.
    `source` is a source id ("aws.guardduty") or a product uid. `text` is a case-insensitive
    substring of the title or of a resource's name.
    """

    cloud: str | None = None
    account: str | None = None
    severity_at_least: int | None = None
    severity_id: int | None = None
    status_id: int | None = None
    open_only: bool = False
    class_uid: int | None = None
    finding_type: str | None = None
    container_service: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    image: str | None = None
    source: str | None = None
    text: str | None = None
    trait: tuple[str, str] | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 100
    cursor: str | None = None


class Page(NamedTuple):
    """One page of a query; pass `next_cursor` back for the next one (None: no more)."""

    items: list[StoredFinding]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MatchCount:
    """How many findings match a query: exact, or (where counting stops early) at least `count`."""

    count: int
    exact: bool = True


class TrendDay(NamedTuple):
    """Findings first seen, and findings last seen, on one UTC day (its start, epoch ms)."""

    day: int
    first_seen: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class CountRow:
    """Open and closed findings counted by cloud, severity and status."""

    cloud: str
    severity_id: int
    status_id: int
    count: int


DEAD_LETTER_MAX_RAW: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected input: never the configuration, at most the first 256 KiB of the raw input."""

    at: int
    reason: str
    ref: str
    raw: bytes
    sha256: str
    size: int
    source: str | None = None
    id: str | None = None

    @classmethod
    def of(cls, raw: bytes, *, at: int, reason: str, ref: str, source: str | None = None) -> DeadLetter:
        """Build a dead letter from the complete raw input (hash and size over all of it)."""
        return cls(
            at=at,
            reason=reason,
            ref=ref,
            raw=raw[:DEAD_LETTER_MAX_RAW],
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            source=source,
        )


LedgerState = Literal["pending", "delivered", "dead"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One (finding version, sink) delivery: what to send, and how far it got."""

    version: str
    sink: str
    key: FindingKey
    change: ChangeKind
    document: ocsf.Finding
    created: int
    state: LedgerState = "pending"
    attempts: int = 0
    next_attempt: int = 0
    last_error: str | None = None
    delivered_at: int | None = None


class SourceSeen(NamedTuple):
    """A delivery from a source for an account, as arrival time and the finding's own time."""

    source: str
    account_uid: str
    at: int
    finding_time: int | None = None


class SourceState(NamedTuple):
    """The last delivery of a source for one account, and how many it has had."""

    source: str
    account_uid: str
    last_delivery: int
    last_finding_time: int | None
    deliveries: int


@dataclass(frozen=True, slots=True)
class LedgerSummary:
    """Ledger rows by state per sink, and the oldest pending row's creation time."""

    counts: dict[tuple[str, LedgerState], int] = field(default_factory=dict)
    oldest_pending: dict[str, int] = field(default_factory=dict)


class Store(Protocol):
    """The contract every backend implements; the contract tests run unchanged against each.

    Every method raises `StoreUnavailableError` when the backend cannot be reached.
    """

    url: str
    """The store URL with any password removed (safe to print)."""

    def migrate(self) -> None:
        """Apply pending schema migrations; safe when two run at once."""

    def close(self) -> None:
        """Release connections."""

    # Findings -------------------------------------------------------------------------------

    def upsert(self, findings: Sequence[ocsf.Finding], *, now: int) -> list[Change]:
        """Store a batch (in order; one round trip where possible) and return one Change each.

        Idempotent: the same finding twice gives `unchanged`. `unchanged` refreshes last_seen
        (and the document when its modified time is not older); `stale` writes nothing.
        Concurrent writers of one finding end with one record and the right version count.
        """

    def mark_suppressed(self, marks: Sequence[tuple[FindingKey, Suppression | None]]) -> None:
        """Record (or clear, with None) why findings are stored but not sent."""

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first."""

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every given filter, newest last_seen first, paged."""

    def count(self, query: FindingQuery, *, at_most: int = 10_000) -> MatchCount:
        """Count the findings matching a query (its limit and cursor aside).

        SQL stores count exactly; a store that must read to count may stop after `at_most`
        matches and say so (`exact=False`).
        """

    def find(self, id_or_uid: str, *, limit: int = 2) -> list[StoredFinding]:
        """Return up to `limit` findings whose id starts with `id_or_uid` or whose uid is it, by id.

        Ask for two to tell a unique prefix from an ambiguous one.
        """

    def counts(self) -> list[CountRow]:
        """Return finding counts grouped by cloud, severity and status."""

    def latest_per_cell(self, since: int) -> dict[tuple[str, str, str], int]:
        """Return the newest last_seen per (container service, layer, task) at or after `since`.

        Sample findings and Corral's own findings prove nothing about a detector: they are left out.
        """

    def trend(self, since: int) -> list[TrendDay]:
        """Return per UTC day from `since` (a day start) the findings first seen and last seen that day.

        Days without any are left out.
        """

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time; return how many. Open ones stay."""

    # Dead letter ----------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs with their reasons."""

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first, with their ids."""

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""

    def count_dead_letters(self) -> dict[str, int]:
        """Return dead-letter counts per source ("" for unknown)."""

    # Delivery ledger ------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Insert entries whose (version, sink) is new; return each row as stored now.

        A row that already exists keeps its state: a delivered version is never re-queued.
        """

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest first."""

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Record the new state, attempts, error and next attempt of each row (one write where possible)."""

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink."""

    def ledger_for(self, versions: Sequence[str]) -> list[LedgerEntry]:
        """Return the ledger rows of these finding versions (every sink), in no set order."""

    # Sink message references ----------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding (e.g. a Slack ts)."""

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference; an existing one is kept."""

    # Source health --------------------------------------------------------------------------

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: last delivery per (source, account) only moves forward."""

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest health signal per (source, account, service, region)."""

    def signals(self) -> list[HealthSignal]:
        """Return the latest health signal per (source, account, service, region)."""

    # Image inventory (stores/images.py) --------------------------------------------------------

    def record_images(self, batch: Sequence[inventory.Observations]) -> list[str]:
        """Record what findings say about images, forward only in source time.

        Return the digests whose runtime evidence or exposure moved forward.
        """

    def image_evidence(self, digests: Sequence[str]) -> dict[str, images.ImageEvidence]:
        """Return names, sightings (exact, and probable through a tag) and exposures per digest."""

    def image_vulnerabilities(self, digests: Sequence[str] | None = None) -> list[images.ImageVulnerability]:
        """Return the open Vulnerability Findings of these images (all when None), with their last priority."""

    def set_image_priorities(self, rows: Sequence[tuple[FindingKey, priority.Priority]]) -> None:
        """Remember the priority last given to each Vulnerability Finding."""

    def image_digests(self) -> list[str]:
        """Return every digest the inventory knows."""
