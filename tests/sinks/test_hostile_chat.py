"""Attacker-written finding text stays inert in Slack and Teams messages, and secrets never leak.

Titles, descriptions and resource names come from whoever controls the workload. Whatever they
contain, a rendered message must hold no mention, link, image or action of theirs, stay within
each platform's limits, and cut text only between characters. The canary tests then make both
sinks fail in every way and look for the configured secret in results, logs and payloads.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from corral.errors import ConfigError
from corral.sinks import chat, slack, teams
from corral.sinks.base import Delivery
from corral.sinks.text import MARKER
from corral.stores.base import ChangeKind
from tests.support.fake_http import DROP, HANG, FakeHTTPServer, Recorded, Reply, refused_url
from tests.support.sinks import CONSOLE, assert_no_canary, finding

FRAGMENTS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0123|@security>",
    "<@U123>",
    "<#C024BE7LR|general>",
    "<https://evil.example|click here>",
    "<mailto:a@evil.example|mail>",
    "*bold* _italic_ ~strike~ `code` ```block```",
    "> quoted",
    "[x](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "<at>Everyone</at>",
    "@channel @here @everyone @all",
    "http://evil.example/a HTTPS://EVIL.example ftp://evil.example",
    "line one\nline two\r\n\r\n\r\n\rline three",
    "😀" * 2600,  # about 10 KB of emoji
    "👩‍👩‍👧‍👦🏳️‍🌈",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319" * 50,  # combining marks
    "e\u0301" * 1600,
    "\u202egpj.exe",
    "\u2066isolate\u2069 \u200f",
    "nul\x00byte \x07bell \x1b[31m",
    "lone \ud800 surrogate",
    "&amp; &lt; &gt; & < >",
    "&",
    ":rotating_light: :skull:",
    "javascript:alert(1)",
    "x" * 20_000,
]

SEVERITIES = [0, 1, 2, 3, 4, 5, 6, 99]
CHANGES: list[ChangeKind] = ["new", "escalated", "deescalated", "reopened", "closed", "updated"]
_LINK = re.compile(r"(https?|ftps?)://", re.IGNORECASE)
_BROADCAST = re.compile(r"@(channel|here|everyone|all)\b", re.IGNORECASE)
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_HEADING = re.compile(r"[^\w\s]+ [A-Za-z]+ · [A-Za-z() →-]+")


def hostile(text: str, *, src_url: str | None = CONSOLE, severity_id: int = 5) -> dict[str, Any]:
    """A finding whose every attacker-reachable text is `text`."""
    doc = finding(
        title=text,
        desc=text,
        cluster=text or None,
        namespace=text or None,
        pod=text or None,
        container=text or None,
        image=(text or "img", text or "tag", "sha256:" + "0" * 64),
        types=[text],
        src_url=src_url,
        severity_id=severity_id,
    )
    doc["severity"] = text if severity_id == 99 else doc["severity"]
    doc["cloud"]["region"] = text
    return doc


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _assert_inert(text: str) -> None:
    assert not _LINK.search(text), text[:200]
    assert not _BROADCAST.search(text), text[:200]
    assert not _FORBIDDEN.search(text), text[:200]
    text.encode("utf-8")  # strict: no half of a surrogate pair


def _assert_clean_cut(shown: str, source: str) -> None:
    """A cut text is a prefix of the cleaned source followed by the marker, ending on a whole character."""
    if not shown.endswith(MARKER):
        return
    head = shown[: -len(MARKER)]
    assert source.startswith(head)
    assert not head or not unicodedata.combining(head[-1])
    assert not head.endswith(("\u200d", "\ufe0f"))


def check_slack(message: dict[str, Any], desc: str, pod: str) -> None:
    """Assert the Slack message is inert, within Block Kit limits, and cut cleanly."""
    assert message["mrkdwn"] is False and message["unfurl_links"] is False and message["unfurl_media"] is False
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    texts = [message["text"]]
    for node in _walk(blocks):
        if isinstance(node, dict) and node.get("type") in ("plain_text", "mrkdwn"):
            assert node["type"] == "plain_text"  # attacker text is never parsed as mrkdwn
            texts.append(node["text"])
    for text in texts:
        assert text, "Slack rejects empty text objects"
        assert "<" not in text and ">" not in text  # no <!channel>, <@U…>, <#C…>, <url|text>
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", text, re.DOTALL), "bare & or a cut entity"
        _assert_inert(html.unescape(text))
    for block in blocks:
        if block["type"] == "header":
            assert chat.utf16_len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block.get("fields", [])) <= 10
            assert all(chat.utf16_len(f["text"]) <= 2000 for f in block.get("fields", []))
            if "text" in block:
                assert chat.utf16_len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert [e["url"] for e in block["elements"]] == [CONSOLE]
    # Block 0 is the header (or, in a reply, the headline): any later section text is the description.
    for block in blocks[1:]:
        if block["type"] == "section" and "text" in block:
            _assert_clean_cut(_unescape(block["text"]["text"]), chat.clean(desc, single_line=False))
    for field in (f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])):
        if field.startswith("Pod: "):
            _assert_clean_cut(_unescape(field[5:]), chat.clean(pod))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


ALLOWED_TEAMS_TYPES = {
    "AdaptiveCard",
    "Container",
    "TextBlock",
    "RichTextBlock",
    "TextRun",
    "FactSet",
    "Action.OpenUrl",
}
# CommonMark, as the Adaptive Cards renderers parse a fact's Markdown (markdown-it); raw HTML is
# enabled here, stricter than Teams, so that a stray tag would show up as one.
_MARKDOWN = MarkdownIt("commonmark", {"html": True})
# The word joiners the escaping adds to stop a linkifier (chat.clean adds others, kept).
_LINK_JOINER = re.compile("(?<=://)\u2060|(?<=www)\u2060", re.IGNORECASE)


def _unjoin(text: str) -> str:
    return _LINK_JOINER.sub("", text)


def assert_markdown_inert(text: str, source: str) -> None:
    """`text`, shown where Teams renders Markdown, gives one paragraph showing `source` literally."""
    rendered = _MARKDOWN.render(text)
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered[:200]
    inner = rendered[3:-5]
    assert "<" not in inner, inner[:200]  # no <a>, <strong>, <em>, <code>, <img>, <ul> nor raw HTML
    assert _unjoin(html.unescape(inner)) == _unjoin(source)
    assert not re.search(r"://(?!\u2060)|\bwww\.", html.unescape(inner), re.IGNORECASE), inner[:200]


def check_teams(payload: dict[str, Any], desc: str, pod: str, doc: dict[str, Any] | None = None) -> None:
    """Assert the Teams message is inert, within 28 KB, and cut cleanly; with `doc`, that each fact
    shows exactly the cleaned text of `doc` when Teams renders its Markdown."""
    summary = chat.summarize(doc or {}, description_limit=0)
    expected = dict((("Type", summary.finding_type or ""), *summary.where, *summary.container))
    assert len(teams.encode(payload)) <= teams.MAX_PAYLOAD_BYTES
    card = payload["attachments"][0]["content"]
    assert "entities" not in card.get("msteams", {})
    runs: list[str] = []
    for node in _walk(card):
        if not isinstance(node, dict) or "type" not in node:
            continue
        assert node["type"] in ALLOWED_TEAMS_TYPES, node["type"]
        assert "selectAction" not in node
        if node["type"] == "TextBlock":
            # TextBlocks render Markdown: only Corral's own heading may be one.
            assert _HEADING.fullmatch(node["text"]), node["text"]
        if node["type"] == "Action.OpenUrl":
            assert node["url"] == CONSOLE and node["title"] == "Open in console"
        if node["type"] == "TextRun":
            runs.append(node["text"])
        if node["type"] == "RichTextBlock" and node.get("separator"):  # the description
            _assert_clean_cut(node["inlines"][0]["text"], chat.clean(desc, single_line=False))
        if node["type"] == "FactSet":
            for fact in node["facts"]:
                assert fact["title"] and fact["value"], "Teams drops a card with an empty fact"
                shown = _unjoin(html.unescape(_MARKDOWN.render(fact["value"])[3:-5]))
                runs.extend((fact["title"], shown))
                assert_markdown_inert(fact["title"], fact["title"])
                assert_markdown_inert(fact["value"], expected[fact["title"]] if doc is not None else shown)
                if fact["title"] == "Pod":
                    _assert_clean_cut(shown, chat.clean(pod))
    for text in runs:
        _assert_inert(text)


def render_all(doc: dict[str, Any], change: ChangeKind, desc: str, pod: str = "") -> None:
    """Render `doc` every way both sinks can and check each payload."""
    check_slack(slack.render(doc, change, previous_severity_id=4), desc, pod)
    check_slack(slack.render(doc, change, reply=True), desc, pod)
    check_teams(teams.render(doc, change, previous_severity_id=4), desc, pod, doc)


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=range(len(FRAGMENTS)))
def test_table_of_hostile_texts_stays_inert(fragment: str) -> None:
    """Each known attack string, in every attacker-reachable field, renders inert and within limits."""
    for sid in (5, 99):
        render_all(hostile(fragment, severity_id=sid), "new", fragment, fragment)
    twice = fragment + " " + fragment
    render_all(hostile(twice), "escalated", twice, twice)


FACT_ATTACKS = [
    "[reset your password](https://evil.example)",
    "[x](javascript:alert(1)) ![img](hxxps://evil.example/x.png)",
    "<https://evil.example> <mailto:a@evil.example> www.evil.example ssh://evil.example",
    "**bold** __bold__ *it* _it_ ~~gone~~ `code`",
    '<at>Everyone</at> <at id="0">Admin</at>',
    '<b>html</b> <img src=x onerror=alert(1)> <a href="https://evil.example">x</a>',
    "&lt;at&gt; &#91;x&#93;&#40;y&#41; &amp;",
    "- item",
    "+ item",
    "1. first",
    "2) second",
    "# heading",
    "> quote",
    "--- ",
    "| a | b |",
    "\\[escaped\\](x)",
    "\\*\\*",
    "trailing backslash \\",
]


@pytest.mark.parametrize("attack", FACT_ATTACKS, ids=range(len(FACT_ATTACKS)))
def test_factset_values_render_literally(attack: str) -> None:
    """Every FactSet value, read as the Markdown Teams renders there, shows the cleaned text literally:
    no link, emphasis, list, heading, code, mention or HTML of the attacker's."""
    doc = hostile(attack)
    payload = teams.render(doc, "new")
    facts = [f for n in _walk(payload) if isinstance(n, dict) and n.get("type") == "FactSet" for f in n["facts"]]
    assert {f["title"] for f in facts} >= {"Type", "Region", "Cluster", "Namespace", "Pod", "Container", "Image"}
    check_teams(payload, attack, attack, doc)
    for fact in facts:
        rendered = _MARKDOWN.render(fact["value"])
        for tag in ("<a", "<strong", "<em", "<code", "<img", "<ul", "<ol", "<h1", "<blockquote", "<hr", "<at", "<b>"):
            assert tag not in rendered, (fact, rendered)


