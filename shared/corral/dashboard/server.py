"""`corral serve`: the dashboard page and a read-only JSON API over the store, on the stdlib server.

Loopback by default. Any other address exposes findings (attacker text, account ids, cluster
names) to the network, so a token is then required and compared in constant time; a request
without it gets 401. The browser may send the token as a Bearer header or as the password of
HTTP Basic authentication (so a person can open the page without tooling).

Only requests naming the server by one of its own host names (or a configured public host) are
answered: a page on another site that rebinds its DNS name to 127.0.0.1 sends its own name as
`Host` and gets 421, so it cannot read the API through a visitor's browser. Each request borrows
its own store connection from a small pool, so a slow page never holds up an API call.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import queue
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from corral import coverage, health, ocsf, priority, traits
from corral.dashboard import DEFAULT_HOST, DEFAULT_PORT, listing, view
from corral.dashboard.page import (
    CLOUDS,
    DIGEST,
    MAX_PAGE,
    RANGES,
    STATUSES,
    Filters,
    csp,
    render_finding,
    render_image,
    render_page,
)
from corral.errors import ConfigError, CorralError
from corral.stores.base import FINDING_ID_LENGTH, FindingQuery, Store

MAX_LIMIT: Final = 500
HOUR_MS: Final = 3_600_000
MAX_WINDOW_HOURS: Final = 24 * 366
# Epoch milliseconds up to the year 9999: anything larger is a typo or a probe, not a time.
MAX_TIME_MS: Final = 253_402_300_799_999
MAX_PARAM_LENGTH: Final = 1024
POOL_SIZE: Final = 8
IDLE_TIMEOUT_S: Final = 30
# Connections served at once, each on its own thread; one more is answered 503 at once. A page
# needs one, a browser opens up to six: a flood of idle connections must not cost a thread each.
MAX_CONNECTIONS: Final = 64
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
)


class BadRequestError(ValueError):
    """A query parameter the API cannot use; answered with 400."""


def is_loopback(host: str) -> bool:
    """True for a loopback address or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token(host: str, token: str | None, public_host: str | None = None) -> None:
    """Refuse to serve beyond loopback without a token, or behind a reverse proxy (`public_host`).

    A proxy in front of a loopback bind exposes the findings as a network bind would: the bind
    address alone does not say who can reach the server.
    """
    if token:
        return
    if not is_loopback(host):
        raise ConfigError(
            f"serve: binding {host} exposes findings to the network; set --token-env to a variable holding a token"
        )
    if public_host:
        raise ConfigError(
            f"serve: --public-host {public_host!r} answers what a proxy forwards from the network;"
            " set --token-env to a variable holding a token"
        )


def own_host_names(host: str, public_host: str | None = None) -> frozenset[str]:
    """Return the lower-case names a request may give in `Host` for a server bound to `host`.

    Loopback binds answer to their address and `localhost`; a wildcard bind (0.0.0.0, ::) to the
    machine's own names as well; any other address to itself. A configured public host (the name
    a reverse proxy forwards) is added.
    """
    names = {host.lower().strip("[]")}
    if is_loopback(host):
        names |= {"localhost", "127.0.0.1", "::1"}
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a name to compare with, not a bind)
        names |= {"localhost", "127.0.0.1", "::1", socket.gethostname().lower(), socket.getfqdn().lower()}
    if public_host:
        names.add(public_host.lower())
    return frozenset(names)


def host_name(header: str | None) -> str | None:
    """Return the lower-case host of a `Host` header without its port (None when malformed)."""
    if not header:
        return None
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else None
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name or None


