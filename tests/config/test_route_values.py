"""Route and suppression condition values: what `findings list` accepts matches, anything else is refused.

A value no finding can carry used to be accepted and match nothing, so its route dropped every
alert without a word (`source = "azure.defender"` compared against the product uid
`microsoft.defender_for_cloud`). Each vocabulary key now reads its values as the command line
does and refuses the rest at start-up, naming the route, the key and the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import config, reader, traits
from corral.errors import ConfigError
from corral.pipeline import Inbound, Pipeline
from corral.routing import Condition
from corral.sources import PRODUCT_SOURCES
from tests.stores.factory import make_finding

EVENTS = Path(__file__).resolve().parents[1] / "events"


def route(when: dict[str, Any]) -> dict[str, Any]:
    """A configuration with one file sink and one route `r` with this `when`."""
    return {"sinks": {"file:x": {"path": "unused.jsonl"}}, "routes": [{"name": "r", "when": when, "to": ["file:x"]}]}


def refusal(table: dict[str, Any]) -> str:
    """The message `config.parse` refuses `table` with."""
    with pytest.raises(ConfigError) as caught:
        config.parse(table, "corral.toml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("cloud", "awz", "(did you mean 'AWS'?); use one of AWS, Azure, GCP"),
        ("layer", "infra", "use one of infrastructure, platform, application"),
        ("task", "threat_detection", "(did you mean 'threat detection'?)"),
        ("source", "guardduty", "(did you mean 'aws.guardduty'?)"),
        ("source", "defender", "use one of aws.guardduty, aws.inspector2, azure.defender"),
        ("class", "Vulnerabilty", "(did you mean 'Vulnerability'?)"),
        ("class", "2005", "use one of Detection, Vulnerability, Compliance"),
        ("container_service", "kubernetes", "use one of EKS, ECS on EC2"),
        ("trait", "container_service:EKS", "expected name=value"),
        ("trait", "colour=red", "expected name=value with name one of container_service, layer, task, sample"),
        ("trait", "container_service=EKX", "(did you mean 'EKS'?)"),
        ("trait", "layer=infra", "use one of infrastructure, platform, application"),
        ("trait", "sample=false", "use one of true"),
    ],
)
def test_an_unknown_value_is_refused_naming_the_route_key_and_value(key: str, value: str, hint: str) -> None:
    """A value outside the key's vocabulary is one line naming the route, the key and the value, with the choices."""
    for table, where in (
        (route({key: value}), "corral.toml: routes[0] (r).when"),
        ({"suppress": [{"name": "s", "when": {key: [value]}, "reason": "r"}]}, "suppress[0] (s)"),
    ):
        message = refusal(table)
        assert len(message.splitlines()) == 1, message
        assert f"{where}" in message and f".when.{key}" in message, message
        assert repr(value) in message or repr(value.partition("=")[2]) in message, message
        assert hint in message, message


def test_a_bad_value_in_a_list_is_refused_too() -> None:
    """Every value of a list is checked, not only the first."""
    message = refusal(route({"source": ["aws.guardduty", "gcp.sccc"]}))
    assert "routes[0] (r).when.source: unknown value 'gcp.sccc' (did you mean 'gcp.scc'?)" in message


def test_every_bad_value_is_reported_at_once() -> None:
    """Several routes with bad values give one line each, as other configuration mistakes do."""
    table = route({"cloud": "awz"})
    table["routes"].append({"name": "second", "when": {"layer": "infra"}, "to": ["file:x"]})
    lines = refusal(table).splitlines()
    assert len(lines) == 2
    assert "routes[0] (r).when.cloud" in lines[0] and "routes[1] (second).when.layer" in lines[1]


def when(table: dict[str, Any]) -> Condition:
    """Parse a `when` table."""
    return Condition.parse(table, "test.when")


@pytest.mark.parametrize(("source", "product"), sorted((s, p) for p, s in PRODUCT_SOURCES.items()))
def test_a_source_id_matches_its_products_findings(source: str, product: str) -> None:
    """A source id (what [sources] and `findings list --source` take) matches the findings of its product."""
    finding = make_finding()
    finding["metadata"]["product"]["uid"] = product
    for value in (source, source.upper(), product):
        assert when({"source": value}).matches(finding), value
    others = [s for s in PRODUCT_SOURCES.values() if s != source]
    assert not when({"source": others}).matches(finding)


