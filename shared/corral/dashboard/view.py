"""Read what the dashboard shows from a store (the I/O edge of the page)."""

from __future__ import annotations

from collections.abc import Mapping

from corral import coverage, health
from corral.dashboard.page import DAY_MS, TREND_DAYS, ViewModel, newest_entry, open_counts, trend
from corral.stores.base import FindingQuery, Store

NEWEST: int = 8


def build(store: Store, windows: Mapping[str, int], now: int, window_ms: int) -> ViewModel:
    """Read counts, the trend, the newest critical and high findings, the matrix and source health."""
    report = health.report(store, windows, now)
    matrix = coverage.matrix(coverage.observe(store, report, window_ms))
    seen: list[tuple[int, int]] = []
    cursor = None
    while True:
        page = store.query(FindingQuery(since=now - TREND_DAYS * DAY_MS, limit=500, cursor=cursor))
        seen += [(item.first_seen, item.last_seen) for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    urgent = store.query(FindingQuery(severity_at_least=4, open_only=True, limit=NEWEST)).items
    return ViewModel(
        generated_at=now,
        store=store.url,
        open_counts=open_counts(store.counts()),
        trend=trend(seen, now),
        newest=[newest_entry(item) for item in urgent],
        matrix=matrix,
        health=report,
    )
