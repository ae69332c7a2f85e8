"""Pub/Sub push authentication with google-auth's verifier, against a loopback certificate endpoint.

The signer is a locally generated RSA key; its public key is served the way Google serves its
certificates (`{key id: PEM}`), so the real fetch, cache and refresh paths run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from corral import push_auth
from tests.functions.conftest import sqlite_url  # noqa: F401 - fixture
from tests.functions.test_gcp import NOTIFICATION, Server, findings_in, gcp_env, push_body
from tests.support.fake_http import FakeHTTPServer, Reply

AUDIENCE = "https://corral.example/push"
ACCOUNT = "corral-push@example-project.iam.gserviceaccount.com"


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    """The public half of `key`, as the certificate endpoint serves it."""
    return (
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()


def token(key: rsa.RSAPrivateKey, kid: str, **overrides: Any) -> str:
    """A push OIDC token signed by `key` under key id `kid`."""
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now - 60,
        "exp": now + 600,
    } | overrides
    return "Bearer " + jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    """Two signing keys: the current one and the one Google rotates to."""
    return {"k1": new_key(), "k2": new_key()}


@pytest.fixture
def certs(keys: dict[str, rsa.RSAPrivateKey]) -> Iterator[FakeHTTPServer]:
    """A certificate endpoint that serves key k1 only, with an hour's max-age."""
    reply = Reply.json(200, {"k1": pem(keys["k1"])}, headers={"Cache-Control": "public, max-age=3600"})
    with FakeHTTPServer(reply) as server:
        yield server


def verifier(certs: FakeHTTPServer, clock: Callable[[], float] = time.monotonic) -> push_auth.PushVerifier:
    """A verifier as the entry point builds it, pointed at the loopback endpoint."""
    return push_auth.PushVerifier(
        audience=AUDIENCE, service_account=ACCOUNT, certs_url=certs.url + "/oauth2/v1/certs", clock=clock
    )


def test_first_request_right_after_boot_is_accepted(certs: FakeHTTPServer, keys: dict[str, Any]) -> None:
    """With the monotonic clock a few seconds after boot, the first token is checked against fetched certs."""
    check = verifier(certs, clock=lambda: 5.0)
    claims = check.verify(token(keys["k1"], "k1"))
    assert claims["email"] == ACCOUNT
    assert [r.path for r in certs.requests] == ["/oauth2/v1/certs"]


def test_certificates_are_fetched_once_while_fresh(certs: FakeHTTPServer, keys: dict[str, Any]) -> None:
    """Later tokens reuse the held certificates until their max-age runs out."""
    now = [100.0]
    check = verifier(certs, clock=lambda: now[0])
    for _ in range(5):
        check.verify(token(keys["k1"], "k1"))
    assert len(certs.requests) == 1
    now[0] += 3601
    check.verify(token(keys["k1"], "k1"))
    assert len(certs.requests) == 2


def test_unknown_key_id_refreshes_the_certificates(certs: FakeHTTPServer, keys: dict[str, Any]) -> None:
    """After Google rotates its keys, a token under the new key id is accepted after one fetch."""
    check = verifier(certs)
    check.verify(token(keys["k1"], "k1"))
    certs.default = Reply.json(200, {"k1": pem(keys["k1"]), "k2": pem(keys["k2"])})
    assert check.verify(token(keys["k2"], "k2"))["email"] == ACCOUNT
    assert len(certs.requests) == 2


