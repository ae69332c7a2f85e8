"""Source health: is each source still delivering for each account, and what is stuck?

A source that stops delivering looks exactly like a quiet week, so each source has a window: no
delivery for an account within it makes that (source, account) **silent**. Silence raises one
synthetic finding per (source, account) — a Detection Finding from product "Corral" — created
when the silence starts and closed when the source delivers again. These findings go through the
pipeline (store, routing, sinks) like any other, so the people who read findings hear about it.

Each source declares its default window, and the delivery cadence behind it, in its own
`FACTS` (`corral.sources`); it is overridable per source, in minutes, in the `[sources]` table
of corral.toml.

An account with no active finding at all is legitimately quiet; the window is a bet on activity,
which is why it is configurable and why the finding says "silent", not "broken".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from corral import ocsf, sources
from corral.records import NamedTuple
from corral.stores.base import FindingKey, FindingQuery, SourceState, Store

if TYPE_CHECKING:
    from corral.pipeline import Pipeline

MINUTE_MS: Final = 60_000
FALLBACK_WINDOW: Final = 24 * 60
PRODUCT: Final = {"name": "Corral", "uid": "corral", "vendor_name": "Corral"}
SILENT_TYPE: Final = "Source Silent"
CHECK_REF: Final = "corral:source-check"

_AWS_ACCOUNT = re.compile(r"\d{12}")
_AZURE_SUBSCRIPTION = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Health = Literal["ok", "silent"]


class SourceHealth(NamedTuple):
    """The health of one source for one account (a NamedTuple: a report builds one per source and account)."""

    source: str
    account_uid: str
    cloud: str
    last_delivery: int
    last_finding_time: int | None
    deliveries: int
    window_ms: int
    state: Health
    dead_letters: int = 0

    @property
    def silent_since(self) -> int:
        """When the window ran out after the last delivery (the start of a silence)."""
        return self.last_delivery + self.window_ms

    def to_json(self) -> dict[str, Any]:
        """Return the row as plain data."""
        source, account, cloud, last_delivery, last_finding_time, deliveries, window, state, dead = self
        return {
            "source": source,
            "account_uid": account,
            "cloud": cloud,
            "last_delivery": last_delivery,
            "last_finding_time": last_finding_time,
            "deliveries": deliveries,
            "window_minutes": window // MINUTE_MS,
            "state": state,
            "silent_since": self.silent_since if state == "silent" else None,
            "dead_letters": dead,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Every (source, account), the dead letter per source, the oldest pending delivery per sink."""

    now: int
    sources: tuple[SourceHealth, ...]
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    oldest_pending: Mapping[str, int] = field(default_factory=dict)
    """Sink id → creation time of its oldest pending ledger row."""
    raised: tuple[str, ...] = ()
    """Finding uids of silences raised by this check."""
    closed: tuple[str, ...] = ()
    """Finding uids of silences closed by this check."""

    def oldest_pending_age_ms(self) -> int | None:
        """Age of the oldest pending delivery over every sink, or None when nothing is pending."""
        return self.now - min(self.oldest_pending.values()) if self.oldest_pending else None

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain data."""
        return {
            "now": self.now,
            "sources": [s.to_json() for s in self.sources],
            "dead_letters": dict(self.dead_letters),
            "oldest_pending": {
                sink: {"created": created, "age_ms": self.now - created}
                for sink, created in sorted(self.oldest_pending.items())
            },
            "oldest_pending_age_ms": self.oldest_pending_age_ms(),
            "raised": list(self.raised),
            "closed": list(self.closed),
        }


def window_ms(source: str, overrides: Mapping[str, int]) -> int:
    """Return a source's silence window in ms: the configured minutes, else the default."""
    facts = sources.FACTS.get(source)
    return overrides.get(source, facts.window_minutes if facts else FALLBACK_WINDOW) * MINUTE_MS


def guess_cloud(source: str, account_uid: str) -> str:
    """Return the cloud an account id looks like (12 digits AWS, a GUID Azure), else the source's own.

    Example:
        >>> guess_cloud("gcp.scc", "111122223333")
        'AWS'
    """
    if _AWS_ACCOUNT.fullmatch(account_uid):
        return "AWS"
    if _AZURE_SUBSCRIPTION.fullmatch(account_uid):
        return "Azure"
    facts = sources.FACTS.get(source)
    return facts.home_cloud if facts else "GCP"


def assess(
    states: Sequence[SourceState],
    clouds: Mapping[tuple[str, str], str],
    overrides: Mapping[str, int],
    now: int,
    dead_letters: Mapping[str, int] | None = None,
) -> tuple[SourceHealth, ...]:
    """Decide ok or silent for each (source, account) (pure); Corral's own findings are not a source."""
    found = []
    windows: dict[str, int] = {}  # a few sources over many accounts: each window worked out once
    dead = dead_letters or {}
    own = PRODUCT["uid"]
    # The dashboard asks for this every few seconds, over every source and account: each row is
    # unpacked once and built positionally.
    for source, account, last_delivery, last_finding_time, deliveries, _ in states:
        if source == own:
            continue
        window = windows.get(source)
        if window is None:
            window = windows[source] = window_ms(source, overrides)
        found.append(
            SourceHealth(
                source,
                account,
                clouds.get((source, account)) or guess_cloud(source, account),
                last_delivery,
                last_finding_time,
                deliveries,
                window,
                "silent" if now - last_delivery > window else "ok",
                dead.get(source, 0),
            )
        )
    return tuple(found)


