# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
"""What the SQL stores share: the upsert plan, row shapes, the query builder and cursors.

SQLite and PostgreSQL differ in how they make a batch atomic (`BEGIN IMMEDIATE` against advisory
locks) and in a few spellings; everything else lives here once, so that the two cannot drift.
The upsert plan is pure: given the stored state of a batch's keys, it decides each finding in
order (a finding twice in one batch: the second sees the first) and returns the rows to write.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from corral import ocsf, traits
from corral.context import ContainerContext, container_context
from corral.records import HealthSignal, NamedTuple
from corral.stores._shared import (
    CLOUD_NAMES,
    SERVICE_NAMES,
    canonical,
    latest_signals,
    not_a_cursor,
    pack_cursor,
    trait_map,
    unpack_cursor,
)
from corral.stores.base import (
    Change,
    Claim,
    DeadLetter,
    FindingKey,
    FindingQuery,
    HistoryEntry,
    LedgerEntry,
    SinkBacklog,
    Snapshot,
    SourceState,
    StoredFinding,
    Suppression,
    decide,
    finding_id,
    fingerprint,
    remember,
    search_text,
    uid_prefix,
    version_key,
)
from corral.stores.migrations import Dialect
from corral.vocabulary import CORRAL_PRODUCT, products_of

FINDING_COLUMNS: Final = (
    "product",
    "account",
    "uid",
    "cloud",
    "region",
    "class_uid",
    "severity_id",
    "status_id",
    "closed",
    "finding_type",
    "container_service",
    "layer",
    "task",
    "cluster",
    "namespace",
    "image",
    "modified_time",
    "fingerprint",
    "first_seen",
    "last_seen",
    "versions",
    "traits",
    "document",
    "fid",
    "sample",
    "search",
    "logged_time",
    "sequence",
    "seen",
)
"""The columns an upsert writes; suppression is left alone (it belongs to routing)."""

ON_CONFLICT_FINDINGS: Final = " ON CONFLICT (product, account, uid) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in FINDING_COLUMNS[3:]
)
"""What makes an insert of findings rows an upsert: every column but the key takes the new value."""

HISTORY_COLUMNS: Final = (
    "product",
    "account",
    "uid",
    "at",
    "kind",
    "version",
    "modified_time",
    "severity_id",
    "status_id",
)

STATE_SELECT: Final = (
    "product, account, uid, modified_time, fingerprint, severity_id, status_id, closed, first_seen, last_seen,"
    " versions, logged_time, sequence, seen, suppressed_reason"
)
"""The stored columns `decide()` and the counters need, in `Current.of_row` order."""

FINDING_SELECT: Final = (
    "product, account, uid, {document}, first_seen, last_seen, versions, severity_id, status_id, closed,"
    " modified_time, suppressed_reason, suppressed_by, suppressed_until"
)
"""The columns of a `StoredFinding`, in `stored_finding` order; `{document}` is dialect-specific."""

LEDGER_COLUMNS: Final = (
    "version",
    "sink",
    "product",
    "account",
    "uid",
    "change",
    "created",
    "state",
    "attempts",
    "next_attempt",
    "last_error",
    "delivered_at",
    "claim",
    "previous_severity_id",
)
"""The columns a ledger insert writes, in `ledger_row` order; the legacy `document` column gets JSON null."""

_OWN_DOCUMENT: Final = "coalesce(nullif(l.document, 'null'{cast}), d.document)"
LEDGER_READ: Final = (
    ", ".join(f"l.{c}" for c in LEDGER_COLUMNS)
    + f", {_OWN_DOCUMENT}{{text}}, CASE WHEN {_OWN_DOCUMENT} IS NULL THEN f.document{{text}} END"
    " FROM ledger AS l LEFT JOIN ledger_documents AS d ON d.version = l.version"
    " LEFT JOIN findings AS f ON f.product = l.product AND f.account = l.account AND f.uid = l.uid"
)
"""A ledger row with its version's document: its own copy (rows written before the lean ledger),
the one kept for retries, or else the finding's current document (see `ledger_entry`).
Spelled per dialect with `ledger_read`."""

LEDGER_RETURNING: Final = "version, sink, change, created, attempts, last_error"
"""What a claiming insert returns of each row it now holds (`ledger_held` order)."""

LEDGER_OLDEST_PENDING: Final = (
    "WITH RECURSIVE s (sink) AS ("
    " SELECT min(sink) FROM ledger WHERE state = 'pending'"
    " UNION ALL"
    " SELECT (SELECT min(sink) FROM ledger WHERE state = 'pending' AND sink > s.sink) FROM s WHERE s.sink IS NOT NULL)"
    " SELECT sink, (SELECT min(created) FROM ledger WHERE state = 'pending' AND sink = s.sink)"
    " FROM s WHERE sink IS NOT NULL"
)
"""The oldest pending row per sink as a skip scan of `ledger_pending_by_sink`: one index probe per
sink, however many rows are pending or settled."""

LEDGER_BACKLOG: Final = (
    "SELECT sink, count(*), sum(CASE WHEN next_attempt <= ? THEN 1 ELSE 0 END),"
    " sum(CASE WHEN claim IS NOT NULL AND next_attempt > ? THEN 1 ELSE 0 END), min(next_attempt), min(created)"
    " FROM ledger WHERE state = 'pending' GROUP BY sink ORDER BY sink"
)


def ledger_read(dialect: Dialect) -> str:
    """Return `LEDGER_READ` spelled for the dialect (PostgreSQL compares and returns JSONB as text)."""
    if dialect == "sqlite":
        return LEDGER_READ.format(cast="", text="")
    return LEDGER_READ.format(cast="::jsonb", text="::text")


DEAD_LETTER_SELECT: Final = "id, at, reason, ref, raw, sha256, size, source, count"


MARKS: Final[dict[Dialect, str]] = {"sqlite": "?", "postgresql": "%s"}
DOCUMENT: Final[dict[Dialect, str]] = {"sqlite": "document", "postgresql": "document::text"}
"""How a document column is read: PostgreSQL hands JSONB back as text, which orjson parses fastest."""
FINDING_SELECTS: Final[dict[Dialect, str]] = {d: FINDING_SELECT.format(document=DOCUMENT[d]) for d in DOCUMENT}
"""`FINDING_SELECT` spelled for each dialect, once: the list endpoint answers in microseconds."""


# Cached per WHERE clause (its text holds placeholders, never values): requests repeat a few
# filter combinations.
@functools.lru_cache(maxsize=1024)
def listing_sql(clause: str, dialect: Dialect) -> str:
    """Return the page query of the findings matching `clause`, newest last seen first, its limit the last parameter."""
    return f"SELECT {FINDING_SELECTS[dialect]} FROM findings WHERE {clause} {ORDER} LIMIT {MARKS[dialect]}"


def spell(sql: str, dialect: Dialect) -> str:
    """Return a statement written with `?` placeholders in the dialect's own (`%s` for psycopg)."""
    return sql if dialect == "sqlite" else sql.replace("?", "%s")


