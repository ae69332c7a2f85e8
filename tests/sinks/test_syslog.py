"""The syslog sink: RFC 5424 + CEF rendering and escaping, and delivery to a real rsyslogd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import ConfigError
from corral.sinks import build, family, syslog
from corral.sinks.base import Delivery
from corral.sinks.text import MARKER
from tests.support.fake_http import make_tls
from tests.support.rsyslog import (
    Rsyslog,
    free_port,
    rsyslog_fixture,  # noqa: F401  (the session fixture `rsyslog`)
    running,
    start,
    stop,
)
from tests.support.sinks import HOSTILE_TEXTS, check_golden, make_delivery

SINK = "syslog:siem"
CANARY = "CANARY-syslog-51d0e2"
EXPECTED_KEYS = [
    "rt",
    "cat",
    "externalId",
    "cs1Label",
    "cs1",
    "cs2Label",
    "cs2",
    "cs3Label",
    "cs3",
    "cs4Label",
    "cs4",
    "cs5Label",
    "cs5",
    "cs6Label",
    "cs6",
    "flexString1Label",
    "flexString1",
    "flexString2Label",
    "flexString2",
    "msg",
]
FAKE_HEADER = (
    '\n<13>1 2024-01-01T00:00:00Z evil evilapp - forged [x@1 a="b"] CEF:0|Evil|Forged|1|x|forged|10|cs1=forged'
)
HOSTILE = (
    *HOSTILE_TEXTS[:6],
    'close ] the "element" \\] and = signs = and | pipes |',
    "x" * 20_000,
    FAKE_HEADER,
    "31 <13>1 - - - - - - octet forged",
)


# --- A small CEF parser, independent of the sink's escaping code -------------------------------


def parse_cef(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Split a CEF record into its 7 header fields (unescaped) and its extension pairs (unescaped)."""
    fields: list[str] = []
    current: list[str] = []
    i = 0
    while len(fields) < 7:
        char = text[i]
        if char == "\\" and text[i + 1] in "\\|":
            current.append(text[i + 1])
            i += 2
            continue
        if char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    rest = text[i:]
    # A key starts after a space (or at the start) and ends at an unescaped '='.
    starts = [m for m in re.finditer(r"(?:^| )([A-Za-z0-9_.]+)=", rest) if _unescaped(rest, m.end() - 1)]
    pairs: list[tuple[str, str]] = []
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(rest)
        pairs.append((match.group(1), _unescape_value(rest[match.end() : end])))
    return fields, pairs


def _unescaped(text: str, pos: int) -> bool:
    backslashes = len(text[:pos]) - len(text[:pos].rstrip("\\"))
    return backslashes % 2 == 0


def _unescape_value(value: str) -> str:
    table = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), m.group(0)), value)


def _message(delivery: Delivery, **meta: Any) -> str:
    return syslog.render(delivery, hostname="corral-hub", **meta).decode("utf-8")


def split_5424(message: str) -> tuple[list[str], str, str]:
    """Split an RFC 5424 message into its 6 header fields, its one SD element and MSG, by the grammar."""
    header = message.split(" ", 6)
    rest = header.pop()
    assert rest.startswith("[")
    i = 1
    while rest[i] != "]":
        if rest[i] == '"':
            i += 1
            while rest[i] != '"':
                i += 2 if rest[i] == "\\" else 1
        i += 1
    assert rest[i + 1] == " "
    return header, rest[: i + 1], rest[i + 2 :]


def _cef(message: str) -> str:
    msg = split_5424(message)[2]
    assert msg.startswith("CEF:0|")
    return msg


# --- Rendering -----------------------------------------------------------------------------------


def test_render_matches_golden() -> None:
    """One finding as RFC 5424 + CEF, byte for byte."""
    check_golden("syslog", "message.txt", syslog.render(make_delivery(SINK), hostname="corral-hub") + b"\n")


