"""Sinks that send a finding whole embed the JSON the ingest made of it: the same bytes, never a stale copy."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from corral.sinks import elastic, file, relay, splunk_hec, webhook
from corral.sinks.base import Delivery, finding_and, whole_finding
from tests.support.sinks import HOSTILE_TEXTS, make_delivery

RENDERS: dict[str, Callable[[Delivery], bytes]] = {
    "file, corral format": lambda d: file.render(d, "corral", "https://corral.example.com"),
    "file, ocsf format": lambda d: file.render(d, "ocsf"),
    "webhook": lambda d: webhook.render(d, "https://corral.example.com"),
    "relay": relay.render,
    "splunk_hec": lambda d: splunk_hec.render(d, public_url="https://corral.example.com"),
    "elastic": lambda d: elastic.render(d, "corral-findings", "https://corral.example.com"),
}
# Those that add keys of their own beside the finding's.
ADDING = ("splunk_hec", "elastic")


@pytest.mark.parametrize("render", RENDERS.values(), ids=list(RENDERS))
@pytest.mark.parametrize("text", ["plain", *HOSTILE_TEXTS, "non-characters \ufffe \uffff", "big 2**60"])
def test_the_given_json_renders_the_same_bytes(render: Callable[[Delivery], bytes], text: str) -> None:
    """With the finding's JSON given, every byte of the payload is what serializing the finding gives."""
    delivery = make_delivery("x:y", title=text, desc=text)
    if text == "big 2**60":
        delivery.finding["count"] = 2**60  # within Corral's limits, beyond OPT_STRICT_INTEGER
    given = delivery._replace(finding_json=orjson.dumps(delivery.finding))
    assert render(given) == render(delivery)


@pytest.mark.parametrize("render", RENDERS.values(), ids=list(RENDERS))
def test_the_given_json_is_what_is_sent(render: Callable[[Delivery], bytes]) -> None:
    """The payload embeds the given bytes rather than serializing the finding again."""
    delivery = make_delivery("x:y", title="as stored")
    marked = orjson.dumps({**delivery.finding, "marker": "from the ingest"})
    assert b'"marker":"from the ingest"' in render(delivery._replace(finding_json=marked))
    assert b"marker" not in render(delivery)


@pytest.mark.parametrize("name", ADDING)
@pytest.mark.parametrize("key", ["corral_idempotency_key", "corral_change", "corral_url", "@timestamp", "corral"])
def test_a_key_the_finding_has_already_is_never_sent_twice(name: str, key: str) -> None:
    """A (relayed) finding carrying one of the sink's own keys gets it replaced, as without the JSON."""
    delivery = make_delivery("x:y")
    delivery.finding[key] = "from the vendor"
    given = delivery._replace(finding_json=orjson.dumps(delivery.finding))
    render = RENDERS[name]
    assert render(given) == render(delivery)
    assert render(given).count(orjson.dumps(key) + b":") == 1


def test_an_empty_finding_takes_the_keys_alone() -> None:
    """`{}` has no member to append after: the merged dict is sent."""
    delivery = Delivery("x:y", "k", "new", {}, finding_json=b"{}")
    assert orjson.dumps(finding_and(delivery, {"a": 1})) == b'{"a":1}'


def test_whole_finding_is_the_finding_without_json() -> None:
    """No JSON given: the finding itself, serialized by whoever dumps the payload."""
    delivery = make_delivery("x:y")
    assert whole_finding(delivery) is delivery.finding
