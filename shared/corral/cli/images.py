"""`corral images` and `corral images show DIGEST`: which vulnerable images run, where, and what to fix first.

Both compute the runtime context now, by the wall clock, from the inventory of every cloud, and
the priority of each open Vulnerability Finding with the configured weights, so that what they
show does not wait for the hourly check.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from corral import priority
from corral.cli.options import ConfigOption, JsonOption, StoreOption, settings
from corral.cli.options import open_existing as open_store
from corral.cli.text import make_console, shown, write_json
from corral.errors import ConfigError
from corral.stores.base import FindingQuery, Page, Store
from corral.stores.images import ImageEvidence, ImageVulnerability

app = typer.Typer(help="Images: where they run and what to fix first.", invoke_without_command=True)
SEVERITY_LETTERS = {5: "C", 6: "C", 4: "H", 3: "M", 2: "L", 1: "I"}


@dataclass(frozen=True, slots=True)
class Ranked:
    """One image with its runtime context and each open vulnerability's priority, worst first."""

    evidence: ImageEvidence
    runtime: priority.Runtime
    vulnerabilities: list[tuple[ImageVulnerability, priority.Priority]]

    @property
    def worst(self) -> priority.Priority | None:
        """The highest priority among its open vulnerabilities."""
        return self.vulnerabilities[0][1] if self.vulnerabilities else None

    def as_data(self) -> dict[str, Any]:
        """Plain JSON-ready data for `--json`."""
        worst = self.worst
        return {
            "digest": self.evidence.digest,
            "names": sorted({n.reference for n in self.evidence.names}),
            "runtime": self.runtime.context,
            "probable": self.runtime.probable,
            "exposed": self.runtime.exposed,
            "workloads": [list(w) for w in self.runtime.workloads],
            "last_seen_running": self.runtime.last_seen,
            "worst": None
            if worst is None
            else {"priority": worst.level, "risk_score": worst.risk_score, "why": worst.details},
            "open_by_severity": _by_severity(self.vulnerabilities),
            "sightings": [
                {
                    "image": record.sighting.image,
                    "probable": probable,
                    "cloud": record.sighting.cloud,
                    "account": record.sighting.account,
                    "cluster": record.sighting.cluster,
                    "namespace": record.sighting.namespace,
                    "workload": record.sighting.workload,
                    "reported_by": record.sighting.reporter,
                    "first": record.first_time,
                    "last": record.last_time,
                }
                for record, probable in self.evidence.sightings
            ],
            "vulnerabilities": [
                {
                    "finding": list(row.key),
                    "cves": list(row.vulnerable.cves),
                    "severity_id": row.vulnerable.severity_id,
                    "priority": given.level,
                    "risk_score": given.risk_score,
                    "why": given.details,
                }
                for row, given in self.vulnerabilities
            ],
        }


def _by_severity(rows: list[tuple[ImageVulnerability, priority.Priority]]) -> dict[str, int]:
    counts = Counter(SEVERITY_LETTERS.get(row.vulnerable.severity_id, "?") for row, _ in rows)
    return {letter: counts[letter] for letter in ("C", "H", "M", "L", "I", "?") if counts[letter]}


def rank(
    db: Store, weights: priority.Weights, now: int, digests: list[str] | None = None, limit: int = 50
) -> list[Ranked]:
    """These images (else the store's `limit` worst), each vulnerability prioritized now, ranked by the worst."""
    wanted = db.ranked_image_digests(limit) if digests is None else digests
    evidence = db.image_evidence(wanted)
    by_image: dict[str, list[ImageVulnerability]] = {}
    for row in db.image_vulnerabilities(wanted):
        by_image.setdefault(row.vulnerable.image, []).append(row)
    ranked = []
    for digest in wanted:
        found = evidence.get(digest, ImageEvidence.of(digest))
        where = found.runtime(now=now, window_ms=weights.window_ms)
        rows = [(row, priority.score(row.vulnerable, where, weights)) for row in by_image.get(digest, [])]
        rows.sort(key=lambda pair: (-pair[1].risk_score, -pair[0].vulnerable.severity_id, pair[0].key))
        ranked.append(Ranked(found, where, rows))
    ranked.sort(
        key=lambda r: (
            -(r.worst.risk_score if r.worst else -1),
            r.runtime.context != "running",
            r.evidence.digest,
        )
    )
    return ranked


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ms else "-"


def _runtime_words(item: Ranked) -> str:
    where = item.runtime
    words = priority.CONTEXT_WORDS[where.context]
    if where.context == "running":
        count = len(where.workloads)
        words = f"running in {count} workload{'s' if count != 1 else ''} ({', '.join(where.clouds)})"
        if where.probable:
            words += " [probable: by tag]"
    if where.exposed:
        words += ", internet-exposed"
    return words


