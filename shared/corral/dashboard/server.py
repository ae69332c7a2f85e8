"""`corral serve`: the dashboard page and a read-only JSON API over the store, on the stdlib server.

Loopback by default. Any other address exposes findings (attacker text, account ids, cluster
names) to the network, so a token is then required and compared in constant time; a request
without it gets 401. The browser may send the token as a Bearer header or as the password of
HTTP Basic authentication (so a person can open the page without tooling).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from corral import coverage, health, ocsf
from corral.dashboard import view
from corral.dashboard.page import csp, render_page
from corral.errors import ConfigError
from corral.stores.base import FindingQuery, Store

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8321
MAX_LIMIT: Final = 500
HOUR_MS: Final = 3_600_000


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


def require_token(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"serve: binding {host} exposes findings to the network; set --token-env to a variable holding a token"
        )


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
    return values[-1] if values else None


def _int(params: Mapping[str, list[str]], name: str) -> int | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequestError(f"{name}: expected a whole number") from None


def finding_query(params: Mapping[str, list[str]]) -> FindingQuery:
    """Build a store query from API query parameters (the store's own filters)."""
    severity = _one(params, "severity_at_least")
    severity_id: int | None = None
    if severity:
        severity_id = int(severity) if severity.isdigit() else ocsf.SEVERITY_IDS.get(severity.lower())
        if severity_id is None:
            raise BadRequestError(f"severity_at_least: unknown severity {severity!r}")
    trait = _one(params, "trait")
    pair: tuple[str, str] | None = None
    if trait:
        name, sep, value = trait.partition(":")
        if not sep:
            raise BadRequestError("trait: expected name:value")
        pair = (name, value)
    limit = _int(params, "limit") or 100
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError(f"limit: expected 1 to {MAX_LIMIT}")
    return FindingQuery(
        cloud=_one(params, "cloud"),
        account=_one(params, "account"),
        severity_at_least=severity_id,
        status_id=_int(params, "status_id"),
        open_only=_one(params, "open") in ("1", "true"),
        class_uid=_int(params, "class_uid"),
        finding_type=_one(params, "type"),
        container_service=_one(params, "container_service"),
        cluster=_one(params, "cluster"),
        namespace=_one(params, "namespace"),
        image=_one(params, "image"),
        trait=pair,
        since=_int(params, "since"),
        until=_int(params, "until"),
        limit=limit,
        cursor=_one(params, "cursor"),
    )


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the handler needs: the store (shared under a lock), source windows, a clock, a token."""

    store: Store
    windows: Mapping[str, int]
    clock: Callable[[], int]
    token: str | None = None
    window_ms: int = coverage.DEFAULT_WINDOW_HOURS * HOUR_MS
    lock: threading.Lock = field(default_factory=threading.Lock)

    def window(self, params: Mapping[str, list[str]]) -> int:
        """The coverage window from `window_hours`, else the default."""
        hours = _int(params, "window_hours")
        if hours is not None and hours < 1:
            raise BadRequestError("window_hours: expected at least 1")
        return hours * HOUR_MS if hours else self.window_ms

    def api(self, path: str, params: Mapping[str, list[str]]) -> Any:
        """Answer one API path; None when there is no such path or finding."""
        now = self.clock()
        if path == "/api/findings":
            page = self.store.query(finding_query(params))
            return {"items": [i.as_data() for i in page.items], "next_cursor": page.next_cursor}
        if path.startswith("/api/findings/"):
            parts = path.removeprefix("/api/findings/").split("/", 2)
            if len(parts) != 3 or not all(parts):
                return None
            key = (unquote(parts[0]), unquote(parts[1]), unquote(parts[2]))
            item = self.store.get(key)
            if item is None:
                return None
            history = [
                {"at": h.at, "kind": h.kind, "version": h.version, "modified_time": h.modified_time,
                 "severity_id": h.severity_id, "status_id": h.status_id}
                for h in self.store.history(key)
            ]  # fmt: skip
            return {**item.as_data(), "history": history}
        if path == "/api/coverage":
            report = health.report(self.store, self.windows, now)
            return coverage.matrix(coverage.observe(self.store, report, self.window(params))).to_json()
        if path == "/api/sources":
            return health.report(self.store, self.windows, now).to_json()
        if path == "/api/counts":
            return [
                {"cloud": r.cloud, "severity_id": r.severity_id, "status_id": r.status_id, "count": r.count}
                for r in self.store.counts()
            ]
        return None

    def page(self, params: Mapping[str, list[str]]) -> str:
        """Render the page."""
        return render_page(view.build(self.store, self.windows, self.clock(), self.window(params)))


def handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    """Return the request handler class bound to one dashboard."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "corral"
        sys_version = ""

        def do_GET(self) -> None:
            if dashboard.token is not None and not authorized(self.headers.get("Authorization"), dashboard.token):
                self._send(HTTPStatus.UNAUTHORIZED, b'{"error": "unauthorized"}', "application/json",
                           {"WWW-Authenticate": 'Basic realm="corral", charset="UTF-8"'})  # fmt: skip
                return
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            try:
                with dashboard.lock:
                    if url.path in ("/", "/index.html"):
                        body = dashboard.page(params).encode()
                        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
                        return
                    answer = dashboard.api(url.path, params) if url.path.startswith("/api/") else None
            except BadRequestError as exc:
                self._send(HTTPStatus.BAD_REQUEST, orjson.dumps({"error": str(exc)}), "application/json")
                return
            if answer is None:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")
                return
            self._send(HTTPStatus.OK, orjson.dumps(answer), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: Mapping[str, str] | None = None) -> None:
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
            status = args[1] if len(args) > 1 else ""
            print(f"{self.address_string()} {self.command} {urlsplit(self.path).path} {status}", flush=True)

    return Handler


def make_server(dashboard: Dashboard, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Bind the server (port 0 picks a free one); refuse a non-loopback bind without a token."""
    require_token(host, dashboard.token)
    return ThreadingHTTPServer((host, port), handler(dashboard))