def test_hostile_render_matches_golden() -> None:
    """Hostile titles, descriptions and uids, escaped, one message per line (none contains a newline)."""
    lines = [
        syslog.render(make_delivery(SINK, title=text[:300], desc=text[:300], uid=f"uid-{text[:40]}"), hostname="h")
        for text in HOSTILE
    ]
    check_golden("syslog", "hostile.txt", b"\n".join(lines) + b"\n")


def test_fields_and_priority() -> None:
    """Header, structured data and CEF fields carry the finding; PRI is facility*8 + severity."""
    delivery = make_delivery(SINK, version="ab" * 32, change="escalated", severity_id=5)
    message = _message(delivery, facility="local0", app_name="corral-x")
    assert message.startswith("<130>1 2024-01-02T03:04:05.123Z corral-hub corral-x - escalated [corral@32473 ")
    assert f'idempotencyKey="{"ab" * 32}"' in message
    fields, pairs = parse_cef(_cef(message))
    assert fields == [
        "CEF:0",
        "AWS",
        "GuardDuty",
        "",
        "Execution:Runtime/ReverseShell",
        "Reverse shell in a container",
        "10",
    ]
    ext = dict(pairs)
    assert [k for k, _ in pairs] == EXPECTED_KEYS
    assert ext["rt"] == "1704164645123"
    assert (ext["cs1Label"], ext["cs1"]) == ("idempotencyKey", "ab" * 32)
    assert (ext["cs2Label"], ext["cs2"]) == ("change", "escalated")
    assert (ext["cs3Label"], ext["cs3"]) == ("account", "111122223333")
    assert (ext["cs4"], ext["cs5"], ext["cs6"]) == ("prod-eks", "payments", "registry.example/payments/api:1.4.2")
    assert ext["externalId"] == delivery.finding["finding_info"]["uid"]
    assert ext["flexString1"] == "AWS"
    assert ext["msg"] == delivery.finding["finding_info"]["desc"]


@pytest.mark.parametrize(
    ("severity_id", "cef", "pri"), [(1, "1", 166), (2, "3", 165), (3, "5", 164), (4, "8", 163), (5, "10", 162)]
)
def test_severity_mapping(severity_id: int, cef: str, pri: int) -> None:
    """OCSF severities map to CEF 0-10 and to the syslog severity in PRI (local4)."""
    message = _message(make_delivery(SINK, severity_id=severity_id))
    assert message.startswith(f"<{pri}>1 ")
    assert parse_cef(_cef(message))[0][6] == cef


def test_escapers() -> None:
    """Each escaper escapes what its grammar needs and replaces control characters."""
    assert syslog.cef_header("a|b\\c\nd\x00", 63) == "a\\|b\\\\c d\ufffd"
    assert syslog.cef_value("a=b\\c\r\nd|e\x1b\u202e") == "a\\=b\\\\c\\r\\nd|e\ufffd\ufffd"
    assert syslog.sd_value('a"b]c\\d\n') == 'a\\"b\\]c\\\\d '
    assert syslog.header_field("a b\u00e9", 48) == "a_b_"
    assert syslog.header_field("x" * 60, 48) == "x" * 48
    assert syslog.frame(b"abc") == b"3 abc"


def test_cut_never_splits_an_escape_pair() -> None:
    """A value cut at a backslash keeps whole escape pairs and ends with the marker."""
    cut = syslog.cef_value("\\" * 100, limit=21)
    assert cut.endswith(MARKER)
    head = cut[: -len(MARKER)]
    assert len(head) % 2 == 0 and set(head) == {"\\"}


@pytest.mark.parametrize("desc", ["x" * 20_000, "é漢🙂" * 5_000, "\\" * 20_000, "=\n" * 10_000])
def test_long_description_is_cut_to_max_message(desc: str) -> None:
    """A 20 KB description is cut inside `msg` on a character boundary; the message ends with the marker."""
    raw = syslog.render(make_delivery(SINK, desc=desc), hostname="h", max_message=4096)
    assert len(raw) <= 4096
    text = raw.decode("utf-8")  # a cut in the middle of a character would fail here
    assert text.endswith(MARKER)
    ext = dict(parse_cef(_cef(text))[1])
    assert desc.startswith(ext["msg"][: -len(MARKER)])
    assert ext["cs1"] == "9f2c" * 16


