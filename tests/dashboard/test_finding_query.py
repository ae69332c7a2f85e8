"""`finding_query`: each API parameter sets its own filter, and an empty one sets none."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from corral.dashboard.server import BadRequestError, finding_query
from corral.stores.base import FindingQuery

CASES = [
    ("", FindingQuery()),
    ("cloud=gcp", FindingQuery(cloud="GCP")),
    ("account=1111", FindingQuery(account="1111")),
    ("severity_at_least=high", FindingQuery(severity_at_least=4)),
    ("severity_at_least=5", FindingQuery(severity_at_least=5)),
    ("status_id=2", FindingQuery(status_id=2)),
    ("open=true", FindingQuery(open_only=True)),
    ("open=1", FindingQuery(open_only=True)),
    ("open=no", FindingQuery()),
    ("class_uid=2004", FindingQuery(class_uid=2004)),
    ("type=Execution:*", FindingQuery(finding_type="Execution:*")),
    ("container_service=Azure Function Apps", FindingQuery(container_service="Azure Function Apps")),
    ("cluster=prod-*", FindingQuery(cluster="prod-*")),
    ("namespace=shop", FindingQuery(namespace="shop")),
    ("image=nginx", FindingQuery(image="nginx")),
    ("source=aws.guardduty", FindingQuery(source="aws.guardduty")),
    ("q=kinsing", FindingQuery(text="kinsing")),
    ("trait=layer:Workload", FindingQuery(trait=("layer", "Workload"))),
    ("since=5&until=9", FindingQuery(since=5, until=9)),
    ("limit=7", FindingQuery(limit=7)),
    ("cursor=abc", FindingQuery(cursor="abc")),
    # The last value of a repeated parameter wins; empty values and unknown names set nothing.
    ("cloud=AWS&cloud=azure", FindingQuery(cloud="Azure")),
    ("cloud=&account=&limit=&q=&open=&trait=", FindingQuery()),
    ("colour=blue&cloud=AWS", FindingQuery(cloud="AWS")),
    (
        "cloud=aws&namespace=shop&severity_at_least=critical&open=true&limit=3",
        FindingQuery(cloud="AWS", namespace="shop", severity_at_least=5, open_only=True, limit=3),
    ),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_each_parameter_sets_its_filter(query: str, expected: FindingQuery) -> None:
    """Every filter of the list endpoint, alone and together, and the ones that set nothing."""
    assert finding_query(parse_qs(query, keep_blank_values=True)) == expected


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "limit: expected a whole number from 1 to 500"),
        ("status_id=x", "status_id: expected a whole number from 0 to 99"),
        ("severity_at_least=catastrophic", "severity_at_least: unknown severity 'catastrophic'"),
        ("cloud=amazon", "cloud: unknown cloud 'amazon'"),
        ("trait=layer", "trait: expected name:value"),
        ("account=" + "a" * 5000, "account: longer than"),
    ],
)
def test_a_bad_parameter_names_itself(query: str, reason: str) -> None:
    """A bad value is refused with the parameter's name and why."""
    with pytest.raises(BadRequestError) as raised:
        finding_query(parse_qs(query))
    assert str(raised.value).startswith(reason)
