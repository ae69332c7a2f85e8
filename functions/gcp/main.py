"""Google Cloud Functions (2nd gen, functions-framework): SCC notifications, the hub, schedules.

* `scc_findings`: CloudEvent from Eventarc (Pub/Sub `messagePublished`). Raising makes the
  framework answer 500, and Eventarc redelivers because the trigger's retry policy is
  RETRY_POLICY_RETRY (infra/gcp); without it a Pub/Sub-triggered function is never retried.
* `scc_push`: HTTP endpoint of a Pub/Sub push subscription (with a dead-letter topic). The push
  OIDC token is verified by default: signature (Google's certificates), audience
  `CORRAL_PUSH_AUDIENCE`, issuer and the `email` claim `CORRAL_PUSH_SERVICE_ACCOUNT`.
  `CORRAL_PUSH_VERIFY=off` turns this off explicitly and is logged at WARNING at cold start.
  `CORRAL_PUSH_CERTS_FILE` (a JSON object key id -> PEM) replaces Google's certificates and is
  for tests only: Google's certificate endpoint has no local counterpart.
* `hub`: CloudEvent of relayed OCSF findings (hub layout). `redrive`, `source_check`: HTTP targets
  of Cloud Scheduler; Cloud Run IAM admits only the scheduler's identity.

Every entry point answers success only when each message was stored or dead-lettered; a store
outage answers 500 so that Pub/Sub redelivers (the upsert makes that safe).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from corral.errors import StoreUnavailableError
from corral.pipeline import Inbound, Pipeline

log = logging.getLogger("corral.gcp")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CERTS_TTL_S = 3600

PIPELINE = Pipeline.from_env()
PUSH_VERIFY = os.environ.get("CORRAL_PUSH_VERIFY", "on").lower() != "off"
PUSH_AUDIENCE = os.environ.get("CORRAL_PUSH_AUDIENCE", "")
PUSH_SERVICE_ACCOUNT = os.environ.get("CORRAL_PUSH_SERVICE_ACCOUNT", "")
PUSH_CERTS_FILE = os.environ.get("CORRAL_PUSH_CERTS_FILE", "")
if not PUSH_VERIFY:
    log.warning("CORRAL_PUSH_VERIFY=off: Pub/Sub push requests are accepted WITHOUT checking their OIDC token")
elif PUSH_CERTS_FILE:
    log.warning("CORRAL_PUSH_CERTS_FILE is set: push tokens are checked against %s (test-only)", PUSH_CERTS_FILE)
_certs_cache: tuple[float, Mapping[str, str]] = (0.0, {})


class PushAuthError(Exception):
    """The push request does not carry a valid token from the expected service account."""


def verify_push_token(
    authorization: str | None, *, audience: str, service_account: str, certs: Mapping[str, str]
) -> Mapping[str, Any]:
    """Check a Pub/Sub push `Authorization: Bearer <OIDC token>` header and return its claims.

    Args:
        authorization: the header value, or None when absent.
        audience: the audience the push subscription was configured with.
        service_account: the email of the push subscription's service account.
        certs: key id -> PEM certificate or public key that may have signed the token.

    Raises:
        PushAuthError: missing, malformed, expired or foreign token, or another signer.
    """
    from google.auth import exceptions, jwt  # noqa: PLC0415 - loaded only where push tokens are verified

    if not audience or not service_account:
        raise PushAuthError("CORRAL_PUSH_AUDIENCE and CORRAL_PUSH_SERVICE_ACCOUNT must be set to verify push tokens")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise PushAuthError("no bearer token")
    try:
        claims: Mapping[str, Any] = jwt.decode(token, certs=certs, audience=audience, clock_skew_in_seconds=10)  # type: ignore[no-untyped-call]
    except (exceptions.GoogleAuthError, ValueError) as exc:
        raise PushAuthError(f"invalid token: {exc}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise PushAuthError(f"unexpected issuer {claims.get('iss')!r}")
    if claims.get("email") != service_account or claims.get("email_verified") is not True:
        raise PushAuthError(f"token is not from {service_account}")
    return claims


def _certs() -> Mapping[str, str]:
    global _certs_cache  # noqa: PLW0603 - one cache per instance, refreshed hourly
    if PUSH_CERTS_FILE:
        with open(PUSH_CERTS_FILE, encoding="utf-8") as f:  # noqa: PTH123 - read per request so tests can rotate keys
            certs: Mapping[str, str] = json.load(f)
        return certs
    if time.monotonic() - _certs_cache[0] > CERTS_TTL_S:
        with urllib.request.urlopen(GOOGLE_CERTS_URL, timeout=5) as resp:  # fixed https URL
            _certs_cache = (time.monotonic(), json.load(resp))
    return _certs_cache[1]


def _ingest(data: object, ref: str, delivery_id: str | None) -> dict[str, int]:
    summary = PIPELINE.ingest([Inbound(data=data, ref=ref, delivery_id=delivery_id)]).summary()
    log.info("ingested %s: %s", ref, summary)
    return summary


@functions_framework.cloud_event
def scc_findings(cloud_event: CloudEvent) -> None:
    """Eventarc (Pub/Sub messagePublished): one SCC notification; raising makes Eventarc retry."""
    _ingest(cloud_event.data, f"cloudevent:{cloud_event['id']}", cloud_event["id"])


@functions_framework.cloud_event
def hub(cloud_event: CloudEvent) -> None:
    """Eventarc on the relay topic: OCSF findings relayed by spokes, stored once and fanned out."""
    _ingest(cloud_event.data, f"relay:{cloud_event['id']}", cloud_event["id"])


@functions_framework.http
def scc_push(request: flask.Request) -> tuple[str, int]:
    """Pub/Sub push: 204 once stored or dead-lettered; 403 for a bad token, 500 to be redelivered."""
    if PUSH_VERIFY:
        try:
            verify_push_token(request.headers.get("Authorization"), audience=PUSH_AUDIENCE,
                              service_account=PUSH_SERVICE_ACCOUNT, certs=_certs())  # fmt: skip
        except PushAuthError as exc:
            log.warning("push request refused: %s", exc)
            return "forbidden", 403
    try:
        _ingest(request.get_data(), "pubsub-push", None)
    except StoreUnavailableError as exc:
        log.error("store unavailable, asking Pub/Sub to redeliver: %s", exc)
        return "store unavailable", 500
    return "", 204


@functions_framework.http
def redrive(request: flask.Request) -> tuple[dict[str, int], int]:
    """Cloud Scheduler: re-send the pending deliveries whose next attempt is due."""
    return PIPELINE.redrive(), 200


@functions_framework.http
def source_check(request: flask.Request) -> tuple[dict[str, Any], int]:
    """Cloud Scheduler: raise or close "Source Silent" findings; expire closed findings past retention."""
    return {**PIPELINE.check_sources(), "expired": PIPELINE.expire()}, 200