def test_long_title_is_cut_in_the_header() -> None:
    """A 20 KB title is cut to 512 characters in the CEF Name field; the header stays 7 fields."""
    fields, pairs = parse_cef(_cef(_message(make_delivery(SINK, title="|" * 20_000))))
    assert len(fields[5]) <= 512 and fields[5].endswith(MARKER)
    assert fields[6] == "8"
    assert [k for k, _ in pairs] == EXPECTED_KEYS


WIDE = "\U0001f642"  # one character, four UTF-8 bytes


@pytest.mark.parametrize(
    ("max_message", "fields"),
    [
        (2048, {"title": WIDE * 600}),
        (1024, {"uid": WIDE * 300}),
        (1024, {"title": WIDE * 600, "uid": WIDE * 300, "image": WIDE * 300, "cluster": "\\]" * 500}),
        (8192, {"cluster": WIDE * 1100, "namespace": WIDE * 1100, "image": WIDE * 1100, "title": "|" * 600}),
    ],
    ids=["title-2048", "uid-1024", "everything-1024", "context-8192"],
)
def test_wide_characters_shorten_fields_and_keep_every_one(max_message: int, fields: dict[str, str]) -> None:
    """Limits count bytes: text of 4-byte characters shortens the fields, and the element, 7 fields and keys stay."""
    delivery = make_delivery(SINK, desc="d" * 5_000, **fields)
    raw = syslog.render(delivery, hostname="h", max_message=max_message)
    assert len(raw) <= max_message
    text = raw.decode("utf-8")
    header, sd, _ = split_5424(text)
    assert header[2] == "h"
    assert sd.endswith('"]') and f'idempotencyKey="{delivery.version}"' in sd
    cef, pairs = parse_cef(_cef(text))
    assert cef[6] == "8"
    assert [k for k, _ in pairs] == EXPECTED_KEYS
    ext = dict(pairs)
    assert ext["cs1"] == delivery.version
    assert ext["msg"].endswith(MARKER)
    if "title" in fields:
        assert cef[5].endswith(MARKER) and fields["title"].startswith(cef[5][: -len(MARKER)])


_text = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(HOSTILE)


@settings(max_examples=200, deadline=None)
@given(title=_text, desc=_text, uid=_text.filter(bool), image=_text)
def test_no_text_breaks_the_message(title: str, desc: str, uid: str, image: str) -> None:
    """Whatever the text, one line of printable text, 7 header fields, the expected keys only."""
    delivery = make_delivery(SINK, title=title, desc=desc, uid=uid, image=image)
    raw = syslog.render(delivery, hostname="h", max_message=8192)
    text = raw.decode("utf-8")
    assert len(raw) <= 8192
    assert not re.search("[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e]", text)
    header = text.split(" ", 6)
    assert header[:6] == ["<163>1", "2024-01-02T03:04:05.123Z", "h", "corral", "-", "new"]
    assert list(strict_sd(text)) == ["idempotencyKey", "change", "findingUid"]
    fields, pairs = parse_cef(_cef(text))
    keys = [k for k, _ in pairs]
    expected = [k for k in EXPECTED_KEYS if not (k.startswith("cs6") and not image) and not (k == "msg" and not desc)]
    assert keys == expected
    ext = dict(pairs)
    assert ext["cs1"] == delivery.version
    assert fields[6] == "8"


# RFC 5424 §6.3, strictly: SD-NAME is 1-32 printable US-ASCII characters but `=`, space, `]` and `"`;
# inside a PARAM-VALUE, `"`, `\\` and `]` MUST be escaped (§6.3.3), so a backslash only starts a pair.
_SD_NAME = r"[!#-<>-\[\\^-~]{1,32}"
_PARAM_VALUE = r'(?:[^"\\\]]|\\["\\\]])*'
_SD_PARAM = re.compile(rf'({_SD_NAME})="({_PARAM_VALUE})"')
_SD_ELEMENT = re.compile(rf'\[{_SD_NAME}(?: {_SD_NAME}="{_PARAM_VALUE}")*\]')