def insert(table: str, names: Sequence[str], dialect: Dialect, *, jsonb: Sequence[str] = ()) -> str:
    """Return `INSERT INTO table (names) VALUES (…)`; PostgreSQL casts the text of the `jsonb` columns."""
    mark = MARKS[dialect]
    values = ", ".join(f"{mark}::jsonb" if dialect == "postgresql" and n in jsonb else mark for n in names)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({values})"


def dumps(value: Any) -> str:
    """Serialise a document for a text or JSONB column."""
    return orjson.dumps(value).decode()


def loads(value: str | bytes | Mapping[str, Any]) -> Any:
    """Parse a document read back from a text or JSONB column."""
    if isinstance(value, Mapping):
        return dict(value)
    return orjson.loads(value)


class Current(NamedTuple):
    """The stored state of one finding that an upsert compares against and carries forward."""

    snapshot: Snapshot
    first_seen: int
    last_seen: int
    versions: int

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> tuple[FindingKey, Current]:
        """Read one row selected with `STATE_SELECT`."""
        key = (row[0], row[1], row[2])
        snapshot = Snapshot(
            modified_time=int(row[3]),
            fingerprint=row[4],
            severity_id=int(row[5]),
            status_id=int(row[6]),
            closed=bool(row[7]),
            logged_time=None if row[11] is None else int(row[11]),
            sequence=None if row[12] is None else int(row[12]),
            seen=tuple(row[13].split()) if row[13] else (),
            suppressed=row[14] is not None,
        )
        return key, cls(snapshot, int(row[8]), int(row[9]), int(row[10]))


