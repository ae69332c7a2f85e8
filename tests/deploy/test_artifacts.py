"""The artifacts `make package` builds start on their platform and deliver, with any store and every sink.

For each cloud the artifact's declared dependencies are installed the way the platform installs
them, into folders of their own:

* AWS Lambda: the zip unpacked as the function's code, the Powertools release that the layer
  version in serverless.yml contains, and the boto3 release the python3.11 runtime ships.
* Azure Functions and Google Cloud Functions: the artifact's requirements.txt, as the remote build
  (Oryx) and Cloud Build install it.

Then `cold_start.py` runs in a separate `python -I -S` whose import path holds only those folders
and the standard library: it imports the entry point (its cold start builds the store and every
sink) and delivers one real event through it, with a PostgreSQL store (the server the tests
start) or a DynamoDB store (moto_server), and a configuration enabling every sink kind, each
pointed at a loopback counterpart. Every sink must have delivered. A last test removes one
declared dependency and shows that the check then fails.

The artifacts must exist: CI runs `make package` before the tests, and locally a missing artifact
fails with the command to run, never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.stores import open_store
from tests.support.fake_http import FakeHTTPServer, Recorded, Reply, make_tls
from tests.support.fake_siem import BulkIndex, HecCollector, LogsIngestion, WebhookReceiver
from tests.support.postgres import PostgresServer
from tests.support.rsyslog import Rsyslog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
COLD_START = Path(__file__).with_name("cold_start.py")
EVENTS = ROOT / "tests" / "events"

# The Powertools for AWS Lambda (Python) release in each version of the public layer
# AWSLambdaPowertoolsPythonV3-<python>-<arch> (account 017000801446). Layer 27: the project's
# installation page (https://docs.powertools.aws.dev/lambda/python/latest/#lambda-layer) moved from
# layer version 18 to 27 in aws-powertools/powertools-lambda-python pull request 7757, the layer
# documentation update that followed the v3.23.0 release. The authoritative answer is the layer's
# own Description, which names the release: `aws lambda get-layer-version-by-arn --arn
# arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:27`.
# Add a line here whenever serverless.yml moves to another layer version.
POWERTOOLS_LAYER_RELEASES = {"27": "3.23.0"}
# The SDK the python3.11 runtime ships, from "Runtime-included SDK versions" in the AWS Lambda
# Developer Guide (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included).
# The runtime updates it without notice, so a function must work with it, not with ours.
LAMBDA_RUNTIME_BOTO3 = "1.40.4"
# What the runtime's SDK brings, as top-level names in a site folder.
RUNTIME_PROVIDED = ("boto3*", "botocore*", "s3transfer*", "jmespath*", "dateutil", "python_dateutil*", "urllib3*")
RUNTIME_PROVIDED += ("six.py", "six-*")

EVENT = {
    "aws": EVENTS / "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json",
    "azure": EVENTS / "azure/defender/alert-k8s-privileged-container-aks.json",
    "gcp": EVENTS / "gcp/scc/crtd-reverse-shell.cloudevent.json",
}
PLATFORM_ENV = {
    "aws": {
        "AWS_LAMBDA_FUNCTION_NAME": "corral-dev-guardduty",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "corral",
        "POWERTOOLS_METRICS_NAMESPACE": "Corral",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "CORRAL_SECRET_PARAMETERS": "",
    },
    "azure": {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "CORRAL_EVENTHUB_NAME": "defender-findings",
        "CORRAL_RELAY_EVENTHUB_NAME": "relayed-findings",
        "CORRAL_EVENTHUB_CONSUMER_GROUP": "corral",
    },
    "gcp": {"K_SERVICE": "corral-scc", "K_REVISION": "corral-scc-00001"},
}

SLACK_TOKEN = "xoxb-0000-smoke"
HEC_TOKEN = "00000000-1111-2222-3333-444444444444"
HOOK_SECRET = "smoke-signing-secret-0123456789"
ELASTIC_KEY = base64.b64encode(b"smoke:key").decode()
ENTRA_TOKEN = "smoke.eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIn0.sig"
IDENTITY_HEADER = "smoke-identity-header"
RULE = "dcr-00112233445566778899aabbccddeeff"
STREAM = "Custom-CorralFindings_CL"


# --- The platforms' import paths -------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """The folders one cloud puts on the import path: the function's code first, then site folders."""

    cloud: str
    paths: tuple[Path, ...]
    site_dirs: tuple[Path, ...]