def strict_sd(message: str) -> dict[str, str]:
    """Return the params of the message's one SD-ELEMENT, escaped as sent; fail unless the grammar holds."""
    rest = message.split(" ", 6)[6]
    element = _SD_ELEMENT.match(rest)
    assert element, rest[:400]
    assert rest[element.end() :].startswith(" CEF:0|"), rest[: element.end() + 20]
    return {m.group(1): m.group(2) for m in _SD_PARAM.finditer(element.group())}


def _unescape_sd(value: str) -> str:
    return re.sub(r'\\(["\\\]])', r"\1", value)


# Uids whose cut lands on every byte of escape pairs and of a 4-byte character, at the SD limit
# (255 bytes) and, with a long title forcing shorter fields at 1024 bytes, below it.
_CUT_UIDS = [pad * "u" + body * 200 for pad in range(6) for body in ('"', "\\", "]", '\\"]', WIDE + "]")]


@pytest.mark.parametrize("uid", _CUT_UIDS)
@pytest.mark.parametrize(("max_message", "title"), [(8192, "Reverse shell"), (1024, "T" * 600)], ids=["8192", "1024"])
def test_cut_structured_data_stays_escaped(uid: str, max_message: int, title: str) -> None:
    """A cut findingUid or corralUrl, marker included, escapes every `"`, `\\` and `]`, within its byte limits."""
    link = "https://corral.example/" + "]" * 300
    delivery = make_delivery(SINK, uid=uid, title=title, desc="d" * 5_000)
    raw = syslog.render(delivery, hostname="h", max_message=max_message, public_url=link)
    assert len(raw) <= max_message
    params = strict_sd(raw.decode("utf-8"))
    assert list(params) == ["idempotencyKey", "change", "findingUid", "corralUrl"]
    assert params["idempotencyKey"] == delivery.version
    assert all(len(params[name].encode()) <= 255 for name in ("findingUid", "corralUrl"))
    shown_uid, shown_link = _unescape_sd(params["findingUid"]), _unescape_sd(params["corralUrl"])
    assert shown_uid.endswith(MARKER) and uid.startswith(shown_uid[: -len(MARKER)])
    assert shown_link.endswith(MARKER) and link.startswith(shown_link[: -len(MARKER)])


# --- Configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "key"),
    [
        ({}, "host"),
        ({"host": "h", "transport": "udp"}, "transport"),
        ({"host": "h", "port": 0}, "port"),
        ({"host": "h", "facility": "local9"}, "facility"),
        ({"host": "h", "max_message": 10}, "max_message"),
        ({"host": "h", "app_name": "two words"}, "app_name"),
        ({"host": "h", "ca_file": "/nonexistent.pem"}, "ca_file"),
        ({"host": "h", "transport": "tcp", "ca_file": "/etc/hostname"}, "ca_file"),
    ],
)
def test_config_errors_name_the_key(settings_: dict[str, Any], key: str) -> None:
    """Each invalid setting raises ConfigError naming sinks.<id>.<key>."""
    with pytest.raises(ConfigError, match=rf"^sinks\.{re.escape(SINK)}\.{key}:"):
        syslog.from_config(SINK, {"kind": "syslog", **settings_}, {})


def _encrypted_client_key(directory: Path, password: bytes) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    tls = make_tls(directory)
    key = serialization.load_pem_private_key(tls.key.read_bytes(), None)
    encrypted = directory / "client.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return tls.cert, encrypted


def test_wrong_key_password_error_hides_the_password(tmp_path: Path) -> None:
    """A client key that the configured password cannot open fails without echoing the password."""
    cert, key = _encrypted_client_key(tmp_path, b"the-real-password")
    settings_ = {
        "host": "127.0.0.1",
        "client_cert": str(cert),
        "client_key": str(key),
        "client_key_password_env": "SYSLOG_KEY_PASSWORD",
    }
    with pytest.raises(ConfigError) as caught:
        syslog.from_config(SINK, settings_, {"SYSLOG_KEY_PASSWORD": CANARY})
    assert "client_cert" in str(caught.value)
    assert CANARY not in str(caught.value) and CANARY not in repr(caught.value.__cause__)