class Plan(NamedTuple):
    """What one batch does: a Change per finding, the rows to write, the history rows.

    `rows` are whole findings rows (new or changed content); `refresh` rows are findings whose
    content is unchanged, as (last_seen, modified_time, closed, document, logged_time, sequence,
    seen, product, account, uid):
    re-deriving their columns would only reproduce what is stored, and re-deliveries of unchanged
    findings are the common case (GuardDuty re-exports every finding every six hours).
    """

    changes: list[Change]
    rows: list[tuple[Any, ...]]
    refresh: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]


def plan_upsert(
    findings: Sequence[ocsf.Finding],
    stored: Mapping[FindingKey, Current],
    *,
    now: int,
    documents: Sequence[bytes | None] = (),
    contexts: Sequence[ContainerContext | None] = (),
) -> Plan:
    """Decide each finding in order against the stored state and return what to write.

    `versions` counts accepted source versions (new and every real change), not deliveries:
    `unchanged` refreshes last seen and the document, `stale` writes nothing. `documents`, where
    given, are the findings' JSON already serialized (None where not), written as they are;
    `contexts`, where given, their container contexts.
    """
    state = dict(stored)
    # Per key: the latest accepted document, its JSON when given, the state after it, and whether
    # any change in this batch needs the whole row written (anything but `unchanged`).
    latest: dict[FindingKey, tuple[ocsf.Finding, bytes | None, Current, bool, ContainerContext | None]] = {}
    changes: list[Change] = []
    history: list[tuple[Any, ...]] = []
    for n, finding in enumerate(findings):
        key = ocsf.identity(finding)
        fp = fingerprint(finding)
        incoming = Snapshot.of(finding, fp, now=now)
        current = state.get(key)
        previous = current.snapshot if current else None
        kind = decide(previous, incoming)
        # The version and its history carry the source's time; only the order may be capped.
        modified = ocsf.modified_time(finding)
        version = version_key(key, modified, fp)
        changes.append(Change(kind, key, version, finding, previous))
        if kind == "stale":
            continue
        accepted = incoming.accepted(remember(previous.seen if previous else (), fp))
        if current is None:
            after = Current(accepted, now, now, 1)
        else:
            bump = 0 if kind == "unchanged" else 1
            after = Current(accepted, current.first_seen, max(current.last_seen, now), current.versions + bump)
        state[key] = after
        whole = kind != "unchanged" or (key in latest and latest[key][3])
        given = contexts[n] if n < len(contexts) else None
        latest[key] = (finding, documents[n] if n < len(documents) else None, after, whole, given)
        if kind != "unchanged":
            history.append((*key, now, kind, version, modified, incoming.severity_id, incoming.status_id))
    rows = [_finding_row(key, doc, after, text, ctx) for key, (doc, text, after, whole, ctx) in latest.items() if whole]
    refresh = [
        (after.last_seen, after.snapshot.modified_time, after.snapshot.closed, _text(doc, text), *_order(after), *key)
        for key, (doc, text, after, whole, _) in latest.items()
        if not whole
    ]
    return Plan(changes, rows, refresh, history)


def _text(finding: ocsf.Finding, text: bytes | None) -> str:
    """The document column: the finding's JSON as given, else serialized now."""
    return text.decode() if text is not None else dumps(finding)


def _finding_row(
    key: FindingKey, finding: ocsf.Finding, after: Current, text: bytes | None, ctx: ContainerContext | None = None
) -> tuple[Any, ...]:
    # The values of `columns()`, put straight into the row: building the Columns record by keyword
    # cost as much as reading the values (test_ing_rows pins the two together).
    snapshot = after.snapshot
    info = finding.get("finding_info", {})
    types = info.get("types") or []
    classification = traits.read(finding)
    if ctx is None:
        ctx = container_context(finding)
    cloud = finding["cloud"]
    return (
        *key,
        cloud["provider"],
        cloud.get("region"),
        int(finding["class_uid"]),
        snapshot.severity_id,
        snapshot.status_id,
        snapshot.closed,
        types[0] if types else None,
        classification.get(traits.SERVICE),
        classification.get(traits.LAYER),
        classification.get(traits.TASK),
        ctx.cluster,
        ctx.namespace,
        ctx.image_digest or ctx.image,
        snapshot.modified_time,
        snapshot.fingerprint,
        after.first_seen,
        after.last_seen,
        after.versions,
        dumps(trait_map(finding)),
        _text(finding, text),
        finding_id(key),
        classification.get(traits.SAMPLE) == "true",
        search_text(finding),
        *_order(after),
    )