def artifact(relative: str) -> Path:
    """A file or folder `make package` writes; fail (never skip) when it is missing."""
    path = DIST / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make package` before the tests (CI does)")
    return path


def pip_install(target: Path, *requirements: str) -> None:
    """Install into `target` with pip's own resolver and the index pip is configured with."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"pip install {' '.join(requirements)} failed:\n{done.stderr[-4000:]}")


def unpack(archive: Path, into: Path) -> Path:
    """Unzip an artifact as the platform does."""
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(into)
    return into


def powertools_layer_version() -> str:
    """The Powertools layer version serverless.yml deploys with."""
    config = yaml.safe_load((ROOT / "serverless.yml").read_text())
    return str(config["params"]["default"]["powertoolsLayerVersion"])


def lambda_platform(root: Path) -> Platform:
    """/var/task (the zip), /opt/python (the Powertools layer), the runtime's boto3."""
    task = unpack(artifact("aws/corral-aws.zip"), root / "task")
    layer = root / "layer" / "python"
    release = POWERTOOLS_LAYER_RELEASES[powertools_layer_version()]
    # The layer is built with the tracer extra (the X-Ray SDK), which the handler uses, and leaves
    # the AWS SDK and what it depends on to the runtime: drop those, so the runtime's botocore is
    # the one imported, as on Lambda.
    pip_install(layer, f"aws-lambda-powertools[tracer]=={release}")
    for provided in RUNTIME_PROVIDED:
        for path in layer.glob(provided):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    runtime = root / "runtime"
    pip_install(runtime, f"boto3=={LAMBDA_RUNTIME_BOTO3}")
    return Platform("aws", (task, layer, runtime), ())


def requirements_platform(cloud: str, code: Path, root: Path, requirements: Path | None = None) -> Platform:
    """The function's folder, and its requirements.txt installed as the remote build does."""
    site_dir = root / "site-packages"
    pip_install(site_dir, "-r", str(requirements or code / "requirements.txt"))
    return Platform(cloud, (code,), (site_dir,))


def platform_for(cloud: str, root: Path) -> Platform:
    """Lay out one cloud's platform under `root`."""
    if cloud == "aws":
        return lambda_platform(root)
    if cloud == "azure":
        return requirements_platform("azure", artifact("azure/corral-azure"), root)
    code = unpack(artifact("gcp/corral-gcp.zip"), root / "code")
    return requirements_platform("gcp", code, root)


@pytest.fixture(scope="module")
def platforms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Platform]:
    """Every cloud's platform, installed once for the module."""
    return {cloud: platform_for(cloud, tmp_path_factory.mktemp(cloud)) for cloud in ("aws", "azure", "gcp")}


# --- The loopback counterparts of every sink ------------------------------------------------------


def slack_api(request: Recorded) -> Reply:
    """chat.postMessage as Slack answers it."""
    if request.header("Authorization") != f"Bearer {SLACK_TOKEN}":
        return Reply.json(200, {"ok": False, "error": "invalid_auth"})
    return Reply.json(200, {"ok": True, "channel": "C0SMOKE", "ts": f"{time.time():.6f}", "message": {}})


def managed_identity(request: Recorded) -> Reply:
    """The App Service managed identity endpoint the Functions host gives the app (IDENTITY_ENDPOINT)."""
    if request.header("X-IDENTITY-HEADER") != IDENTITY_HEADER:
        return Reply.json(401, {"error": "bad identity header"})
    resource = request.query.get("resource", [""])[0]
    expires = str(int(time.time()) + 3600)
    return Reply.json(
        200, {"access_token": ENTRA_TOKEN, "expires_on": expires, "resource": resource, "token_type": "Bearer"}
    )


@dataclass
class Receivers:
    """Every sink's counterpart, the configuration that points each sink at it, and its secrets."""

    config: Path
    env: dict[str, str]
    sinks: list[str]


def toml_value(value: Any) -> str:
    """A TOML literal for the scalars and lists the configuration uses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sinks: dict[str, dict[str, Any]]) -> Path:
    """corral.toml with these sinks and one route sending new findings to all of them."""
    lines = []
    for sink_id, table in sinks.items():
        lines.append(f'[sinks."{sink_id}"]')
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    lines += ["[[routes]]", 'name = "everything"', f"to = {toml_value(list(sinks))}", 'on = ["new"]', ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def receivers(
    tmp_path_factory: pytest.TempPathFactory, rsyslog: Rsyslog, moto_server: str, pubsub_emulator: str
) -> Iterator[Receivers]:
    """One live counterpart per sink kind (two for relay: Pub/Sub and SQS), and the config using them."""
    import boto3
    import grpc  # type: ignore[import-untyped]
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    folder = tmp_path_factory.mktemp("receivers")
    tls = make_tls(folder)
    servers = {
        "slack": FakeHTTPServer(slack_api),
        "teams": FakeHTTPServer(Reply(202)),
        "hec": FakeHTTPServer(HecCollector(HEC_TOKEN)),
        "elastic": FakeHTTPServer(BulkIndex(ELASTIC_KEY)),
        "webhook": FakeHTTPServer(WebhookReceiver(HOOK_SECRET, "/hook", time.time)),
        "sentinel": FakeHTTPServer(LogsIngestion(ENTRA_TOKEN, RULE, STREAM), tls=tls),
        "identity": FakeHTTPServer(managed_identity),
    }
    for server in servers.values():
        server.start()
    topic = f"projects/corral-smoke/topics/relay-{uuid.uuid4().hex[:8]}"
    channel = grpc.insecure_channel(pubsub_emulator)
    pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel)).create_topic(name=topic)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"corral-hub-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sinks: dict[str, dict[str, Any]] = {
        "slack:soc": {"token_env": "SLACK_TOKEN", "channel": "C0SMOKE", "api_url": servers["slack"].url + "/api/"},
        "teams:soc": {"webhook_url_env": "TEAMS_URL"},
        "splunk_hec:siem": {"url": servers["hec"].url, "token_env": "HEC_TOKEN"},
        "sentinel:siem": {"endpoint": servers["sentinel"].url, "rule_id": RULE, "ca_file": str(tls.cert)},
        "elastic:siem": {"url": servers["elastic"].url, "index": "findings", "api_key_env": "ELASTIC_KEY"},
        "syslog:siem": {
            "host": "127.0.0.1",
            "port": rsyslog.port("tls"),
            "transport": "tls",
            "ca_file": str(rsyslog.tls.cert),
        },
        "webhook:soar": {"url": servers["webhook"].url + "/hook", "secret_env": "HOOK_SECRET"},
        "relay:pubsub": {"topic": topic, "endpoint": pubsub_emulator},
        "relay:sqs": {"queue_url": queue_url, "region": "us-east-1", "endpoint_url": moto_server},
        "file:archive": {"path": str(folder / "findings.jsonl")},
    }
    env = {
        "SLACK_TOKEN": SLACK_TOKEN,
        "TEAMS_URL": servers["teams"].url + "/workflows/smoke",
        "HEC_TOKEN": HEC_TOKEN,
        "HOOK_SECRET": HOOK_SECRET,
        "ELASTIC_KEY": ELASTIC_KEY,
        # What the Functions host sets for the app's managed identity; DefaultAzureCredential uses it
        # on every platform here, since Entra ID itself has no local counterpart.
        "IDENTITY_ENDPOINT": servers["identity"].url + "/msi/token",
        "IDENTITY_HEADER": IDENTITY_HEADER,
    }
    try:
        yield Receivers(write_config(folder / "corral.toml", sinks), env, list(sinks))
    finally:
        for server in servers.values():
            server.close()


# --- Stores ----------------------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "dynamodb"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated store: a new database on the session's PostgreSQL, or a new table on moto."""
    if request.param == "postgresql":
        import psycopg

        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"smoke_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a generated identifier, not input
        base, _, _ = server.url.rpartition("/")
        url = f"{base}/{name}"
    else:
        url = f"dynamodb://corral-{uuid.uuid4().hex[:8]}?region=us-east-1&endpoint={request.getfixturevalue('moto_server')}"
    store = open_store(url)
    store.migrate()  # what `corral store migrate` (or the stack's table) does before the first deploy
    store.close()
    return url


# --- Running a cold start ----------------------------------------------------------------------------


def cold_start(platform: Platform, store: str, receivers: Receivers, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run cold_start.py for `platform` in `python -I -S` with the platform's environment."""
    spec = {
        "cloud": platform.cloud,
        "paths": [str(p) for p in platform.paths],
        "site_dirs": [str(p) for p in platform.site_dirs],
        "event": str(EVENT[platform.cloud]),
    }
    spec_file = workdir / f"spec-{uuid.uuid4().hex[:8]}.json"
    spec_file.write_text(json.dumps(spec))
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8"}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"CORRAL_STORE": store, "CORRAL_CONFIG": str(receivers.config)}
    env |= receivers.env | PLATFORM_ENV[platform.cloud]
    return subprocess.run(
        [sys.executable, "-I", "-S", str(COLD_START), str(spec_file)],
        env=env,
        cwd=platform.paths[0],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def report(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report cold_start.py prints last; fail with its output if it did not get there."""
    if run.returncode != 0:
        pytest.fail(f"the cold start failed (exit {run.returncode}):\n{run.stderr[-6000:]}")
    parsed: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return parsed


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_artifact_starts_and_delivers_to_every_sink(
    cloud: str, platforms: dict[str, Platform], store_url: str, receivers: Receivers, tmp_path: Path
) -> None:
    """The entry point imports with only the platform's packages and delivers one finding to every sink."""
    outcome = report(cold_start(platforms[cloud], store_url, receivers, tmp_path))
    assert outcome["foreign"] == [], "modules came from outside the artifact and the platform"
    assert outcome["ledger"] == {sink: {"delivered": 1} for sink in receivers.sinks}


def test_a_missing_declared_dependency_fails_the_check(
    receivers: Receivers, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same check, on the Google Cloud artifact with azure-identity left out of requirements.txt, fails."""
    root = tmp_path_factory.mktemp("gcp-without-azure-identity")
    code = unpack(artifact("gcp/corral-gcp.zip"), root / "code")
    requirements = code / "requirements.txt"
    kept = [line for line in requirements.read_text().splitlines() if not line.startswith("azure-identity")]
    assert len(kept) == len(requirements.read_text().splitlines()) - 1, "azure-identity is no longer declared"
    requirements.write_text("\n".join(kept) + "\n")
    platform = requirements_platform("gcp", code, root)
    run = cold_start(platform, store_url, receivers, root)
    assert run.returncode != 0
    assert "needs the Python package azure-identity, which is not installed" in run.stderr, run.stderr[-3000:]


def test_the_layer_release_is_pinned_for_the_deployed_layer_version() -> None:
    """serverless.yml's Powertools layer version has a known release to test the artifact with."""
    assert powertools_layer_version() in POWERTOOLS_LAYER_RELEASES


def test_missing_artifact_fails_with_the_command_to_run() -> None:
    """A missing artifact is a failure naming `make package`, not a skip."""
    with pytest.raises(pytest.fail.Exception, match="make package"):
        artifact("nowhere/corral-none.zip")
