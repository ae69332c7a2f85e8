"""Read what the finding list, the coverage drill-down and a finding page show (the I/O edge of those parts).

The list is most severe first, then newest: the store counts each severity band of the filtered
query and reads only the band pages the requested page covers, so a page costs about the same at
any number of findings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Final

from corral import ocsf, priority
from corral.context import container_context
from corral.dashboard.page import (
    DIGEST,
    PAGE_SIZE,
    RANGES,
    Detail,
    Drilldown,
    Filters,
    ImageDetail,
    Listing,
    Row,
    ViewModel,
    row,
)
from corral.stores.base import FindingQuery, Store, StoredFinding

READ_PAGE: Final = 500
DRILL_LIMIT: Final = 2_000
"""Findings a drill-down reads at most, newest first; beyond that it says it counted a sample."""
STATUS_IDS: Final = {name.lower(): sid for sid, name in ocsf.STATUS_NAMES.items()}
# Most severe first: Fatal … Informational, then Unknown and Other (which carry no order).
SEVERITY_ORDER: Final = (6, 5, 4, 3, 2, 1, 0, 99)


def store_query(filters: Filters, now: int) -> FindingQuery:
    """The store query of the page's filters (the store matches text case-insensitively)."""
    severity = ocsf.SEVERITY_IDS.get(filters.severity.lower()) if filters.severity else None
    status = STATUS_IDS.get(filters.status) if filters.status not in ("open", "all") else None
    return FindingQuery(
        cloud=filters.cloud,
        account=filters.account,
        container_service=filters.service,
        cluster=filters.cluster,
        namespace=filters.namespace,
        severity_at_least=severity,
        status_id=status,
        open_only=filters.status == "open",
        source=filters.source,
        text=filters.q,
        since=now - RANGES[filters.since] if filters.since else None,
        limit=READ_PAGE,
    )


def _scan(store: Store, query: FindingQuery, limit: int) -> Iterator[StoredFinding]:
    cursor = None
    read = 0
    while read < limit:
        page = store.query(query._replace(cursor=cursor, limit=min(READ_PAGE, limit - read)))
        yield from page.items
        read += len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def most_severe_first(
    store: Store, query: FindingQuery, skip: int, size: int, present: Collection[int]
) -> tuple[list[Row], int, bool]:
    """Return `size` matches after `skip`, most severe first then newest, the number of matches and its exactness.

    One count gives the total; each severity band is then read newest first until the page is
    full. Only a later page counts the bands it skips whole. A band of a severity no finding has
    (not in `present`, from the store's grouped counts) is skipped unread, where an empty filtered
    read may have to walk the whole listing index.
    """
    total = store.count(query)
    rows: list[Row] = []
    for severity in SEVERITY_ORDER:
        if len(rows) >= size or total.count == 0:
            break
        if severity not in present or (query.severity_at_least is not None and not 1 <= severity <= 6):
            continue  # an "at least" filter leaves out severities that carry no order
        band = query._replace(severity_id=severity)
        if skip:
            counted = store.count(band)
            if skip >= counted.count and counted.exact:
                skip -= counted.count
                continue
        items = list(_scan(store, band, skip + size - len(rows)))
        rows += [row(item) for item in items[skip:]]
        skip = max(0, skip - len(items))
    return rows[:size], total.count, total.exact


def select(store: Store, filters: Filters, now: int, present: Collection[int]) -> Listing:
    """Return the requested page of matching findings, most severe first, with the number of matches."""
    skip = (filters.page - 1) * PAGE_SIZE
    rows, total, exact = most_severe_first(store, store_query(filters, now), skip, PAGE_SIZE, present)
    return Listing(filters, rows, total, exact)


def urgent(store: Store, present: Collection[int], limit: int = PAGE_SIZE) -> tuple[list[Row], int]:
    """Return the open critical and high findings, most severe first (at most `limit`), and how many there are."""
    rows, total, _ = most_severe_first(store, FindingQuery(severity_at_least=4, open_only=True), 0, limit, present)
    return rows, total


