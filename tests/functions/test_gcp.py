"""The GCP entry points served by a real functions-framework process, called over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from corral.stores import open_store
from tests.support.fake_http import FakeHTTPServer, Reply
from tests.support.pubsub_emulator import pubsub_emulator  # noqa: F401 - session fixture

from .conftest import EVENTS, FUNCTIONS, UNROUTED_NOTICE, closed_store_url, free_port, spare_sink_config

MAIN = FUNCTIONS / "gcp" / "main.py"
FF = Path(sys.executable).with_name("functions-framework")
NOTIFICATION = json.loads((EVENTS / "gcp/scc/gke-image-cve.notification.json").read_text())
AUDIENCE = "corral-scc-push"
PUSH_SA = "corral-push@example-project.iam.gserviceaccount.com"
pytestmark = pytest.mark.integration


class Server:
    """One functions-framework process serving one target."""

    def __init__(self, target: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        argv = [str(FF), "--target", target, "--source", str(MAIN), "--host", "127.0.0.1", "--port", str(self.port)]
        # Output goes to a file: a pipe nobody reads could fill up and stall the server.
        self.log = Path(env.get("TMPDIR", "/tmp")) / f"corral-ff-{self.port}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 30) -> None:
        """Wait until the server answers; fail with its output if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"functions-framework exited: {self.output()}")
            try:
                requests.get(self.url, timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or listening but still importing on a loaded machine.
                time.sleep(0.2)
        pytest.fail("functions-framework did not start")

    def output(self) -> str:
        """Everything the process printed (stops it first)."""
        self.stop()
        return self.log.read_text()

    def stop(self) -> None:
        """End the process."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


def gcp_env(store_url: str, **extra: str) -> dict[str, str]:
    """The environment Cloud Run gives the function, plus the Terraform settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(K_SERVICE="corral-scc", K_REVISION="corral-scc-00001", CORRAL_STORE=store_url, CORRAL_CONFIG="")
    env.update(CORRAL_ALLOW_LOCAL_STORE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start functions-framework servers; stop them after the test."""
    servers: list[Server] = []

    def start(target: str, env: dict[str, str]) -> Server:
        server = Server(target, env)
        servers.append(server)
        server.wait()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def signing() -> Iterator[dict[str, Any]]:
    """A local RSA key standing in for Google's signer, its public key served by a loopback certs endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with FakeHTTPServer(Reply.json(200, {"test-kid": pem.decode()})) as certs:
        yield {"key": key, "other": other, "certs_url": certs.url + "/oauth2/v1/certs"}


def token(key: Any, *, audience: str = AUDIENCE, email: str = PUSH_SA, expires_in: int = 600) -> str:
    """An OIDC token shaped like the ones Pub/Sub push attaches."""
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "email": email,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now - 60,
        "exp": now + expires_in,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-kid"})


def push_body(notification: dict[str, Any]) -> dict[str, Any]:
    """A Pub/Sub push request body (wrapped message, base64 data)."""
    data = base64.b64encode(json.dumps(notification).encode()).decode()
    message_id = str(uuid.uuid4().int)[:16]
    return {
        "message": {
            "data": data,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2025-05-01T10:00:00Z",
            "attributes": {},
        },
        "subscription": "projects/example-project/subscriptions/corral-scc-push",
    }


def findings_in(store_url: str) -> int:
    """How many findings the store holds."""
    store = open_store(store_url)
    try:
        return sum(row.count for row in store.counts())
    finally:
        store.close()


@pytest.fixture
def push_server(serve: Callable[..., Server], sqlite_url: str, signing: dict[str, Any]) -> Server:
    """scc_push with OIDC verification on (the default), checking against the local key."""
    env = gcp_env(
        sqlite_url,
        CORRAL_PUSH_AUDIENCE=AUDIENCE,
        CORRAL_PUSH_SERVICE_ACCOUNT=PUSH_SA,
        CORRAL_PUSH_CERTS_URL=signing["certs_url"],
    )
    return serve("scc_push", env)


def test_push_with_valid_token_is_stored(push_server: Server, sqlite_url: str, signing: dict[str, Any]) -> None:
    """A push request with a valid OIDC token is stored and acknowledged with 204."""
    headers = {"Authorization": f"Bearer {token(signing['key'])}"}
    resp = requests.post(push_server.url, json=push_body(NOTIFICATION), headers=headers, timeout=30)
    assert resp.status_code == 204
    assert findings_in(sqlite_url) == 1


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda s: f"Bearer {token(s['other'])}", id="wrong-key"),
        pytest.param(lambda s: f"Bearer {token(s['key'], audience='someone-else')}", id="wrong-audience"),
        pytest.param(lambda s: f"Bearer {token(s['key'], expires_in=-300)}", id="expired"),
        pytest.param(lambda s: f"Bearer {token(s['key'], email='intruder@example.com')}", id="wrong-account"),
        pytest.param(lambda s: None, id="missing"),
    ],
)
def test_push_with_bad_token_is_refused(
    push_server: Server, sqlite_url: str, signing: dict[str, Any], make_header: Callable[[dict[str, Any]], str | None]
) -> None:
    """A push request whose token is foreign, expired, for another audience or absent gets 403 and stores nothing."""
    header = make_header(signing)
    headers = {"Authorization": header} if header else {}
    resp = requests.post(push_server.url, json=push_body(NOTIFICATION), headers=headers, timeout=30)
    assert resp.status_code == 403
    assert findings_in(sqlite_url) == 0