def _order(after: Current) -> tuple[int | None, int | None, str]:
    """The transport order and the accepted contents a row keeps for the next decision."""
    snapshot = after.snapshot
    return snapshot.logged_time, snapshot.sequence, " ".join(snapshot.seen)


def plain_row(finding: ocsf.Finding, *, now: int) -> tuple[Any, ...]:
    """Return the row a plain insert of a new finding would write (the benchmark's baseline)."""
    return _finding_row(ocsf.identity(finding), finding, Current(Snapshot.of(finding, now=now), now, now, 1), None)


# Reading rows back ------------------------------------------------------------------------------


def stored_finding(row: Sequence[Any]) -> StoredFinding:
    """Read one row selected with `FINDING_SELECT`."""
    suppression = Suppression(row[11], row[12], row[13]) if row[11] is not None else None
    return StoredFinding(
        key=(row[0], row[1], row[2]),
        document=loads(row[3]),
        first_seen=int(row[4]),
        last_seen=int(row[5]),
        versions=int(row[6]),
        severity_id=int(row[7]),
        status_id=int(row[8]),
        closed=bool(row[9]),
        modified_time=int(row[10]),
        suppression=suppression,
    )


def keys_cte(keys: int) -> str:
    """`WITH k (p, a, u) AS (VALUES …)` for `keys` finding keys (three `?` each), to join a table with.

    A join with the keys, not `(…) IN (VALUES …)`: SQLite answers a row-value IN list with a scan.
    """
    return f"WITH k (p, a, u) AS (VALUES {', '.join('(?, ?, ?)' for _ in range(keys))})"


def histories_sql(keys: int) -> str:
    """The history of `keys` findings (three `?` each), key columns first, each finding's oldest first."""
    return (
        f"{keys_cte(keys)} SELECT h.product, h.account, h.uid,"
        " h.at, h.kind, h.version, h.modified_time, h.severity_id, h.status_id"
        " FROM k JOIN finding_history AS h ON h.product = k.p AND h.account = k.a AND h.uid = k.u ORDER BY h.seq"
    )


def history_entry(row: Sequence[Any]) -> HistoryEntry:
    """Read one row of `at, kind, version, modified_time, severity_id, status_id`."""
    return HistoryEntry(int(row[0]), row[1], row[2], int(row[3]), int(row[4]), int(row[5]))


def ledger_entry(row: Sequence[Any]) -> LedgerEntry:
    """Read one row selected with `LEDGER_READ`."""
    key = (row[2], row[3], row[4])
    # A row sent at once keeps no copy of its version's document: after a crash it is the finding's
    # current one, which is that version, or a later one when a newer version arrived before redrive.
    own = row[14] if row[14] is not None else row[15]
    document = None if own is None else loads(own)
    return LedgerEntry(
        version=row[0],
        sink=row[1],
        key=key,
        change=row[5],
        document=document,
        created=int(row[6]),
        state=row[7],
        attempts=int(row[8]),
        next_attempt=int(row[9]),
        last_error=row[10],
        delivered_at=None if row[11] is None else int(row[11]),
        claim=row[12],
        previous_severity_id=None if row[13] is None else int(row[13]),
    )


def ledger_held(entry: LedgerEntry, row: Sequence[Any], claim: Claim) -> LedgerEntry:
    """Return `entry` as the row a claiming insert returned (`LEDGER_RETURNING`), now held by `claim`.

    The version is the hash of the finding's content, so the entry's document is the row's own.
    Built directly rather than with `_replace`, which costs several times more per row.
    """
    return LedgerEntry(
        entry.version,
        entry.sink,
        entry.key,
        row[2],
        entry.document,
        int(row[3]),
        "pending",
        int(row[4]),
        claim.until,
        row[5],
        None,
        claim.token,
        entry.previous_severity_id,
    )


