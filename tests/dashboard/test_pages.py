"""The served pages in the real headless Chromium: finding pages, filter links, order, layout, keyboard, contrast."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import ocsf
from corral.dashboard.page import MAX_PAGE, PAGE_SIZE, Detail, Filters, Listing, Row, _listing_section, render_finding
from corral.dashboard.page import finding_path as page_path
from corral.pipeline import Inbound, Pipeline, now_ms
from corral.stores.base import FUTURE_ALLOWANCE_MS, FindingQuery, LedgerEntry, StoredFinding
from tests.coverage.test_dashboard import HOSTILE, hostile_finding
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import Running
from tests.stores.factory import BASE_TIME, make_finding

CONTRAST = """(() => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const back = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0.5) return c;
    }
    return matchMedia('(prefers-color-scheme: dark)').matches ? [18, 18, 18, 1] : [255, 255, 255, 1];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const bad = []; let checked = 0;
  const check = (el, st, text) => {
    if (el.closest('svg') || st.visibility === 'hidden' || st.display === 'none') return;
    if (el.getBoundingClientRect().right < 0) return;
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const got = ratio(parse(st.color), back(el)); checked++;
    if (got < need) bad.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}" ${st.color}: ${got.toFixed(2)}`);
  };
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let n;
  while ((n = walk.nextNode())) {
    if (n.textContent.trim()) check(n.parentElement, getComputedStyle(n.parentElement), n.textContent.trim());
  }
  for (const el of document.querySelectorAll('[data-label]')) {
    const st = getComputedStyle(el, '::before');
    if (st.content && st.content !== 'none') check(el, st, el.dataset.label);
  }
  for (const el of document.querySelectorAll('input, select, button')) check(el, getComputedStyle(el), 'control');
  return {bad, checked};
})()"""

OVERFLOW = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium driven over its DevTools pipe."""
    running = Browser(tmp_path / "chromium-profile")
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def site(filled: Pipeline, run_dashboard: Callable[..., Running]) -> Running:
    """The dashboard over the filled store, with 30 extra low findings so the list has more than a page,
    and two sinks' deliveries of the hostile finding."""
    now = now_ms()
    extra = []
    for i in range(30):
        finding = hostile_finding(now + i)
        finding["severity_id"], finding["severity"] = 2, "Low"
        finding["finding_info"] = {**finding["finding_info"], "uid": f"low-{i}", "title": f"Low finding {i}"}  # type: ignore[dict-item]
        extra.append(Inbound(finding, ref="test"))
    filled.ingest(extra)
    key = ("google.scc", "corral-demo", "hostile-1")
    version = filled.store.history(key)[0].version
    document = filled.store.get(key).document  # type: ignore[union-attr]
    filled.store.ledger_add(
        [
            LedgerEntry(version, "slack:soc", key, "new", document, now, "delivered", 1, 0, None, now + 1000),
            LedgerEntry(version, "webhook:<b>x</b>", key, "new", document, now, "pending", 2, now + 60_000,
                        "HTTP 503 <img src=x onerror=alert(3)>"),
        ]
    )  # fmt: skip
    return run_dashboard()


def rows(browser: Browser) -> list[dict[str, Any]]:
    """The finding list's rows as severity, title, cloud and link."""
    found: list[dict[str, Any]] = browser.evaluate(
        "[...document.querySelectorAll('#findings tbody tr')].map(r => ({"
        "severity: r.querySelector('td.sev').textContent, title: r.querySelector('td.title').textContent,"
        "cloud: r.querySelector('td[data-label=cloud]').textContent,"
        "href: r.querySelector('td.title a').getAttribute('href')}))"
    )
    return found


def test_finding_page_from_a_list_row(site: Running, browser: Browser) -> None:
    """A row's title opens its finding page: details, context, resources, history, deliveries, vendor record."""
    browser.open(site.base + "/?q=hostile&status=all")  # no row matches: the search narrows to nothing
    assert rows(browser) == []
    browser.open(site.base + "/?cloud=gcp&severity=critical")
    listed = rows(browser)
    assert listed and all(r["cloud"] == "GCP" and r["severity"] == "Critical" for r in listed)
    hostile = next(r for r in listed if r["title"] == HOSTILE)
    browser.click(f'#findings a[href="{hostile["href"]}"]')
    assert browser.evaluate("location.pathname") == hostile["href"]
    assert browser.evaluate("document.querySelector('h1').textContent") == HOSTILE
    page: dict[str, str] = browser.evaluate(
        "Object.fromEntries(['summary','context','resources','history','deliveries','vendor']"
        ".map(id => [id, document.getElementById(id).innerText]))"
    )
    for label in ("severity", "Critical", "region", "europe-west1", "event time (source clock)",
                  "first seen (Corral)", "account", "corral-demo"):  # fmt: skip
        assert label in page["summary"], label
    assert "<img src=x onerror=alert(2)>" in page["resources"]
    assert "new" in page["history"]
    assert "slack:soc" in page["deliveries"] and "delivered" in page["deliveries"]
    assert "webhook:<b>x</b>" in page["deliveries"] and "pending" in page["deliveries"]
    assert "HTTP 503 <img src=x onerror=alert(3)>" in page["deliveries"]
    assert browser.evaluate("document.querySelectorAll('script, img, b').length") == 0
    browser.click('a[href="/#findings"]')
    assert browser.evaluate("location.pathname") == "/"


