"""Syslog sink: RFC 5424 messages carrying CEF, over TCP with octet counting or over TLS.

Each delivery becomes one RFC 5424 message whose MSG is an ArcSight CEF record:

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [corral@32473 ...] CEF:0|Vendor|Product|...|ext

framed by octet counting (RFC 6587 §3.4.1, `<length> <message>`) on a TCP connection, plain or
TLS (RFC 5425, which mandates the same framing). The timestamp and `rt` are the finding's own
modified time, so a re-sent version is byte-identical and a SIEM can drop it by the idempotency
key (`cs1`, and `idempotencyKey` in the structured data).

Attacker-controlled text (titles, descriptions, resource names) never breaks out of its field:
CEF header fields escape `\\` and `|`, extension values escape `\\`, `=`, and carry newlines as
`\\n`/`\\r`; structured-data values escape `"`, `\\` and `]`; RFC 5424 header fields keep only
printable US-ASCII without spaces. Other control characters, bidirectional overrides and line
separators become U+FFFD, so nothing in a message can look like a record boundary to a receiver
that splits on newlines, nor reorder what an analyst sees. Every limit counts UTF-8 bytes, as
`max_message` does. A message longer than `max_message` is cut on a character boundary, inside
the description first, then in the finding's other fields, which shorten together, each saying
so with a marker: every field and key stays, with Corral's own values (the idempotency key) whole.

There is no application-level acknowledgement in syslog. A batch goes over one connection that
is then closed gracefully (TLS close_notify, then TCP FIN); the batch counts as delivered once
the receiver has closed its side, i.e. has read everything. A refused, reset or timed-out
connection fails every delivery of the batch not yet confirmed, retryably: delivery is at least
once, and the idempotency key lets the SIEM drop the rare duplicate.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from corral import ocsf
from corral.context import container_context
from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily
from corral.sinks.http import secret_from_env
from corral.sinks.settings import PUBLIC_URL_HELP, public_url, seconds
from corral.sinks.text import MARKER, finding_link

FAMILY: Final[SinkFamily] = "siem"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`syslog:name`).",
    "host": "Host name or IP address of the syslog receiver.",
    "port": "TCP port (default 6514 for tls, 601 for tcp).",
    "transport": "`tls` (RFC 5425, default) or `tcp` (RFC 6587, plaintext).",
    "ca_file": "PEM file of CA certificates to trust instead of the system store (tls only).",
    "client_cert": "PEM client certificate for mutual TLS (tls only).",
    "client_key": "PEM private key of `client_cert` (tls only).",
    "client_key_password_env": (
        "Environment variable holding the password of `client_key`, if it is encrypted (tls only)."
    ),
    "server_name": "Name on the receiver's certificate, when it differs from `host` (tls only).",
    "app_name": "RFC 5424 APP-NAME (default `corral`).",
    "hostname": "RFC 5424 HOSTNAME (default: this machine's host name).",
    "facility": "Syslog facility, e.g. `local4` (default).",
    "max_message": (
        "Largest message in bytes, 1024 to 1048576 (default 8096, rsyslog's default maxMessageSize); longer texts "
        "are cut with a marker. Raise it only as far as the receiver's own limit."
    ),
    "timeout": "Seconds to wait to connect or send, 0.05 to 300 (default 10).",
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

DEFAULT_PORTS: Final[Mapping[str, int]] = {"tcp": 601, "tls": 6514}
"""IANA ports: syslog-conn (RFC 3195/6587 practice) and syslog-tls (RFC 5425)."""
DEFAULT_APP_NAME: Final = "corral"
DEFAULT_FACILITY: Final = "local4"
DEFAULT_MAX_MESSAGE: Final = 8096
"""rsyslog's default maxMessageSize: `iMaxLine = 8096` in its runtime/glbl.c (its docs say "8K"). imtcp
does not drop the rest of a longer octet-counted frame: by default (discardTruncatedMsg off) the bytes
past 8096 become a record of their own, which a description could fill with a forged syslog header.
RFC 5425 §4.3.1 asks receivers to take 2048 octets and recommends 8192; this stays within both."""
MIN_MAX_MESSAGE: Final = 1024
MAX_MAX_MESSAGE: Final = 1 << 20
DEFAULT_TIMEOUT: Final = 10.0
SD_ID: Final = "corral@32473"
"""The structured-data element's id. 32473 is the enterprise number RFC 5612 reserves for examples;
it keeps the element clearly private (RFC 5424 §7.2.2) without claiming a registered number."""

FACILITIES: Final[Mapping[str, int]] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}

CEF_SEVERITY: Final[Mapping[int, int]] = {0: 0, 1: 1, 2: 3, 3: 5, 4: 8, 5: 10, 6: 10, 99: 5}
"""OCSF severity_id → CEF severity 0-10 (Low 0-3, Medium 4-6, High 7-8, Very-High 9-10)."""

SYSLOG_SEVERITY: Final[Mapping[int, int]] = {0: 5, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 2, 99: 5}
"""OCSF severity_id → RFC 5424 severity (2 critical, 3 error, 4 warning, 5 notice, 6 informational)."""

# CEF header field limits (ArcSight's own field lengths), in UTF-8 bytes as `max_message` is;
# longer values are cut with the marker.
_HEADER_LIMITS: Final[Mapping[str, int]] = {"vendor": 63, "product": 63, "version": 31, "signature": 1023, "name": 512}
_EXTENSION_LIMIT: Final = 1023
# The extension values that come from the finding (the rest are Corral's own: labels, the time,
# the idempotency key, the change kind), and so may be shortened to make room.
_FINDING_VALUES: Final = frozenset({"cat", "externalId", "cs3", "cs4", "cs5", "cs6", "flexString1", "flexString2"})
# A message that would not fit `max_message` is built again with the finding's fields cut to a
# half, a quarter, … of their limits, so that every field stays, shorter, rather than the tail
# of the message going; `msg` is the first to give way.
_SHRINK: Final = (1, 2, 4, 8, 16, 32, 64, 128, 1024)
# RFC 5424 §6: maximum lengths of the header fields.
_HOSTNAME_LIMIT: Final = 255
_APP_NAME_LIMIT: Final = 48
_MSGID_LIMIT: Final = 32
_SD_LIMIT: Final = 255

# C0/C1 controls (tab and newlines are handled by each escaper first), DEL, lone surrogates,
# bidirectional marks/embeddings/overrides/isolates and the Unicode line/paragraph separators.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NOT_PRINTUSASCII: Final = re.compile(r"[^\x21-\x7e]")
_REPLACEMENT: Final = "\ufffd"

log = logging.getLogger(__name__)


def cef_header(value: object, limit: int) -> str:
    """Escape a CEF header field: `\\` and `|` escaped, newlines and controls made harmless.

    Example:
        >>> cef_header("a|b\\\\c\\nd", 63)
        'a\\\\|b\\\\\\\\c d'
    """
    text = _UNSAFE.sub(_REPLACEMENT, re.sub(r"[\r\n\t]+", " ", str(value)))
    return _cut_escaped_bytes(text.replace("\\", "\\\\").replace("|", "\\|"), limit)


def cef_value(value: object, limit: int = _EXTENSION_LIMIT) -> str:
    """Escape a CEF extension value: `\\`, `=` escaped, CR/LF as `\\r`/`\\n`, controls replaced.

    Example:
        >>> cef_value("a=b\\\\c\\r\\nd|e")
        'a\\\\=b\\\\\\\\c\\\\r\\\\nd|e'
    """
    text = str(value).replace("\t", " ")
    text = text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")
    return _cut_escaped_bytes(_UNSAFE.sub(_REPLACEMENT, text), limit)


def sd_value(value: object) -> str:
    """Escape an RFC 5424 PARAM-VALUE (`"`, `\\`, `]`), with controls replaced.

    Example:
        >>> sd_value('a"b]c\\\\')
        'a\\\\"b\\\\]c\\\\\\\\'
    """
    text = _UNSAFE.sub(_REPLACEMENT, str(value).replace("\r", " ").replace("\n", " ").replace("\t", " "))
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def header_field(value: object, limit: int) -> str:
    """Return an RFC 5424 header field: printable US-ASCII without spaces, at most `limit`, or "-".

    Example:
        >>> header_field("my host", 255), header_field("", 48)
        ('my_host', '-')
    """
    text = _NOT_PRINTUSASCII.sub("_", str(value))[:limit]
    return text or "-"


def _cut_escaped_bytes(escaped: str, room: int, marker: str = MARKER) -> str:
    """Cut an escaped value so its UTF-8 form fits `room` bytes, `marker` included.

    `marker` must be escaped as the value is: MARKER needs no escaping in CEF, but its `]` does in
    structured data, where a raw one would end the SD-ELEMENT (RFC 5424 §6.3.3).
    """
    if len(escaped.encode()) <= room:
        return escaped
    budget = max(0, room - len(marker.encode()))
    head = escaped.encode()[:budget].decode(errors="ignore")
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:
        head = head[:-1]
    return head + marker


def _timestamp(millis: int) -> str:
    """RFC 5424 TIMESTAMP (RFC 3339, UTC, milliseconds)."""
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _first_type(info: Mapping[str, Any]) -> str:
    types = info.get("types")
    if isinstance(types, list) and types and isinstance(types[0], str) and types[0]:
        return types[0]
    return "unknown"


def cef_extensions(delivery: Delivery, limit: int = _EXTENSION_LIMIT) -> list[tuple[str, str]]:
    """Return the CEF extension pairs (key, escaped value) for a delivery, `msg` excluded.

    The values taken from the finding are cut to `limit` bytes; Corral's own are never cut.
    """
    finding = delivery.finding
    cloud = finding.get("cloud") or {}
    product_uid, account, uid = ocsf.identity(finding)
    ctx = container_context(finding)
    pairs: list[tuple[str, object]] = [
        ("rt", ocsf.modified_time(finding)),
        ("cat", finding.get("class_name") or "Finding"),
        ("externalId", uid),
        ("cs1Label", "idempotencyKey"),
        ("cs1", delivery.version),
        ("cs2Label", "change"),
        ("cs2", delivery.change),
        ("cs3Label", "account"),
        ("cs3", account),
    ]
    for n, label, value in ((4, "cluster", ctx.cluster), (5, "namespace", ctx.namespace), (6, "image", ctx.image)):
        if value:
            pairs += [(f"cs{n}Label", label), (f"cs{n}", value)]
    pairs += [("flexString1Label", "cloud"), ("flexString1", cloud.get("provider") or "unknown")]
    pairs += [("flexString2Label", "productUid"), ("flexString2", product_uid)]
    # Corral's priority of a Vulnerability Finding (corral.priority), when it has one.
    for n, label, name in ((1, "riskScore", "risk_score"), (2, "priorityId", "priority_id")):
        if isinstance(finding.get(name), int):
            pairs += [(f"cn{n}Label", label), (f"cn{n}", finding[name])]
    return [(key, cef_value(value, limit if key in _FINDING_VALUES else _EXTENSION_LIMIT)) for key, value in pairs]


def render(
    delivery: Delivery,
    *,
    hostname: str = "-",
    app_name: str = DEFAULT_APP_NAME,
    facility: str = DEFAULT_FACILITY,
    max_message: int = DEFAULT_MAX_MESSAGE,
    public_url: str | None = None,
) -> bytes:
    """Return the RFC 5424 message (without framing) carrying the CEF record for `delivery`.

    With `public_url` the structured data carries `corralUrl`, the finding's page on Corral's dashboard.

    Example:
        >>> from corral.sinks.base import Delivery
        >>> f = {"time": 1704164645123, "metadata": {"product": {"uid": "p", "name": "GuardDuty",
        ...      "vendor_name": "AWS"}}, "cloud": {"account": {"uid": "1"}}, "finding_info": {"uid": "f1"}}
        >>> render(Delivery("syslog:x", "k1", "new", f))[:44]
        b'<165>1 2024-01-02T03:04:05.123Z - corral - n'
    """
    finding = delivery.finding
    info = finding.get("finding_info") or {}
    severity_id = finding.get("severity_id", 0)
    pri = FACILITIES[facility] * 8 + SYSLOG_SEVERITY.get(severity_id, 5)
    header = " ".join(
        (
            f"<{pri}>1",
            _timestamp(ocsf.modified_time(finding)),
            header_field(hostname, _HOSTNAME_LIMIT),
            header_field(app_name, _APP_NAME_LIMIT),
            "-",
            header_field(delivery.change, _MSGID_LIMIT),
        )
    )
    link = finding_link(public_url, finding)
    desc = info.get("desc")
    # Room for `msg` to say at least that it was cut.
    least_msg = len(" msg=") + len(MARKER.encode()) if desc else 0
    for divisor in _SHRINK:
        message = f"{header} {_structured_data(delivery, link, divisor)} {_cef(delivery, divisor)}"
        if len(message.encode()) + least_msg <= max_message:
            break
    if desc:
        # `msg` goes last, so it is the only field a cut has to shorten.
        prefix = f"{message} msg="
        room = max_message - len(prefix.encode())
        if room >= len(MARKER.encode()):
            return (prefix + _cut_escaped_bytes(cef_value(desc, limit=max_message), room)).encode()
    return _cut_escaped_bytes(message, max_message).encode()


def frame(message: bytes) -> bytes:
    """Octet-counting framing (RFC 6587 §3.4.1, RFC 5425 §4.3): `<length> <message>`.

    Example:
        >>> frame(b"<14>1 - - - - - - hi")
        b'20 <14>1 - - - - - - hi'
    """
    return str(len(message)).encode() + b" " + message


def _structured_data(delivery: Delivery, link: str | None, divisor: int) -> str:
    """The SD-ELEMENT: Corral's keys in full, the finding's uid (and link) cut to `_SD_LIMIT` / `divisor` bytes."""
    _, _, uid = ocsf.identity(delivery.finding)
    limit = max(1, _SD_LIMIT // divisor)
    # The uid is also `externalId` in full (up to its own limit); here it only helps correlation.
    params = {
        "idempotencyKey": sd_value(delivery.version),
        "change": sd_value(delivery.change),
        "findingUid": _cut_escaped_bytes(sd_value(uid), limit, sd_value(MARKER)),
    }
    if link:
        params["corralUrl"] = _cut_escaped_bytes(sd_value(link), limit, sd_value(MARKER))
    return "[" + " ".join([SD_ID, *(f'{name}="{value}"' for name, value in params.items())]) + "]"


def _cef(delivery: Delivery, divisor: int) -> str:
    """The CEF record without `msg`, the finding's fields cut to their limits / `divisor` bytes."""
    finding = delivery.finding
    info = finding.get("finding_info") or {}
    product = (finding.get("metadata") or {}).get("product") or {}

    def header(value: object, field: str) -> str:
        return cef_header(value, max(1, _HEADER_LIMITS[field] // divisor))

    return "|".join(
        (
            "CEF:0",
            header(product.get("vendor_name") or "unknown", "vendor"),
            header(product.get("name") or "unknown", "product"),
            header(product.get("version") or "", "version"),
            header(_first_type(info), "signature"),
            header(info.get("title") or "(untitled)", "name"),
            str(CEF_SEVERITY.get(finding.get("severity_id", 0), 5)),
            " ".join(f"{key}={value}" for key, value in cef_extensions(delivery, max(1, _EXTENSION_LIMIT // divisor))),
        )
    )


class SyslogSink:
    """Sends findings to one syslog receiver over TCP or TLS."""

    family: SinkFamily = FAMILY

    def __init__(
        self,
        sink_id: str,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        server_name: str | None = None,
        meta: Mapping[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.id = sink_id
        self._host = host
        self._port = port
        self._tls = tls
        self._server_name = server_name or host
        self._meta = dict(meta)
        self._timeout = timeout

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Send the batch over one connection; one Result per delivery, in order."""
        results: list[Result | None] = [None] * len(deliveries)
        frames: dict[int, bytes] = {}
        for i, delivery in enumerate(deliveries):
            try:
                frames[i] = frame(render(delivery, **self._meta))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: cannot render the finding ({type(exc).__name__})", permanent=True
                )
        if frames:
            error = self._transmit([frames[i] for i in sorted(frames)])
            for i in frames:
                version = deliveries[i].version
                results[i] = Result.success(version) if error is None else Result.failure(version, error)
        done = [r for r in results if r is not None]
        failed = sum(not r.ok for r in done)
        if failed:
            log.warning("%s: %d of %d deliveries failed", self.id, failed, len(done))
        return done

    def _transmit(self, frames: Sequence[bytes]) -> str | None:
        """Write the frames on a fresh connection and close it gracefully; return an error or None."""
        stage = "connect"
        try:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout)
            sock: socket.socket = raw
            try:
                if self._tls is not None:
                    stage = "TLS handshake"
                    sock = self._tls.wrap_socket(raw, server_hostname=self._server_name)
                stage = "send"
                sock.sendall(b"".join(frames))
                stage = "close"
                self._close(sock)
            finally:
                # wrap_socket takes over the descriptor; closing both is safe and leaks nothing.
                sock.close()
                raw.close()
        except ssl.SSLCertVerificationError as exc:
            # The receiver is not who the CA says: retrying will not help until someone fixes it,
            # but the ledger keeps it pending rather than dropping findings for a config slip.
            return f"{self.id}: TLS certificate verification failed ({exc.verify_message})"
        except TimeoutError:
            return f"{self.id}: timed out during {stage} with {self._host}:{self._port}"
        except ConnectionRefusedError:
            return f"{self.id}: connection refused by {self._host}:{self._port}"
        except ConnectionResetError:
            return f"{self.id}: connection reset by {self._host}:{self._port} during {stage}"
        except ssl.SSLError as exc:
            return f"{self.id}: TLS error during {stage} ({exc.reason or type(exc).__name__})"
        except OSError as exc:
            return f"{self.id}: {stage} with {self._host}:{self._port} failed ({exc.strerror or type(exc).__name__})"
        return None

    @staticmethod
    def _close(sock: socket.socket) -> None:
        """Close our side and wait for the receiver to close its own, which proves it read everything."""
        if isinstance(sock, ssl.SSLSocket):
            try:
                # Sends close_notify; rsyslog (gnutls) answers by closing TCP without its own
                # close_notify, which OpenSSL reports as an unexpected EOF: the receiver did close.
                plain = sock.unwrap()
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return
            sock = plain
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            # A receiver that talks back (it should not) is drained until it closes.
            pass

    def close(self) -> None:
        """Nothing to release: each batch opens and closes its own connection."""


def _text_setting(settings: Mapping[str, Any], key: str, where: str, default: str, limit: int) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or not value or len(value) > limit or _NOT_PRINTUSASCII.search(value):
        raise ConfigError(f"{where}.{key}: use 1 to {limit} printable ASCII characters without spaces")
    return value


def _file_setting(settings: Mapping[str, Any], key: str, where: str) -> str | None:
    value = settings.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not Path(value).is_file():
        raise ConfigError(f"{where}.{key}: name an existing PEM file")
    return value


def _tls_context(settings: Mapping[str, Any], env: Mapping[str, str], where: str) -> ssl.SSLContext:
    ca_file = _file_setting(settings, "ca_file", where)
    cert = _file_setting(settings, "client_cert", where)
    key = _file_setting(settings, "client_key", where)
    if key is not None and cert is None:
        raise ConfigError(f"{where}.client_key: set client_cert too (the certificate of this key)")
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError:
        raise ConfigError(f"{where}.ca_file: not a readable PEM bundle of CA certificates") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        password = None
        if settings.get("client_key_password_env") is not None:
            password = secret_from_env(settings, "client_key_password_env", env, where)
        try:
            context.load_cert_chain(cert, key, password=password)
        except (ssl.SSLError, ValueError):
            # Never quote the password or the library's message, which may echo file content.
            raise ConfigError(
                f"{where}.client_cert: cannot load the client certificate and key "
                "(wrong key password, or key and certificate do not match)"
            ) from None
    return context


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> SyslogSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `host = "siem.example"`, `transport = "tls"` (default; or "tcp"),
    `port = 6514`, `ca_file` (PEM CA bundle; the system store otherwise), optional `client_cert`,
    `client_key` and `client_key_password_env` for mutual TLS, `server_name` (the name on the
    receiver's certificate, when it differs from `host`), `app_name`, `hostname`,
    `facility` (e.g. "local4"), `max_message` (bytes) and `timeout` (seconds).
    """
    where = f"sinks.{sink_id}"
    host = settings.get("host")
    if not isinstance(host, str) or not host or _NOT_PRINTUSASCII.search(host):
        raise ConfigError(f"{where}.host: name the syslog receiver (a host name or IP address)")
    transport = settings.get("transport", "tls")
    if transport not in DEFAULT_PORTS:
        raise ConfigError(f'{where}.transport: use "tls" (RFC 5425) or "tcp" (RFC 6587)')
    port = settings.get("port", DEFAULT_PORTS[transport])
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{where}.port: use a TCP port from 1 to 65535")
    facility = settings.get("facility", DEFAULT_FACILITY)
    if facility not in FACILITIES:
        raise ConfigError(f"{where}.facility: use one of {', '.join(FACILITIES)}")
    max_message = settings.get("max_message", DEFAULT_MAX_MESSAGE)
    if (
        isinstance(max_message, bool)
        or not isinstance(max_message, int)
        or not MIN_MAX_MESSAGE <= max_message <= MAX_MAX_MESSAGE
    ):
        raise ConfigError(f"{where}.max_message: use a size in bytes from {MIN_MAX_MESSAGE} to {MAX_MAX_MESSAGE}")
    timeout = seconds(settings, "timeout", where, DEFAULT_TIMEOUT, minimum=0.05, maximum=300)
    meta = {
        "hostname": _text_setting(settings, "hostname", where, socket.gethostname() or "-", _HOSTNAME_LIMIT),
        "app_name": _text_setting(settings, "app_name", where, DEFAULT_APP_NAME, _APP_NAME_LIMIT),
        "facility": facility,
        "max_message": max_message,
    }
    link_base = public_url(settings, where)
    if link_base:
        meta["public_url"] = link_base
    if transport == "tls":
        tls: ssl.SSLContext | None = _tls_context(settings, env, where)
        server_name = settings.get("server_name")
        if server_name is not None and (not isinstance(server_name, str) or not server_name):
            raise ConfigError(f"{where}.server_name: use the host name on the receiver's certificate")
    else:
        for key in ("ca_file", "client_cert", "client_key", "client_key_password_env", "server_name"):
            if settings.get(key) is not None:
                raise ConfigError(f'{where}.{key}: only used with transport = "tls"')
        tls, server_name = None, None
    return SyslogSink(sink_id, host=host, port=port, tls=tls, server_name=server_name, meta=meta, timeout=timeout)
