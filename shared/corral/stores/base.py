"""The store contract: what every backend keeps, and the pure rules that decide each change.

Backends (SQLite, PostgreSQL, DynamoDB) differ only in how they keep rows and make a
read-decide-write atomic; *what* a change is comes from `decide()` here, so the three cannot
disagree. Besides findings and their history, the contract holds what delivery and coverage need:
the dead letter, the delivery ledger, sink message references and source health.

The records are NamedTuples rather than dataclasses: every process builds them at import, and
creating a frozen dataclass runs its generated methods through `exec` (about half a millisecond
each, at every cold start), a NamedTuple costs a tenth of that. Copies are made with `_replace`.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import orjson

from corral import inventory, limits, ocsf, priority, traits
from corral.context import ContainerContext, container_context
from corral.errors import PermanentError
from corral.records import HealthSignal, NamedTuple

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
EvidenceKey = tuple[str, str, str, str, str]
"""(container service, layer, task, product uid, cloud): one source's findings in one coverage cell."""

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
    ("metadata", "logged_time"),
    ("metadata", "sequence"),
    ("finding_info", "modified_time"),
    ("finding_info", "last_seen_time"),
)


def _tree(paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """The paths as a tree: {key: None} ends a path, {key: {…}} goes one level down."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = None
    return tree


_VOLATILE_TREE: Final = _tree(VOLATILE_PATHS)


def fingerprint(finding: Mapping[str, Any]) -> str:
    """Return a sha256 of the finding without its volatile fields (hex)."""
    # Corral's own priority is no vendor content: a new priority is `reprioritized`, not `updated`.
    doc: dict[str, Any] = priority.without(finding) if "priority_id" in finding else dict(finding)
    _drop(doc, _VOLATILE_TREE)
    try:
        text = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        # The pipeline checks Corral's limits before storing; a direct caller gets the same reason.
        raise PermanentError(f"finding cannot be stored: {limits.violation(finding) or exc}") from None
    return hashlib.sha256(text).hexdigest()


def _drop(doc: dict[str, Any], tree: Mapping[str, Any]) -> None:
    """Remove the paths of `tree` from `doc`, copying (never changing) the objects on the way."""
    for head, rest in tree.items():
        if rest is None:
            doc.pop(head, None)
            continue
        value = doc.get(head)
        # Findings are plain dicts: testing for dict first spares the ABC check that Mapping costs.
        if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101
            doc[head] = inner = dict(value)
            _drop(inner, rest)


FINDING_ID_LENGTH: Final = 20
FINDING_ID_UID_PART: Final = 12
"""The first 12 hex digits of an id come from the finding's own uid, so a uid lookup is an id-prefix lookup."""


def finding_id(key: FindingKey) -> str:
    """Return a finding's short stable id: 20 hex digits, unique in practice, for links and the CLI.

    The first 12 digits hash the finding's own uid (`uid_prefix`), the last 8 its product and
    account: every store finds a finding by id prefix or by uid with one index.
    """
    product, account, uid = key
    return uid_prefix(uid) + _id_tail(product, account)


@functools.lru_cache(maxsize=1024)
def _id_tail(product: str, account: str) -> str:
    # A batch holds a handful of (product, account) pairs: each is hashed once.
    tail = hashlib.sha256(f"{product}\x1f{account}".encode()).hexdigest()
    return tail[: FINDING_ID_LENGTH - FINDING_ID_UID_PART]


def uid_prefix(uid: str) -> str:
    """Return the id prefix that every finding with this `finding_info.uid` shares."""
    return hashlib.sha256(uid.encode()).hexdigest()[:FINDING_ID_UID_PART]


def version_key(key: FindingKey, modified_time: int, fp: str) -> str:
    """Return the idempotency key of one finding version: sha256 of identity, modified time, fingerprint.

    The modified time is the source's own, never the capped one the store orders by: the same
    version delivered again is the same version, whenever it arrives.
    """
    text = "\x1f".join((*key, str(modified_time), fp))
    return hashlib.sha256(text.encode()).hexdigest()


def is_closed(finding: Mapping[str, Any]) -> bool:
    """Closed means resolved, archived, deleted, or an explicit Close; suppressed is not closed."""
    return finding.get("status_id") in ocsf.CLOSED_STATUSES or finding.get("activity_id") == ocsf.CLOSE


def _severity_rank(severity_id: int) -> int:
    # Unknown (0) and Other (99) carry no order: a change to or from them is not an escalation.
    return severity_id if 1 <= severity_id <= 6 else 0


TIMELESS_LABEL: Final = "corral:time-from-transport"
"""In `metadata.labels`: the source gave no time; the finding's times are the transport's (or Corral's clock)."""
FUTURE_ALLOWANCE_MS: Final = 300_000
"""How far past its arrival a source's modified time is still believed for ordering (5 minutes).

Senders' clocks drift, so a time a little ahead of Corral's is ordinary skew and orders as the
source says. A time further ahead (a sender's clock gone wrong, a garbled or hostile timestamp
such as 2099) would outrank every genuine update until the wall clock caught up with it, and
silence the finding's changes for that long: such a version orders as its arrival plus this much.
"""
SEEN_LIMIT: Final = 32
"""How many accepted contents a finding remembers, so that an old one delivered again is not news."""


def seen_mark(fp: str) -> str:
    """The short form of a fingerprint kept in a finding's `seen` list."""
    return fp[:16]


def remember(seen: tuple[str, ...], fp: str) -> tuple[str, ...]:
    """`seen` with one more accepted content, newest last, at most SEEN_LIMIT."""
    mark = seen_mark(fp)
    return (*(s for s in seen if s != mark), mark)[-SEEN_LIMIT:]


class Snapshot(NamedTuple):
    """What `decide()` compares between the stored and the incoming version of a finding.

    `logged_time` and `sequence` are the transport's stable order (`metadata.logged_time`, e.g.
    the Pub/Sub publish or Event Hubs enqueued time, and `metadata.sequence`); a version whose
    `seen` (stored side) holds the contents accepted so far.
    """

    modified_time: int
    fingerprint: str
    severity_id: int
    status_id: int
    closed: bool
    logged_time: int | None = None
    sequence: int | None = None
    seen: tuple[str, ...] = ()
    timeless: bool = False
    """`modified_time` is not the source's own: it gave none and the transport's stood in
    (`TIMELESS_LABEL`), or its time was past the arrival and was capped (`FUTURE_ALLOWANCE_MS`)."""
    suppressed: bool = False
    """(Stored side) the finding carries a suppression mark, which routing clears once no rule holds."""

    @classmethod
    def of(cls, finding: Mapping[str, Any], fp: str | None = None, *, now: int | None) -> Snapshot:
        """Take the snapshot of one OCSF finding arriving at `now` (None: a stored document, arriving nowhere).

        Its time is the source's modified time, at most `now` plus `FUTURE_ALLOWANCE_MS`: a time
        beyond is not believed, and the version orders as that bound and counts as timeless. The
        finding itself keeps the time its source gave.
        """
        metadata = finding.get("metadata") or {}
        logged, sequence = metadata.get("logged_time"), metadata.get("sequence")
        modified = ocsf.modified_time(finding)
        latest = modified if now is None else now + FUTURE_ALLOWANCE_MS
        # Positional, not by keyword: every finding of every upsert passes here.
        return cls(
            min(modified, latest),
            fp or fingerprint(finding),
            int(finding.get("severity_id", 0)),
            int(finding.get("status_id", 0)),
            is_closed(finding),
            logged if isinstance(logged, int) and not isinstance(logged, bool) else None,
            sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
            (),
            modified > latest or TIMELESS_LABEL in (metadata.get("labels") or ()),
        )

    def accepted(self, seen: tuple[str, ...]) -> Snapshot:
        """This snapshot as stored once accepted, remembering `seen` (built directly: the hot path)."""
        return Snapshot(
            self.modified_time,
            self.fingerprint,
            self.severity_id,
            self.status_id,
            self.closed,
            self.logged_time,
            self.sequence,
            seen,
            self.timeless,
        )


def _older_at_the_same_time(current: Snapshot, incoming: Snapshot) -> bool:
    """Of two versions claiming the same time, whether `incoming` loses.

    The transport's order decides where both versions carry one (a state change that left the
    source's time unchanged, published later); otherwise the content does, so that redelivering
    both in any order converges on one version instead of flipping between them.
    """
    if current.logged_time is not None and incoming.logged_time is not None:
        mine = (incoming.logged_time, incoming.sequence or 0)
        theirs = (current.logged_time, current.sequence or 0)
        if mine != theirs:
            return mine < theirs
    return incoming.fingerprint < current.fingerprint


def decide(current: Snapshot | None, incoming: Snapshot) -> ChangeKind:
    """Return the change kind of `incoming` over `current` (None when never seen).

    Order is the source's own modified time, never arrival, except that a time past the arrival
    counts as the arrival plus `FUTURE_ALLOWANCE_MS` (see `Snapshot.of`): an older version is
    `stale`; of two versions with the same time, the transport's order decides, else the greater
    fingerprint. A content the finding already had is never newer unless its own time is later
    than the stored version's, so a replay of old versions (or a timeless or future-dated record
    delivered again) changes nothing.
    The same fingerprint is `unchanged`. Otherwise, by precedence: reopened, closed, escalated,
    deescalated, updated.
    """
    if current is None:
        return "new"
    if incoming.modified_time < current.modified_time:
        return "stale"
    if (
        incoming.fingerprint != current.fingerprint
        and seen_mark(incoming.fingerprint) in current.seen
        and (incoming.timeless or incoming.modified_time == current.modified_time)
    ):
        return "stale"
    if incoming.modified_time == current.modified_time and _older_at_the_same_time(current, incoming):
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
        if (isinstance(resource, dict) or isinstance(resource, Mapping)) and resource.get("name"):  # noqa: SIM101
            parts.append(str(resource["name"]))
    return "\n".join(parts).lower()


def columns(
    finding: Mapping[str, Any],
    fp: str | None = None,
    snapshot: Snapshot | None = None,
    context: ContainerContext | None = None,
) -> Columns:
    """Derive the indexed columns of one finding (pure); from its `snapshot` and `context`, when given.

    Without a snapshot, `modified_time` is the source's own, uncapped: an upsert passes the
    snapshot it decided by.
    """
    info = finding.get("finding_info", {})
    types = info.get("types") or []
    classification = traits.read(finding)
    ctx = context if context is not None else container_context(finding)
    if snapshot is None:
        snapshot = Snapshot.of(finding, fp, now=None)
    return Columns(
        cloud=finding["cloud"]["provider"],
        region=finding["cloud"].get("region"),
        class_uid=int(finding["class_uid"]),
        severity_id=snapshot.severity_id,
        status_id=snapshot.status_id,
        closed=snapshot.closed,
        finding_type=types[0] if types else None,
        container_service=classification.get(traits.SERVICE),
        layer=classification.get(traits.LAYER),
        task=classification.get(traits.TASK),
        cluster=ctx.cluster,
        namespace=ctx.namespace,
        image=ctx.image_digest or ctx.image,
        modified_time=snapshot.modified_time,
        fingerprint=snapshot.fingerprint,
        sample=classification.get(traits.SAMPLE) == "true",
        search=search_text(finding),
    )


class Change(NamedTuple):
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
    """The time the store orders the finding's versions by: the source's, capped at the arrival
    plus `FUTURE_ALLOWANCE_MS` (the document keeps the time the source gave)."""
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


class HistoryEntry(NamedTuple):
    """One recorded change of a finding (unchanged and stale deliveries are not history)."""

    at: int
    kind: ChangeKind
    version: str
    modified_time: int
    """The version's modified time as its source gave it (never capped: see `StoredFinding.modified_time`)."""
    severity_id: int
    status_id: int


class FindingQuery(NamedTuple):
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


class MatchCount(NamedTuple):
    """How many findings match a query: exact, or (where counting stops early) at least `count`."""

    count: int  # type: ignore[assignment]  # a field, where tuple has a method of that name
    exact: bool = True


class TrendDay(NamedTuple):
    """Findings first seen, and findings last seen, on one UTC day (its start, epoch ms)."""

    day: int
    first_seen: int
    last_seen: int


class CountRow(NamedTuple):
    """Open and closed findings counted by cloud, severity and status."""

    cloud: str
    severity_id: int
    status_id: int
    count: int  # type: ignore[assignment]  # see MatchCount


class PlaceCount(NamedTuple):
    """One container service's findings in a window, counted per cloud, account and cluster."""

    cloud: str
    account: str
    cluster: str | None
    count: int  # type: ignore[assignment]  # see MatchCount
    newest: int
    """The newest last_seen among them."""


DEAD_LETTER_MAX_TEXT: Final = 2048
"""Characters kept of a dead letter's reason and ref, which may quote the input (a key, a name):
they must fit one DynamoDB item (400 KB) beside the part of the raw input it holds."""


class DeadLetter(NamedTuple):
    """One rejected input, every byte of it (never the configuration), with why it was rejected."""

    at: int
    reason: str
    ref: str
    raw: bytes
    sha256: str
    size: int
    source: str | None = None
    id: str | None = None
    count: int = 1  # type: ignore[assignment]  # see MatchCount
    """How many times these exact bytes failed: the same input twice is one dead letter."""

    @classmethod
    def of(cls, raw: bytes, *, at: int, reason: str, ref: str, source: str | None = None) -> DeadLetter:
        """Build a dead letter from the complete raw input (hash and size over all of it)."""
        return cls(
            at=at,
            reason=_cut(reason),
            ref=_cut(ref),
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            source=source,
        )


def _cut(text: str) -> str:
    return text if len(text) <= DEAD_LETTER_MAX_TEXT else text[: DEAD_LETTER_MAX_TEXT - 1] + "…"


LedgerState = Literal["pending", "delivered", "dead"]

LEASE_MS: Final = 900_000
"""How long a claim holds ledger rows: longer than any one delivery pass (a Lambda runs 15 min at most).

A worker that dies holding rows delays them by this much; a live worker still sending when its
lease runs out may see another worker send the same rows (the receiver drops them by version)."""


class Claim(NamedTuple):
    """One worker's hold on the ledger rows it is about to send: a token, and when the hold lapses.

    A row held by a claim is sent by no one else until `until`, when a worker that died holding
    it lets it go; its outcome is recorded only while the claim still holds it.
    """

    token: str
    at: int
    """When the claim was made (epoch ms): rows due by then can be taken."""
    until: int

    @classmethod
    def new(cls, now: int, lease_ms: int = LEASE_MS) -> Claim:
        """A fresh claim made at `now`, lapsing `lease_ms` later."""
        return cls(secrets.token_hex(8), now, now + lease_ms)


def merge_dead_letters(letters: Sequence[DeadLetter]) -> list[DeadLetter]:
    """One letter per distinct input (sha256) of a batch, the first kept, counts summed."""
    merged: dict[str, DeadLetter] = {}
    for letter in letters:
        seen = merged.get(letter.sha256)
        merged[letter.sha256] = letter if seen is None else seen._replace(count=seen.count + letter.count)
    return list(merged.values())


class LedgerEntry(NamedTuple):
    """One (finding version, sink) delivery: what to send, and how far it got.

    The store keeps the row small and refers to the version's document rather than copying it.
    A row read back has the document kept for its retries, else the finding's current one (a
    crash before the first send, then a newer version: sent late, and with newer content, rather
    than lost); None only when the finding itself has expired. `next_attempt` is when a pending
    row is next due (while a claim holds it: when the claim lapses); for a delivered or dead row,
    when it was settled. `claim` is the token of the claim this worker holds the row by, if any.
    """

    version: str
    sink: str
    key: FindingKey
    change: ChangeKind
    document: ocsf.Finding | None
    created: int
    state: LedgerState = "pending"
    attempts: int = 0
    next_attempt: int = 0
    last_error: str | None = None
    delivered_at: int | None = None
    claim: str | None = None
    previous_severity_id: int | None = None
    """The severity of the version this one replaced, so that an escalation reads "High → Critical"."""


class SinkBacklog(NamedTuple):
    """What is pending for one sink: how many rows, how many due now, held by a worker, and when."""

    sink: str
    pending: int
    due: int
    held: int
    next_attempt: int
    """The earliest next attempt of a pending row (a held row's: when its claim lapses)."""
    oldest_created: int


class ThreadClaim(NamedTuple):
    """Where a chat message about a finding goes: under an existing thread, or as its first message.

    `ref` is the thread's first message when there is one. Otherwise `mine` says whether this
    worker now holds the right to post the first message (set its ref, or release it, after);
    when both are empty another worker is posting it, and this message waits.
    """

    ref: str | None = None
    mine: bool = False


class SourceSeen(NamedTuple):
    """A delivery from a source for an account: when it shows the source speaking, and the finding's own time.

    `at` is the newest of the finding's (or signal's) own time and its transport's, at most the
    arrival: what a replay of old data arriving now cannot move forward.
    """

    source: str
    account_uid: str
    at: int
    finding_time: int | None = None
    cloud: str | None = None
    """The cloud the account is in, as the finding says (`cloud.provider`)."""


class SourceState(NamedTuple):
    """The last delivery of a source for one account, and how many it has had."""

    source: str
    account_uid: str
    last_delivery: int
    last_finding_time: int | None
    deliveries: int
    cloud: str | None = None
    """The account's cloud as its findings said; None for sources recorded before Corral kept it."""


class HealthInputs(NamedTuple):
    """What a source health report reads from the store."""

    sources: list[SourceState]
    dead_letters: dict[str, int]
    """Failed records per source, as `Store.count_dead_letters`."""
    oldest_pending: dict[str, int]
    """The oldest pending delivery per sink, as `Store.ledger_oldest_pending`."""


class LedgerSummary(NamedTuple):
    """Ledger rows by state per sink, and the oldest pending row's creation time."""

    counts: dict[tuple[str, LedgerState], int]
    oldest_pending: dict[str, int]

    @classmethod
    def empty(cls) -> LedgerSummary:
        """A summary of an empty ledger, to fill in."""
        return cls({}, {})


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

    def upsert(
        self,
        findings: Sequence[ocsf.Finding],
        *,
        now: int,
        documents: Sequence[bytes | None] = (),
        contexts: Sequence[ContainerContext | None] = (),
    ) -> list[Change]:
        """Store a batch (in order; one round trip where possible) and return one Change each.

        Idempotent: the same finding twice gives `unchanged`. `unchanged` refreshes last_seen
        (and the document when its modified time is not older); `stale` writes nothing.
        Concurrent writers of one finding end with one record and the right version count.
        `documents`, when given, are the findings' JSON already serialized (None where not), in
        order: a backend that keeps the document as JSON text may write them as they are.
        `contexts`, likewise, are the findings' container contexts where the caller has them.
        """

    def mark_suppressed(self, marks: Sequence[tuple[FindingKey, Suppression | None]]) -> None:
        """Record (or clear, with None) why findings are stored but not sent."""

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first."""

    def histories(self, keys: Sequence[FindingKey]) -> dict[FindingKey, list[HistoryEntry]]:
        """Return the recorded changes of each finding, oldest first (as `history`, in few reads)."""

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

    def latest_per_cell(self, since: int, keys: Sequence[EvidenceKey]) -> dict[EvidenceKey, int]:
        """Return the newest last_seen at or after `since` of each of `keys`, where one was seen.

        A key is (container service, layer, task, product uid, cloud): coverage asks, for each cell,
        what each source able to cover it has reported there, so that a source's evidence is told
        from another's. Sample findings and Corral's own findings prove nothing about a detector:
        they are left out.
        """

    def place_counts(self, service: str, since: int) -> list[PlaceCount] | None:
        """Count one container service's findings last seen at or after `since` per (cloud, account, cluster).

        None when the store could only count by reading every such finding (DynamoDB keeps no
        aggregate per cluster): the caller then counts a bounded sample itself.
        """

    def trend(self, since: int) -> list[TrendDay]:
        """Return per UTC day from `since` (a day start) the findings first seen and last seen that day.

        Days without any are left out.
        """

    def expire_closed(self, closed_before: int) -> int:
        """Delete closed findings last seen before the time; return how many. Open ones stay."""

    # Dead letter ----------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs with their reasons; an input already kept (same sha256) counts up instead."""

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first, with their ids."""

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None."""

    def count_dead_letters(self) -> dict[str, int]:
        """Return how many records failed, per source ("" for unknown); a letter counts as often as it failed."""

    # Delivery ledger ------------------------------------------------------------------------

    def ledger_add(self, entries: Sequence[LedgerEntry], *, claim: Claim | None = None) -> list[LedgerEntry]:
        """Insert entries whose (version, sink) is new, without copying their documents.

        A row that already exists keeps its state: a delivered version is never re-queued. With
        a `claim`, new pending rows are inserted held by it, existing pending rows that are due
        and held by no one are taken too, and the rows now held are returned, as stored, for
        this worker to send; rows held elsewhere or settled are not. Without one, the rows
        inserted are returned (no read-back of rows that existed).
        """

    def ledger_claim(self, claim: Claim, *, limit: int = 500, sinks: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Hold and return up to `limit` pending rows due by `claim.at` (of `sinks` only, if given), oldest first.

        A row held by a live claim is never returned to another; one whose claim lapsed is.
        """

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest first (a look, holding nothing)."""

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Record the new state, attempts, error and next attempt of each row (one write where possible).

        A row carrying a claim token is written only while that claim still holds it (a lapsed
        claim that another worker took is theirs to record), and the hold is released. A row
        left pending keeps its version's document for the retry.
        """

    def ledger_expire(self, settled_before: int) -> int:
        """Delete delivered and dead rows settled before the time, and documents no pending row needs."""

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink (reads every row)."""

    def ledger_oldest_pending(self) -> dict[str, int]:
        """Return the creation time of the oldest pending row per sink, without reading settled rows."""

    def ledger_backlog(self, now: int) -> list[SinkBacklog]:
        """Return what is pending per sink, and when its next attempt is due (reads pending rows only)."""

    def ledger_for(self, versions: Sequence[str]) -> list[LedgerEntry]:
        """Return the ledger rows of these finding versions (every sink), in no set order."""

    # Sink message references ----------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding (e.g. a Slack ts)."""

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference (filling a held thread); an existing one is kept."""

    def claim_thread(self, key: FindingKey, sink: str, claim: Claim) -> ThreadClaim:
        """Return the finding's thread on the sink, or hold the right to post its first message.

        One worker at a time holds it, so a finding gets one thread; a hold whose claim lapsed
        can be taken again.
        """

    def release_thread(self, key: FindingKey, sink: str, claim: Claim) -> None:
        """Give up a held first message that was not posted (or posted without a reference)."""

    # Source health --------------------------------------------------------------------------

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: last delivery per (source, account) only moves forward."""

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""

    def health_inputs(self) -> HealthInputs:
        """Return `sources()`, `count_dead_letters()` and `ledger_oldest_pending()` read together.

        A dashboard asks for them every few seconds: a backend sends the three reads at once where
        it can (PostgreSQL pipelines them in one round trip).
        """

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest health signal per (source, account, service, region)."""

    def signals(self) -> list[HealthSignal]:
        """Return the latest health signal per (source, account, service, region)."""

    # Image inventory (stores/images.py) --------------------------------------------------------

    def record_images(self, batch: Sequence[inventory.Observations], *, fresh_since: int | None = None) -> list[str]:
        """Record what findings say about images, forward only in source time.

        Return the digests whose runtime evidence or exposure moved forward. With `fresh_since`
        (the source time the priority window starts at), a sighting already stored at that time
        or later does not count: refreshing evidence inside the window changes no priority, and a
        busy image's every runtime finding would otherwise recompute all of its CVEs.
        """

    def image_evidence(self, digests: Sequence[str]) -> dict[str, images.ImageEvidence]:
        """Return names, sightings (exact, and probable through a tag) and exposures per digest."""

    def image_vulnerabilities(self, digests: Sequence[str] | None = None) -> list[images.ImageVulnerability]:
        """Return the open Vulnerability Findings of these images (all when None), with their last priority."""

    def image_priorities(self, findings: Sequence[inventory.Vulnerable]) -> dict[FindingKey, priority.Priority]:
        """Return the priority last given to each of these Vulnerability Findings, read by key.

        Only a finding stored open, for the same image, with a priority given is answered: the
        others are left out. The ingest reads this for each batch, so it costs what the batch
        holds, not what the images hold (a busy image has hundreds of CVE findings).
        """

    def set_image_priorities(self, rows: Sequence[tuple[inventory.Vulnerable, priority.Priority]]) -> None:
        """Remember the priority last given to each Vulnerability Finding, where it is stored for the image it names."""

    def image_digests(self, prefix: str = inventory.DIGEST_PREFIX, *, limit: int | None = None) -> list[str]:
        """Return the digests the inventory knows that start with `prefix`, in order (at most `limit`).

        Read by the store's key order, so that looking up one image by a prefix of its digest
        reads a row or two, not every digest.
        """

    def prioritized(self, query: FindingQuery, *, least_id: int, running: bool) -> list[StoredFinding]:
        """Return open Vulnerability Findings whose last priority is at least `least_id`, most urgent first.

        With `running`, only those whose image ran within the window when last prioritized. The
        query's filters apply (its cursor does not); at most `query.limit` findings.
        """

    def ranked_image_digests(self, limit: int) -> list[str]:
        """Return at most `limit` digests, the worst first by the priority last given to an open vulnerability.

        Images with no open vulnerability follow, by digest. Priorities are stored at ingest and
        recomputed by the hourly source check, so this is the ranking as of the last of those; a
        caller ranking by the priority now recomputes it for these images only.
        """