def test_console_link_and_vendor_record(filled: Pipeline, site: Running, browser: Browser) -> None:
    """A finding with a console link shows it; its vendor record is the source's unmapped fields as text."""
    item = next(i for i in filled.store.query(FindingQuery(cloud="AWS", limit=100)).items if i.document.get("unmapped"))
    browser.open(site.base + page_path(item.key))
    link = browser.evaluate("document.querySelector('#summary a[href^=\"https://\"]')?.getAttribute('href')")
    assert link == item.document["finding_info"]["src_url"]
    vendor = browser.evaluate("document.querySelector('#vendor pre').textContent")
    assert json.loads(vendor) == item.document["unmapped"]


def test_filter_link_narrows_the_list(site: Running, browser: Browser) -> None:
    """A cloud link in a row narrows the list to that cloud, says so, and a chip removes the filter again."""
    browser.open(site.base + "/")
    before = browser.evaluate("document.getElementById('shown').textContent")
    browser.click('#findings td[data-label=cloud] a[href*="cloud=AWS"]')
    listed = rows(browser)
    assert listed and {r["cloud"] for r in listed} == {"AWS"}
    after = browser.evaluate("document.getElementById('shown').textContent")
    assert after != before and "Showing 1–" in after
    assert "cloud: AWS" in browser.evaluate("document.querySelector('.chips').textContent")
    browser.click('.chips a[aria-label="remove filter cloud"]')
    assert len({r["cloud"] for r in rows(browser)}) > 1


def test_most_severe_first_with_n_more(site: Running, browser: Browser) -> None:
    """The list puts Critical first (AWS's included), then newest; "N more" leads to the rest."""
    browser.open(site.base + "/")
    first = rows(browser)
    assert len(first) == 25
    order = [ocsf.SEVERITY_IDS[r["severity"].lower()] for r in first]
    assert order == sorted(order, key=lambda s: -s if 1 <= s <= 6 else 0)
    assert first[0]["severity"] == "Critical"
    assert any(r["cloud"] == "AWS" and r["severity"] == "Critical" for r in first)
    shown = browser.evaluate("document.getElementById('shown').textContent")
    total = int(shown.split(" of ")[1].split(".")[0].replace(",", ""))
    more = browser.evaluate("document.querySelector('.more a').textContent")
    assert more == f"{total - 25} more →"
    browser.click(".more a")
    second = rows(browser)
    assert len(second) == min(25, total - 25)
    assert {r["href"] for r in second}.isdisjoint({r["href"] for r in first})
    assert all(r["severity"] in ("Low", "Unknown", "Informational", "Medium", "Other") for r in second)


@pytest.mark.parametrize(("width", "dark"), [(360, False), (360, True), (1280, True)])
def test_no_horizontal_overflow_light_and_dark(
    site: Running, browser: Browser, tmp_path: Path, width: int, dark: bool
) -> None:
    """At 360 px and on a wide screen, light and dark, neither page scrolls sideways; dark mode is dark."""
    for path in ("/", "/?drill=GKE", page_path(("google.scc", "corral-demo", "hostile-1"))):
        browser.open(site.base + path, width=width, dark=dark)
        scroll, client = browser.evaluate(OVERFLOW)
        assert scroll <= client, f"{path} at {width} px: scrollWidth {scroll} > clientWidth {client}"
        background = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(15, 20, 27)") == dark, background
    shot = tmp_path / f"dashboard-{width}-{'dark' if dark else 'light'}.png"
    browser.open(site.base + "/", width=width, dark=dark)
    browser.screenshot(shot)
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("dark", [False, True])
def test_contrast_is_aa(site: Running, browser: Browser, dark: bool) -> None:
    """Every piece of text on both pages, narrow and wide, meets WCAG AA contrast against its background."""
    for path, width in (
        ("/?drill=EKS", 1280),
        ("/", 360),
        (page_path(("google.scc", "corral-demo", "hostile-1")), 360),
    ):
        browser.open(site.base + path, width=width, dark=dark)
        result = browser.evaluate(CONTRAST)
        assert result["checked"] > 50
        assert result["bad"] == [], result["bad"][:5]


