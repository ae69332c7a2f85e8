"""Google Cloud Functions (2nd gen, functions-framework): SCC notifications, the hub, schedules.

* `scc_findings`: CloudEvent from Eventarc (Pub/Sub `messagePublished`). Raising makes the
  framework answer 500, and Eventarc redelivers because the trigger's retry policy is
  RETRY_POLICY_RETRY (infra/gcp); without it a Pub/Sub-triggered function is never retried.
* `scc_push`: HTTP endpoint of a Pub/Sub push subscription (with a dead-letter topic). The push
  OIDC token is verified by default: signature (Google's certificates), audience
  `CORRAL_PUSH_AUDIENCE`, issuer and the `email` claim `CORRAL_PUSH_SERVICE_ACCOUNT`.
  `CORRAL_PUSH_VERIFY=off` turns this off explicitly and is logged at WARNING at cold start.
  Verification is google-auth's (`corral.push_auth`); `CORRAL_PUSH_CERTS_URL` replaces Google's
  certificate endpoint, for tests against a local signer. A token that cannot be checked because
  the certificates cannot be fetched answers 503, so Pub/Sub redelivers it.
* `hub`: CloudEvent of relayed OCSF findings (hub layout). `redrive`, `source_check`: HTTP targets
  of Cloud Scheduler; Cloud Run IAM admits only the scheduler's identity.

Every entry point answers success only when each message was stored or dead-lettered; a store
outage answers 500 so that Pub/Sub redelivers (the upsert makes that safe).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from corral.startup import starting

if TYPE_CHECKING:
    from corral.push_auth import PushVerifier

log = logging.getLogger("corral.gcp")
with starting():  # Corral's imports and the pipeline, without the cycle collector: see corral.startup
    from corral.errors import StoreUnavailableError
    from corral.pipeline import Inbound, Pipeline
    from corral.redaction import redact_url

    PIPELINE = Pipeline.from_env()
for notice in PIPELINE.settings.notices():  # e.g. a sink no route names: valid, but it receives nothing
    log.warning(notice)
PUSH_VERIFY = os.environ.get("CORRAL_PUSH_VERIFY", "on").lower() != "off"
PUSH_CERTS_URL = os.environ.get("CORRAL_PUSH_CERTS_URL", "")
if not PUSH_VERIFY:
    log.warning("CORRAL_PUSH_VERIFY=off: Pub/Sub push requests are accepted WITHOUT checking their OIDC token")
elif PUSH_CERTS_URL:
    log.warning(
        "CORRAL_PUSH_CERTS_URL is set: push tokens are checked against %s (test-only)", redact_url(PUSH_CERTS_URL)
    )


@functools.cache
def push_verifier() -> PushVerifier:
    """The push token verifier, built on the first push request.

    google-auth, requests and cryptography cost more than the rest of the cold start together:
    only the push endpoint loads them, never the Eventarc functions beside it.
    """
    from corral import push_auth  # noqa: PLC0415

    return push_auth.PushVerifier(
        audience=os.environ.get("CORRAL_PUSH_AUDIENCE", ""),
        service_account=os.environ.get("CORRAL_PUSH_SERVICE_ACCOUNT", ""),
        certs_url=PUSH_CERTS_URL or push_auth.GOOGLE_CERTS_URL,
    )


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
        from corral import push_auth  # noqa: PLC0415 - only the push endpoint pays for google-auth

        try:
            push_verifier().verify(request.headers.get("Authorization"))
        except push_auth.PushAuthError as exc:
            log.warning("push request refused: %s", exc)
            return "forbidden", 403
        except push_auth.CertificatesUnavailableError as exc:
            log.error("push token not checked, asking Pub/Sub to redeliver: %s", exc)
            return "certificates unavailable", 503
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
