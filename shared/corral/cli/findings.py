"""`corral findings list|show` and `corral deadletter list|show`: read the store."""

from __future__ import annotations

import csv as csv_module
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Final, TextIO

import typer
from rich.table import Table

from corral import ocsf, traits, vocabulary
from corral.cli import images
from corral.cli.options import ConfigOption, JsonOption, StoreOption
from corral.cli.options import store as open_configured_store
from corral.cli.text import make_console, plain, shown, write_json
from corral.context import container_context
from corral.errors import ConfigError
from corral.pipeline import now_ms
from corral.stores.base import FindingQuery, MatchCount, Store, StoredFinding

app = typer.Typer(help="List and show stored findings.", no_args_is_help=True)
deadletter_app = typer.Typer(help="List and show rejected inputs kept in the dead letter.", no_args_is_help=True)


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ms else "-"


@app.command("list")
def list_findings(
    cloud: Annotated[str | None, typer.Option(help="AWS, Azure or GCP (any case).")] = None,
    account: Annotated[str | None, typer.Option(help="Account, subscription or project id.")] = None,
    severity: Annotated[
        str | None, typer.Option("--severity-at-least", help="informational, low, medium, high, critical or fatal.")
    ] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only findings that are not closed (--status open).")
    ] = False,
    status: Annotated[
        str | None,
        typer.Option(help="open, or one status: new, in-progress, suppressed, resolved, archived, deleted."),
    ] = None,
    service: Annotated[
        str | None, typer.Option("--container-service", help="EKS, AKS, GKE, Cloud Run, … (any case).")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster name; * globs allowed.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace; * globs allowed.")] = None,
    finding_type: Annotated[str | None, typer.Option("--type", help="Finding type; * globs allowed.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Source id (aws.guardduty, azure.defender, gcp.scc) or product uid.")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(help="Text in the title or a resource name (case-insensitive), within the other filters."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Last seen within a period (30m, 24h, 7d) or since a date (2025-06-01).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE, help=f"Findings per page (1 to {MAX_PAGE}).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page (the cursor it printed).")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only vulnerabilities of images running now.")] = False,
    priority_at_least: Annotated[
        str | None, typer.Option("--priority-at-least", help="Corral priority: low, medium, high or critical.")
    ] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV (one header row) instead of a table.")] = False,
) -> None:
    """List stored findings, newest first, a page at a time; the id column opens one with `findings show`.

    With --running or --priority-at-least: open vulnerabilities, most urgent first, one page.
    """
    if json and csv:
        raise ConfigError("--json and --csv: choose one")
    query = FindingQuery(
        cloud=choose("--cloud", cloud, CLOUDS),
        account=account,
        severity_at_least=_severity(severity),
        open_only=open_only or (status or "").lower() == "open",
        status_id=_status(status),
        container_service=choose("--container-service", service, traits.CONTAINER_SERVICES),
        cluster=cluster,
        namespace=namespace,
        finding_type=finding_type,
        source=_source(source),
        text=search or None,
        since=parse_since(since, now_ms()) if since else None,
        limit=limit,
        cursor=cursor,
    )
    db = open_configured_store(config, store)
    try:
        if running or priority_at_least is not None:
            page = images.prioritized(db, query, running=running, least=priority_at_least)
            total = MatchCount(len(page.items), exact=True)
        else:
            try:
                page = db.query(query)
            except ValueError:
                if cursor is None:
                    raise
                raise ConfigError(f"--cursor: {cursor[:40]!r} is not a cursor `findings list` printed") from None
            total = db.count(query)
    finally:
        db.close()
    if json:
        for item in page.items:
            write_json(item.as_data())
    elif csv:
        write_csv(sys.stdout, page.items)
    else:
        _print_table(page.items)
    counted = f"showing {len(page.items):,} of {'' if total.exact else 'more than '}{total.count:,}"
    hint = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    # On stderr for --json and --csv, so that their output stays machine-readable.
    print(counted + hint, file=sys.stderr if (json or csv) else sys.stdout)


CLOUDS: Final = vocabulary.CLOUDS
MAX_PAGE: Final = 500
STATUSES: Final = {name.lower().replace(" ", "-"): sid for sid, name in ocsf.STATUS_NAMES.items()}
CSV_COLUMNS: Final = (
    "id", "severity", "status", "cloud", "account", "service", "cluster", "namespace", "source",
    "event_time", "last_seen", "title",
)  # fmt: skip
_PERIOD = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_MS: Final = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def choose(option: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """Match `value` case-insensitively against a fixed vocabulary; reject anything else, naming the choices.

    The same reading as a route condition's (`corral.vocabulary.choose`), so an option and a `when` key agree.
    """
    return None if value is None else vocabulary.choose(option, value, allowed)


def _severity(value: str | None) -> int | None:
    name = choose("--severity-at-least", value, [ocsf.SEVERITY_NAMES[s].lower() for s in (1, 2, 3, 4, 5, 6)])
    return None if name is None else ocsf.SEVERITY_IDS[name]


def _status(value: str | None) -> int | None:
    name = choose("--status", value, ["open", *(n for n in STATUSES if n not in ("unknown", "other"))])
    return None if name in (None, "open") else STATUSES[name]


def _source(value: str | None) -> str | None:
    # The registry (every source module) is loaded only for a --source filter.
    return None if value is None else vocabulary.choose("--source", value, vocabulary.sources())


def parse_since(value: str, now: int) -> int:
    """Read `--since`: a period back from now (30m, 24h, 7d, 2w) or a UTC date or date-time."""
    text = value.strip().lower()
    period = _PERIOD.fullmatch(text)
    if period:
        return now - int(period.group(1)) * _UNIT_MS[period.group(2)]
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since: {value!r} is neither a period (30m, 24h, 7d, 2w) nor a date (2025-06-01, 2025-06-01T12:00Z)"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def _row(item: StoredFinding) -> dict[str, str]:
    doc = item.document
    ctx = container_context(doc)
    event = doc.get("time")
    return {
        "id": item.id[:SHORT_ID],
        "severity": ocsf.SEVERITY_NAMES.get(item.severity_id, "?"),
        "status": ocsf.STATUS_NAMES.get(item.status_id, "?"),
        "cloud": str(doc.get("cloud", {}).get("provider", "")),
        "account": item.key[1],
        "service": traits.read(doc).get(traits.SERVICE, "-"),
        "cluster": ctx.cluster or "",
        "namespace": ctx.namespace or "",
        "source": item.key[0],
        "event_time": _iso(event if isinstance(event, int) else None),
        "last_seen": _iso(item.last_seen),
        "title": str(doc.get("finding_info", {}).get("title") or item.key[2]),
    }


SHORT_ID: Final = 12
"""Characters of the id the list shows: unique in practice, and `findings show` takes any unique prefix."""


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else ""


def _cell(text: str) -> str:
    # CSV is read on a terminal too: control and bidirectional characters are replaced as in the table
    # (a leading tab or carriage return with them). A cell starting with =, +, - or @ is a formula to a
    # spreadsheet: attacker text must stay text.
    safe = plain(text)
    return "'" + safe if safe[:1] in ("=", "+", "-", "@") else safe


def write_csv(out: TextIO, items: Sequence[StoredFinding]) -> None:
    """Write one header row and a row per finding; cells are safe on a terminal and in a spreadsheet."""
    writer = csv_module.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = _row(item)
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])


