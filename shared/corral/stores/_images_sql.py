# SQL text here is composed only from this package's constants; values always travel as parameters.
# ruff: noqa: S608
"""The image inventory on SQLite and PostgreSQL: four tables, written forward-only in source time.

Every write is an insert whose conflict clause moves the stored row only when the incoming
evidence is newer (`WHERE excluded.last_time > …`), so that concurrent writers and replays
converge on the newest evidence whatever the arrival order.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import orjson

from corral.inventory import (
    DIGEST_LENGTH,
    DIGEST_PREFIX,
    Exposure,
    FindingKey,
    ImageName,
    Observations,
    Sighting,
    Vulnerable,
)
from corral.priority import Priority
from corral.stores import images
from corral.stores._sql import FINDING_SELECTS, keys_cte, stored_finding, where
from corral.stores.base import FindingQuery, StoredFinding
from corral.stores.images import ImageEvidence, ImageVulnerability, SightingRecord
from corral.stores.migrations import Dialect

_CHUNK: Final = 300

_UPSERT_NAMES: Final = (
    " ON CONFLICT (digest, repository, tag, cloud, account) DO UPDATE SET"
    " first_time = {least}(image_names.first_time, excluded.first_time),"
    " last_time = {greatest}(image_names.last_time, excluded.last_time)"
)
_UPSERT_SIGHTINGS: Final = (
    " ON CONFLICT (image, cloud, account, cluster, namespace, workload) DO UPDATE SET"
    " reporter = excluded.reporter, last_time = excluded.last_time,"
    " first_time = {least}(image_sightings.first_time, excluded.first_time)"
    " WHERE excluded.last_time > image_sightings.last_time"
)
_UPSERT_EXPOSURES: Final = (
    " ON CONFLICT (cloud, account, cluster, namespace, workload) DO UPDATE SET"
    " reporter = excluded.reporter, active = excluded.active, last_time = excluded.last_time"
    " WHERE excluded.last_time > image_exposures.last_time"
)
_UPSERT_VULNERABILITIES: Final = (
    " ON CONFLICT (product, account, uid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in images.VULNERABILITY_COLUMNS[3:])
    + " WHERE excluded.source_time >= image_vulnerabilities.source_time"
)


_OPEN: Final[dict[Dialect, str]] = {"sqlite": "is_open = 1", "postgresql": "is_open"}
"""The open vulnerabilities, as each dialect's index on the flag reads it."""


