"""The dashboard pages, rendered on the server as self-contained HTML documents.

`render_page(view)`, `render_finding(detail)` and `render_image(detail)` are pure and need no JavaScript: each page is
static HTML with one `<style>` block (allowed by its hash in the Content-Security-Policy) and
inline SVG, so a strict policy (`default-src 'none'`) holds and the overview is both the served
page and the report file. Filters, sorting and paging are plain links and one GET form.

Every value that comes from a finding passes through `html.escape`, with control and
bidirectional characters shown as U+FFFD: titles, account ids and container names are
attacker-influenced text. Every time says which clock it is on: the
source's own (event time), Corral's (first and last seen), or delivery (when a source's
delivery arrived, when a sink got a message).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import orjson

from corral import inert, ocsf, priority, traits
from corral.context import container_context
from corral.coverage import Matrix
from corral.health import HealthReport
from corral.sinks.chat import console_url
from corral.stores.base import CountRow, FindingKey, HistoryEntry, LedgerEntry, StoredFinding, finding_id
from corral.stores.images import ImageEvidence, ImageVulnerability

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
TREND_DAYS: Final = 14
CLOUDS: Final = ("AWS", "Azure", "GCP")
# Count columns, most severe first; Fatal and Other are folded into "other" to keep it readable.
COUNT_COLUMNS: Final = ((5, "Critical"), (4, "High"), (3, "Medium"), (2, "Low"), (1, "Informational"))
RANGES: Final = {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "90d": 90 * DAY_MS}
STATUSES: Final = ("open", "all", *(ocsf.STATUS_NAMES[s].lower() for s in (1, 2, 3, 4, 5, 6)))
PAGE_SIZE: Final = 25
MAX_PAGE: Final = 40
"""The overview pages through the first 1,000 matches: a page deeper in would read every match
before it, which anyone able to load a URL in the operator's browser could ask for over and over.
Filters narrow a longer list; `corral findings list` and `/api/findings` page by cursor."""
FILTER_NAMES: Final = (
    "cloud",
    "account",
    "service",
    "cluster",
    "namespace",
    "severity",
    "status",
    "source",
    "since",
    "q",
)

# Colours meet WCAG AA (4.5:1 for text) in both schemes; focus is a 3 px ring on every control.
CSS: Final = """
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1d2330;--muted:#4b5563;--panel:#fff;--line:#c9ced6;--head:#eef0f4;
--link:#1d4ed8;--focus:#1d4ed8;--ok:#bbf7d0;--warn:#fde68a;--bad:#fca5a5;--gap:#fecaca;--grey:#e5e7eb;--ink:#111827}
@media (prefers-color-scheme:dark){:root{--bg:#0f141b;--fg:#e5e7eb;--muted:#b6bcc6;--panel:#18202b;--line:#3a4656;
--head:#222c39;--link:#93c5fd;--focus:#fbbf24;--ok:#14532d;--warn:#713f12;--bad:#7f1d1d;--gap:#7f1d1d;--grey:#374151;
--ink:#f3f4f6}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:16px;color:var(--fg);
background:var(--bg);overflow-wrap:break-word}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:16px;margin:18px 0 6px}
a{color:var(--link)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible,
[tabindex]:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-9999px}.skip:focus{left:16px;top:8px;background:var(--panel);padding:4px 8px}
.meta{color:var(--muted);margin:0 0 12px}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;background:var(--panel);margin-bottom:8px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{font-weight:600;white-space:nowrap}
.sev-6,.sev-5{color:#fff;background:#8b1a1a}.sev-4{color:#fff;background:#b13a08}.sev-3{color:#111827;background:#fcd34d}
.sev-2{color:#111827;background:#bfdbfe}.sev-1,.sev-0,.sev-99{color:#111827;background:#e5e7eb}
.state{font-size:13px;white-space:nowrap;color:var(--ink)}
.st-covered,.ok{background:var(--ok)}.st-silent,.silent{background:var(--warn)}.st-unhealthy{background:var(--bad)}
.st-gap{background:var(--gap);font-weight:600}.st-provider-managed{background:var(--grey)}
.st-not-connected{background:var(--grey)}
.ctx{font-size:13px;overflow-wrap:anywhere;min-width:12em}td.title{min-width:14em}
.nowrap{white-space:nowrap}dd,code{overflow-wrap:anywhere}
.strip{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 4px;padding:0;list-style:none}
.strip li{background:var(--panel);border:1px solid var(--line);padding:6px 10px;min-width:140px}
.strip strong{display:block;font-size:20px}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;background:var(--panel);
border:1px solid var(--line);padding:8px;margin:8px 0}
form.filters label{display:flex;flex-direction:column;font-size:13px}
input,select,button{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--muted);padding:3px 6px}
.chips a{margin-right:8px}
svg{max-width:100%;height:auto;background:var(--panel);border:1px solid var(--line)}
.axis{fill:var(--muted)}.base{stroke:var(--muted)}.first{stroke:#c2410c}.last{stroke:#2563eb}
@media (prefers-color-scheme:dark){.first{stroke:#fb923c}.last{stroke:#93c5fd}}
.legend span{display:inline-block;margin-right:12px}
.empty{color:var(--muted);font-style:italic}
pre{background:var(--panel);border:1px solid var(--line);padding:8px;white-space:pre-wrap;max-width:100%;
overflow-x:auto;font-size:13px}
dl.fields{display:grid;grid-template-columns:minmax(8em,max-content) 1fr;gap:2px 12px;margin:0}
dl.fields dt{color:var(--muted)}dl.fields dd{margin:0}
@media (max-width:700px){body{padding:8px}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards thead{display:none}table.cards tr{border:1px solid var(--line);margin-bottom:8px}
table.cards td{border:0;border-bottom:1px solid var(--line);overflow-wrap:anywhere;min-width:0}
table.cards td::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}
table.cards td.sev::before{color:inherit}
dl.fields{grid-template-columns:1fr}dl.fields dd{margin-bottom:6px}}
"""


def csp(*, meta: bool = False) -> str:
    """Return the Content-Security-Policy: nothing but this page's own style block (and GET forms to itself).

    `frame-ancestors` is ignored in a `<meta>` policy, so the report file's policy leaves it out; the
    report file has no form, so its policy allows none.
    """
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    forms = "'none'" if meta else "'self'"
    policy = f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; form-action {forms}"
    return policy if meta else f"{policy}; frame-ancestors 'none'"


@dataclass(frozen=True, slots=True)
class Filters:
    """What the finding list is narrowed to, as the query string gives it (already validated)."""

    cloud: str | None = None
    account: str | None = None
    service: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    severity: str | None = None
    """A severity name: this one and above."""
    status: str = "open"
    source: str | None = None
    """A product uid (`aws.guardduty`)."""
    since: str | None = None
    """A key of RANGES: findings last seen within it."""
    q: str | None = None
    page: int = 1

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters of these filters with `changes` applied (defaults left out)."""
        merged = replace(self, **changes)
        out = {name: str(getattr(merged, name)) for name in FILTER_NAMES if getattr(merged, name) not in (None, "")}
        if out.get("status") == "open":
            del out["status"]
        if merged.page > 1:
            out["page"] = str(merged.page)
        return out

    def href(self, **changes: Any) -> str:
        """A link to the overview with these filters and `changes` (the page resets unless given)."""
        changes.setdefault("page", 1)
        query = urlencode(self.params(**changes))
        return f"/?{query}#findings" if query else "/#findings"

    def active(self) -> list[tuple[str, str]]:
        """The filters in force, as (name, value), in FILTER_NAMES order."""
        return [(name, value) for name, value in self.params().items() if name != "page"]


@dataclass(frozen=True, slots=True)
class Row:
    """One finding in a list, as the page shows it."""

    key: FindingKey
    title: str
    severity_id: int
    status_id: int
    cloud: str
    account: str
    product: str
    product_uid: str
    service: str
    cluster: str | None
    namespace: str | None
    context: str
    event_time: int | None
    first_seen: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of the filtered finding list, critical first then newest, and how many matched."""

    filters: Filters
    rows: Sequence[Row]
    total: int
    exact: bool = True
    """False when counting stopped early: `total` is then a lower bound."""

    @property
    def remaining(self) -> int:
        """Matches after this page."""
        return max(0, self.total - (self.filters.page - 1) * PAGE_SIZE - len(self.rows))


@dataclass(frozen=True, slots=True)
class Drilldown:
    """For one container service: findings per cluster and per account last seen in the coverage window."""

    service: str
    clusters: Sequence[tuple[str, int, int]]
    """(cluster, findings, newest last seen)."""
    accounts: Sequence[tuple[str, str, int, int]]
    """(cloud, account, findings, newest last seen)."""
    read: int = 0
    """How many findings were counted: the newest ones, when fewer than `total`."""
    total: int = 0


@dataclass(frozen=True, slots=True)
class ViewModel:
    """Everything the overview shows, as plain values."""

    generated_at: int
    store: str
    open_counts: Mapping[tuple[str, int], int]
    """(cloud, severity_id) → open findings."""
    severities: frozenset[int]
    """The severities stored findings have (any status): a list skips the others unread."""
    trend: Sequence[tuple[int, int, int]]
    """(day start, findings first seen that day, findings last seen that day), oldest first."""
    matrix: Matrix
    health: HealthReport
    newest: Sequence[Row] = ()
    """The open critical and high findings, critical first then newest (the report file's list)."""
    listing: Listing | None = None
    """The filtered list; None in the report file, which has no links to follow."""
    drilldown: Drilldown | None = None
    urgent_total: int = 0
    """How many open critical and high findings there are (`newest` may show fewer)."""


@dataclass(frozen=True, slots=True)
class Detail:
    """Everything a finding page shows."""

    finding: StoredFinding
    history: Sequence[HistoryEntry]
    deliveries: Sequence[LedgerEntry]
    generated_at: int
    sinks: Sequence[str] = field(default_factory=tuple)
    image_known: bool = False
    """The finding's image digest is in the inventory, so its image page exists."""


@dataclass(frozen=True, slots=True)
class ImageDetail:
    """Everything an image page shows: the inventory's evidence, where it runs now, its CVEs ranked."""

    evidence: ImageEvidence
    runtime: priority.Runtime
    vulnerabilities: Sequence[tuple[ImageVulnerability, priority.Priority]]
    generated_at: int


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


def severity_rank(severity_id: int) -> int:
    """Order for "most severe first": Fatal, Critical … Informational, then Unknown and Other."""
    return severity_id if 1 <= severity_id <= 6 else 0


def row(item: StoredFinding) -> Row:
    """Pick what a list shows of one stored finding (pure)."""
    doc = item.document
    ctx = container_context(doc)
    parts = [
        f"pod {ctx.pod}" if ctx.pod else "",
        f"container {ctx.container}" if ctx.container else "",
        f"image {ctx.image_digest or ctx.image}" if (ctx.image or ctx.image_digest) else "",
    ]
    product = doc.get("metadata", {}).get("product", {})
    time = doc.get("time")
    return Row(
        key=item.key,
        title=str(doc.get("finding_info", {}).get("title") or item.key[2]),
        severity_id=item.severity_id,
        status_id=item.status_id,
        cloud=str(doc.get("cloud", {}).get("provider", "")),
        account=item.key[1],
        product=str(product.get("name") or item.key[0]),
        product_uid=item.key[0],
        service=traits.read(doc).get(traits.SERVICE, traits.NO_SERVICE),
        cluster=ctx.cluster,
        namespace=ctx.namespace,
        context=", ".join(p for p in parts if p),
        event_time=time if isinstance(time, int) else None,
        first_seen=item.first_seen,
        last_seen=item.last_seen,
    )


def critical_first(rows: Iterable[Row]) -> list[Row]:
    """Sort most severe first, then newest last seen (pure)."""
    return sorted(rows, key=lambda r: (-severity_rank(r.severity_id), -r.last_seen, r.key))


def finding_path(key: FindingKey) -> str:
    """The finding page's path: its short stable id."""
    return f"/findings/{finding_id(key)}"


DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
"""An image digest as the inventory keys it; nothing else names an image page."""


def image_path(digest: str) -> str | None:
    """The image page's path, or None when `digest` is not a well-formed digest (it comes from a finding)."""
    return f"/images/{digest}" if DIGEST.fullmatch(digest) else None


# Shown as U+FFFD, as the CLI shows them: a bidirectional override in a file or process name would
# otherwise reorder what the analyst reads (tab and newline are only white space in HTML).
_UNSEEN: Final = re.compile(f"[{inert.CONTROLS}{inert.DIRECTIONAL}{inert.SEPARATORS}]")


def _e(value: object) -> str:
    return html.escape(_UNSEEN.sub("\ufffd", str(value)), quote=True)


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms else "-"


def _age(ms: int) -> str:
    hours = ms / HOUR_MS
    if hours < 1:
        return f"{max(0, ms) // 60_000} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _sev(severity_id: int) -> str:
    name = ocsf.SEVERITY_NAMES.get(severity_id, "?")
    return f'<td class="sev sev-{severity_id}" data-label="severity">{_e(name)}</td>'


def _head(title: str, meta_csp: bool) -> str:
    policy = f'<meta http-equiv="Content-Security-Policy" content="{_e(csp(meta=True))}">' if meta_csp else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'{policy}<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
    )


# The overview ----------------------------------------------------------------------------------


def _summary_strip(view: ViewModel, live: bool) -> str:
    critical = sum(n for (_, sid), n in view.open_counts.items() if sid >= 5 and sid != 99)
    high = sum(n for (_, sid), n in view.open_counts.items() if sid == 4)
    silent = sum(1 for s in view.health.sources if s.state == "silent")
    pending = view.health.oldest_pending_age_ms()
    totals = view.matrix.totals()
    base = Filters()

    def item(label: str, value: str, href: str | None, note: str = "") -> str:
        shown = f'<a href="{_e(href)}">{value}</a>' if href and live else value
        return f"<li><strong>{shown}</strong>{_e(label)}{_e(note)}</li>"

    coverage = " · ".join(f"{n} {state}" for state, n in totals.items() if n)
    return (
        '<section id="summary" aria-label="summary"><ul class="strip">'
        + item("open critical", str(critical), base.href(severity="critical"))
        + item("open high", str(high), base.href(severity="high"))
        + item("silent sources", f"{silent} of {len(view.health.sources)}", "#sources")
        + item(
            "oldest pending delivery",
            "none" if pending is None else _e(_age(pending)),
            "#sources",
            "" if pending is None else " (delivery clock)",
        )
        + f'<li><strong><a href="#coverage">coverage</a></strong>{_e(coverage or "no cells")}</li>'
        + "</ul></section>"
    )


def _counts_section(view: ViewModel, live: bool) -> str:
    head = "".join(f'<th scope="col">{_e(name)}</th>' for _, name in COUNT_COLUMNS)
    rows = []
    base = Filters()
    for cloud in CLOUDS:
        cells = [view.open_counts.get((cloud, sid), 0) for sid, _ in COUNT_COLUMNS]
        other = sum(n for (c, sid), n in view.open_counts.items() if c == cloud and sid not in dict(COUNT_COLUMNS))
        total = sum(cells) + other
        tds = "".join(
            f'<td class="n" data-cloud="{_e(cloud)}" data-severity="{sid}">{n}</td>'
            for (sid, _), n in zip(COUNT_COLUMNS, cells, strict=True)
        )
        name = f'<a href="{_e(base.href(cloud=cloud))}">{_e(cloud)}</a>' if live else _e(cloud)
        rows.append(
            f'<tr><th scope="row">{name}</th>{tds}<td class="n">{other}</td>'
            f'<td class="n" data-total="{_e(cloud)}">{total}</td></tr>'
        )
    return (
        '<section id="counts"><h2>Open findings by cloud and severity</h2><div class="scroll">'
        f'<table><thead><tr><th scope="col">cloud</th>{head}<th scope="col">other</th><th scope="col">total</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
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
        f'<text class="axis" x="{pad + i * step:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
        f"{_e(datetime.fromtimestamp(day / 1000, UTC).strftime('%m-%d'))}</text>"
        for i, (day, _f, _s) in enumerate(points)
        if i % 2 == 0 or i == len(points) - 1
    )
    return (
        f'<section id="trend"><h2>Trend by day (last {TREND_DAYS} days)</h2>'
        '<p class="meta">Clock: Corral\'s — the day Corral first saw a finding, and the day it last saw it.</p>'
        f'<svg role="img" aria-label="findings first seen and last seen per day" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text class="axis" x="4" y="{pad - 8}" font-size="10">max {top}</text>'
        f'<line class="base" x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"/>'
        f'<polyline class="first" fill="none" stroke-width="2" points="{first}"/>'
        f'<polyline class="last" fill="none" stroke-width="2" stroke-dasharray="4 3" points="{seen}"/>'
        f"{labels}</svg>"
        '<p class="legend"><span>solid: first seen</span><span>dashed: last seen</span></p></section>'
    )


def _filter_link(filters: Filters, name: str, value: str | None, live: bool, text: str | None = None) -> str:
    shown = _e(text if text is not None else (value or "-"))
    if not live or not value:
        return shown
    return f'<a href="{_e(filters.href(**{name: value}))}">{shown}</a>'


def _service(name: str) -> str | None:
    return name if name in traits.CONTAINER_SERVICES else None


def _rows_table(rows: Sequence[Row], filters: Filters, live: bool) -> str:
    body = []
    for r in rows:
        title = f'<a href="{_e(finding_path(r.key))}">{_e(r.title)}</a>' if live else _e(r.title)
        where = " / ".join(
            p
            for p in (
                _filter_link(filters, "cluster", r.cluster, live),
                _filter_link(filters, "namespace", r.namespace, live),
            )
            if p != "-"
        )
        ctx = f'<br><span class="ctx">{_e(r.context)}</span>' if r.context else ""
        body.append(
            f"<tr>{_sev(r.severity_id)}"
            f'<td class="title" data-label="title">{title}</td>'
            f'<td class="nowrap" data-label="status">{_e(ocsf.STATUS_NAMES.get(r.status_id, "?"))}</td>'
            f'<td class="nowrap" data-label="cloud">{_filter_link(filters, "cloud", r.cloud, live)}</td>'
            f'<td data-label="account">{_filter_link(filters, "account", r.account, live)}</td>'
            f'<td data-label="service">{_filter_link(filters, "service", _service(r.service), live, r.service)}</td>'
            f'<td class="ctx" data-label="cluster / namespace">{where or "-"}{ctx}</td>'
            f'<td data-label="source">{_filter_link(filters, "source", r.product_uid, live, r.product)}</td>'
            f'<td data-label="event time (source clock)">{_e(_time(r.event_time))}</td>'
            f'<td data-label="last seen (Corral)">{_e(_time(r.last_seen))}</td></tr>'
        )
    head = "".join(
        f'<th scope="col">{_e(h)}</th>'
        for h in (
            "severity",
            "title",
            "status",
            "cloud",
            "account",
            "service",
            "cluster / namespace",
            "source",
            "event time (source clock)",
            "last seen (Corral)",
        )
    )
    return f'<table class="cards"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _select(name: str, label: str, value: str | None, choices: Sequence[str], blank: str) -> str:
    options = [f'<option value=""{" selected" if not value else ""}>{_e(blank)}</option>'] if blank else []
    options += [
        f'<option value="{_e(c)}"{" selected" if (value or "").lower() == c.lower() else ""}>{_e(c)}</option>'
        for c in choices
    ]
    return f'<label>{_e(label)}<select name="{name}">{"".join(options)}</select></label>'


def _text(name: str, label: str, value: str | None) -> str:
    return f'<label>{_e(label)}<input type="text" name="{name}" value="{_e(value or "")}"></label>'


def _filter_form(f: Filters) -> str:
    severities = [ocsf.SEVERITY_NAMES[s].lower() for s in (5, 4, 3, 2, 1)]
    return (
        '<form class="filters" method="get" action="/" role="search" aria-label="filter findings">'
        + _text("q", "text in title or resource", f.q)
        + _select("cloud", "cloud", f.cloud, CLOUDS, "any")
        + _text("account", "account", f.account)
        + _select("service", "service", f.service, traits.CONTAINER_SERVICES, "any")
        + _text("cluster", "cluster", f.cluster)
        + _text("namespace", "namespace", f.namespace)
        + _select("severity", "severity at least", f.severity, severities, "any")
        + _select("status", "status", f.status, STATUSES, "")
        + _text("source", "source", f.source)
        + _select("since", "last seen within", f.since, list(RANGES), "any time")
        + '<button type="submit">Filter</button></form>'
    )


def _listing_section(listing: Listing) -> str:
    f = listing.filters
    chips = "".join(
        f'<a href="{_e(f.href(**{name: None if name != "status" else "open"}))}" '
        f'aria-label="remove filter {_e(name)}">× {_e(name)}: {_e(value)}</a>'
        for name, value in f.active()
    )
    chips_html = f'<p class="chips">Filters: {chips} <a href="/#findings">clear all</a></p>' if chips else ""
    total = f"{listing.total:,}" if listing.exact else f"more than {listing.total:,}"
    first = (f.page - 1) * PAGE_SIZE + 1 if listing.rows else 0
    shown = f"Showing {first}–{first + len(listing.rows) - 1} of {total}" if listing.rows else "No finding matches."
    table = _rows_table(listing.rows, f, live=True) if listing.rows else ""
    more = ""
    if listing.remaining:
        remaining = f"{listing.remaining:,}" if listing.exact else f"{listing.remaining:,}+"
        if f.page < MAX_PAGE:
            more = f'<p class="more"><a href="{_e(f.href(page=f.page + 1))}" rel="next">{remaining} more →</a></p>'
        else:
            more = (
                f'<p class="more">{remaining} more: narrow the filters, or page through them with '
                "<code>corral findings list</code> or <code>/api/findings</code>.</p>"
            )
    previous = f'<p><a href="{_e(f.href(page=f.page - 1))}" rel="prev">← previous</a></p>' if f.page > 1 else ""
    return (
        '<section id="findings"><h2>Findings — most severe first, then newest</h2>'
        f"{_filter_form(f)}{chips_html}"
        f'<p class="meta" id="shown">{_e(shown)}. Event time is the source\'s clock; last seen is Corral\'s.</p>'
        f"{previous}{table}{more}</section>"
    )


def _newest_section(view: ViewModel) -> str:
    if not view.newest:
        body = '<p class="empty">No open critical or high findings.</p>'
    else:
        more = view.urgent_total - len(view.newest)
        note = (
            f'<p class="more">{more:,} more: run <code>corral serve</code> to page through them.</p>'
            if more > 0
            else ""
        )
        body = _rows_table(view.newest, Filters(), live=False) + note
    return f'<section id="findings"><h2>Open critical and high findings — most severe first</h2>{body}</section>'


def _matrix_section(view: ViewModel, live: bool) -> str:
    m = view.matrix
    layer_head = "".join(f'<th colspan="3" scope="colgroup">{_e(layer)}</th>' for layer in traits.LAYERS)
    task_head = "".join(f'<th scope="col">{_e(task)}</th>' for _ in traits.LAYERS for task in traits.TASKS)
    rows = []
    for service, cells in m.rows():
        tds = "".join(
            f'<td class="state st-{_e(c.state.replace(" ", "-"))}" title="{_e(c.reason)}" '
            f'data-service="{_e(c.service)}" data-layer="{_e(c.layer)}" data-task="{_e(c.task)}">{_e(c.state)}</td>'
            for c in cells
        )
        name = _e(service)
        if live:
            name = f'<a href="/?{_e(urlencode({"drill": service}))}#coverage">{name}</a>'
        rows.append(f'<tr><th scope="row">{name}</th>{tds}</tr>')
    totals = ", ".join(f"{_e(state)}: {n}" for state, n in m.totals().items())
    drill = _drilldown(view.drilldown) if view.drilldown else ""
    hint = " Pick a service to see its clusters and accounts." if live else ""
    return (
        '<section id="coverage"><h2>Coverage by service</h2>'
        f'<p class="meta">Window {m.window_ms // HOUR_MS} h of last seen (Corral\'s clock). {totals}.{hint}</p>'
        '<div class="scroll" tabindex="0" role="region" aria-label="coverage matrix">'
        f'<table><thead><tr><th rowspan="2" scope="col">service</th>{layer_head}</tr><tr>{task_head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{drill}</section>"
    )


def _drilldown(d: Drilldown) -> str:
    base = Filters(service=d.service, status="all")
    if d.clusters:
        rows = "".join(
            f'<tr><td data-label="cluster"><a href="{_e(base.href(cluster=c))}">{_e(c)}</a></td>'
            f'<td class="n" data-label="findings">{n}</td><td data-label="last seen (Corral)">{_e(_time(t))}</td></tr>'
            for c, n, t in d.clusters
        )
        clusters = (
            '<table class="cards"><thead><tr><th scope="col">cluster</th><th scope="col">findings</th>'
            f'<th scope="col">last seen (Corral)</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    else:
        clusters = '<p class="empty">No finding names a cluster.</p>'
    if d.accounts:
        rows = "".join(
            f'<tr><td data-label="cloud">{_e(cloud)}</td>'
            f'<td data-label="account"><a href="{_e(base.href(account=a))}">{_e(a)}</a></td>'
            f'<td class="n" data-label="findings">{n}</td><td data-label="last seen (Corral)">{_e(_time(t))}</td></tr>'
            for cloud, a, n, t in d.accounts
        )
        accounts = (
            '<table class="cards"><thead><tr><th scope="col">cloud</th><th scope="col">account</th>'
            '<th scope="col">findings</th><th scope="col">last seen (Corral)</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        accounts = '<p class="empty">No finding in the window.</p>'
    sample = (
        f'<p class="meta">Counted over the newest {d.read:,} of {d.total:,} findings in the window.</p>'
        if d.read < d.total
        else ""
    )
    return (
        f'<div id="drilldown"><h3>{_e(d.service)}: clusters and accounts in the window</h3>'
        f'<p><a href="{_e(base.href())}">all {_e(d.service)} findings</a> · <a href="/#coverage">close</a></p>'
        f"{sample}{clusters}{accounts}</div>"
    )


def _sources_section(view: ViewModel, live: bool) -> str:
    health = view.health
    if not health.sources:
        body = '<p class="empty">No source has delivered yet.</p>'
    else:
        rows = "".join(
            f'<tr><td data-label="source">{_filter_link(Filters(status="all"), "source", s.source, live)}</td>'
            f'<td data-label="account">{_e(s.account_uid)}</td><td data-label="cloud">{_e(s.cloud)}</td>'
            f'<td data-label="last delivery (delivery clock)">{_e(_time(s.last_delivery))}</td>'
            f'<td data-label="newest event time">{_e(_time(s.last_finding_time))}</td>'
            f'<td class="n" data-label="window">{_e(_age(s.window_ms))}</td>'
            f'<td class="{_e(s.state)}" data-label="state">{_e(s.state)}</td>'
            f'<td class="n" data-label="dead letters">{s.dead_letters}</td></tr>'
            for s in health.sources
        )
        body = (
            '<table class="cards"><thead><tr><th scope="col">source</th><th scope="col">account</th>'
            '<th scope="col">cloud</th><th scope="col">last delivery (delivery clock)</th>'
            '<th scope="col">newest event time</th><th scope="col">window</th><th scope="col">state</th>'
            f'<th scope="col">dead letters</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    pending = health.oldest_pending_age_ms()
    note = (
        "Nothing pending delivery."
        if pending is None
        else f"Oldest pending delivery: {_e(_age(pending))} old (delivery clock)."
    )
    return f'<section id="sources"><h2>Source health</h2>{body}<p class="meta">{note}</p></section>'


def render_page(view: ViewModel, *, meta_csp: bool = True) -> str:
    """Render the overview (pure); with `meta_csp` the policy travels inside the file as well.

    With a listing (the served page) rows link to finding pages and filters; without one (the
    report file, opened from disk) the page lists the open critical and high findings and links
    nowhere but within itself.
    """
    live = view.listing is not None
    findings = _listing_section(view.listing) if view.listing is not None else _newest_section(view)
    return (
        _head("Corral", meta_csp)
        + '<a class="skip" href="#findings">Skip to findings</a>'
        + f'<header><h1>Corral</h1><p class="meta">Generated {_e(_time(view.generated_at))} from {_e(view.store)}.'
        " Clocks: event time is the source's, first and last seen are Corral's, deliveries are arrival times.</p>"
        "</header><main>"
        + _summary_strip(view, live)
        + findings
        + _matrix_section(view, live)
        + _sources_section(view, live)
        + _counts_section(view, live)
        + _trend_section(view)
        + "</main></body></html>"
    )


# The finding page ------------------------------------------------------------------------------


def _fields(pairs: Iterable[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs if v not in (None, "", []))
    return f'<dl class="fields">{items}</dl>'


def _resources(doc: Mapping[str, Any]) -> str:
    resources = [r for r in doc.get("resources") or () if isinstance(r, Mapping)]
    if not resources:
        return '<p class="empty">No resources named.</p>'
    rows = "".join(
        f'<tr><td data-label="type">{_e(r.get("type") or "-")}</td>'
        f'<td data-label="name">{_e(r.get("name") or "-")}</td>'
        f'<td data-label="uid">{_e(r.get("uid") or "-")}</td>'
        f'<td data-label="region">{_e(r.get("region") or "-")}</td></tr>'
        for r in resources
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">type</th><th scope="col">name</th><th scope="col">uid</th>'
        f'<th scope="col">region</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _history(history: Sequence[HistoryEntry]) -> str:
    if not history:
        return '<p class="empty">No recorded change.</p>'
    rows = "".join(
        f'<tr><td data-label="at (Corral)">{_e(_time(h.at))}</td>'
        f'<td data-label="change" class="change-{_e(h.kind)}">{_e(h.kind)}</td>'
        f'{_sev(h.severity_id)}<td data-label="status">{_e(ocsf.STATUS_NAMES.get(h.status_id, "?"))}</td>'
        f'<td data-label="modified (source clock)">{_e(_time(h.modified_time))}</td>'
        f'<td data-label="version"><code>{_e(h.version[:12])}</code></td></tr>'
        for h in history
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">at (Corral)</th><th scope="col">change</th>'
        '<th scope="col">severity</th><th scope="col">status</th><th scope="col">modified (source clock)</th>'
        f'<th scope="col">version</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _deliveries(entries: Sequence[LedgerEntry], history: Sequence[HistoryEntry]) -> str:
    if not entries:
        return '<p class="empty">No sink was routed this finding.</p>'
    kinds = {h.version: h.kind for h in history}
    rows = "".join(
        f'<tr><td data-label="sink">{_e(e.sink)}</td>'
        f'<td data-label="change">{_e(kinds.get(e.version, e.change))}</td>'
        f'<td data-label="state" class="delivery-{_e(e.state)}">{_e(e.state)}</td>'
        f'<td class="n" data-label="attempts">{e.attempts}</td>'
        f'<td data-label="queued (delivery clock)">{_e(_time(e.created))}</td>'
        f'<td data-label="delivered (delivery clock)">{_e(_time(e.delivered_at))}</td>'
        f'<td data-label="next attempt">{_e(_time(e.next_attempt) if e.state == "pending" else "-")}</td>'
        f'<td data-label="last error">{_e(e.last_error or "-")}</td></tr>'
        for e in entries
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">sink</th><th scope="col">change</th>'
        '<th scope="col">state</th><th scope="col">attempts</th><th scope="col">queued (delivery clock)</th>'
        '<th scope="col">delivered (delivery clock)</th><th scope="col">next attempt</th>'
        f'<th scope="col">last error</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def render_finding(detail: Detail, *, meta_csp: bool = True) -> str:
    """Render one finding's page (pure): the finding, its context, history, deliveries and vendor record."""
    item = detail.finding
    doc = item.document
    info = doc.get("finding_info", {}) if isinstance(doc.get("finding_info"), Mapping) else {}
    cloud = doc.get("cloud", {}) if isinstance(doc.get("cloud"), Mapping) else {}
    product = doc.get("metadata", {}).get("product", {})
    ctx = container_context(doc)
    title = str(info.get("title") or item.key[2])
    link = console_url(doc)
    console = (
        f'<p><a href="{_e(link)}" rel="noreferrer noopener" target="_blank">Open in the vendor console</a></p>'
        if link
        else '<p class="meta">The source gave no console link for this finding.</p>'
    )
    types = info.get("types") or []
    status = ocsf.STATUS_NAMES.get(item.status_id, "?")
    suppressed = (
        f"{item.suppression.reason} ({item.suppression.by}, until {_time(item.suppression.until)})"
        if item.suppression
        else None
    )
    remediation = doc.get("remediation", {}).get("desc") if isinstance(doc.get("remediation"), Mapping) else None
    summary = _fields(
        [
            ("severity", ocsf.SEVERITY_NAMES.get(item.severity_id, "?")),
            ("status", status),
            ("suppressed", suppressed),
            ("class", doc.get("class_name")),
            ("type", ", ".join(str(t) for t in types)),
            ("source", f"{product.get('name') or item.key[0]} ({item.key[0]})"),
            ("cloud", cloud.get("provider")),
            ("account", item.key[1]),
            ("region", cloud.get("region")),
            ("uid", item.key[2]),
            ("event time (source clock)", _time(doc.get("time") if isinstance(doc.get("time"), int) else None)),
            ("created (source clock)", _time(info.get("created_time"))),
            ("modified (source clock)", _time(ocsf.modified_time(doc))),
            ("first seen (Corral)", _time(item.first_seen)),
            ("last seen (Corral)", _time(item.last_seen)),
            ("versions", item.versions),
        ]
    )
    context = (
        '<p class="empty">No container context.</p>'
        if ctx.is_empty()
        else _fields(
            [
                ("cluster", ctx.cluster),
                ("namespace", ctx.namespace),
                ("pod", ctx.pod),
                ("container", ctx.container),
                ("image", ctx.image),
                ("image digest", ctx.image_digest),
                ("orchestrator", ctx.orchestrator),
            ]
        )
    )
    image_href = image_path(ctx.image_digest or "") if detail.image_known else None
    if image_href:
        context += f'<p><a href="{_e(image_href)}">The image: where it runs and its CVEs ranked</a></p>'
    description = info.get("desc") or doc.get("message")
    vendor = doc.get("unmapped")
    vendor_html = (
        f"<pre>{_e(orjson.dumps(vendor, option=orjson.OPT_INDENT_2).decode())}</pre>"
        if vendor
        else '<p class="empty">The source sent nothing beyond what is mapped.</p>'
    )
    document = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return (
        _head(f"{title} · Corral", meta_csp)
        + '<a class="skip" href="#finding">Skip to the finding</a>'
        + f'<header><p><a href="/#findings">← all findings</a></p><h1 id="finding">{_e(title)}</h1>'
        + f'<p class="meta">Generated {_e(_time(detail.generated_at))}.</p></header><main>'
        + f'<section id="summary" aria-label="finding">{summary}{console}'
        + (f"<h2>Description</h2><p>{_e(description)}</p>" if description else "")
        + (f"<h2>Remediation</h2><p>{_e(remediation)}</p>" if remediation else "")
        + "</section>"
        + f'<section id="context"><h2>Container context</h2>{context}</section>'
        + f'<section id="resources"><h2>Resources</h2>{_resources(doc)}</section>'
        + f'<section id="history"><h2>History</h2>{_history(detail.history)}</section>'
        + f'<section id="deliveries"><h2>Deliveries</h2>{_deliveries(detail.deliveries, detail.history)}</section>'
        + f'<section id="vendor"><h2>Vendor record</h2><p class="meta">Fields the source sent that OCSF has no '
        f"place for, as received.</p>{vendor_html}"
        + f"<details><summary>The whole OCSF finding</summary><pre>{_e(document)}</pre></details></section>"
        + "</main></body></html>"
    )


# The image page --------------------------------------------------------------------------------


def _runtime_words(runtime: priority.Runtime) -> str:
    words = priority.CONTEXT_WORDS[runtime.context]
    if runtime.context == "running":
        count = len(runtime.workloads)
        words = f"running in {count} workload{'s' if count != 1 else ''} ({', '.join(runtime.clouds)})"
        if runtime.probable:
            words += ", probably: matched by tag only"
    return words + (", internet-exposed" if runtime.exposed else "")


def _registries(evidence: ImageEvidence) -> str:
    if not evidence.names:
        return '<p class="empty">No registry has reported this image.</p>'
    names = sorted(evidence.names, key=lambda n: (n.registry, n.repository, n.tag))
    rows = "".join(
        f'<tr><td data-label="reference">{_e(n.reference)}</td><td data-label="registry">{_e(n.registry or "-")}</td>'
        f'<td data-label="cloud">{_e(n.cloud)}</td><td data-label="account">{_e(n.account)}</td>'
        f'<td data-label="reported (source clock)">{_e(_time(n.source_time))}</td></tr>'
        for n in names
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">reference</th><th scope="col">registry</th>'
        '<th scope="col">cloud</th><th scope="col">account</th><th scope="col">reported (source clock)</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _sightings(evidence: ImageEvidence) -> str:
    if not evidence.sightings:
        return '<p class="empty">No source has seen this image running.</p>'
    rows = "".join(
        f'<tr><td data-label="cloud">{_e(r.sighting.cloud)}</td><td data-label="account">{_e(r.sighting.account)}</td>'
        f'<td data-label="cluster">{_e(r.sighting.cluster or "-")}</td>'
        f'<td data-label="namespace">{_e(r.sighting.namespace or "-")}</td>'
        f'<td data-label="workload">{_e(r.sighting.workload or "-")}</td>'
        f'<td data-label="reported by">{_e(r.sighting.reporter)}</td>'
        f'<td data-label="match">{_e(f"probable, by tag {r.sighting.image}" if probable else "digest")}</td>'
        f'<td data-label="first seen (source clock)">{_e(_time(r.first_time))}</td>'
        f'<td data-label="last seen (source clock)">{_e(_time(r.last_time))}</td></tr>'
        for r, probable in evidence.sightings
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">cloud</th><th scope="col">account</th>'
        '<th scope="col">cluster</th><th scope="col">namespace</th><th scope="col">workload</th>'
        '<th scope="col">reported by</th><th scope="col">match</th><th scope="col">first seen (source clock)</th>'
        f'<th scope="col">last seen (source clock)</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _vulnerabilities(rows: Sequence[tuple[ImageVulnerability, priority.Priority]]) -> str:
    if not rows:
        return '<p class="empty">No open Vulnerability Finding names this image.</p>'
    body = "".join(
        f'<tr><td data-label="priority">{_e(given.level)} <span class="meta">{given.risk_score}</span></td>'
        f"{_sev(row.vulnerable.severity_id)}"
        f'<td data-label="CVEs">{_e(", ".join(row.vulnerable.cves) or "-")}</td>'
        f'<td data-label="why">{_e(given.details)}</td>'
        f'<td data-label="finding"><a href="{_e(finding_path(row.key))}">{_e(row.key[2])}</a></td></tr>'
        for row, given in rows
    )
    return (
        '<table class="cards"><thead><tr><th scope="col">priority</th><th scope="col">severity</th>'
        '<th scope="col">CVEs</th><th scope="col">why</th><th scope="col">finding</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def render_image(detail: ImageDetail, *, meta_csp: bool = True) -> str:
    """Render one image's page (pure): where it runs, in which registries, its open CVEs by Corral priority."""
    digest = detail.evidence.digest
    return (
        _head(f"{digest[:19]} · Corral", meta_csp)
        + '<a class="skip" href="#image">Skip to the image</a>'
        + f'<header><p><a href="/#findings">← all findings</a></p><h1 id="image">Image <code>{_e(digest)}</code></h1>'
        + f'<p class="meta">{_e(_runtime_words(detail.runtime))}. Generated {_e(_time(detail.generated_at))}; '
        "priorities are computed now from the inventory.</p></header><main>"
        + f'<section id="vulnerabilities"><h2>Open vulnerabilities, most urgent first</h2>'
        f"{_vulnerabilities(detail.vulnerabilities)}</section>"
        + f'<section id="running"><h2>Where it runs</h2>{_sightings(detail.evidence)}</section>'
        + f'<section id="registries"><h2>Registries</h2>{_registries(detail.evidence)}</section>'
        + "</main></body></html>"
    )