def _print_table(items: Sequence[StoredFinding]) -> None:
    table = Table(show_lines=False)
    for column in ("id", "sev", "status", "cloud"):
        table.add_column(column, no_wrap=True)
    for column in ("account", "service", "cluster/namespace", "event time"):
        table.add_column(column, overflow="fold", max_width=24)
    table.add_column("title", overflow="fold", min_width=20, ratio=1)
    for item in items:
        row = _row(item)
        table.add_row(
            row["id"],
            row["severity"],
            row["status"],
            shown(row["cloud"]),
            shown(row["account"]),
            shown(row["service"]),
            shown("/".join(x for x in (row["cluster"], row["namespace"]) if x) or "-"),
            row["event_time"][:16].replace("T", " ") or "-",
            shown(row["title"][:120]),
        )
    make_console().print(table)


@app.command("show")
def show(
    finding: Annotated[
        str,
        typer.Argument(help="The id from `findings list` (any unique prefix) or the finding's own uid (e.g. an ARN)."),
    ],
    account: Annotated[str | None, typer.Option(help="Account, when the same uid exists in several.")] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show one finding with every field, its console link and its history."""
    db = open_configured_store(config, store)
    try:
        found = _find(db, finding, account)
        history = db.history(found.key) if found else []
    finally:
        db.close()
    if found is None:
        raise ConfigError(f"no stored finding has id or uid {finding!r} (ids are in `corral findings list`)")
    if json:
        payload = found.as_data() | {"history": [h._asdict() for h in history]}
        write_json(payload, indent=True)
        return
    from corral.sinks.chat import console_url  # noqa: PLC0415 - the chat sink's modules only for this page

    console = make_console()
    doc = found.document
    info = doc.get("finding_info", {})
    cloud = doc.get("cloud", {})
    product = doc.get("metadata", {}).get("product", {})
    console.print(f"[bold]{shown(str(info.get('title') or found.key[2]))}[/bold]")
    ctx = container_context(doc)
    fields = [
        ("id", found.id),
        ("severity", ocsf.SEVERITY_NAMES.get(found.severity_id, "?")),
        ("status", ocsf.STATUS_NAMES.get(found.status_id, "?")),
        ("class", doc.get("class_name")),
        ("type", ", ".join(str(t) for t in info.get("types") or [])),
        ("source", f"{product.get('name') or found.key[0]} ({found.key[0]})"),
        ("cloud", cloud.get("provider")),
        ("account", found.key[1]),
        ("region", cloud.get("region")),
        ("uid", found.key[2]),
        ("event time", _time(doc.get("time") if isinstance(doc.get("time"), int) else None) + " (source clock)"),
        ("modified", _time(ocsf.modified_time(doc)) + " (source clock)"),
        ("first seen", _time(found.first_seen) + " (Corral)"),
        ("last seen", _time(found.last_seen) + " (Corral)"),
        ("versions", str(found.versions)),
        ("cluster", ctx.cluster),
        ("namespace", ctx.namespace),
        ("pod", ctx.pod),
        ("container", ctx.container),
        ("image", ctx.image_digest or ctx.image),
        ("console", console_url(doc) or "none given by the source"),
        ("description", info.get("desc") or doc.get("message")),
    ]
    if found.suppression:
        fields.append(("suppressed", f"{found.suppression.reason} ({found.suppression.by})"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in fields:
        if value:
            grid.add_row(name, shown(str(value)))
    console.print(grid)
    table = Table(title="history")
    for column in ("at (Corral)", "change", "severity", "status"):
        table.add_column(column)
    for h in history:
        table.add_row(
            _time(h.at), h.kind, ocsf.SEVERITY_NAMES.get(h.severity_id, "?"), ocsf.STATUS_NAMES.get(h.status_id, "?")
        )
    console.print(table)


def _find(store: Store, id_or_uid: str, account: str | None) -> StoredFinding | None:
    """Return the finding with this id (or unique id prefix) or uid, by the store's id index.

    Raise ConfigError when a prefix or uid names more than one finding (an account narrows a uid).
    """
    if not id_or_uid.strip():
        raise ConfigError("the finding id is empty: give the id from `findings list` (or a prefix), or the uid")
    found = store.find(id_or_uid, limit=50 if account else 2)
    if account is not None:
        found = [item for item in found if item.key[1].lower() == account.lower()]
    exact = [item for item in found if item.id == id_or_uid.lower() or item.key[2] == id_or_uid]
    candidates = exact or found
    if len(candidates) > 1:
        names = ", ".join(f"{item.id} ({item.key[1]})" for item in candidates[:5])
        raise ConfigError(f"{id_or_uid!r} names more than one finding: {names}; give more of the id or --account")
    return candidates[0] if candidates else None


@deadletter_app.command("list")
def deadletter_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many (1 to 10,000).")] = 50,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List rejected inputs, newest first, with their reasons."""
    db = open_configured_store(config, store)
    try:
        letters = db.dead_letters(limit=limit)
    finally:
        db.close()
    if json:
        for letter in letters:
            row = {
                "id": letter.id,
                "at": letter.at,
                "source": letter.source,
                "ref": letter.ref,
                "reason": letter.reason,
                "sha256": letter.sha256,
                "size": letter.size,
            }
            write_json(row)
        return
    table = Table()
    for column in ("id", "at", "source", "input", "reason"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(str(letter.id), _time(letter.at), letter.source or "-", shown(letter.ref), shown(letter.reason))
    make_console().print(table)


@deadletter_app.command("show")
def deadletter_show(
    letter_id: Annotated[str, typer.Argument(help="The id from `corral deadletter list`.")],
    store: StoreOption = None,
    config: ConfigOption = None,
) -> None:
    """Print one rejected input's reason on stderr and its raw bytes on stdout."""
    db = open_configured_store(config, store)
    try:
        letter = db.dead_letter(letter_id)
    finally:
        db.close()
    if letter is None:
        raise ConfigError(f"no dead letter with id {letter_id!r}")
    print(plain(f"{letter.ref}: {letter.reason} (sha256 {letter.sha256}, {letter.size} bytes)"), file=sys.stderr)
    sys.stdout.buffer.write(letter.raw)
