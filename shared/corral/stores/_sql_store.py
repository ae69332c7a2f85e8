# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
"""The Store methods whose SQL is the same for SQLite and PostgreSQL but for its spelling.

Statements are written once with `?` placeholders and spelled for the dialect (`_sql.spell`). A
backend provides one read (`_fetch`) and one write of many rows in a transaction (`_write_many`),
and keeps what really differs: connections and locking, the upsert, expiry and the ledger insert.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from corral.records import HealthSignal
from corral.stores import _sql
from corral.stores._images_sql import SqlImages
from corral.stores._shared import source_updates
from corral.stores.base import (
    Claim,
    CountRow,
    DeadLetter,
    EvidenceKey,
    FindingKey,
    FindingQuery,
    HealthInputs,
    HistoryEntry,
    LedgerEntry,
    LedgerSummary,
    MatchCount,
    Page,
    PlaceCount,
    SinkBacklog,
    SourceSeen,
    SourceState,
    StoredFinding,
    Suppression,
    ThreadClaim,
    TrendDay,
    merge_dead_letters,
)
from corral.stores.migrations import Dialect

KEY_IS: Final = "product = ? AND account = ? AND uid = ?"
_REF_COLUMNS: Final = ("product", "account", "uid", "sink", "ref")
SOURCE_COLUMNS: Final = ("source", "account_uid", "last_delivery", "last_finding_time", "deliveries", "cloud")
SIGNAL_COLUMNS: Final = ("source", "account_uid", "service", "region", "resource", "healthy", "time", "detail")
# SQLite's max() of a NULL is NULL (PostgreSQL's GREATEST skips it): coalesce makes both keep the later known time.
_TOUCH_SOURCES: Final = (
    " ON CONFLICT (source, account_uid) DO UPDATE SET"
    " last_delivery = {greatest}(sources.last_delivery, excluded.last_delivery),"
    " last_finding_time = {greatest}(coalesce(sources.last_finding_time, excluded.last_finding_time),"
    " coalesce(excluded.last_finding_time, sources.last_finding_time)),"
    " deliveries = sources.deliveries + excluded.deliveries,"
    " cloud = coalesce(excluded.cloud, sources.cloud)"
)
_SOURCES: Final = f"SELECT {', '.join(SOURCE_COLUMNS)} FROM sources ORDER BY source, account_uid"
_DEAD_LETTERS_BY_SOURCE: Final = "SELECT coalesce(source, ''), sum(count) FROM dead_letters GROUP BY 1"
_RECORD_SIGNALS: Final = (
    " ON CONFLICT (source, account_uid, service, region, resource) DO UPDATE SET"
    " healthy = excluded.healthy, time = excluded.time, detail = excluded.detail"
    " WHERE excluded.time >= health_signals.time"
)


class SqlStore(SqlImages, ABC):
    """The shared half of the SQL stores; `dialect` says how to spell each statement."""

    url: str
    dialect: ClassVar[Dialect]

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read and return its rows."""

    @abstractmethod
    def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row, all in one transaction."""

    @abstractmethod
    def _write_all(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run each statement for each of its rows, all in one transaction; return rows affected per statement."""

    @abstractmethod
    def _write_returning(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one write with a RETURNING clause in its own transaction and return its rows."""

    def _storable(self, row: Sequence[Any], json_at: tuple[int, ...] = ()) -> tuple[Any, ...]:
        """Return a row of untrusted text as the database can keep it (JSON text at `json_at`)."""
        del json_at
        return tuple(row)

    def _fetch_all(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Run several reads and return the rows of each; a backend may send them at once."""
        return [self._fetch(sql, params) for sql, params in reads]

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._fetch(_sql.spell(sql, self.dialect), params)

    def _modify(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._write_many(_sql.spell(sql, self.dialect), rows)

    # Findings ---------------------------------------------------------------------------------------

    def mark_suppressed(self, marks: Sequence[tuple[FindingKey, Suppression | None]]) -> None:
        """Record (or clear) why findings are stored but not sent."""
        # Sorted by key (stable: the last mark of a key still wins), so that concurrent callers lock rows in order.
        rows = sorted(
            ((s.reason if s else None, s.by if s else None, s.until if s else None, *key) for key, s in marks),
            key=lambda row: row[3:],
        )
        self._modify(
            f"UPDATE findings SET suppressed_reason = ?, suppressed_by = ?, suppressed_until = ? WHERE {KEY_IS}", rows
        )

    def get(self, key: FindingKey) -> StoredFinding | None:
        """Return one finding, or None."""
        rows = self._select(f"SELECT {self._finding_select} FROM findings WHERE {KEY_IS}", key)
        return _sql.stored_finding(rows[0]) if rows else None

    def history(self, key: FindingKey) -> list[HistoryEntry]:
        """Return a finding's recorded changes, oldest first."""
        rows = self._select(
            f"SELECT at, kind, version, modified_time, severity_id, status_id FROM finding_history WHERE {KEY_IS}"
            " ORDER BY seq",
            key,
        )
        return [_sql.history_entry(row) for row in rows]

    def histories(self, keys: Sequence[FindingKey]) -> dict[FindingKey, list[HistoryEntry]]:
        """Return the recorded changes of each finding, oldest first: one read per 300 keys."""
        found: dict[FindingKey, list[HistoryEntry]] = {key: [] for key in keys}
        unique = list(found)
        for start in range(0, len(unique), 300):
            chunk = unique[start : start + 300]
            rows = self._select(_sql.histories_sql(len(chunk)), [part for key in chunk for part in key])
            for row in rows:
                found[(row[0], row[1], row[2])].append(_sql.history_entry(row[3:]))
        return found

    def query(self, query: FindingQuery) -> Page:
        """Return findings matching every given filter, newest last seen first, paged by keyset."""
        clause, params = _sql.where(query, self.dialect)
        rows = self._fetch(_sql.listing_sql(clause, self.dialect), [*params, query.limit + 1])
        items = [_sql.stored_finding(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit and items
        return Page(items, _sql.encode_cursor(items[-1]) if more else None)

    def count(self, query: FindingQuery, *, at_most: int = 10_000) -> MatchCount:
        """Count the findings matching a query, exactly (`at_most` is for stores that must read to count)."""
        del at_most
        clause, params = _sql.where(query._replace(cursor=None), self.dialect)
        rows = self._fetch(f"SELECT count(*) FROM findings WHERE {clause}", params)
        return MatchCount(int(rows[0][0]))

    def find(self, id_or_uid: str, *, limit: int = 2) -> list[StoredFinding]:
        """Return up to `limit` findings whose id starts with `id_or_uid` or whose uid it is (by the id index)."""
        clause, params = _sql.find_clause(id_or_uid, "?")
        rows = self._select(
            f"SELECT {self._finding_select} FROM findings WHERE {clause} ORDER BY fid LIMIT ?", [*params, limit]
        )
        return [_sql.stored_finding(row) for row in rows]

    def counts(self) -> list[CountRow]:
        """Return finding counts grouped by cloud, severity and status."""
        rows = self._select(
            "SELECT cloud, severity_id, status_id, count(*) FROM findings"
            " GROUP BY cloud, severity_id, status_id ORDER BY cloud, severity_id, status_id"
        )
        return [CountRow(row[0], int(row[1]), int(row[2]), int(row[3])) for row in rows]

    def latest_per_cell(self, since: int, keys: Sequence[EvidenceKey]) -> dict[EvidenceKey, int]:
        """Return the newest last_seen of each (cell, product, cloud) key since a time: one index lookup each."""
        if not keys:
            return {}
        rows = self._select(_sql.latest_per_cell_sql("?", len(keys)), [*(part for key in keys for part in key), since])
        return {(row[0], row[1], row[2], row[3], row[4]): int(row[5]) for row in rows if row[5] is not None}

    def place_counts(self, service: str, since: int) -> list[PlaceCount] | None:
        """Count a service's findings since a time per cloud, account and cluster (one range of its time index)."""
        clause, params = _sql.where(FindingQuery(container_service=service, since=since), self.dialect)
        rows = self._fetch(
            f"SELECT cloud, account, cluster, count(*), max(last_seen) FROM findings WHERE {clause}"
            " GROUP BY cloud, account, cluster",
            params,
        )
        return [PlaceCount(str(r[0]), str(r[1]), r[2] or None, int(r[3]), int(r[4])) for r in rows]

    def trend(self, since: int) -> list[TrendDay]:
        """Return findings first seen and last seen per UTC day from `since` on (two index ranges)."""
        first = {int(day): int(n) for day, n in self._select(_sql.trend_sql("first_seen", "?"), (since,))}
        last = {int(day): int(n) for day, n in self._select(_sql.trend_sql("last_seen", "?"), (since,))}
        return [TrendDay(day, first.get(day, 0), last.get(day, 0)) for day in sorted(first.keys() | last.keys())]

    @property
    def _finding_select(self) -> str:
        return _sql.FINDING_SELECTS[self.dialect]

    # Dead letter ------------------------------------------------------------------------------------

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep rejected inputs with their reasons (every byte of each); a known input counts up."""
        names = ("at", "reason", "ref", "raw", "sha256", "size", "source", "count")
        self._modify(
            _sql.insert("dead_letters", names, self.dialect)
            + " ON CONFLICT (sha256) DO UPDATE SET count = dead_letters.count + excluded.count",
            [
                self._storable((d.at, d.reason, d.ref, d.raw, d.sha256, d.size, d.source, d.count))
                for d in merge_dead_letters(letters)
            ],
        )

    def dead_letters(self, *, limit: int = 100, source: str | None = None) -> list[DeadLetter]:
        """Return dead letters, newest first, with their ids."""
        only, params = ("WHERE source = ? ", (source,)) if source is not None else ("", ())
        rows = self._select(
            f"SELECT {_sql.DEAD_LETTER_SELECT} FROM dead_letters {only}ORDER BY at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_sql.dead_letter(row) for row in rows]

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """Return one dead letter, or None (ids are 64-bit integers: 18 ASCII digits at most)."""
        if not (letter_id.isascii() and letter_id.isdigit() and len(letter_id) <= 18):
            return None
        rows = self._select(f"SELECT {_sql.DEAD_LETTER_SELECT} FROM dead_letters WHERE id = ?", (int(letter_id),))
        return _sql.dead_letter(rows[0]) if rows else None

    def count_dead_letters(self) -> dict[str, int]:
        """Return how many records failed, per source ("" for unknown); a letter counts as often as it failed."""
        return _counted(self._select(_DEAD_LETTERS_BY_SOURCE))

    # Delivery ledger --------------------------------------------------------------------------------

    @property
    def _ledger_read(self) -> str:
        return _sql.ledger_read(self.dialect)

    @property
    def _document_insert(self) -> str:
        """The insert of a version's document for retries; a version keeps its first copy."""
        return (
            _sql.insert("ledger_documents", ("version", "document", "created"), self.dialect, jsonb=("document",))
            + " ON CONFLICT (version) DO NOTHING"
        )

    def ledger_due(self, *, now: int, limit: int = 500) -> list[LedgerEntry]:
        """Return pending rows whose next attempt is due, oldest (created) first; hold nothing."""
        rows = self._select(
            f"SELECT {self._ledger_read} WHERE l.state = 'pending' AND l.next_attempt <= ?"
            " ORDER BY l.created, l.version, l.sink LIMIT ?",
            (now, limit),
        )
        return [_sql.ledger_entry(row) for row in rows]

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Record each row's outcome in one transaction, releasing its claim; keep documents for retries."""
        if not entries:
            return
        sets = (
            "UPDATE ledger SET state = ?, attempts = ?, next_attempt = ?, last_error = ?, delivered_at = ?,"
            " claim = NULL"
        )
        # Sorted, so that concurrent writers lock rows in the same order.
        ordered = sorted(entries, key=lambda e: (e.version, e.sink))
        held = [e for e in ordered if e.claim is not None]
        free = [e for e in ordered if e.claim is None]
        self._write_all(
            [
                # First the document, so that no committed pending row is ever without one.
                (self._document_insert, [self._storable(r, (1,)) for r in _sql.ledger_documents(entries)]),
                (
                    _sql.spell(f"{sets} WHERE version = ? AND sink = ? AND claim = ?", self.dialect),
                    [self._storable((*_outcome(e), e.claim)) for e in held],
                ),
                (
                    _sql.spell(f"{sets} WHERE version = ? AND sink = ?", self.dialect),
                    [self._storable(_outcome(e)) for e in free],
                ),
            ]
        )

    def ledger_expire(self, settled_before: int) -> int:
        """Delete delivered and dead rows settled before the time, and documents no pending row needs."""
        deleted, _ = self._write_all(
            [
                (
                    _sql.spell("DELETE FROM ledger WHERE state <> 'pending' AND next_attempt < ?", self.dialect),
                    [(settled_before,)],
                ),
                (
                    _sql.spell(
                        "DELETE FROM ledger_documents WHERE created < ?"
                        " AND version NOT IN (SELECT version FROM ledger WHERE state = 'pending')",
                        self.dialect,
                    ),
                    [(settled_before,)],
                ),
            ]
        )
        return deleted

    def ledger_for(self, versions: Sequence[str]) -> list[LedgerEntry]:
        """Return the ledger rows of these finding versions (every sink), by the primary key."""
        found: list[LedgerEntry] = []
        for start in range(0, len(versions), 100):
            chunk = list(versions[start : start + 100])
            marks = ", ".join("?" for _ in chunk)
            rows = self._select(f"SELECT {self._ledger_read} WHERE l.version IN ({marks})", chunk)
            found += [_sql.ledger_entry(row) for row in rows]
        return found

    def ledger_summary(self) -> LedgerSummary:
        """Return row counts by sink and state and the oldest pending row per sink (reads every row)."""
        counts = self._select("SELECT sink, state, count(*) FROM ledger GROUP BY sink, state")
        return LedgerSummary(
            counts={(sink, state): int(n) for sink, state, n in counts},
            oldest_pending=self.ledger_oldest_pending(),
        )

    def ledger_oldest_pending(self) -> dict[str, int]:
        """Return the oldest pending row's creation time per sink: one index probe per sink."""
        return _counted(self._select(_sql.LEDGER_OLDEST_PENDING))

    def ledger_backlog(self, now: int) -> list[SinkBacklog]:
        """Return what is pending per sink and when its next attempt is due (reads pending rows only)."""
        return [_sql.sink_backlog(row) for row in self._select(_sql.LEDGER_BACKLOG, (now, now))]

    # Sink message references ------------------------------------------------------------------------

    def message_ref(self, key: FindingKey, sink: str) -> str | None:
        """Return the sink's reference to the first message about a finding."""
        rows = self._select(f"SELECT ref FROM message_refs WHERE {KEY_IS} AND sink = ? AND ref <> ''", (*key, sink))
        return str(rows[0][0]) if rows else None

    def set_message_ref(self, key: FindingKey, sink: str, ref: str) -> None:
        """Remember the first message's reference, filling a held thread; an existing one is kept."""
        self._modify(
            _sql.insert("message_refs", _REF_COLUMNS, self.dialect)
            + " ON CONFLICT (product, account, uid, sink) DO UPDATE SET ref = excluded.ref, claim = NULL,"
            " lease_until = NULL WHERE message_refs.ref = ''",
            [self._storable((*key, sink, ref))],
        )

    def claim_thread(self, key: FindingKey, sink: str, claim: Claim) -> ThreadClaim:
        """Return the finding's thread, or hold its first message (an empty ref marks the hold)."""
        ref = self.message_ref(key, sink)
        if ref is not None:
            return ThreadClaim(ref=ref)
        held = self._write_returning(
            _sql.spell(
                _sql.insert(
                    "message_refs", ("product", "account", "uid", "sink", "ref", "claim", "lease_until"), "sqlite"
                )
                + " ON CONFLICT (product, account, uid, sink) DO UPDATE SET claim = excluded.claim,"
                " lease_until = excluded.lease_until"
                " WHERE message_refs.ref = '' AND (message_refs.lease_until IS NULL OR message_refs.lease_until <= ?"
                " OR message_refs.claim = excluded.claim)"
                " RETURNING ref",
                self.dialect,
            ),
            self._storable((*key, sink, "", claim.token, claim.until, claim.at)),
        )
        if held:
            return ThreadClaim(mine=True)
        # Someone else holds it, or has just posted it.
        return ThreadClaim(ref=self.message_ref(key, sink))

    def release_thread(self, key: FindingKey, sink: str, claim: Claim) -> None:
        """Give up a held first message that was not posted (or posted without a reference)."""
        self._modify(
            f"DELETE FROM message_refs WHERE {KEY_IS} AND sink = ? AND ref = '' AND claim = ?",
            [self._storable((*key, sink, claim.token))],
        )

    # Source health ----------------------------------------------------------------------------------

    def touch_sources(self, seen: Sequence[SourceSeen]) -> None:
        """Record deliveries: last delivery per (source, account) only moves forward."""
        greatest = "max" if self.dialect == "sqlite" else "GREATEST"
        self._modify(
            _sql.insert("sources", SOURCE_COLUMNS, self.dialect) + _TOUCH_SOURCES.format(greatest=greatest),
            sorted(source_updates(seen), key=lambda row: (row[0], row[1])),
        )

    def sources(self) -> list[SourceState]:
        """Return the last delivery per (source, account)."""
        return [_sql.source_state(row) for row in self._select(_SOURCES)]

    def health_inputs(self) -> HealthInputs:
        """Return the sources, dead letters and oldest pending deliveries, read at once (see `Store`)."""
        reads = (_SOURCES, _DEAD_LETTERS_BY_SOURCE, _sql.LEDGER_OLDEST_PENDING)
        sources, dead, pending = self._fetch_all([(_sql.spell(sql, self.dialect), ()) for sql in reads])
        return HealthInputs([_sql.source_state(row) for row in sources], _counted(dead), _counted(pending))

    def record_signals(self, signals: Sequence[HealthSignal]) -> None:
        """Keep the latest health signal per (source, account, service, region, resource)."""
        self._modify(
            _sql.insert("health_signals", SIGNAL_COLUMNS, self.dialect) + _RECORD_SIGNALS,
            sorted(_sql.signal_updates(signals), key=lambda row: tuple(row[:5])),
        )

    def signals(self) -> list[HealthSignal]:
        """Return the latest health signal per (source, account, service, region, resource)."""
        rows = self._select(
            f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM health_signals"
            " ORDER BY source, account_uid, service, region, resource"
        )
        return [_sql.health_signal(row) for row in rows]


def _counted(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Rows of (name, number) as a dict: dead letters per source, the oldest pending row per sink."""
    return {str(name): int(number) for name, number in rows}


def _outcome(entry: LedgerEntry) -> tuple[Any, ...]:
    return (
        entry.state,
        entry.attempts,
        entry.next_attempt,
        entry.last_error,
        entry.delivered_at,
        entry.version,
        entry.sink,
    )