def test_class_short_names_full_names_and_uids() -> None:
    """`class` takes Detection / Vulnerability / Compliance, the OCSF class name and the class uid."""
    for class_uid, names in (
        (2004, ("Detection", "detection finding", "2004")),
        (2002, ("Vulnerability", "VULNERABILITY FINDING", "2002")),
        (2003, ("compliance", "Compliance Finding", "2003")),
    ):
        finding = make_finding(class_uid=class_uid)
        for name in names:
            assert when({"class": name}).matches(finding), name
        others = [
            name
            for name, uid in (("Detection", 2004), ("Vulnerability", 2002), ("Compliance", 2003))
            if uid != class_uid
        ]
        assert not when({"class": others}).matches(finding)


def test_ecs_stands_for_both_launch_types() -> None:
    """`container_service = "ECS"` matches ECS on EC2 and ECS on Fargate, and nothing else."""
    assert when({"container_service": "ECS"}).terms == (("container_service", (traits.ECS_EC2, traits.ECS_FARGATE)),)
    assert when({"trait": "container_service=ecs"}).terms == (
        ("trait", (f"container_service={traits.ECS_EC2}", f"container_service={traits.ECS_FARGATE}")),
    )


def test_type_globs_ignore_case_as_the_command_line_does() -> None:
    """`type` matches in any case, and only `*` is a wildcard (as `findings list --type`)."""
    finding = make_finding(finding_type="Execution:Runtime/ReverseShell")
    for pattern in ("execution:runtime/*", "EXECUTION:*", "*reverseshell", "execution:runtime/reverseshell"):
        assert when({"type": pattern}).matches(finding), pattern
    for pattern in ("execution:runtime/?everseShell", "execution:runtime/[r]everseShell", "Recon:*"):
        assert not when({"type": pattern}).matches(finding), pattern


def _inbounds(root: Path) -> Iterator[Inbound]:
    """Every delivery of the sample events, as `corral ingest` reads them."""
    for name in reader.expand([str(root)]):
        for document in reader.read(name):
            yield Inbound(
                document.raw if document.error else document.parsed,
                document.ref,
                error=document.error,
                received_time=document.received_time,
                raw=document.raw,
                decoded=document.error is None,
            )


# Each route of the end-to-end test, by its file sink: its `when`, and what it must deliver as a
# predicate on a finding that the catch-all route delivered.
ROUTES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = {
    "defender": (
        {"source": "azure.defender"},
        lambda f: f["metadata"]["product"]["uid"] == "microsoft.defender_for_cloud",
    ),
    "azure_gcp": (
        {"source": ["azure.defender", "gcp.scc"]},
        lambda f: f["metadata"]["product"]["uid"] in ("microsoft.defender_for_cloud", "google.scc"),
    ),
    "guardduty": ({"source": "aws.guardduty"}, lambda f: f["metadata"]["product"]["uid"] == "aws.guardduty"),
    "vulnerability": ({"class": "Vulnerability"}, lambda f: f["class_uid"] == 2002),
    "ecs": (
        {"container_service": "ECS"},
        lambda f: traits.read(f).get(traits.SERVICE) in (traits.ECS_EC2, traits.ECS_FARGATE),
    ),
    "runtime": (
        {"type": "execution:runtime/*"},
        lambda f: any(t.lower().startswith("execution:runtime/") for t in f["finding_info"].get("types") or []),
    ),
}


def test_routes_by_source_id_class_service_and_type_deliver_from_the_sample_events(tmp_path: Path) -> None:
    """End to end: each route delivers exactly its findings of tests/events to its file sink (none delivered 0)."""
    sinks = {f"file:{name}": {"path": str(tmp_path / f"{name}.jsonl")} for name in ("all", *ROUTES)}
    routes = [{"name": "all", "to": ["file:all"]}]
    routes += [{"name": name, "when": condition, "to": [f"file:{name}"]} for name, (condition, _) in ROUTES.items()]
    settings = config.parse({"store": f"sqlite:///{tmp_path / 'corral.db'}", "sinks": sinks, "routes": routes})
    pipeline = Pipeline.from_settings(settings, {})
    try:
        result = pipeline.ingest(_inbounds(EVENTS))
    finally:
        pipeline.close()

    def sent(name: str) -> list[dict[str, Any]]:
        path = tmp_path / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    everything = sent("all")
    assert everything, result.errors
    for name, (_, wanted) in ROUTES.items():
        expected = sorted(line["idempotency_key"] for line in everything if wanted(line["finding"]))
        assert expected, f"no sample event for route {name}"
        assert sorted(line["idempotency_key"] for line in sent(name)) == expected, name