def authorized(header: str | None, token: str) -> bool:
    """True when the Authorization header carries the token (Bearer, or the Basic password)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        offered = value.strip()
    elif scheme.lower() == "basic":
        try:
            offered = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    value = values[-1]
    if len(value) > MAX_PARAM_LENGTH:
        raise BadRequestError(f"{name}: longer than {MAX_PARAM_LENGTH} characters")
    return value


def _int(params: Mapping[str, list[str]], name: str, low: int, high: int) -> int | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    return _number(name, value, low, high)


def _number(name: str, value: str, low: int, high: int) -> int:
    if not value.lstrip("-").isdigit() or len(value) > 20:
        raise BadRequestError(f"{name}: expected a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequestError(f"{name}: expected a whole number from {low} to {high}")
    return number


# The query parameter of each text filter of `FindingQuery`, by its field.
_TEXT_FILTERS: Final = {
    "account": "account",
    "type": "finding_type",
    "container_service": "container_service",
    "cluster": "cluster",
    "namespace": "namespace",
    "image": "image",
    "source": "source",
    "q": "text",
    "cursor": "cursor",
}
# The query parameter of each numeric filter, by its field, with the range it takes.
_NUMBER_FILTERS: Final = {
    "status_id": ("status_id", 0, 99),
    "class_uid": ("class_uid", 0, 999_999),
    "since": ("since", 0, MAX_TIME_MS),
    "until": ("until", 0, MAX_TIME_MS),
    "limit": ("limit", 1, MAX_LIMIT),
}
_FINDING_PARAMS: Final = frozenset({*_TEXT_FILTERS, *_NUMBER_FILTERS, "severity_at_least", "trait", "cloud", "open"})
_CLOUDS: Final = {c.lower(): c for c in CLOUDS}


# The parameters each API path reads. A script that misspells a filter (`severity` for
# `severity_at_least`, `text` for `q`) must hear so, not get every finding back unfiltered.
_API_PARAMS: Final[dict[str, frozenset[str]]] = {
    "/api/findings": _FINDING_PARAMS,
    "/api/coverage": frozenset({"window_hours"}),
}


def _known_only(path: str, params: Mapping[str, list[str]]) -> None:
    """Refuse a parameter that `path` does not read, naming those it does."""
    known = _API_PARAMS.get(path, frozenset())
    unknown = sorted(set(params) - known)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise BadRequestError(f"{path}: unknown parameter {unknown[0][:64]!r}; {takes}")


def finding_query(params: Mapping[str, list[str]]) -> FindingQuery:
    """Build a store query from API query parameters (the store's own filters).

    An empty parameter is no filter. Only the parameters given are read: a request names one or
    two of the eighteen, and the list endpoint answers in microseconds when nothing matches.
    """
    given = {name: value for name in _FINDING_PARAMS.intersection(params) if (value := _one(params, name))}
    filters: dict[str, Any] = {}
    for name, value in given.items():
        if name in _TEXT_FILTERS:
            filters[_TEXT_FILTERS[name]] = value
        elif name in _NUMBER_FILTERS:
            field_name, low, high = _NUMBER_FILTERS[name]
            filters[field_name] = _number(name, value, low, high)
        elif name == "severity_at_least":
            filters["severity_at_least"] = _severity(value)
        elif name == "trait":
            trait, sep, wanted = value.partition(":")
            if not sep:
                raise BadRequestError("trait: expected name:value")
            filters["trait"] = (trait, wanted)
        elif name == "cloud":
            if value.lower() not in _CLOUDS:
                raise BadRequestError(f"cloud: unknown cloud {value!r}; use one of {', '.join(CLOUDS)}")
            filters["cloud"] = _CLOUDS[value.lower()]
        else:  # open
            filters["open_only"] = value in ("1", "true")
    return FindingQuery(**filters)


def _severity(value: str) -> int:
    if value.isdigit():
        return _number("severity_at_least", value, 0, 99)
    found = ocsf.SEVERITY_IDS.get(value.lower())
    if found is None:
        known = ", ".join(sorted(ocsf.SEVERITY_IDS))
        raise BadRequestError(f"severity_at_least: unknown severity {value!r}; use one of {known}")
    return found


def _choice(params: Mapping[str, list[str]], name: str, allowed: tuple[str, ...]) -> str | None:
    """A parameter from a fixed vocabulary, matched case-insensitively; its canonical spelling."""
    value = _one(params, name)
    if not value:
        return None
    for choice in allowed:
        if choice.lower() == value.strip().lower():
            return choice
    raise BadRequestError(f"{name}: unknown value {value!r}; use one of {', '.join(allowed)}")


def page_filters(params: Mapping[str, list[str]]) -> Filters:
    """Read the page's filters from its query string; an unknown value is a 400 naming the allowed ones."""
    severities = tuple(ocsf.SEVERITY_NAMES[s].lower() for s in (6, 5, 4, 3, 2, 1))
    return Filters(
        cloud=_choice(params, "cloud", CLOUDS),
        account=(_one(params, "account") or "").strip() or None,
        service=_choice(params, "service", traits.CONTAINER_SERVICES),
        cluster=(_one(params, "cluster") or "").strip() or None,
        namespace=(_one(params, "namespace") or "").strip() or None,
        severity=_choice(params, "severity", severities),
        status=_choice(params, "status", STATUSES) or "open",
        source=(_one(params, "source") or "").strip() or None,
        since=_choice(params, "since", tuple(RANGES)),
        q=(_one(params, "q") or "").strip() or None,
        page=_int(params, "page", 1, MAX_PAGE) or 1,
    )


class StorePool:
    """Store connections for request threads: each request borrows one of its own.

    A connection is opened on demand and returned after the request; at most `size` are kept
    open, so a burst opens extra ones that are closed again instead of queueing behind a lock.
    """

    def __init__(self, opener: Callable[[], Store], size: int = POOL_SIZE) -> None:
        """Keep up to `size` idle connections made by `opener`."""
        self._opener = opener
        self._idle: queue.LifoQueue[Store] = queue.LifoQueue(maxsize=size)

    @contextmanager
    def borrow(self) -> Iterator[Store]:
        """Lend one connection for the duration of a request."""
        try:
            store = self._idle.get_nowait()
        except queue.Empty:
            store = self._opener()
        try:
            yield store
        finally:
            try:
                self._idle.put_nowait(store)
            except queue.Full:
                store.close()

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _query(store: Store, query: FindingQuery) -> Any:
    try:
        return store.query(query)
    except (ValueError, OverflowError):
        if query.cursor is None:
            raise
        raise BadRequestError("cursor: not a cursor this API gave out") from None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the handler needs: store connections, source windows, a clock, a token and the host names."""

    stores: StorePool
    windows: Mapping[str, int]
    clock: Callable[[], int]
    token: str | None = None
    window_ms: int = coverage.DEFAULT_WINDOW_HOURS * HOUR_MS
    hosts: frozenset[str] = field(default_factory=lambda: own_host_names(DEFAULT_HOST))
    weights: priority.Weights = priority.DEFAULT_WEIGHTS

    def window(self, params: Mapping[str, list[str]]) -> int:
        """The coverage window from `window_hours`, else the default."""
        hours = _int(params, "window_hours", 1, MAX_WINDOW_HOURS)
        return hours * HOUR_MS if hours else self.window_ms

    def api(self, store: Store, path: str, params: Mapping[str, list[str]]) -> Any:
        """Answer one API path; None when there is no such path or finding."""
        _known_only(path, params)
        if path == "/api/findings":
            page = _query(store, finding_query(params))
            return {"items": [i.as_data() for i in page.items], "next_cursor": page.next_cursor}
        now = self.clock()
        if path.startswith("/api/findings/"):
            parts = path.removeprefix("/api/findings/").split("/", 2)
            if len(parts) == 1 and parts[0]:
                found = store.find(parts[0].lower(), limit=2)
                item = found[0] if len(found) == 1 else None  # found by id: read once, not again by key
            elif len(parts) != 3 or not all(parts):
                return None
            else:
                item = store.get((unquote(parts[0]), unquote(parts[1]), unquote(parts[2])))
            if item is None:
                return None
            key = item.key
            history = [
                {"at": h.at, "kind": h.kind, "version": h.version, "modified_time": h.modified_time,
                 "severity_id": h.severity_id, "status_id": h.status_id}
                for h in store.history(key)
            ]  # fmt: skip
            return {**item.as_data(), "history": history}
        if path == "/api/coverage":
            report = health.report(store, self.windows, now)
            return coverage.matrix(coverage.observe(store, report, self.window(params))).to_json()
        if path == "/api/sources":
            return health.report(store, self.windows, now).to_json()
        if path == "/api/counts":
            return [
                {"cloud": r.cloud, "severity_id": r.severity_id, "status_id": r.status_id, "count": r.count}
                for r in store.counts()
            ]
        return None

    def page(self, store: Store, params: Mapping[str, list[str]]) -> str:
        """Render the overview with the filtered list (and a coverage drill-down when asked)."""
        filters = page_filters(params)
        drill = _choice(params, "drill", traits.CONTAINER_SERVICES)
        now = self.clock()
        base = view.build(store, self.windows, now, self.window(params))
        return render_page(listing.overview(base, store, filters, drill, now), meta_csp=False)

    def finding_page(self, store: Store, path: str) -> str | None:
        """Render one finding's page from `/findings/<id>` (a unique id prefix will do); None when there is none."""
        finding_id = path.removeprefix("/findings/").strip("/").lower()
        if not 4 <= len(finding_id) <= FINDING_ID_LENGTH or not all(c in "0123456789abcdef" for c in finding_id):
            raise BadRequestError(f"finding id: expected 4 to {FINDING_ID_LENGTH} hex digits")
        detail = listing.detail(store, finding_id, self.clock())
        return None if detail is None else render_finding(detail, meta_csp=False)

    def image_page(self, store: Store, path: str) -> str | None:
        """Render one image's page from `/images/<digest>`; None when the inventory does not know it."""
        digest = unquote(path.removeprefix("/images/").strip("/")).lower()
        if not DIGEST.fullmatch(digest):
            raise BadRequestError("image digest: expected sha256: and 64 hex digits (or sha512: and 128)")
        detail = listing.image(store, digest, self.weights, self.clock())
        return None if detail is None else render_image(detail, meta_csp=False)


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    """Return the request handler class bound to one dashboard."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "corral"
        sys_version = ""
        # Seconds a connection may sit idle (sending nothing, or reading slowly): a request thread
        # is not held for ever by a client that never finishes its request.
        timeout = IDLE_TIMEOUT_S

        def do_GET(self) -> None:
            if host_name(self.headers.get("Host")) not in dashboard.hosts:
                self._send(HTTPStatus.MISDIRECTED_REQUEST, _error("this server does not answer for that host"))
                return
            if dashboard.token is not None and not authorized(self.headers.get("Authorization"), dashboard.token):
                self._send(HTTPStatus.UNAUTHORIZED, _error("unauthorized"),
                           extra={"WWW-Authenticate": 'Basic realm="corral", charset="UTF-8"'})  # fmt: skip
                return
            try:
                url = urlsplit(self.path)
                params = parse_qs(url.query, max_num_fields=64)
                self._answer(url.path, params)
            except BadRequestError as exc:
                self._send(HTTPStatus.BAD_REQUEST, _error(str(exc)))
            except ValueError as exc:  # parse_qs: too many fields, a bad percent-escape
                self._send(HTTPStatus.BAD_REQUEST, _error(f"malformed query: {exc}"))
            except CorralError as exc:
                print(f"corral: serve: {exc}", file=sys.stderr, flush=True)
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, _error(str(exc)))
            except Exception as exc:  # noqa: BLE001 (one line in the log and a JSON 500, never a dropped connection)
                where = f"{self.command} {loggable(urlsplit(self.path).path)}"
                what = f"{type(exc).__name__}: {loggable(str(exc))}"
                print(f"corral: serve: {where}: {what}", file=sys.stderr, flush=True)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, _error("internal error"))

        def _answer(self, path: str, params: Mapping[str, list[str]]) -> None:
            if path in ("/", "/index.html"):
                with dashboard.stores.borrow() as store:
                    body = dashboard.page(store, params).encode()
                self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
                return
            for prefix, render, missing in (
                ("/findings/", dashboard.finding_page, "no such finding"),
                ("/images/", dashboard.image_page, "no such image in the inventory"),
            ):
                if path.startswith(prefix):
                    with dashboard.stores.borrow() as store:
                        text = render(store, path)
                    if text is None:
                        self._send(HTTPStatus.NOT_FOUND, _error(missing))
                    else:
                        self._send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")
                    return
            if not path.startswith("/api/"):
                self._send(HTTPStatus.NOT_FOUND, _error("not found"))
                return
            with dashboard.stores.borrow() as store:
                answer = dashboard.api(store, path, params)
            if answer is None:
                self._send(HTTPStatus.NOT_FOUND, _error("not found"))
                return
            self._send(HTTPStatus.OK, orjson.dumps(answer))

        def _send(self, status: HTTPStatus, body: bytes, kind: str = "application/json",
                  extra: Mapping[str, str] | None = None) -> None:  # fmt: skip
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", csp())
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request, without the query string (it may carry filters naming accounts).
            # A request line the server could not parse has no path or command yet.
            status = loggable(str(args[1])) if len(args) > 1 else ""
            path = loggable(urlsplit(getattr(self, "path", "") or "").path)
            command = loggable(getattr(self, "command", None) or "-")
            print(f"{self.address_string()} {command} {path} {status}", flush=True)

    return Handler


def loggable(text: str) -> str:
    r"""`text` for a log line: control and non-ASCII characters escaped, so that no request can
    write terminal escape sequences or forge a line in the operator's log.

    Example:
        >>> loggable("/\x1b[31mred\nnext")
        '/\\x1b[31mred\\nnext'
    """
    return ascii(text)[1:-1][:512]


class Server(ThreadingHTTPServer):
    """The threading server, at most MAX_CONNECTIONS at once; threads are daemons so that shutdown never waits."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler_class: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler_class)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own, or answer 503 when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            with suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then give its slot back."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class Server6(Server):
    """The same server on an IPv6 address (`--host ::1`)."""

    address_family = socket.AF_INET6


def make_server(dashboard: Dashboard, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Server:
    """Bind the server (port 0 picks a free one); refuse a non-loopback bind without a token."""
    require_token(host, dashboard.token)
    kind = Server6 if ":" in host else Server
    try:
        return kind((host.strip("[]"), port), handler(dashboard))
    except OSError as exc:
        raise ConfigError(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
