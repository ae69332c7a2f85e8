"""The deployment's DynamoDB table is the one the DynamoDB store expects (keys, index, projection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from corral.stores import dynamodb

ROOT = Path(__file__).resolve().parents[2]


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt …) read as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    del suffix
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)


def table() -> dict[str, Any]:
    """The DynamoDB table resource of serverless.yml."""
    config = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    resources = config["resources"]["Resources"]
    [found] = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::DynamoDB::Table"]
    return found  # type: ignore[no-any-return]


def test_table_keys_and_index_match_the_store() -> None:
    """serverless.yml declares pk/sk, the store's index and its key names, projecting what the store reads."""
    props = table()
    assert {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    [index] = [i for i in props["GlobalSecondaryIndexes"] if i["IndexName"] == dynamodb.INDEX]
    assert {k["AttributeName"]: k["KeyType"] for k in index["KeySchema"]} == {"g1pk": "HASH", "g1sk": "RANGE"}
    projection = index["Projection"]
    assert projection["ProjectionType"] == "ALL" or set(projection["NonKeyAttributes"]) >= set(
        dynamodb.INDEX_ATTRIBUTES
    )
    declared = {a["AttributeName"] for a in props["AttributeDefinitions"]}
    assert declared == {"pk", "sk", "g1pk", "g1sk"}
