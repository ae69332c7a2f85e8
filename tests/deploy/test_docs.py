"""docs/deploy.md says what the stacks do: its configuration, commands and claims match the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from corral import config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"


def quick_start_config() -> config.Settings:
    """The first TOML block of docs/deploy.md, the corral.toml every quick start packages."""
    [block, *_] = re.findall(r"```toml\n(.*?)```", DEPLOY.read_text(), re.DOTALL)
    return config.parse(tomllib.loads(block), origin="docs/deploy.md")


def test_the_quick_start_sends_the_sample_finding_to_slack() -> None:
    """The AWS quick start checks Slack with a GuardDuty sample finding: its chat route must take samples."""
    assert "create-sample-findings" in DEPLOY.read_text()
    settings = quick_start_config()
    to_slack = [route for route in settings.router.routes if "slack:soc" in route.to]
    assert to_slack
    assert all(route.samples for route in to_slack), "chat routes skip sample findings without samples = true"


def test_the_arm64_deploy_passes_what_make_package_built_for() -> None:
    """`serverless deploy` renders serverless.yml again: the docs give it the arm64 build's three parameters."""
    makefile = (ROOT / "mk" / "deploy.mk").read_text()
    arm64 = makefile[
        makefile.index("ifeq ($(LAMBDA_ARCH),arm64)") : makefile.index(
            "else", makefile.index("ifeq ($(LAMBDA_ARCH),arm64)")
        )
    ]
    python = re.search(r"LAMBDA_PYTHON \?= (\S+)", arm64)[1]  # type: ignore[index]
    expected = [
        '--param="architecture=arm64"',
        f'--param="runtime=python{python}"',
        f'--param="powertoolsRuntime=python{python.replace(".", "")}"',
    ]
    assert " ".join(expected) in DEPLOY.read_text()


def test_the_docs_say_vpc_attachment_is_unsupported_while_the_stack_has_none() -> None:
    """While serverless.yml has no provider.vpc, the docs say so and what a VPC would need, not "attach it"."""
    config = yaml.safe_load((ROOT / "serverless.yml").read_text())
    text = " ".join(DEPLOY.read_text().split())
    if "vpc" not in config["provider"]:
        assert "does not attach the functions to a VPC yet" in text
        assert "attach the functions to the database's VPC" not in text
        for permission in ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"):
            assert permission in text
        assert "NAT gateway" in text


def test_the_failure_queue_replay_matches_what_corral_unwraps() -> None:
    """Replaying Lambda destination records as they are works only because Corral unwraps requestPayload."""
    text = " ".join(DEPLOY.read_text().split())
    assert "Replaying the failure queue" in text
    envelopes = (ROOT / "shared" / "corral" / "envelopes.py").read_text()
    if "unwrap those records themselves" in text:
        assert '"requestPayload" in doc' in envelopes, "the docs rely on an unwrapping the code does not do"
    else:
        assert ".requestPayload" in text, "destination records must be unwrapped (jq .requestPayload) before replay"
    config = yaml.safe_load((ROOT / "serverless.yml").read_text())
    queues = config["resources"]["Resources"]
    names = {"failed": queues["GuardDutyFailedQueue"], "buffer": queues["GuardDutyQueue"]}
    for queue in names.values():
        name = queue["Properties"]["QueueName"].replace("${self:service}-${sls:stage}", "corral-prod")
        assert f"--queue-name {name} " in text
    [batch] = config["functions"]["guarddutyBatch"]["events"]
    assert "enabled" not in batch["sqs"], "the replay relies on guarddutyBatch reading the buffer queue always"


def test_nothing_suggests_cloud_sql_routes_a_private_ip_instance_cannot_take() -> None:
    """The store is private-IP only: no `gcloud sql connect` for migrate, no roles/cloudsql.client for the functions."""
    sql = (ROOT / "infra" / "gcp" / "sql.tf").read_text()
    assert "ipv4_enabled    = false" in sql
    text = " ".join(DEPLOY.read_text().split())
    assert "Cloud Shell with `gcloud sql connect`" not in text
    assert "--tunnel-through-iap" in text
    assert "roles/cloudsql.client" not in (ROOT / "infra" / "gcp" / "outputs.tf").read_text()


def test_the_docs_do_not_promise_an_sns_fed_queue_the_stack_refuses() -> None:
    """The buffer queue admits only this stack's EventBridge rules, and guarddutyBatch reads only that queue."""
    config = yaml.safe_load((ROOT / "serverless.yml").read_text())
    resources = config["resources"]["Resources"]
    statements = resources["GuardDutyQueuesPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allowed = [s["Principal"] for s in statements if s["Effect"] == "Allow"]
    assert allowed == [{"Service": "events.amazonaws.com"}]
    [batch] = config["functions"]["guarddutyBatch"]["events"]
    assert batch["sqs"]["arn"] == {"Fn::GetAtt": ["GuardDutyQueue", "Arn"]}
    text = " ".join(DEPLOY.read_text().split())
    assert "can feed the `guarddutyBatch` function" not in text
    assert "Subscribe the `sns` function, not a queue" in text