def _now() -> int:
    return time.time_ns() // 1_000_000


@app.callback()
def images(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many images (1 to 10,000).")] = 50,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List images ranked by the worst priority of their open vulnerabilities, where they run first."""
    if ctx.invoked_subcommand is not None:
        return
    configured = settings(config, store)
    db = open_store(configured.store)
    try:
        ranked = rank(db, configured.priority, _now(), limit=limit)
    finally:
        db.close()
    if json:
        for item in ranked:
            write_json(item.as_data())
        return
    table = Table(show_lines=False)
    for column in ("#", "priority", "image", "names", "runtime", "open C/H/M/L"):
        table.add_column(column, overflow="fold")
    for number, item in enumerate(ranked, 1):
        worst = item.worst
        counts = _by_severity(item.vulnerabilities)
        table.add_row(
            str(number),
            f"{worst.level} {worst.risk_score}" if worst else "-",
            shown(item.evidence.digest[:19]),
            shown(", ".join(sorted({n.reference for n in item.evidence.names})[:2]) or "-"),
            shown(_runtime_words(item)),
            "/".join(str(counts.get(k, 0)) for k in ("C", "H", "M", "L")),
        )
    make_console().print(table)


_HEX: Final = frozenset("0123456789abcdef")


def _digest_prefix(given: str) -> str:
    """`sha256:` and the hex digits given (bare hex may leave the algorithm out); refuse anything else."""
    text = given.strip().lower()
    hex_part = text.removeprefix("sha256:")
    if not hex_part or len(hex_part) > 64 or not set(hex_part) <= _HEX:
        raise ConfigError(f"image {given!r}: give a digest, sha256: and up to 64 hex digits (a unique prefix will do)")
    return f"sha256:{hex_part}"


@app.command("show")
def show(
    digest: Annotated[str, typer.Argument(help="The image digest, sha256:… (a unique prefix will do).")],
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show where an image runs, in which registries it is, and its CVEs ranked."""
    configured = settings(config, store)
    db = open_store(configured.store)
    try:
        wanted = _digest_prefix(digest)
        matches = db.image_digests(wanted, limit=2)  # two tell a unique prefix from an ambiguous one
        if len(matches) != 1:
            reason = "is not in the inventory" if not matches else "matches more than one image; give more of it"
            raise ConfigError(f"image {digest!r} {reason}")
        (item,) = rank(db, configured.priority, _now(), matches)
    finally:
        db.close()
    if json:
        write_json(item.as_data(), indent=True)
        return
    console = make_console()
    console.print(f"[bold]{shown(item.evidence.digest)}[/bold] · {shown(_runtime_words(item))}")
    console.print("[bold]Registries[/bold]")
    for name in sorted(item.evidence.names, key=lambda n: (n.registry, n.repository, n.tag)):
        console.print(shown(f"  {name.reference} · {name.registry} · {name.cloud} {name.account}"))
    if not item.evidence.names:
        console.print("  -")
    console.print("[bold]Seen running[/bold]")
    for record, probable in item.evidence.sightings:
        s = record.sighting
        place = "/".join(p for p in (s.cluster, s.namespace, s.workload) if p) or "-"
        match = f" [probable: by tag {s.image}]" if probable else ""
        console.print(
            shown(
                f"  {s.cloud} {s.account} · {place} · {_time(record.first_time)} → {_time(record.last_time)}"
                f" · by {s.reporter}{match}"
            )
        )
    if not item.evidence.sightings:
        console.print("  never")
    table = Table(title="Open vulnerabilities, most urgent first", show_lines=False)
    for column in ("priority", "severity", "CVEs", "why", "finding"):
        table.add_column(column, overflow="fold")
    for row, given in item.vulnerabilities:
        table.add_row(
            f"{given.level} {given.risk_score}",
            SEVERITY_LETTERS.get(row.vulnerable.severity_id, "?"),
            shown(", ".join(row.vulnerable.cves) or "-"),
            shown(given.details),
            shown(row.key[2]),
        )
    console.print(table)


def prioritized(db: Store, query: FindingQuery, *, running: bool, least: str | None) -> Page:
    """Open Vulnerability Findings by their last priority (`corral findings list --running/--priority-at-least`).

    Most urgent first, one page; the query's filters apply.
    """
    least_id = priority.level_id(least) if least is not None else 1
    if least_id is None:
        raise ConfigError(f"--priority-at-least: expected one of {', '.join(priority.LEVELS)}, not {least!r}")
    return Page(db.prioritized(query, least_id=least_id, running=running))