def silence_uid(source: str, account_uid: str) -> str:
    """Return the finding uid of a (source, account) silence."""
    return f"corral:silent:{source}:{account_uid}"


def silence_key(source: str, account_uid: str) -> FindingKey:
    """Return the store key of a (source, account) silence finding."""
    return (PRODUCT["uid"], account_uid, silence_uid(source, account_uid))


def silence_finding(health: SourceHealth, now: int, *, resolved: bool) -> ocsf.Finding:
    """Build the OCSF Detection Finding for a silence: Create while silent, Close once it recovers (pure)."""
    facts = sources.FACTS.get(health.source)
    name = facts.name if facts else health.source
    hours = health.window_ms / 3_600_000
    if resolved:
        message = f"{name} delivers again for {health.account_uid}"
    else:
        message = f"{name} has delivered nothing for {health.account_uid} for more than {hours:g} h"
    finding = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=ocsf.CLOSE if resolved else ocsf.CREATE,
        time=now,
        severity_id=3,
        status_id=ocsf.STATUS_RESOLVED if resolved else ocsf.STATUS_NEW,
        product=PRODUCT,
        delivery_id=None,
    )
    finding["message"] = message
    finding["cloud"] = ocsf.cloud(health.cloud, health.account_uid)
    finding["finding_info"] = {
        "uid": silence_uid(health.source, health.account_uid),
        "title": f"{name} silent for {health.account_uid}",
        "desc": (
            f"No delivery from {health.source} for account {health.account_uid} within its window of {hours:g} h "
            f"(last delivery at {health.last_delivery}). Check the export, the event bus and the detector."
        ),
        "types": [SILENT_TYPE],
        "created_time": health.silent_since,
        "first_seen_time": health.silent_since,
        "last_seen_time": now,
        # The check's clock orders the versions, so the close is never older than the create.
        "modified_time": now,
    }
    finding["unmapped"] = {
        "corral": {
            "source": health.source,
            "last_delivery": health.last_delivery,
            "window_minutes": health.window_ms // MINUTE_MS,
        }
    }
    return finding


def silence_changes(
    healths: Sequence[SourceHealth], open_silences: Mapping[FindingKey, bool], now: int
) -> list[ocsf.Finding]:
    """Return the findings to ingest (pure): one Create per new silence, one Close per recovery.

    `open_silences` maps the key of every stored silence finding to whether it is open; a
    silence already open is not raised again.
    """
    found = []
    for health in healths:
        is_open = open_silences.get(silence_key(health.source, health.account_uid))
        if health.state == "silent" and not is_open:
            found.append(silence_finding(health, now, resolved=False))
        elif health.state == "ok" and is_open:
            found.append(silence_finding(health, now, resolved=True))
    return found


# I/O edge ----------------------------------------------------------------------------------------


def account_clouds(store: Store, states: Sequence[SourceState]) -> dict[tuple[str, str], str]:
    """Each account's cloud as its deliveries recorded it, else from one of its stored findings, else its id's shape.

    Only sources recorded before the store kept the cloud need a finding read back.
    """
    by_account: dict[str, str] = {s.account_uid: s.cloud for s in states if s.cloud}
    for state in states:
        if state.account_uid in by_account:
            continue
        page = store.query(FindingQuery(account=state.account_uid, limit=1))
        if page.items:
            by_account[state.account_uid] = str(page.items[0].document["cloud"]["provider"])
    return {
        (s.source, s.account_uid): by_account.get(s.account_uid) or guess_cloud(s.source, s.account_uid) for s in states
    }


def report(store: Store, overrides: Mapping[str, int], now: int) -> HealthReport:
    """Read the store and assess every source (no writes)."""
    states, dead, oldest_pending = store.health_inputs()
    healths = assess(states, account_clouds(store, states), overrides, now, dead)
    return HealthReport(now, healths, dead, oldest_pending)


def check_sources(pipeline: Pipeline, now: int) -> HealthReport:
    """Assess every source and raise or close silence findings through the pipeline.

    Entry points (a scheduled function) and `corral sources --check` call this. The findings
    are ingested as relayed OCSF documents, so they are stored, routed and delivered like any.
    """
    from corral.pipeline import Inbound  # noqa: PLC0415 - readers of health (coverage, dashboard) skip the sinks

    base = report(pipeline.store, pipeline.settings.source_windows, now)
    stored: dict[FindingKey, bool] = {}
    for health in base.sources:
        key = silence_key(health.source, health.account_uid)
        item = pipeline.store.get(key)
        if item is not None:
            stored[key] = not item.closed
    changes = silence_changes(base.sources, stored, now)
    if changes:
        pipeline.ingest([Inbound(finding, ref=CHECK_REF) for finding in changes])
    raised = tuple(f["finding_info"]["uid"] for f in changes if f["activity_id"] == ocsf.CREATE)
    closed = tuple(f["finding_info"]["uid"] for f in changes if f["activity_id"] == ocsf.CLOSE)
    return HealthReport(base.now, base.sources, base.dead_letters, base.oldest_pending, raised, closed)