def test_keyboard_focus_reaches_every_link(site: Running, browser: Browser) -> None:
    """Tab alone visits every link and control on the overview and a finding page, each with a visible ring."""
    for path in ("/?drill=AKS", page_path(("google.scc", "corral-demo", "hostile-1"))):
        browser.open(site.base + path)
        controls = browser.evaluate("document.querySelectorAll('a[href], input, select, button, [tabindex]').length")
        assert controls >= 2
        unringed = []
        for _ in range(controls + 3):
            browser.press_tab()
            focused = browser.evaluate(
                "(() => { const e = document.activeElement; if (e === document.body) return null;"
                " e.dataset.visited = '1'; const s = getComputedStyle(e);"
                " return [e.outerHTML.slice(0, 60), s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
            )
            if focused and (focused[1] == "none" or focused[2] < 2):
                unringed.append(focused[0])
        missed = browser.evaluate(
            "[...document.querySelectorAll('a[href], input, select, button, [tabindex]')]"
            ".filter(e => !e.dataset.visited).map(e => e.outerHTML.slice(0, 60))"
        )
        assert missed == [], missed[:5]
        assert unringed == [], unringed[:5]


def test_hostile_text_is_inert_on_new_pages(site: Running, browser: Browser) -> None:
    """Markup in titles, resources, sink names, errors and the search box stays text: no element, no script."""
    search = "<script>alert(4)</script>"
    browser.open(site.base + "/?q=" + search.replace("<", "%3C").replace(">", "%3E") + "&status=all")
    assert browser.evaluate("document.querySelector('input[name=q]').value") == search
    assert browser.evaluate("document.querySelectorAll('script, img').length") == 0
    for path in ("/?cloud=GCP", "/?drill=GKE", page_path(("google.scc", "corral-demo", "hostile-1"))):
        browser.open(site.base + path)
        assert browser.evaluate("document.querySelectorAll('script, img, b').length") == 0
        assert HOSTILE in browser.evaluate("document.body.innerText")


def test_search_form_submits_within_the_policy(site: Running, browser: Browser) -> None:
    """The GET form (allowed by form-action 'self') narrows the list by text and keeps the other filters."""
    browser.open(site.base + "/?cloud=gcp")
    browser.evaluate("document.querySelector('input[name=q]').value = 'LOW FINDING 1'")
    browser.click("form.filters button[type=submit]")
    query = browser.evaluate("location.search")
    assert "q=LOW+FINDING+1" in query and "cloud=GCP" in query
    listed = rows(browser)
    assert listed and all(r["title"].lower().startswith("low finding 1") for r in listed)
    assert len(listed) == 11  # "Low finding 1" and "Low finding 10" … "19"


@pytest.mark.parametrize("number", [1, MAX_PAGE - 1, MAX_PAGE])
def test_the_overview_links_no_page_past_the_last_it_serves(number: int) -> None:
    """Up to MAX_PAGE a "more" link; on the last page served, how to see the rest instead."""
    row = Row(("p", "a", "u"), "t", 4, 1, "AWS", "a", "GuardDuty", "p", "EKS", None, None, "", None, 1, 1)
    listing = Listing(Filters(page=number), [row] * PAGE_SIZE, total=5_000)
    html = _listing_section(listing)
    if number < MAX_PAGE:
        assert f"page={number + 1}" in html and 'rel="next"' in html
    else:
        assert 'rel="next"' not in html and f"page={number + 1}" not in html
        assert "narrow the filters" in html and "/api/findings" in html


def test_a_finding_page_shows_the_modified_time_its_source_gave() -> None:
    """A time past its arrival is stored capped for ordering; the page shows the source's, as the document has it."""
    document = make_finding(modified=4_070_908_800_000)  # 2099-01-01
    capped = BASE_TIME + FUTURE_ALLOWANCE_MS
    item = StoredFinding(ocsf.identity(document), document, BASE_TIME, BASE_TIME, 1, 3, 1, False, capped)
    html = render_finding(Detail(item, [], [], BASE_TIME))
    assert "<dt>modified (source clock)</dt><dd>2099-01-01 00:00 UTC</dd>" in html