def _digest_bounds(prefix: str) -> list[str]:
    """The lowest and highest digest starting with `prefix`: `sha256:` and 64 lower-case hex digits
    order alike in every collation, so a range on them is the prefix padded both ways."""
    return [prefix.ljust(DIGEST_LENGTH, "0"), prefix.ljust(DIGEST_LENGTH, "f")]


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class SqlImages:
    """The image-inventory methods of the SQL stores (mixed into `SqlStore`)."""

    dialect: ClassVar[Dialect]

    @abstractmethod
    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read written with `?` placeholders."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one read written in the backend's own placeholders."""

    @abstractmethod
    def _modify(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement written with `?` placeholders for each row, in one transaction."""

    @abstractmethod
    def _write_all(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run statements (in the backend's own placeholders) for their rows, in one transaction."""

    def _modify_all(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        postgresql = self.dialect != "sqlite"
        self._write_all([(sql.replace("?", "%s") if postgresql else sql, rows) for sql, rows in statements])

    def _in(self, sql: str, values: Sequence[str]) -> list[Any]:
        rows: list[Any] = []
        unique = sorted(set(values))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            rows += self._select(sql.format(marks=_marks(len(chunk))), chunk)
        return rows

    def _insert(self, table: str, names: Sequence[str]) -> str:
        return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({_marks(len(names))})"

    @property
    def _fn(self) -> dict[str, str]:
        return (
            {"least": "min", "greatest": "max"}
            if self.dialect == "sqlite"
            else {"least": "LEAST", "greatest": "GREATEST"}
        )

    # Writing ----------------------------------------------------------------------------------------

    def record_images(self, batch: Sequence[Observations], *, fresh_since: int | None = None) -> list[str]:
        """Record a batch's observations; return the digests whose runtime evidence or exposure moved forward."""
        names = images.latest_names(batch)
        sightings = images.latest_sightings(batch)
        exposures = images.latest_exposures(batch)
        vulnerabilities = images.latest_vulnerabilities(batch)
        moved, changed = self._newer_sightings(sightings, fresh_since)
        fn = self._fn
        newer_exposures = self._newer_exposures(exposures)
        # One statement per table, all in one transaction: a commit per table cost more than the rows.
        statements: list[tuple[str, list[tuple[Any, ...]]]] = []
        if names:
            rows: list[tuple[Any, ...]] = [
                (*k[:3], n.registry, *k[3:], n.source_time, n.source_time) for k, n in sorted(names.items())
            ]
            statements.append((self._insert("image_names", images.NAME_COLUMNS) + _UPSERT_NAMES.format(**fn), rows))
        if moved:
            rows = [(*k, s.reporter, s.source_time, s.source_time) for k, s in sorted(moved.items())]
            sql = self._insert("image_sightings", images.SIGHTING_COLUMNS) + _UPSERT_SIGHTINGS.format(**fn)
            statements.append((sql, rows))
        if newer_exposures:
            rows = [
                (*k, e.reporter, e.active, e.source_time, e.source_time) for k, e in sorted(newer_exposures.items())
            ]
            statements.append((self._insert("image_exposures", images.EXPOSURE_COLUMNS) + _UPSERT_EXPOSURES, rows))
        if vulnerabilities:
            rows = [_vulnerability_row(v) for _, v in sorted(vulnerabilities.items())]
            sql = self._insert("image_vulnerabilities", images.VULNERABILITY_COLUMNS) + _UPSERT_VULNERABILITIES
            statements.append((sql, rows))
        if statements:
            self._modify_all(statements)
        if newer_exposures:
            namespaces = sorted({e.namespace for e in newer_exposures.values()})
            for row in self._in(
                "SELECT image, cloud, account, cluster, namespace, workload, reporter, first_time, last_time"
                " FROM image_sightings WHERE namespace IN ({marks})",
                namespaces,
            ):
                record = _sighting(row)
                if any(e.names(record.sighting) for e in newer_exposures.values()):
                    changed.add(record.sighting.image)
        return self._digests_of(sorted(changed))

    def _newer_sightings(
        self, sightings: dict[tuple[str, ...], Sighting], fresh_since: int | None
    ) -> tuple[dict[tuple[str, ...], Sighting], set[str]]:
        """The sightings newer than stored, and the images whose evidence they change (see `Store.record_images`)."""
        if not sightings:
            return {}, set()
        stored = {
            tuple(row[:6]): int(row[6])
            for row in self._in(
                "SELECT image, cloud, account, cluster, namespace, workload, last_time FROM image_sightings"
                " WHERE image IN ({marks})",
                [k[0] for k in sightings],
            )
        }
        moved = {k: s for k, s in sightings.items() if k not in stored or stored[k] < s.source_time}
        changed = {s.image for k, s in moved.items() if images.moves_evidence(stored.get(k, 0), fresh_since)}
        return moved, changed

    def _newer_exposures(self, exposures: dict[tuple[str, ...], Exposure]) -> dict[tuple[str, ...], Exposure]:
        if not exposures:
            return {}
        stored = {
            tuple(row[:5]): int(row[5])
            for row in self._in(
                "SELECT cloud, account, cluster, namespace, workload, last_time FROM image_exposures"
                " WHERE workload IN ({marks})",
                [k[4] for k in exposures],
            )
        }
        return {k: e for k, e in exposures.items() if k not in stored or stored[k] < e.source_time}

    def _digests_of(self, keys: Sequence[str]) -> list[str]:
        digests = {k for k in keys if k.startswith("sha256:")}
        refs = [k for k in keys if not k.startswith("sha256:")]
        if refs:
            for name in self._names_by_reference(refs):
                digests.add(name.digest)
        return sorted(digests)

    def _names_by_reference(self, refs: Sequence[str]) -> list[ImageName]:
        repositories = sorted({ref.rpartition(":")[0] for ref in refs if ":" in ref})
        rows = self._in(
            f"SELECT {', '.join(images.NAME_COLUMNS)} FROM image_names WHERE repository IN ({{marks}})", repositories
        )
        wanted = set(refs)
        return [n for n in map(_name, rows) if n.reference in wanted]

    def image_priorities(self, findings: Sequence[Vulnerable]) -> dict[FindingKey, Priority]:
        """Return the priority last given to each of these Vulnerability Findings (see `Store`)."""
        image_of = {v.key: v.image for v in findings}
        keys = sorted(image_of)
        columns = ", ".join(f"v.{c}" for c in images.PRIORITY_COLUMNS)
        found: dict[FindingKey, Priority] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = self._select(
                f"{keys_cte(len(chunk))} SELECT v.product, v.account, v.uid, v.image, v.is_open, {columns}"
                " FROM k JOIN image_vulnerabilities AS v ON v.product = k.p AND v.account = k.a AND v.uid = k.u",
                [part for key in chunk for part in key],
            )
            for row in rows:
                key = (str(row[0]), str(row[1]), str(row[2]))
                given = images.priority_of(dict(zip(images.PRIORITY_COLUMNS, row[5:], strict=True)))
                if row[4] and row[3] == image_of[key] and given is not None:
                    found[key] = given
        return found

    def set_image_priorities(self, rows: Sequence[tuple[Vulnerable, Priority]]) -> None:
        """Remember the priority last given to each Vulnerability Finding, where it is stored for the image it names."""
        if not rows:
            return
        self._modify(
            "UPDATE image_vulnerabilities SET priority_id = ?, risk_score = ?, context = ?, exposed = ?, details = ?,"
            " basis = ? WHERE product = ? AND account = ? AND uid = ? AND image = ?",
            [
                (p.priority_id, p.risk_score, p.context, p.exposed, p.details, p.basis, *v.key, v.image)
                for v, p in sorted(rows, key=lambda r: r[0].key)
            ],
        )

    # Reading ----------------------------------------------------------------------------------------

    def image_evidence(self, digests: Sequence[str]) -> dict[str, ImageEvidence]:
        """Return what the inventory knows of each digest (names, sightings exact and probable, exposures)."""
        if not digests:
            return {}
        names = list(
            map(
                _name,
                self._in(
                    f"SELECT {', '.join(images.NAME_COLUMNS)} FROM image_names WHERE digest IN ({{marks}})", digests
                ),
            )
        )
        refs = images.references(names)
        sightings = images.sort_sightings(
            map(
                _sighting,
                self._in(
                    f"SELECT {', '.join(images.SIGHTING_COLUMNS)} FROM image_sightings WHERE image IN ({{marks}})",
                    [*digests, *refs],
                ),
            )
        )
        tagged = images.tagged(sightings)
        if tagged:
            asked = set(digests)
            names += [n for n in self._names_by_reference(tagged) if n.digest not in asked]
        namespaces = sorted({s.sighting.namespace for s in sightings})
        exposures = (
            list(
                map(
                    _exposure,
                    self._in(
                        f"SELECT {', '.join(images.EXPOSURE_COLUMNS)} FROM image_exposures"
                        " WHERE namespace IN ({marks})",
                        namespaces,
                    ),
                )
            )
            if namespaces
            else []
        )
        return images.resolve(digests, names, sightings, exposures)

    def image_vulnerabilities(self, digests: Sequence[str] | None = None) -> list[ImageVulnerability]:
        """Return the open Vulnerability Findings of these images (all images when None)."""
        columns = ", ".join((*images.VULNERABILITY_COLUMNS, *images.PRIORITY_COLUMNS))
        open_ = _OPEN[self.dialect]
        if digests is None:
            rows = self._select(f"SELECT {columns} FROM image_vulnerabilities WHERE {open_}")
        else:
            rows = self._in(
                f"SELECT {columns} FROM image_vulnerabilities WHERE {open_} AND image IN ({{marks}})", digests
            )
        found = [_vulnerability(row) for row in rows]
        return sorted(found, key=lambda v: v.key)

    def prioritized(self, query: FindingQuery, *, least_id: int, running: bool) -> list[StoredFinding]:
        """Return open Vulnerability Findings by their last priority, most urgent first (see `Store`)."""
        clause, params = where(query._replace(cursor=None, open_only=True), self.dialect)
        rows = self._fetch(prioritized_sql(clause, self.dialect, running=running), [least_id, *params, query.limit])
        return [stored_finding(row) for row in rows]

    def ranked_image_digests(self, limit: int) -> list[str]:
        """Return the digests worst first by the priority last given to an open vulnerability (see `Store`)."""
        open_ = _OPEN[self.dialect]
        rows = self._select(
            "SELECT image, coalesce(max(risk_score), -1) AS worst FROM image_vulnerabilities"
            f" WHERE {open_} AND image >= ? AND image <= ?"
            f" GROUP BY image ORDER BY worst DESC, image LIMIT {int(limit)}",
            _digest_bounds(DIGEST_PREFIX),
        )
        ranked = [str(row[0]) for row in rows]
        if len(ranked) < limit:
            chosen = set(ranked)
            others = (d for d in self.image_digests(limit=limit + len(ranked)) if d not in chosen)
            ranked += list(itertools.islice(others, limit - len(ranked)))
        return ranked

    def image_digests(self, prefix: str = DIGEST_PREFIX, *, limit: int | None = None) -> list[str]:
        """Return the digests known (named, seen running or vulnerable) that start with `prefix` (see `Store`)."""
        # A range on each table's leading key column: each table's first `limit` distinct digests
        # in the range, then the first `limit` of those.
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        ranges = [
            f"SELECT d FROM (SELECT DISTINCT {column} AS d FROM {table}"
            f" WHERE {column} >= ? AND {column} <= ? ORDER BY {column}{cap}) AS {table}"
            for table, column in (
                ("image_names", "digest"),
                ("image_sightings", "image"),
                ("image_vulnerabilities", "image"),
            )
        ]
        known = f"SELECT d FROM ({' UNION '.join(ranges)}) AS known ORDER BY d{cap}"
        rows = self._select(known, _digest_bounds(prefix) * 3)
        return [str(r[0]) for r in rows if str(r[0]).startswith(prefix)]


def prioritized_sql(clause: str, dialect: Dialect, *, running: bool) -> str:
    """The page of open vulnerabilities at or above a priority (first parameter) whose findings match `clause`.

    Most urgent first, along the score index, each finding checked by key: SQLite's walk stops
    once the page (the last parameter) is full. The page's keys are found first and only its
    documents read: sorting the matches with their documents would read (on PostgreSQL, detoast)
    them all. The vulnerability columns are renamed so that the findings filter's bare names
    stay unambiguous.
    """
    mark = "?" if dialect == "sqlite" else "%s"
    urgent = (
        "SELECT product AS v_product, account AS v_account, uid AS v_uid, risk_score AS v_score"
        f" FROM image_vulnerabilities WHERE {_OPEN[dialect]}"
        f" AND priority_id >= {mark}" + (" AND context = 'running'" if running else "")
    )
    order = "ORDER BY v_score DESC, v_product, v_account, v_uid"
    page = (
        f"SELECT v_product, v_account, v_uid, v_score FROM ({urgent}) AS v WHERE EXISTS (SELECT 1 FROM findings"
        " WHERE findings.product = v_product AND findings.account = v_account AND findings.uid = v_uid"
        f" AND {clause}) {order} LIMIT {mark}"
    )
    return (
        f"SELECT {FINDING_SELECTS[dialect]} FROM ({page}) AS top CROSS JOIN findings"
        f" WHERE findings.product = v_product AND findings.account = v_account AND findings.uid = v_uid {order}"
    )


def _vulnerability_row(v: Vulnerable) -> tuple[Any, ...]:
    return (*v.key, v.image, v.severity_id, v.open, orjson.dumps(v.cves).decode(), v.exploit, v.fix, v.source_time)


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _vulnerability(row: Sequence[Any]) -> ImageVulnerability:
    key = (str(row[0]), str(row[1]), str(row[2]))
    cves = row[6] if isinstance(row[6], list) else orjson.loads(row[6])
    vulnerable = Vulnerable(
        key, str(row[3]), int(row[4]), bool(row[5]), tuple(cves), _flag(row[7]), _flag(row[8]), int(row[9])
    )
    prio = images.priority_of(dict(zip(images.PRIORITY_COLUMNS, row[10:], strict=True)))
    return ImageVulnerability(vulnerable, prio)


def _name(row: Sequence[Any]) -> ImageName:
    return ImageName(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), int(row[7]))


def _sighting(row: Sequence[Any]) -> SightingRecord:
    image, cloud, account, cluster, namespace, workload, who = (str(v) for v in row[:7])
    return SightingRecord(Sighting(image, cloud, account, cluster, namespace, workload, who, int(row[8])), int(row[7]))


def _exposure(row: Sequence[Any]) -> Exposure:
    cloud, account, cluster, namespace, workload, who = (str(v) for v in row[:6])
    return Exposure(cloud, account, cluster, namespace, workload, who, int(row[8]), bool(row[6]))
