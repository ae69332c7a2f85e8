"""Read what the finding list, the coverage drill-down and a finding page show (the I/O edge of those parts).

The list is sorted most severe first, then newest: it reads the matching findings a page of the
store at a time, up to `SCAN_LIMIT`, and says "more than N" beyond that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Final

from corral import ocsf
from corral.dashboard.page import (
    PAGE_SIZE,
    RANGES,
    Detail,
    Drilldown,
    Filters,
    Listing,
    Row,
    ViewModel,
    critical_first,
    row,
)
from corral.stores.base import FindingKey, FindingQuery, Store, StoredFinding

SCAN_LIMIT: Final = 5_000
READ_PAGE: Final = 500


def store_query(filters: Filters, now: int) -> FindingQuery:
    """The store's part of the filters (the store matches these exactly)."""
    severity = ocsf.SEVERITY_IDS.get(filters.severity.lower()) if filters.severity else None
    return FindingQuery(
        cloud=filters.cloud,
        account=filters.account,
        container_service=filters.service,
        cluster=filters.cluster,
        namespace=filters.namespace,
        severity_at_least=severity,
        open_only=filters.status == "open",
        since=now - RANGES[filters.since] if filters.since else None,
        limit=READ_PAGE,
    )


def matches(filters: Filters, item: StoredFinding) -> bool:
    """The filters the store does not apply itself: closed status, source and text (case-insensitive)."""
    if filters.status == "closed" and not item.closed:
        return False
    if filters.source and filters.source.lower() not in (item.key[0].lower(), _source_id(item)):
        return False
    if filters.q:
        needle = filters.q.lower()
        doc = item.document
        names = [str(doc.get("finding_info", {}).get("title") or "")]
        names += [str(r.get("name") or "") for r in doc.get("resources") or () if isinstance(r, dict)]
        if not any(needle in name.lower() for name in names):
            return False
    return True


def _source_id(item: StoredFinding) -> str:
    product = item.key[0].lower()
    return {"google.scc": "gcp.scc", "microsoft.defender_for_cloud": "azure.defender"}.get(product, product)


def _scan(store: Store, query: FindingQuery, limit: int = SCAN_LIMIT) -> Iterator[StoredFinding]:
    cursor = None
    read = 0
    while read < limit:
        page = store.query(replace(query, cursor=cursor))
        yield from page.items
        read += len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def select(store: Store, filters: Filters, now: int) -> Listing:
    """Return the requested page of matching findings, most severe first, with the number of matches."""
    query = store_query(filters, now)
    found: list[Row] = []
    read = 0
    for item in _scan(store, query):
        read += 1
        if matches(filters, item):
            found.append(row(item))
    exact = read < SCAN_LIMIT
    start = (filters.page - 1) * PAGE_SIZE
    return Listing(filters, critical_first(found)[start : start + PAGE_SIZE], len(found), exact)


def urgent(store: Store, limit: int = PAGE_SIZE) -> tuple[list[Row], int]:
    """Return the open critical and high findings, most severe first (at most `limit`), and how many there are."""
    found = [row(item) for item in _scan(store, FindingQuery(severity_at_least=4, open_only=True, limit=READ_PAGE))]
    return critical_first(found)[:limit], len(found)


def drilldown(store: Store, service: str, now: int, window_ms: int) -> Drilldown:
    """Count one service's findings per cluster and per account last seen within the window (as coverage does)."""
    clusters: Counter[str] = Counter()
    accounts: Counter[tuple[str, str]] = Counter()
    newest_cluster: dict[str, int] = {}
    newest_account: dict[tuple[str, str], int] = {}
    query = FindingQuery(container_service=service, since=now - window_ms, limit=READ_PAGE)
    for item in _scan(store, query):
        when = item.last_seen
        r = row(item)
        account = (r.cloud, r.account)
        accounts[account] += 1
        newest_account[account] = max(when, newest_account.get(account, 0))
        if r.cluster:
            clusters[r.cluster] += 1
            newest_cluster[r.cluster] = max(when, newest_cluster.get(r.cluster, 0))
    return Drilldown(
        service=service,
        clusters=[(c, n, newest_cluster[c]) for c, n in sorted(clusters.items())],
        accounts=[(cloud, a, n, newest_account[(cloud, a)]) for (cloud, a), n in sorted(accounts.items())],
    )


def overview(view: ViewModel, store: Store, filters: Filters | None, drill: str | None, now: int) -> ViewModel:
    """Add the list (served page) or the urgent findings (report file), and the drill-down, to a view."""
    rows, total = urgent(store)
    view = replace(view, newest=rows, urgent_total=total)
    if filters is not None:
        view = replace(view, listing=select(store, filters, now))
    if drill is not None:
        view = replace(view, drilldown=drilldown(store, drill, now, view.matrix.window_ms))
    return view


def detail(store: Store, key: FindingKey, now: int) -> Detail | None:
    """Read one finding, its history and its deliveries; None when there is no such finding."""
    item = store.get(key)
    if item is None:
        return None
    history = store.history(key)
    deliveries = store.ledger_for([h.version for h in history])
    order = {h.version: i for i, h in enumerate(history)}
    deliveries.sort(key=lambda e: (order.get(e.version, len(order)), e.sink))
    return Detail(finding=item, history=history, deliveries=deliveries, generated_at=now)
