"""Pub/Sub push authentication: the OIDC token Google attaches, checked with google-auth's own verifier.

`google.oauth2.id_token.verify_token` checks the signature, expiry and audience. It fetches the
signing certificates through the transport it is given on every call, so the transport given here
keeps the last good answer: certificates are fetched on first use (never "once the cache is an
hour old" counted from boot), kept for the answer's `Cache-Control: max-age`, and fetched again
at once when a token names a key id they lack, because Google rotates its keys. A forged token
naming random key ids cannot turn that into a flood of fetches: such refreshes are at most one
per `REFRESH_INTERVAL` seconds.

Loaded by the GCP entry point only, so `import corral` never pays for google-auth or requests.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from google.auth import transport

from corral.redaction import redact_text

GOOGLE_CERTS_URL: Final = "https://www.googleapis.com/oauth2/v1/certs"
"""Google's OAuth2 signing certificates as `{key id: PEM certificate}`, the form `verify_token` reads."""
GOOGLE_ISSUERS: Final = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_S: Final = 10
DEFAULT_MAX_AGE_S: Final = 3600.0
"""How long certificates are kept when their answer gives no max-age."""
LONGEST_MAX_AGE_S: Final = 86400.0
REFRESH_INTERVAL: Final = 60.0
"""Shortest time between two refreshes caused by an unknown key id."""
FETCH_TIMEOUT_S: Final = 5.0
_MAX_AGE: Final = re.compile(r"max-age=(\d{1,9})")


class PushAuthError(Exception):
    """The push request does not carry a valid token from the expected service account."""


class CertificatesUnavailableError(Exception):
    """Google's signing certificates could not be fetched: no fault of the request, so worth a retry."""


def _unavailable(exc: Exception) -> CertificatesUnavailableError:
    return CertificatesUnavailableError(f"cannot fetch the signing certificates: {redact_text(str(exc))}")


def _max_age(headers: Mapping[str, str]) -> float:
    found = _MAX_AGE.search(headers.get("Cache-Control") or headers.get("cache-control") or "")
    return min(float(found.group(1)), LONGEST_MAX_AGE_S) if found else DEFAULT_MAX_AGE_S


class CachedCerts(transport.Request):
    """A google-auth transport that answers GETs from the last good answer until it expires or is dropped."""

    def __init__(self, inner: transport.Request, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock
        self._held: dict[str, tuple[float, transport.Response]] = {}

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        """Answer a GET of `url` from memory while fresh; fetch it otherwise."""
        if method != "GET" or body is not None:
            response: transport.Response = self._inner(
                url, method=method, body=body, headers=headers, timeout=timeout, **kwargs
            )
            return response
        held = self._held.get(url)
        if held is not None and self._clock() < held[0]:
            return held[1]
        response = self._inner(url, method="GET", headers=headers, timeout=timeout or FETCH_TIMEOUT_S, **kwargs)
        if response.status == 200:
            self._held[url] = (self._clock() + _max_age(response.headers), response)
        return response

    def key_ids(self, url: str) -> frozenset[str]:
        """The key ids of the certificates held for `url` (empty when none are held)."""
        held = self._held.get(url)
        if held is None:
            return frozenset()
        try:
            keys = orjson.loads(held[1].data)
        except orjson.JSONDecodeError:
            return frozenset()
        return frozenset(keys) if isinstance(keys, dict) else frozenset()

    def drop(self, url: str) -> None:
        """Forget the answer held for `url`, so that the next GET fetches it."""
        self._held.pop(url, None)


class PushVerifier:
    """Checks `Authorization: Bearer <OIDC token>` headers of one push subscription."""

    def __init__(
        self,
        *,
        audience: str,
        service_account: str,
        certs_url: str = GOOGLE_CERTS_URL,
        request: transport.Request | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if request is None:
            import requests  # noqa: PLC0415 - loaded only where push tokens are verified
            from google.auth.transport.requests import Request  # noqa: PLC0415

            request = Request(session=requests.Session())
        self.audience = audience
        self.service_account = service_account
        self.certs_url = certs_url
        self.certs = CachedCerts(request, clock)
        self._clock = clock
        self._last_refresh: float | None = None
        self._lock = threading.Lock()

    def verify(self, authorization: str | None) -> Mapping[str, Any]:
        """Return the claims of a valid token from the expected service account.

        Raises:
            PushAuthError: missing, malformed, expired or foreign token, another signer or account.
            CertificatesUnavailableError: the signing certificates could not be fetched.
        """
        from google.auth import exceptions, jwt  # noqa: PLC0415

        if not self.audience or not self.service_account:
            raise PushAuthError("set CORRAL_PUSH_AUDIENCE and CORRAL_PUSH_SERVICE_ACCOUNT to verify push tokens")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise PushAuthError("no bearer token")
        try:
            header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
        except (exceptions.GoogleAuthError, ValueError, TypeError):
            raise PushAuthError("malformed token") from None
        key_id = header.get("kid") if isinstance(header, Mapping) else None
        try:
            claims = self._verify(token)
        except exceptions.TransportError as exc:
            raise _unavailable(exc) from None
        except (exceptions.GoogleAuthError, ValueError) as exc:
            if not (isinstance(key_id, str) and self._refresh_for(key_id)):
                raise PushAuthError(f"invalid token: {exc}") from None
            try:
                claims = self._verify(token)
            except exceptions.TransportError as again:
                raise _unavailable(again) from None
            except (exceptions.GoogleAuthError, ValueError) as again:
                raise PushAuthError(f"invalid token: {again}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise PushAuthError(f"unexpected issuer {claims.get('iss')!r}")
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            raise PushAuthError(f"token is not from {self.service_account}")
        return claims

    def _verify(self, token: str) -> Mapping[str, Any]:
        from google.oauth2 import id_token  # noqa: PLC0415

        return id_token.verify_token(
            token, self.certs, audience=self.audience, certs_url=self.certs_url, clock_skew_in_seconds=CLOCK_SKEW_S
        )

    def _refresh_for(self, key_id: str) -> bool:
        """Drop the held certificates if they lack `key_id` and no such refresh happened lately."""
        with self._lock:
            if key_id in self.certs.key_ids(self.certs_url):
                return False
            now = self._clock()
            if self._last_refresh is not None and now - self._last_refresh < REFRESH_INTERVAL:
                return False
            self._last_refresh = now
            self.certs.drop(self.certs_url)
            return True