def ledger_row(entry: LedgerEntry, claim: Claim | None = None) -> tuple[Any, ...]:
    """Return the row for one ledger entry, in `LEDGER_COLUMNS` order (held by `claim` when pending)."""
    held = claim is not None and entry.state == "pending"
    return (
        entry.version,
        entry.sink,
        *entry.key,
        entry.change,
        entry.created,
        entry.state,
        entry.attempts,
        claim.until if held and claim else entry.next_attempt,
        entry.last_error,
        entry.delivered_at,
        claim.token if held and claim else None,
        entry.previous_severity_id,
    )


def ledger_documents(entries: Sequence[LedgerEntry]) -> list[tuple[Any, ...]]:
    """Return a (version, document, created) row per version that rows left pending must keep."""
    kept: dict[str, tuple[Any, ...]] = {}
    for e in entries:
        if e.state == "pending" and e.document is not None and e.version not in kept:
            kept[e.version] = (e.version, dumps(e.document), e.created)
    return sorted(kept.values())


def sink_backlog(row: Sequence[Any]) -> SinkBacklog:
    """Read one row of `LEDGER_BACKLOG`."""
    return SinkBacklog(row[0], int(row[1]), int(row[2] or 0), int(row[3] or 0), int(row[4]), int(row[5]))


def dead_letter(row: Sequence[Any]) -> DeadLetter:
    """Read one row selected with `DEAD_LETTER_SELECT`."""
    return DeadLetter(
        id=str(row[0]),
        at=int(row[1]),
        reason=row[2],
        ref=row[3],
        raw=bytes(row[4]),
        sha256=row[5],
        size=int(row[6]),
        source=row[7],
        count=int(row[8]),
    )


def source_state(row: Sequence[Any]) -> SourceState:
    """Read one row of `source, account_uid, last_delivery, last_finding_time, deliveries, cloud`.

    Both databases return these integer columns as ints: the row is the record as it is (a
    report reads every source and account, and the dashboard asks for one every few seconds).
    """
    return SourceState._make(row)


def signal_updates(signals: Sequence[HealthSignal]) -> list[tuple[Any, ...]]:
    """Keep the latest signal per (source, account, service, region, resource) of a batch, as rows."""
    return [(*key, s.healthy, s.time, s.detail) for key, s in latest_signals(signals).items()]


def health_signal(row: Sequence[Any]) -> HealthSignal:
    """Read one row of `source, account_uid, service, region, resource, healthy, time, detail`."""
    return HealthSignal(
        source=row[0],
        account_uid=row[1],
        service=row[2],
        healthy=bool(row[5]),
        time=int(row[6]),
        region=row[3] or None,
        detail=row[7],
        resource=row[4],
    )


# Queries -----------------------------------------------------------------------------------------