def test_registry_builds_the_sink() -> None:
    """`syslog` is a registered SIEM kind and builds a SyslogSink."""
    sink = build(SINK, {"kind": "syslog", "host": "127.0.0.1", "transport": "tcp"}, {})
    assert isinstance(sink, syslog.SyslogSink)
    assert family("syslog") == "siem" == sink.family


# --- Against rsyslogd ------------------------------------------------------------------------------


def _sink(server: Rsyslog, transport: str, **extra: Any) -> syslog.SyslogSink:
    settings_: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port(transport),
        "transport": transport,
        "hostname": "corral-hub",
        "timeout": 5,
        **extra,
    }
    if transport == "tls":
        settings_.setdefault("ca_file", str(server.tls.cert))
    return syslog.from_config(SINK, settings_, {"SYSLOG_KEY_PASSWORD": CANARY})


def _hostile_deliveries() -> list[Delivery]:
    return [
        make_delivery(
            SINK, version=f"{i:064x}", title=text, desc=text, uid=f"uid-{i}-{text[:64]}", namespace=text[:200]
        )
        for i, text in enumerate(HOSTILE)
    ]


def _check_records(records: list[dict[str, Any]], deliveries: list[Delivery]) -> None:
    assert len(records) == len(deliveries), [r["raw"][:120] for r in records]
    for record, delivery in zip(records, deliveries, strict=True):
        assert record["protocol_version"] == "1"
        assert (record["hostname"], record["app_name"], record["procid"]) == ("corral-hub", "corral", "-")
        assert record["msgid"] == delivery.change
        assert record["facility"] == "20" and record["severity"] == "3"
        assert record["structured_data"].startswith(f'[corral@32473 idempotencyKey="{delivery.version}" change=')
        fields, pairs = parse_cef(record["msg"].lstrip())
        assert fields[:3] == ["CEF:0", "AWS", "GuardDuty"]
        assert fields[6] == "8"
        assert [k for k, _ in pairs] == EXPECTED_KEYS
        ext = dict(pairs)
        assert ext["cs1"] == delivery.version
        assert ext["cs3"] == "111122223333"
        info = delivery.finding["finding_info"]
        if len(info["desc"]) < 1000 and not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\u202a-\u202e]", info["desc"]):
            assert ext["msg"] == info["desc"].replace("\t", " ")
            assert fields[5] == re.sub(r"[\r\n]+", " ", info["title"])


@pytest.mark.parametrize("transport", ["tls", "tcp"])
def test_every_message_arrives_once_with_its_fields(rsyslog: Rsyslog, transport: str) -> None:
    """N deliveries with hostile text are exactly N records in rsyslog, none forged, fields intact."""
    rsyslog.clear()
    deliveries = _hostile_deliveries()
    sink = _sink(rsyslog, transport, max_message=32_768)
    results = sink.send(deliveries)
    sink.close()
    assert [r.ok for r in results] == [True] * len(deliveries)
    assert [r.version for r in results] == [d.version for d in deliveries]
    _check_records(rsyslog.wait_for(transport, len(deliveries)), deliveries)


def test_default_max_message_fits_rsyslog(rsyslog: Rsyslog) -> None:
    """With the default max_message a 20 KB description arrives cut, with the marker, as one record."""
    rsyslog.clear()
    delivery = make_delivery(SINK, desc="é" * 20_000)
    assert _sink(rsyslog, "tls").send([delivery])[0].ok
    records = rsyslog.wait_for("tls", 1)
    assert len(records) == 1
    assert len(records[0]["raw"].encode()) <= syslog.DEFAULT_MAX_MESSAGE
    assert records[0]["msg"].endswith(MARKER)


