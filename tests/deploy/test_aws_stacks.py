"""serverless.yml and the forwarding stack agree: what Corral reads is what every other region forwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) read as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    del suffix
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load(relative: str) -> dict[str, Any]:
    """One YAML template of the repository."""
    loaded: dict[str, Any] = yaml.load((ROOT / relative).read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    return loaded


def patterns_read_by_corral() -> list[dict[str, Any]]:
    """The event patterns of serverless.yml: the functions' EventBridge events and the rules it declares."""
    config = load("serverless.yml")
    found = [
        event["eventBridge"]["pattern"]
        for function in config["functions"].values()
        for event in function.get("events", [])
        if "eventBridge" in event
    ]
    found += [
        r["Properties"]["EventPattern"]
        for r in config["resources"]["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    ]
    return found


def test_every_event_corral_reads_is_forwarded_from_other_regions() -> None:
    """Each source and detail type Corral's rules match is matched by the forwarding rule too."""
    forwarding = load("infra/aws/forwarding.yml")["Resources"]["ForwardingRule"]["Properties"]["EventPattern"]
    assert patterns_read_by_corral()
    for pattern in patterns_read_by_corral():
        assert set(pattern["source"]) <= set(forwarding["source"])
        assert set(pattern["detail-type"]) <= set(forwarding["detail-type"])
    assert set(forwarding) == {"source", "detail-type"}, "the forwarding rule filters on nothing else"


def test_no_concurrency_is_reserved_by_default() -> None:
    """Functions reserve concurrency only when the reservedConcurrency parameter is given."""
    config = load("serverless.yml")
    assert "reservedConcurrency" not in config["params"]["default"]
    for name, function in config["functions"].items():
        value = function.get("reservedConcurrency")
        assert value is None or value == "${param:reservedConcurrency, null}", name


def test_forwarding_refuses_the_home_region_of_corral_s_own_account_only() -> None:
    """The stack is refused where Corral runs (it would loop events), not in another account's home region."""
    rules = load("infra/aws/forwarding.yml")["Rules"]
    [assertion] = rules["NotInTheHomeRegion"]["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": ["AWS::Region", "HomeRegion"]}]},
            {
                "Fn::And": [
                    {"Fn::Not": [{"Fn::Equals": ["CentralAccountId", ""]}]},
                    {"Fn::Not": [{"Fn::Equals": ["CentralAccountId", "AWS::AccountId"]}]},
                ]
            },
        ]
    }
    # What the assertion decides, for (region, CentralAccountId) in account 111111111111, home eu-west-1.
    allowed = {
        ("us-east-1", ""): True,
        ("us-east-1", "222222222222"): True,
        ("eu-west-1", ""): False,
        ("eu-west-1", "111111111111"): False,
        ("eu-west-1", "222222222222"): True,
    }
    for (region, central), expected in allowed.items():
        values = {"AWS::Region": region, "HomeRegion": "eu-west-1", "CentralAccountId": central}
        values["AWS::AccountId"] = "111111111111"
        assert _evaluate(assertion["Assert"], values) is expected, (region, central)


def _evaluate(node: Any, values: dict[str, str]) -> Any:
    """A rule assertion's value, for the functions the forwarding stack's rule uses (!Ref read as a name)."""
    if isinstance(node, str):
        return values.get(node, node)
    [(function, arguments)] = node.items()
    evaluated = [_evaluate(argument, values) for argument in arguments]
    if function == "Fn::Equals":
        return evaluated[0] == evaluated[1]
    if function == "Fn::Not":
        return not evaluated[0]
    if function == "Fn::And":
        return all(evaluated)
    assert function == "Fn::Or", function
    return any(evaluated)


def _statements(role: dict[str, Any]) -> list[Any]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_each_function_has_its_own_role_writing_only_its_own_logs() -> None:
    """One role per function, under /corral/, whose log statement names that function's log group."""
    config = load("serverless.yml")
    resources = config["resources"]["Resources"]
    roles = [function["role"] for function in config["functions"].values()]
    assert len(roles) == len(set(roles))
    for name, function in config["functions"].items():
        role = resources[function["role"]]
        assert role["Properties"]["Path"] == "/corral/"
        [logs] = [s for s in _statements(role) if isinstance(s, dict) and "logs:PutLogEvents" in s.get("Action", [])]
        assert logs["Resource"]["Fn::Sub"].endswith(f"/aws/lambda/${{self:service}}-${{sls:stage}}-{name}:*"), name


def test_only_corral_roles_of_the_organization_may_send_to_the_hub() -> None:
    """The hub queue admits SendMessage from the organization's Corral roles, and nothing else from outside."""
    statements = load("serverless.yml")["resources"]["Resources"]["HubQueuePolicy"]["Properties"]["PolicyDocument"]
    [spokes] = [s["Fn::If"][1] for s in statements["Statement"] if "Fn::If" in s]
    assert spokes["Action"] == "sqs:SendMessage"
    assert set(spokes["Condition"]) == {"StringEquals", "ArnLike"}
    assert spokes["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"] == "arn:${AWS::Partition}:iam::*:role/corral/*"


def test_functions_get_only_the_table_actions_the_store_calls() -> None:
    """No table-management or transaction rights: migrate is an operator's command."""
    actions = set(load("serverless.yml")["custom"]["iam"]["store"]["Action"])
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    }


def test_every_function_that_routes_to_sinks_may_send_to_the_hub() -> None:
    """In a spoke the relay sink sends to the hub's queue: every function that routes findings has that right.

    The hub consumer alone does not: it runs in the hub, where the statement is AWS::NoValue anyway.
    The source check routes too (Source Silent findings, reprioritizations).
    """
    config = load("serverless.yml")
    resources = config["resources"]["Resources"]
    for name, function in config["functions"].items():
        statements = _statements(resources[function["role"]])
        relays = "${self:custom.iam.relayToHub}" in statements
        assert relays == (name != "hub"), name
    relay = config["custom"]["iam"]["relayToHub"]["Fn::If"]
    assert relay[0] == "SendsToHub"
    assert relay[1] == {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Ref": "HubQueueArn"}}
    assert relay[2] == {"Ref": "AWS::NoValue"}
