"""The dashboard page, rendered on the server as one self-contained HTML document.

`render_page(view)` is pure and needs no JavaScript: the page is static HTML with one `<style>`
block (allowed by its hash in the Content-Security-Policy) and inline SVG, so a strict policy
(`default-src 'none'`) holds and the same string is both the served page and the report file.
Every value that comes from a finding passes through `html.escape`: titles, account ids and
container names are attacker-influenced text.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from corral import ocsf, traits
from corral.context import container_context
from corral.coverage import Matrix
from corral.health import HealthReport
from corral.stores.base import CountRow, StoredFinding

DAY_MS: Final = 86_400_000
TREND_DAYS: Final = 14
CLOUDS: Final = ("AWS", "Azure", "GCP")
# Count columns, most severe first; Fatal and Other are folded into "other" to keep it readable.
COUNT_COLUMNS: Final = ((5, "Critical"), (4, "High"), (3, "Medium"), (2, "Low"), (1, "Informational"))

CSS: Final = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6475;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;margin-bottom:8px}
th,td{border:1px solid #d5d9e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev-5{color:#fff;background:#8b1a1a}.sev-4{color:#fff;background:#c2410c}.sev-3{background:#fcd34d}
.sev-2{background:#bfdbfe}.sev-1{background:#e5e7eb}
.state{font-size:12px;white-space:nowrap}
.st-covered{background:#bbf7d0}.st-silent{background:#fde68a}.st-unhealthy{background:#fca5a5}
.st-gap{background:#fecaca;font-weight:600}.st-provider-managed{background:#e5e7eb;color:#4b5563}
.st-not-connected{background:#f3f4f6;color:#6b7280}
.ok{background:#bbf7d0}.silent{background:#fde68a}
.ctx{color:#374151;font-size:12px}
svg{background:#fff;border:1px solid #d5d9e0}
.legend span{display:inline-block;margin-right:12px}
.empty{color:#6b7280;font-style:italic}
"""


def csp(*, meta: bool = False) -> str:
    """Return the Content-Security-Policy: nothing but this page's own style block.

    `frame-ancestors` is ignored in a `<meta>` policy, so the report file's policy leaves it out.
    """
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; form-action 'none'"
    return policy if meta else f"{policy}; frame-ancestors 'none'"


@dataclass(frozen=True, slots=True)
class Newest:
    """One critical or high finding with its container context, as the page shows it."""

    title: str
    severity_id: int
    cloud: str
    account: str
    product: str
    service: str
    context: str
    last_seen: int


@dataclass(frozen=True, slots=True)
class ViewModel:
    """Everything the page shows, as plain values (built by `corral.dashboard.view.build`)."""

    generated_at: int
    store: str
    open_counts: Mapping[tuple[str, int], int]
    """(cloud, severity_id) → open findings."""
    trend: Sequence[tuple[int, int, int]]
    """(day start, findings first seen that day, findings last seen that day), oldest first."""
    newest: Sequence[Newest]
    matrix: Matrix
    health: HealthReport


def open_counts(rows: Iterable[CountRow]) -> dict[tuple[str, int], int]:
    """Sum the store's count rows into open findings per (cloud, severity) (pure)."""
    found: Counter[tuple[str, int]] = Counter()
    for row in rows:
        if row.status_id not in ocsf.CLOSED_STATUSES:
            found[(row.cloud, row.severity_id)] += row.count
    return dict(found)


def trend(items: Iterable[tuple[int, int]], now: int, days: int = TREND_DAYS) -> list[tuple[int, int, int]]:
    """Count findings by day of first_seen and of last_seen over the last `days` days (pure)."""
    today = now - now % DAY_MS
    starts = [today - (days - 1 - i) * DAY_MS for i in range(days)]
    first: Counter[int] = Counter()
    last: Counter[int] = Counter()
    for first_seen, last_seen in items:
        first[first_seen - first_seen % DAY_MS] += 1
        last[last_seen - last_seen % DAY_MS] += 1
    return [(day, first[day], last[day]) for day in starts]


