"""Read what the dashboard shows from a store (the I/O edge of the page).

Everything comes from the store's own aggregates and one page of findings: counts, the per-day
trend and the newest finding per coverage cell are computed by the store, so the page costs the
same at any number of findings.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral import coverage, health
from corral.dashboard.page import DAY_MS, TREND_DAYS, ViewModel, open_counts
from corral.stores.base import Store, TrendDay


def trend_days(rows: list[TrendDay], now: int, days: int = TREND_DAYS) -> list[tuple[int, int, int]]:
    """Return (day start, first seen, last seen) for each of the last `days` UTC days, oldest first (pure)."""
    today = now - now % DAY_MS
    by_day = {row.day: row for row in rows}
    starts = [today - (days - 1 - i) * DAY_MS for i in range(days)]
    return [(day, by_day[day].first_seen if day in by_day else 0, by_day[day].last_seen if day in by_day else 0)
            for day in starts]  # fmt: skip


def build(store: Store, windows: Mapping[str, int], now: int, window_ms: int) -> ViewModel:
    """Read counts, the trend, the matrix and source health; `listing.overview` adds the findings."""
    report = health.report(store, windows, now)
    matrix = coverage.matrix(coverage.observe(store, report, window_ms))
    first_day = now - now % DAY_MS - (TREND_DAYS - 1) * DAY_MS
    counts = store.counts()
    return ViewModel(
        generated_at=now,
        store=store.url,
        open_counts=open_counts(counts),
        severities=frozenset(r.severity_id for r in counts),
        trend=trend_days(store.trend(first_day), now),
        matrix=matrix,
        health=report,
    )