def test_hostile_console_link_gives_no_button() -> None:
    """A src_url off the vendor consoles yields no Slack button and no Teams action."""
    for url in ("https://evil.example/", "https://console.aws.amazon.com.evil.example/", "http://portal.azure.com/"):
        doc = hostile("x", src_url=url)
        assert not [b for b in slack.render(doc, "new")["blocks"] if b["type"] == "actions"]
        assert "actions" not in teams.render(doc, "new")["attachments"][0]["content"]


SHORT = [f for f in FRAGMENTS if len(f) < 1000]
texts = st.lists(st.one_of(st.sampled_from(SHORT), st.text(max_size=40)), max_size=12).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts, desc=texts, pod=texts, sid=st.sampled_from(SEVERITIES), change=st.sampled_from(CHANGES))
def test_any_hostile_mix_stays_inert(title: str, desc: str, pod: str, sid: int, change: ChangeKind) -> None:
    """Random mixes of attack strings and arbitrary Unicode render inert, within limits, cut cleanly."""
    doc = finding(title=title, desc=desc, pod=pod or None, severity_id=sid)
    render_all(doc, change, desc, pod)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1, max_size=200), repeat=st.integers(min_value=1, max_value=400))
def test_long_text_is_cut_on_character_boundaries(text: str, repeat: int) -> None:
    """Long arbitrary text is cut to each limit as a prefix plus the marker, never inside a character."""
    long = text * repeat
    render_all(finding(title=long, desc=long, pod=long), "new", long, long)