def newest_entry(item: StoredFinding) -> Newest:
    """Pick what the page shows of one stored finding (pure)."""
    doc = item.document
    ctx = container_context(doc)
    parts = [
        f"cluster {ctx.cluster}" if ctx.cluster else "",
        f"namespace {ctx.namespace}" if ctx.namespace else "",
        f"pod {ctx.pod}" if ctx.pod else "",
        f"container {ctx.container}" if ctx.container else "",
        f"image {ctx.image_digest or ctx.image}" if (ctx.image or ctx.image_digest) else "",
    ]
    return Newest(
        title=str(doc.get("finding_info", {}).get("title") or item.key[2]),
        severity_id=item.severity_id,
        cloud=str(doc.get("cloud", {}).get("provider", "")),
        account=item.key[1],
        product=str(doc.get("metadata", {}).get("product", {}).get("name") or item.key[0]),
        service=traits.read(doc).get(traits.SERVICE, traits.NO_SERVICE),
        context=", ".join(p for p in parts if p),
        last_seen=item.last_seen,
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms else "-"


def _age(ms: int) -> str:
    hours = ms / 3_600_000
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _counts_section(view: ViewModel) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for _, name in COUNT_COLUMNS)
    rows = []
    for cloud in CLOUDS:
        cells = [view.open_counts.get((cloud, sid), 0) for sid, _ in COUNT_COLUMNS]
        other = sum(n for (c, sid), n in view.open_counts.items() if c == cloud and sid not in dict(COUNT_COLUMNS))
        total = sum(cells) + other
        tds = "".join(
            f'<td class="n" data-cloud="{_e(cloud)}" data-severity="{sid}">{n}</td>'
            for (sid, _), n in zip(COUNT_COLUMNS, cells, strict=True)
        )
        rows.append(
            f'<tr><th scope="row">{_e(cloud)}</th>{tds}<td class="n">{other}</td>'
            f'<td class="n" data-total="{_e(cloud)}">{total}</td></tr>'
        )
    return (
        '<section id="counts"><h2>Open findings by cloud and severity</h2>'
        f"<table><thead><tr><th>cloud</th>{head}<th>other</th><th>total</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _trend_section(view: ViewModel) -> str:
    width, height, pad = 640, 160, 28
    points = list(view.trend)
    if not points:
        return '<section id="trend"><h2>Trend</h2><p class="empty">No data.</p></section>'
    top = max(1, *(max(f, s) for _, f, s in points))
    step = (width - 2 * pad) / max(1, len(points) - 1)

    def xy(i: int, n: int) -> str:
        return f"{pad + i * step:.1f},{height - pad - n * (height - 2 * pad) / top:.1f}"

    first = " ".join(xy(i, f) for i, (_, f, _s) in enumerate(points))
    seen = " ".join(xy(i, s) for i, (_, _f, s) in enumerate(points))
    labels = "".join(
        f'<text x="{pad + i * step:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" fill="#5b6475">'
        f"{_e(datetime.fromtimestamp(day / 1000, UTC).strftime('%m-%d'))}</text>"
        for i, (day, _f, _s) in enumerate(points)
        if i % 2 == 0 or i == len(points) - 1
    )
    return (
        '<section id="trend"><h2>Trend by day (last 14 days)</h2>'
        f'<svg role="img" aria-label="findings first seen and last seen per day" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="4" y="{pad - 8}" font-size="10" fill="#5b6475">max {top}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#9ca3af"/>'
        f'<polyline fill="none" stroke="#c2410c" stroke-width="2" points="{first}"/>'
        f'<polyline fill="none" stroke="#2563eb" stroke-width="2" stroke-dasharray="4 3" points="{seen}"/>'
        f"{labels}</svg>"
        '<p class="legend"><span>orange: first seen</span><span>blue dashed: last seen</span></p></section>'
    )


def _newest_section(view: ViewModel) -> str:
    if not view.newest:
        body = '<p class="empty">No open critical or high findings.</p>'
    else:
        rows = "".join(
            f'<tr><td class="sev-{n.severity_id}">{_e(ocsf.SEVERITY_NAMES.get(n.severity_id, "?"))}</td>'
            f'<td class="title">{_e(n.title)}</td><td>{_e(n.cloud)}</td><td>{_e(n.account)}</td>'
            f'<td>{_e(n.service)}</td><td class="ctx">{_e(n.context or "-")}</td>'
            f"<td>{_e(n.product)}</td><td>{_e(_time(n.last_seen))}</td></tr>"
            for n in view.newest
        )
        body = (
            "<table><thead><tr><th>severity</th><th>title</th><th>cloud</th><th>account</th><th>service</th>"
            f"<th>container context</th><th>source</th><th>last seen</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return f'<section id="newest"><h2>Newest critical and high findings</h2>{body}</section>'


def _matrix_section(view: ViewModel) -> str:
    m = view.matrix
    layer_head = "".join(f'<th colspan="3">{_e(layer)}</th>' for layer in traits.LAYERS)
    task_head = "".join(f"<th>{_e(task)}</th>" for _ in traits.LAYERS for task in traits.TASKS)
    rows = []
    for service, cells in m.rows():
        tds = "".join(
            f'<td class="state st-{_e(c.state.replace(" ", "-"))}" title="{_e(c.reason)}" '
            f'data-service="{_e(c.service)}" data-layer="{_e(c.layer)}" data-task="{_e(c.task)}">{_e(c.state)}</td>'
            for c in cells
        )
        rows.append(f'<tr><th scope="row">{_e(service)}</th>{tds}</tr>')
    totals = ", ".join(f"{_e(state)}: {n}" for state, n in m.totals().items())
    return (
        '<section id="coverage"><h2>Coverage matrix</h2>'
        f'<p class="meta">Window {m.window_ms // 3_600_000} h. {totals}.</p>'
        f'<table><thead><tr><th rowspan="2">service</th>{layer_head}</tr><tr>{task_head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _sources_section(view: ViewModel) -> str:
    health = view.health
    if not health.sources:
        body = '<p class="empty">No source has delivered yet.</p>'
    else:
        rows = "".join(
            f"<tr><td>{_e(s.source)}</td><td>{_e(s.account_uid)}</td><td>{_e(s.cloud)}</td>"
            f'<td>{_e(_time(s.last_delivery))}</td><td class="n">{_e(_age(s.window_ms))}</td>'
            f'<td class="{_e(s.state)}">{_e(s.state)}</td><td class="n">{s.dead_letters}</td></tr>'
            for s in health.sources
        )
        body = (
            "<table><thead><tr><th>source</th><th>account</th><th>cloud</th><th>last delivery</th><th>window</th>"
            f"<th>state</th><th>dead letters</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    pending = health.oldest_pending_age_ms()
    note = "Nothing pending delivery." if pending is None else f"Oldest pending delivery: {_e(_age(pending))} old."
    return f'<section id="sources"><h2>Source health</h2>{body}<p class="meta">{note}</p></section>'


def render_page(view: ViewModel, *, meta_csp: bool = True) -> str:
    """Render the whole page (pure); with `meta_csp` the policy travels inside the file as well."""
    policy = f'<meta http-equiv="Content-Security-Policy" content="{_e(csp(meta=True))}">' if meta_csp else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'{policy}<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Corral</title><style>{CSS}</style></head><body>"
        f'<h1>Corral</h1><p class="meta">Generated {_e(_time(view.generated_at))} from {_e(view.store)}</p>'
        f"{_counts_section(view)}{_trend_section(view)}{_newest_section(view)}"
        f"{_matrix_section(view)}{_sources_section(view)}</body></html>"
    )