@pytest.fixture(scope="module")
def default_rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """A real rsyslogd as installed: no maxMessageSize set, so rsyslog's own default applies."""
    yield from running(tmp_path_factory.mktemp("rsyslog-default"), max_message_size=None)


FORGED_TAIL = "<13>1 2024-01-01T00:00:00Z evil evilapp - forged - pwned"


@pytest.mark.parametrize("transport", ["tls", "tcp"])
def test_default_max_message_fits_an_rsyslog_left_at_its_default(default_rsyslog: Rsyslog, transport: str) -> None:
    """rsyslog's default maxMessageSize is 8096 bytes (runtime/glbl.c `iMaxLine = 8096`, documented as
    "8K"), and imtcp hands the bytes of a longer octet-counted frame to a record of their own. At the
    sink's default a long description arrives as one record, cut with the marker; the text an attacker
    placed where rsyslog would have split the frame forges no record."""
    default_rsyslog.clear()
    probe = make_delivery(SINK, desc="a" * 20_000)
    prefix = syslog.render(probe, hostname="corral-hub").split(b" msg=")[0] + b" msg="
    # rsyslog ends the first record after byte 8096, drops byte 8097 and starts a new record at 8098.
    desc = "a" * (8096 - len(prefix)) + "-" + FORGED_TAIL + "b" * 20_000
    assert _sink(default_rsyslog, transport).send([make_delivery(SINK, desc=desc)])[0].ok
    records = default_rsyslog.wait_for(transport, 1)
    assert [r["hostname"] for r in records] == ["corral-hub"]
    assert len(records[0]["raw"].encode()) <= syslog.DEFAULT_MAX_MESSAGE
    assert records[0]["msg"].endswith(MARKER)


def test_client_certificate_with_password_connects(rsyslog: Rsyslog, tmp_path: Path) -> None:
    """A client certificate whose key password comes from the environment loads and delivers."""
    rsyslog.clear()
    cert, key = _encrypted_client_key(tmp_path, CANARY.encode())
    sink = _sink(
        rsyslog, "tls", client_cert=str(cert), client_key=str(key), client_key_password_env="SYSLOG_KEY_PASSWORD"
    )
    assert sink.send([make_delivery(SINK)])[0].ok
    assert len(rsyslog.wait_for("tls", 1)) == 1


def test_untrusted_server_certificate_fails(rsyslog: Rsyslog, tmp_path: Path) -> None:
    """A receiver whose certificate the CA file does not vouch for gets nothing; the failure says why."""
    other = make_tls(tmp_path)
    results = _sink(rsyslog, "tls", ca_file=str(other.cert)).send([make_delivery(SINK)])
    assert not results[0].ok
    assert "certificate verification failed" in (results[0].error or "")


def test_stopped_rsyslog_is_a_retryable_failure(tmp_path: Path) -> None:
    """Once rsyslogd has stopped, every delivery of the batch fails retryably."""
    try:
        running = start(tmp_path)
    except (OSError, RuntimeError) as exc:
        if __import__("os").environ.get("CI"):
            pytest.fail(f"rsyslogd could not start: {exc}")
        pytest.skip(f"rsyslogd could not start: {exc}")
    try:
        assert _sink(running, "tcp").send([make_delivery(SINK)])[0].ok
    finally:
        stop(running)
    for transport in ("tcp", "tls"):
        results = _sink(running, transport).send([make_delivery(SINK, version="1" * 64), make_delivery(SINK)])
        assert [r.ok for r in results] == [False, False]
        assert all(not r.permanent for r in results)
        assert "connection refused" in (results[0].error or "")


def test_nothing_listening_is_retryable() -> None:
    """A port nobody listens on is a retryable failure, naming the receiver, for every delivery."""
    port = free_port()
    sink = syslog.from_config(SINK, {"host": "127.0.0.1", "port": port, "transport": "tcp"}, {})
    results = sink.send([make_delivery(SINK), make_delivery(SINK, version="2" * 64)])
    assert [(r.ok, r.permanent) for r in results] == [(False, False), (False, False)]
    assert f"127.0.0.1:{port}" in (results[0].error or "")