def encode_cursor(item: StoredFinding) -> str:
    """Return the keyset cursor that continues after `item`: its last seen and id (the order's tie-break)."""
    return pack_cursor([item.last_seen, item.id])


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Read a cursor made by `encode_cursor`; raise ValueError for anything else."""
    last_seen, fid = unpack_cursor(cursor, 2)
    if not isinstance(last_seen, int) or not isinstance(fid, str):
        raise not_a_cursor(cursor)
    return last_seen, fid


def _like(pattern: str) -> str:
    """Return a `*` glob as a LIKE pattern (escape `\\`): only `*` is a wildcard."""
    return pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def _text_match(dialect: Dialect, column: str, pattern: str, mark: str) -> tuple[str, str]:
    """Return a case-insensitive comparison of a text column with a value or `*` glob, and its parameter.

    Both sides fold the same way (SQLite's NOCASE and PostgreSQL's lower(), ASCII in the C
    locale), and each form is what the column's index is built on.
    """
    if dialect == "sqlite":
        if "*" not in pattern:
            return f"{column} = {mark} COLLATE NOCASE", pattern
        # SQLite's LIKE ignores ASCII case by default.
        return f"{column} LIKE {mark} ESCAPE '\\'", _like(pattern)
    if "*" not in pattern:
        return f"lower({column}) = lower({mark})", pattern
    return f"lower({column}) LIKE lower({mark}) ESCAPE '\\'", _like(pattern)


def where(query: FindingQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    """Return the WHERE clause (without the keyword, "TRUE" when empty) and its parameters."""
    mark = "?" if dialect == "sqlite" else "%s"
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("cloud", None if query.cloud is None else canonical(query.cloud, CLOUD_NAMES)),
        ("status_id", query.status_id),
        ("severity_id", query.severity_id),
        ("class_uid", query.class_uid),
        (
            "container_service",
            None if query.container_service is None else canonical(query.container_service, SERVICE_NAMES),
        ),
    ):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if query.severity_at_least is not None:
        # Unknown (0) and Other (99) have no rank, as in `decide()`: never "at least" anything.
        # Unary plus keeps the severity index out of it: "at least" matches many, so walking the
        # time index to the first page beats sorting every match from a severity range.
        clauses.append(f"+severity_id BETWEEN {mark} AND 6")
        params.append(max(query.severity_at_least, 1))
    if query.open_only:
        # An equality, not `NOT closed`: SQLite uses only equalities and ranges as index constraints.
        clauses.append("closed = FALSE")
    for column, pattern in (
        ("account", query.account),
        ("finding_type", query.finding_type),
        ("cluster", query.cluster),
        ("namespace", query.namespace),
        ("image", query.image),
    ):
        if pattern is not None:
            sql, value = _text_match(dialect, column, pattern, mark)
            clauses.append(sql)
            params.append(value)
    if query.source is not None:
        products = products_of(query.source)
        clauses.append(f"lower(product) IN ({', '.join(mark for _ in products)})")
        params += products
    if query.text:
        clauses.append(f"{'instr' if dialect == 'sqlite' else 'strpos'}(search, {mark}) > 0")
        params.append(query.text.lower())
    if query.trait is not None:
        name, value = query.trait
        if dialect == "sqlite":
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(findings.traits) AS t, json_each(t.value) AS v"
                f" WHERE t.key = {mark} AND v.value = {mark})"
            )
            params += [name, value]
        else:
            clauses.append(f"traits @> {mark}::jsonb")
            params.append(dumps({name: [value]}))
    if query.since is not None:
        clauses.append(f"last_seen >= {mark}")
        params.append(query.since)
    if query.until is not None:
        clauses.append(f"last_seen < {mark}")
        params.append(query.until)
    if query.cursor is not None:
        clauses.append(f"(last_seen, fid) < ({mark}, {mark})")
        params += list(decode_cursor(query.cursor))
    return (" AND ".join(clauses) or "TRUE"), params


ORDER: Final = "ORDER BY last_seen DESC, fid DESC"
"""Newest last seen first; the id breaks ties so that the keyset cursor is exact (and the indexes stay narrow)."""

ID_END: Final = "~"
"""Sorts after every hex digit: ids starting with a prefix lie in [prefix, prefix + "~")."""


def find_clause(id_or_uid: str, mark: str) -> tuple[str, list[Any]]:
    """Return the WHERE clause finding ids that start with `id_or_uid`, or findings whose uid it is."""
    prefix = id_or_uid.lower()
    by_uid = uid_prefix(id_or_uid)
    return (
        f"(fid >= {mark} AND fid < {mark}) OR (fid >= {mark} AND fid < {mark} AND uid = {mark})",
        [prefix, prefix + ID_END, by_uid, by_uid + ID_END, id_or_uid],
    )


@functools.lru_cache(maxsize=8)
def latest_per_cell_sql(mark: str, count: int) -> str:
    """One statement: for each of `count` (cell, product, cloud) keys, the newest last seen at or after a time.

    Each key is one bounded lookup at the end of the partial index `findings_by_cell`, so the
    cost grows with the number of keys, not of findings.
    """
    values = ", ".join(f"({mark}, {mark}, {mark}, {mark}, {mark})" for _ in range(count))
    return (
        f"WITH cells (s, l, t, p, c) AS (VALUES {values})"
        " SELECT s, l, t, p, c, (SELECT max(last_seen) FROM findings WHERE container_service = cells.s"
        " AND layer = cells.l AND task = cells.t AND product = cells.p AND cloud = cells.c"
        f" AND NOT sample AND product <> '{CORRAL_PRODUCT}' AND last_seen >= {mark}) FROM cells"
    )


DAY_MS: Final = 86_400_000


def trend_sql(column: str, mark: str) -> str:
    """Count findings per UTC day of `first_seen` or `last_seen` from a time on (one index range each)."""
    return (
        # Integer division, not `%`: psycopg reads a bare `%` as a placeholder.
        f"SELECT ({column} / {DAY_MS}) * {DAY_MS} AS day, count(*) FROM findings WHERE {column} >= {mark}"
        " GROUP BY day ORDER BY day"
    )