def drilldown(store: Store, service: str, now: int, window_ms: int) -> Drilldown:
    """Count one service's findings per cluster and per account last seen within the window (as coverage does).

    SQL stores count every finding in one grouped query; otherwise the newest `DRILL_LIMIT` are
    read and counted, and the page says it counted a sample.
    """
    clusters: Counter[str] = Counter()
    accounts: Counter[tuple[str, str]] = Counter()
    newest_cluster: dict[str, int] = {}
    newest_account: dict[tuple[str, str], int] = {}

    def add(cloud: str, account: str, cluster: str | None, count: int, when: int) -> None:
        accounts[(cloud, account)] += count
        newest_account[(cloud, account)] = max(when, newest_account.get((cloud, account), 0))
        if cluster:
            clusters[cluster] += count
            newest_cluster[cluster] = max(when, newest_cluster.get(cluster, 0))

    since = now - window_ms
    grouped = store.place_counts(service, since)
    if grouped is not None:
        for place in grouped:
            add(place.cloud, place.account, place.cluster, place.count, place.newest)
        read = total = sum(place.count for place in grouped)
    else:
        query = FindingQuery(container_service=service, since=since, limit=READ_PAGE)
        read = 0
        for item in _scan(store, query, DRILL_LIMIT):
            read += 1
            r = row(item)
            add(r.cloud, r.account, r.cluster, 1, item.last_seen)
        total = store.count(query).count if read >= DRILL_LIMIT else read
    return Drilldown(
        read=read,
        total=total,
        service=service,
        clusters=[(c, n, newest_cluster[c]) for c, n in sorted(clusters.items())],
        accounts=[(cloud, a, n, newest_account[(cloud, a)]) for (cloud, a), n in sorted(accounts.items())],
    )


def overview(view: ViewModel, store: Store, filters: Filters | None, drill: str | None, now: int) -> ViewModel:
    """Add the list (served page) or the urgent findings (report file), and the drill-down, to a view."""
    if filters is None:
        rows, total = urgent(store, view.severities)
        view = replace(view, newest=rows, urgent_total=total)
    else:
        view = replace(view, listing=select(store, filters, now, view.severities))
    if drill is not None:
        view = replace(view, drilldown=drilldown(store, drill, now, view.matrix.window_ms))
    return view


def detail(store: Store, finding_id: str, now: int) -> Detail | None:
    """Read one finding by its id (or a unique id prefix), its history and its deliveries; None when none or several."""
    found = store.find(finding_id, limit=2)
    if len(found) != 1:
        return None
    item = found[0]
    key = item.key
    history = store.history(key)
    deliveries = store.ledger_for([h.version for h in history])
    order = {h.version: i for i, h in enumerate(history)}
    deliveries.sort(key=lambda e: (order.get(e.version, len(order)), e.sink))
    digest = container_context(item.document).image_digest or ""
    known = bool(DIGEST.fullmatch(digest)) and _image_known(store, digest)
    return Detail(finding=item, history=history, deliveries=deliveries, generated_at=now, image_known=known)


def _image_known(store: Store, digest: str) -> bool:
    # Named, seen running or vulnerable: one key lookup (a tag-only sighting counts through the
    # names it was matched by, so a digest it matched is named).
    return store.image_digests(digest, limit=1) == [digest]


def image(store: Store, digest: str, weights: priority.Weights, now: int) -> ImageDetail | None:
    """Read one image from the inventory, its CVEs prioritized now as `corral images show` does; None when unknown."""
    from corral.cli.images import rank  # noqa: PLC0415 (the CLI's ranking, loaded only when an image page is asked)

    if not _image_known(store, digest):
        return None
    (ranked,) = rank(store, weights, now, [digest])
    return ImageDetail(ranked.evidence, ranked.runtime, ranked.vulnerabilities, generated_at=now)