# The lengths a text is cut to on its way into a message: Slack's header (150), notification text
# and every field value (300), the title (500; 300 in Teams), the descriptions (2900, 8000 in Teams).
_CUT_LIMITS = (150, 300, 500, 2900, 8000)


@pytest.mark.parametrize("word", ["channel", "HERE", "everyone", "All"])
def test_no_cut_completes_a_broadcast(word: str) -> None:
    """`@channelz` is no broadcast, but a cut right after `@channel` would leave one before the marker:
    with the cut at every point around each limit, in every text of both platforms, none is left."""
    for limit in _CUT_LIMITS:
        # The marker and a label or heading before the text move the cut up to ~50 units below the limit.
        for pad in range(limit - 50, limit + 1):
            text = "r" * pad + f"@{word}z" + "q" * 20
            doc = hostile(text)
            doc["finding_info"]["uid"] = text
            doc["metadata"]["product"]["name"] = text
            doc["cloud"]["account"]["name"] = text
            render_all(doc, "new", text, text)
            assert chat.utf16_len(slack.render(doc, "new")["text"]) <= slack.FALLBACK_LIMIT
            title_run = teams.render(doc, "new")["attachments"][0]["content"]["body"][0]["items"][1]["inlines"][0]
            assert chat.utf16_len(title_run["text"]) <= teams.TITLE_LIMIT


# Canary secrets --------------------------------------------------------------------------------

CANARY = "c4n4ry7f3a9e51"


