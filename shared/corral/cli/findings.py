"""`corral findings list|show` and `corral deadletter list|show`: read the store."""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from corral import ocsf
from corral.cli.options import ConfigOption, JsonOption, StoreOption
from corral.cli.options import store as open_configured_store
from corral.context import container_context
from corral.errors import ConfigError
from corral.stores.base import FindingQuery, Store, StoredFinding

app = typer.Typer(help="List and show stored findings.", no_args_is_help=True)
deadletter_app = typer.Typer(help="List and show rejected inputs kept in the dead letter.", no_args_is_help=True)


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ms else "-"


@app.command("list")
def list_findings(
    cloud: Annotated[str | None, typer.Option(help="AWS, Azure or GCP.")] = None,
    account: Annotated[str | None, typer.Option(help="Account, subscription or project id.")] = None,
    severity: Annotated[str | None, typer.Option("--severity-at-least", help="low, medium, high or critical.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only findings that are not closed.")] = False,
    service: Annotated[str | None, typer.Option("--container-service", help="EKS, AKS, GKE, Cloud Run, …")] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster name.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace.")] = None,
    finding_type: Annotated[str | None, typer.Option("--type", help="Finding type; * globs allowed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List stored findings, newest first."""
    severity_id = None
    if severity is not None:
        severity_id = ocsf.SEVERITY_IDS.get(severity.lower())
        if severity_id is None:
            raise ConfigError(f"--severity-at-least: unknown severity {severity!r}")
    query = FindingQuery(
        cloud=cloud,
        account=account,
        severity_at_least=severity_id,
        open_only=open_only,
        container_service=service,
        cluster=cluster,
        namespace=namespace,
        finding_type=finding_type,
        limit=limit,
    )
    db = open_configured_store(config, store)
    try:
        page = db.query(query)
    finally:
        db.close()
    if json:
        for item in page.items:
            sys.stdout.write(orjson.dumps(item.as_data()).decode() + "\n")
        return
    table = Table(show_lines=False)
    for column in ("last seen", "sev", "status", "cloud", "account", "service", "cluster/namespace", "title"):
        table.add_column(column, overflow="fold")
    for item in page.items:
        doc = item.document
        ctx = container_context(doc)
        table.add_row(
            _time(item.last_seen),
            ocsf.SEVERITY_NAMES.get(item.severity_id, "?"),
            ocsf.STATUS_NAMES.get(item.status_id, "?"),
            doc["cloud"]["provider"],
            escape(item.key[1]),
            escape(
                next(
                    (
                        t["values"][0]
                        for t in doc["finding_info"].get("traits", [])
                        if t.get("name") == "container_service"
                    ),
                    "-",
                )
            ),
            escape("/".join(x for x in (ctx.cluster, ctx.namespace) if x) or "-"),
            escape(str(doc["finding_info"].get("title", doc["finding_info"]["uid"]))[:120]),
        )
    Console().print(table)


@app.command("show")
def show(
    uid: Annotated[str, typer.Argument(help="The finding's own id (finding_info.uid), e.g. a GuardDuty ARN.")],
    account: Annotated[str | None, typer.Option(help="Account, when the same uid exists in several.")] = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show one finding with its history."""
    db = open_configured_store(config, store)
    try:
        found = _find(db, uid, account)
        history = db.history(found.key) if found else []
    finally:
        db.close()
    if found is None:
        raise ConfigError(f"no stored finding has uid {uid!r}")
    if json:
        payload = found.as_data() | {"history": [dataclasses.asdict(h) for h in history]}
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console = Console()
    doc = found.document
    console.print(f"[bold]{escape(str(doc['finding_info'].get('title', uid)))}[/bold]")
    console.print(
        f"{doc['class_name']} · {doc['severity']} · {doc.get('status', '?')} · {escape(' / '.join(found.key))}"
    )
    console.print(
        f"first seen {_time(found.first_seen)} · last seen {_time(found.last_seen)} · {found.versions} version(s)"
    )
    ctx = container_context(doc)
    if not ctx.is_empty():
        parts = {
            "cluster": ctx.cluster,
            "namespace": ctx.namespace,
            "pod": ctx.pod,
            "container": ctx.container,
            "image": ctx.image_digest or ctx.image,
        }
        console.print(escape(" · ".join(f"{k} {v}" for k, v in parts.items() if v)))
    if found.suppression:
        console.print(f"suppressed: {escape(found.suppression.reason)} ({escape(found.suppression.by)})")
    table = Table(title="history")
    for column in ("at", "change", "severity", "status"):
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
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
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
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return
    table = Table()
    for column in ("id", "at", "source", "input", "reason"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(str(letter.id), _time(letter.at), letter.source or "-", escape(letter.ref), escape(letter.reason))
    Console().print(table)


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
    print(f"{letter.ref}: {letter.reason} (sha256 {letter.sha256}, {letter.size} bytes)", file=sys.stderr)
    sys.stdout.buffer.write(letter.raw)
