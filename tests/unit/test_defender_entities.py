"""The alert entity graph: evidences carry each entity as sent, pruned exactly as `ocsf.prune` would."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from corral import ocsf
from corral.sources.defender._entities import Entities

_CLEAN: list[Any] = [
    {"$id": "2", "Type": "K8s-cluster", "Asset": False, "CloudResource": {"$id": "3", "Type": "aws-resource"}},
    {"$id": "4", "Name": "ns", "Cluster": {"$ref": "2"}, "Type": "K8s-namespace", "Count": 0},
    {"$id": "5", "Type": "container", "Name": "api", "Image": {"$id": "6", "ImageId": "r/a:1", "Type": "image"}},
    {"$id": "7", "Type": "ip", "Tags": ["a", ["b"]], "Score": 0.0},
]


def _dirty(path: tuple[Any, ...], value: Any) -> list[Any]:
    graph = copy.deepcopy(_CLEAN)
    node: Any = graph
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return graph


_CASES = [
    _CLEAN,
    _dirty((0, "Platform"), None),
    _dirty((1, "Name"), ""),
    _dirty((0, "CloudResource", "Related"), []),
    _dirty((2, "Image", "Labels"), {}),
    _dirty((3, "Tags", 1, 0), ""),
    _dirty((3, "Tags", 1), []),
    _dirty((3, "Extra"), [None]),
    [*_CLEAN, None, "", {}, {"$ref": "4"}],
]


@pytest.mark.parametrize("graph", _CASES)
def test_evidence_data_is_the_pruned_entity(graph: list[Any]) -> None:
    entities = Entities(graph)
    expected = []
    for node, name, _ in entities.all:
        evidence: dict[str, Any] = {"name": name} if name else {}
        if data := ocsf.prune(node):
            evidence["data"] = data
        if evidence:
            expected.append(evidence)
    found = [{key: value for key, value in e.items() if key != "container"} for e in entities.evidences("Kubernetes")]
    assert found == expected


def test_a_clean_entity_is_shared_not_copied() -> None:
    graph = copy.deepcopy(_CLEAN)
    evidences = list(Entities(graph).evidences("Kubernetes"))
    assert evidences[0]["data"] is graph[0]