def test_random_key_ids_cannot_flood_the_certificate_endpoint(certs: FakeHTTPServer, keys: dict[str, Any]) -> None:
    """Refreshes for unknown key ids happen at most once per interval; the tokens are refused."""
    check = verifier(certs)
    check.verify(token(keys["k1"], "k1"))
    for n in range(5):
        with pytest.raises(push_auth.PushAuthError, match="invalid token"):
            check.verify(token(keys["k2"], f"forged-{n}"))
    assert len(certs.requests) == 2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda k: token(k["k1"], "k1", aud="someone-else"), "invalid token", id="wrong-audience"),
        pytest.param(lambda k: token(k["k1"], "k1", exp=int(time.time()) - 300), "invalid token", id="expired"),
        pytest.param(lambda k: token(k["k2"], "k2"), "invalid token", id="unknown-kid"),
        pytest.param(lambda k: token(k["k2"], "k1"), "invalid token", id="wrong-signer"),
        pytest.param(lambda k: token(k["k1"], "k1", email="intruder@example.com"), "not from", id="wrong-account"),
        pytest.param(lambda k: token(k["k1"], "k1", iss="https://evil.example"), "issuer", id="wrong-issuer"),
        pytest.param(lambda k: token(k["k1"], "k1", email_verified=False), "not from", id="unverified-email"),
        pytest.param(lambda k: "Bearer not.a.token", "malformed", id="malformed"),
        pytest.param(lambda k: None, "no bearer", id="missing"),
    ],
)
def test_bad_tokens_are_refused(
    certs: FakeHTTPServer, keys: dict[str, Any], make: Callable[[dict[str, Any]], str | None], reason: str
) -> None:
    """Each foreign, expired or malformed token is refused with its reason."""
    with pytest.raises(push_auth.PushAuthError, match=reason):
        verifier(certs).verify(make(keys))


def test_unreachable_certificates_are_not_the_tokens_fault(keys: dict[str, Any]) -> None:
    """When the certificates cannot be fetched, the request is not refused but reported as retryable."""
    with FakeHTTPServer(Reply.text(503, "down")) as down, pytest.raises(push_auth.CertificatesUnavailableError):
        verifier(down).verify(token(keys["k1"], "k1"))


@pytest.mark.integration
def test_functions_framework_accepts_the_first_push_after_start(
    sqlite_url: str,  # noqa: F811 - fixture
    certs: FakeHTTPServer,
    keys: dict[str, Any],
) -> None:
    """A freshly started scc_push process stores the very first validly signed push (204)."""
    env = gcp_env(
        sqlite_url,
        CORRAL_PUSH_AUDIENCE=AUDIENCE,
        CORRAL_PUSH_SERVICE_ACCOUNT=ACCOUNT,
        CORRAL_PUSH_CERTS_URL=certs.url + "/oauth2/v1/certs",
    )
    server = Server("scc_push", env)
    try:
        server.wait()
        assert certs.requests == []
        first = requests.post(
            server.url, json=push_body(NOTIFICATION), headers={"Authorization": token(keys["k1"], "k1")}, timeout=30
        )
        assert first.status_code == 204, server.output()
        assert findings_in(sqlite_url) == 1
        foreign = requests.post(
            server.url, json=push_body(NOTIFICATION), headers={"Authorization": token(keys["k2"], "k2")}, timeout=30
        )
        assert foreign.status_code == 403
    finally:
        server.stop()


@pytest.mark.integration
def test_functions_framework_answers_503_when_certificates_are_unreachable(
    sqlite_url: str,  # noqa: F811 - fixture
    keys: dict[str, Any],
) -> None:
    """No certificates: the push gets 503 so Pub/Sub redelivers it, and nothing is stored."""
    with FakeHTTPServer(Reply.text(500, "down")) as down:
        env = gcp_env(
            sqlite_url,
            CORRAL_PUSH_AUDIENCE=AUDIENCE,
            CORRAL_PUSH_SERVICE_ACCOUNT=ACCOUNT,
            CORRAL_PUSH_CERTS_URL=down.url + "/certs",
        )
        server = Server("scc_push", env)
        try:
            server.wait()
            resp = requests.post(
                server.url, json=push_body(NOTIFICATION), headers={"Authorization": token(keys["k1"], "k1")}, timeout=30
            )
            assert resp.status_code == 503
            assert findings_in(sqlite_url) == 0
        finally:
            server.stop()