def test_push_with_store_down_answers_500(serve: Callable[..., Server], signing: dict[str, Any]) -> None:
    """With the store unreachable the push endpoint answers 500, so Pub/Sub redelivers."""
    env = gcp_env(
        closed_store_url(),
        CORRAL_PUSH_AUDIENCE=AUDIENCE,
        CORRAL_PUSH_SERVICE_ACCOUNT=PUSH_SA,
        CORRAL_PUSH_CERTS_URL=signing["certs_url"],
    )
    server = serve("scc_push", env)
    headers = {"Authorization": f"Bearer {token(signing['key'])}"}
    resp = requests.post(server.url, json=push_body(NOTIFICATION), headers=headers, timeout=30)
    assert resp.status_code == 500


def test_cloudevents_binary_and_structured_are_stored(serve: Callable[..., Server], sqlite_url: str) -> None:
    """Eventarc's Pub/Sub CloudEvent is stored in binary and in structured mode; a replay stores nothing new."""
    server = serve("scc_findings", gcp_env(sqlite_url))
    data = push_body(NOTIFICATION)
    attrs = {
        "id": data["message"]["messageId"],
        "source": "//pubsub.googleapis.com/projects/example-project/topics/corral-scc-findings",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "specversion": "1.0",
    }
    binary = {f"ce-{k}": v for k, v in attrs.items()} | {"Content-Type": "application/json"}
    assert requests.post(server.url, json=data, headers=binary, timeout=30).status_code == 200
    structured = json.dumps(attrs | {"datacontenttype": "application/json", "data": data})
    resp = requests.post(
        server.url, data=structured, headers={"Content-Type": "application/cloudevents+json"}, timeout=30
    )
    assert resp.status_code == 200
    assert findings_in(sqlite_url) == 1


def test_cloudevent_with_store_down_fails_for_retry(serve: Callable[..., Server]) -> None:
    """With the store unreachable the CloudEvent function fails (500), which Eventarc retries."""
    server = serve("scc_findings", gcp_env(closed_store_url()))
    data = push_body(NOTIFICATION)
    headers = {
        "ce-id": "1",
        "ce-source": "//pubsub.googleapis.com/x",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "Content-Type": "application/json",
    }
    assert requests.post(server.url, json=data, headers=headers, timeout=30).status_code == 500


def test_scheduled_targets_answer(serve: Callable[..., Server], sqlite_url: str) -> None:
    """The redrive and source-check HTTP targets answer 200 with JSON."""
    for target in ("redrive", "source_check"):
        server = serve(target, gcp_env(sqlite_url))
        resp = requests.post(server.url, timeout=30)
        assert resp.status_code == 200 and isinstance(resp.json(), dict)


def test_verification_off_is_explicit_and_logged(serve: Callable[..., Server], sqlite_url: str) -> None:
    """CORRAL_PUSH_VERIFY=off accepts unsigned pushes and says so at WARNING when the function starts."""
    server = serve("scc_push", gcp_env(sqlite_url, CORRAL_PUSH_VERIFY="off"))
    assert requests.post(server.url, json=push_body(NOTIFICATION), timeout=30).status_code == 204
    assert "CORRAL_PUSH_VERIFY=off" in server.output()


def test_cold_start_logs_a_sink_no_route_names(serve: Callable[..., Server], sqlite_url: str, tmp_path: Path) -> None:
    """A sink no route names is accepted, and the function says so at WARNING when it starts."""
    server = serve("redrive", gcp_env(sqlite_url, CORRAL_CONFIG=spare_sink_config(tmp_path)))
    assert requests.post(server.url, timeout=30).status_code == 200
    assert server.output().count(UNROUTED_NOTICE) == 1


def test_cold_start_refuses_sqlite_on_cloud_run(sqlite_url: str) -> None:
    """On Cloud Functions a SQLite store is refused at start unless CORRAL_ALLOW_LOCAL_STORE=1."""
    env = gcp_env(sqlite_url)
    del env["CORRAL_ALLOW_LOCAL_STORE"]
    server = Server("scc_findings", env)
    server.proc.wait(timeout=30)
    assert server.proc.returncode != 0
    assert "SQLite store inside Google Cloud Functions" in server.output()


def test_scc_notification_through_the_pubsub_emulator_is_stored(
    serve: Callable[..., Server],
    sqlite_url: str,
    pubsub_emulator: str,  # noqa: F811
) -> None:
    """An SCC notification published to the emulator reaches scc_push by push and lands in the store."""
    server = serve("scc_push", gcp_env(sqlite_url, CORRAL_PUSH_VERIFY="off"))  # the emulator signs no tokens
    base = f"http://{pubsub_emulator}/v1/projects/corral-test"
    topic, sub = f"{base}/topics/scc-{uuid.uuid4().hex[:8]}", f"{base}/subscriptions/push-{uuid.uuid4().hex[:8]}"
    assert requests.put(topic, json={}, timeout=10).status_code == 200
    subscription = {
        "topic": topic.split("/v1/")[1],
        "pushConfig": {"pushEndpoint": server.url},
        "ackDeadlineSeconds": 10,
    }
    assert requests.put(sub, json=subscription, timeout=10).status_code == 200
    data = base64.b64encode(json.dumps(NOTIFICATION).encode()).decode()
    assert requests.post(f"{topic}:publish", json={"messages": [{"data": data}]}, timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    while findings_in(sqlite_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert findings_in(sqlite_url) == 1