def _failures() -> list[Reply | Any]:
    def echo(recorded: Recorded) -> Reply:
        # A misbehaving server that echoes what it was sent (path and credentials) in its error.
        said = f"{recorded.target} {recorded.headers.get('authorization', '')}"
        return Reply.json(400, {"ok": False, "error": said}, headers={"X-Echo": said})

    return [
        Reply.text(400, "invalid_payload"),
        Reply.json(200, {"ok": False, "error": "invalid_auth"}),
        Reply.json(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"}),
        Reply.text(500, "oops"),
        HANG,
        DROP,
        echo,
    ]


def _sinks(base: str) -> list[tuple[Any, str]]:
    token = f"xoxb-{CANARY}"
    slack_hook = f"{base}/services/T0/B0/{CANARY}"
    teams_hook = f"{base}/workflows/{CANARY}/invoke?api-version=1&sig={CANARY}"
    quick = {"timeout": 0.3, "min_interval": 0}
    return [
        (
            slack.from_config(
                "slack:bot", {"token_env": "T", "channel": "C1", "api_url": base + "/api/", **quick}, {"T": token}
            ),
            token,
        ),
        (slack.from_config("slack:hook", {"webhook_url_env": "H", **quick}, {"H": slack_hook}), slack_hook),
        (teams.from_config("teams:soc", {"webhook_url_env": "H", **quick}, {"H": teams_hook}), teams_hook),
    ]


def _assert_no_canary(caplog: pytest.LogCaptureFixture, results: list[Any], requests: list[Recorded]) -> None:
    # The webhook URLs carry the secret in their path by design; the bodies must not.
    assert_no_canary(CANARY, results, caplog, requests, in_path=False)
    assert CANARY not in caplog.text
    assert all(CANARY not in (result.message_ref or "") for result in results)


@pytest.mark.parametrize("failure", range(len(_failures())))
def test_canary_secret_never_leaks_when_sinks_fail(failure: int, caplog: pytest.LogCaptureFixture) -> None:
    """Under every failure, the configured token or webhook URL appears in no Result, log record or payload."""
    caplog.set_level(logging.DEBUG)
    with FakeHTTPServer() as server:
        built = _sinks(server.url)
        results = []
        for sink, _ in built:
            server.push(_failures()[failure])
            results += sink.send([Delivery(sink.id, "v1", "new", finding())])
            sink.close()
    # `ok: false` with 200 is a refusal only from the Web API; webhooks answer 200 on success.
    web_api_only = _failures()[failure] == Reply.json(200, {"ok": False, "error": "invalid_auth"})
    assert [r.ok for r in results] == ([False, True, True] if web_api_only else [False, False, False])
    assert len(server.requests) == len(built)
    _assert_no_canary(caplog, results, server.requests)
    # The test has teeth: the HTTP client's request lines were captured, with the secret redacted.
    assert any(r.name.startswith("urllib3") for r in caplog.records)


def test_canary_secret_never_leaks_when_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    """With nothing listening, failures name no secret in results or logs."""
    caplog.set_level(logging.DEBUG)
    base = refused_url("").rstrip("/")
    results = []
    for sink, _ in _sinks(base):
        results += sink.send([Delivery(sink.id, "v1", "new", finding())])
    assert results and all(not r.ok and not r.permanent for r in results)
    _assert_no_canary(caplog, results, [])


def test_canary_secret_never_in_config_errors() -> None:
    """A token or URL that fails validation is not quoted in the ConfigError."""
    cases = [
        (slack.from_config, {"token_env": "T", "channel": "C1"}, {"T": f"bad-{CANARY}"}),
        (slack.from_config, {"webhook_url_env": "H"}, {"H": f"http://hooks.example/{CANARY}"}),
        (teams.from_config, {"webhook_url_env": "H"}, {"H": f"ftp://flow.example/{CANARY}"}),
        (teams.from_config, {"webhook_url_env": "H"}, {"H": f"https://x.webhook.office.com/{CANARY}"}),
    ]
    for factory, config, env in cases:
        with pytest.raises(ConfigError) as caught:
            factory("chat:x", config, env)
        assert CANARY not in str(caught.value)


def test_rendered_payloads_carry_no_secret() -> None:
    """Render output is built from the finding only: a canary in the sink's secrets cannot reach it."""
    doc = finding()
    payloads = [slack.render(doc, "new"), slack.render(doc, "closed", reply=True), teams.render(doc, "new")]
    assert all(CANARY not in str(p) for p in payloads)
    with FakeHTTPServer(default=Reply(202)) as server:
        server.push(Reply.json(200, {"ok": True, "ts": "1.2"}), Reply.text(200, "ok"), Reply(202))
        for sink, _ in _sinks(server.url):
            assert all(r.ok for r in sink.send([Delivery(sink.id, "v1", "new", doc)]))
    assert all(CANARY.encode() not in r.body for r in server.requests)
