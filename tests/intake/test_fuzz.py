"""Structure mutations through the CLI and every entry point: nothing escapes, nothing is lost.

Real fixtures are mutated at one place each: nesting 1 to 1,000 levels deep, integers beyond
64 bits, floats at the limits, lists, strings and scalars where objects belong. Every input is
accounted for: stored (any change kind) + dead-lettered + skipped = records in, per delivery.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import orjson
import pytest
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.pipeline import IngestResult
from tests.functions.conftest import import_entry
from tests.functions.test_aws import LambdaContext, lambda_env, sqs_event
from tests.functions.test_azure import Context, Out, RetryContext, azure_env, user_function
from tests.intake.helpers import ROOT, event, records

CORRAL = [sys.executable, "-m", "corral.cli.__main__"]
SENTINEL = "\u0000corral-mutation\u0000"
BASES: dict[str, Any] = {
    "guardduty": event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")["detail"],
    "guardduty-eventbridge": event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json"),
    "scc": event("gcp/scc/crtd-reverse-shell.notification.json"),
    "defender-alert": event("azure/defender/alert-k8s-privileged-container-aks.json"),
    "defender-attackpath": event("azure/defender/attackpath-legacy-internet-exposed-pod.json"),
    "defender-assessment": event("azure/defender/assessment-aks-authorized-ip-ranges.unhealthy.json"),
}
LIMIT_FLOATS = [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -5e-324, 2.2250738585072014e-308, -0.0]


def places(doc: object) -> list[tuple[str | int, ...]]:
    """Every place below the top level of a document, as paths."""
    found: list[tuple[str | int, ...]] = []
    stack: list[tuple[object, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            found.append((*path, key))
            stack.append((child, (*path, key)))
    return sorted(found, key=str)


@dataclass(frozen=True)
class Mutation:
    """What to put where: a kind and its argument."""

    base: str
    place: int
    kind: str
    arg: Any

    def target(self) -> tuple[str | int, ...]:
        """The path the mutation replaces."""
        paths = places(BASES[self.base])
        return paths[self.place % len(paths)]

    def value(self) -> object:
        """The replacement as a Python value (nesting built iteratively, whatever its depth)."""
        if self.kind == "nest":
            depth, container = self.arg
            nested: object = 1
            for _ in range(depth):
                nested = [nested] if container == "list" else {"a": nested}
            return nested
        return self.arg

    def document(self) -> Any:
        """The mutated document, as a Python value (what Lambda or Azure hands over parsed)."""
        doc = copy.deepcopy(BASES[self.base])
        *parents, last = self.target()
        holder = doc
        for step in parents:
            holder = holder[step]
        holder[last] = self.value()
        return doc

    def text(self) -> bytes:
        """The mutated document as JSON text; deep nesting is written out, not serialized recursively."""
        doc = copy.deepcopy(BASES[self.base])
        *parents, last = self.target()
        holder = doc
        for step in parents:
            holder = holder[step]
        if self.kind == "nest":
            holder[last] = SENTINEL
            depth, container = self.arg
            inner = ("[" * depth + "1" + "]" * depth) if container == "list" else ('{"a":' * depth + "1" + "}" * depth)
            return json.dumps(doc).replace(json.dumps(SENTINEL), inner).encode()
        if self.kind == "raw":
            holder[last] = SENTINEL
            return json.dumps(doc).replace(json.dumps(SENTINEL), self.arg).encode()
        holder[last] = self.arg
        return json.dumps(doc).encode()


MUTATIONS = st.builds(
    Mutation,
    base=st.sampled_from(sorted(BASES)),
    place=st.integers(0, 10_000),
    kind=st.sampled_from(["nest", "int", "float", "swap", "raw"]),
    arg=st.none(),
).flatmap(
    lambda m: st.builds(
        Mutation,
        base=st.just(m.base),
        place=st.just(m.place),
        kind=st.just(m.kind),
        arg={
            "nest": st.tuples(st.integers(1, 1000), st.sampled_from(["list", "dict"])),
            "int": st.one_of(st.integers(2**63, 2**200), st.integers(-(2**200), -(2**63) - 1)),
            "float": st.sampled_from(LIMIT_FLOATS),
            "swap": st.sampled_from([[], [1, "x"], "text", "", 0, -1, None, True, {}]),
            "raw": st.sampled_from(["1e400", "-1e400", "1" * 400, "0.1e-400", "123456789012345678901234567890"]),
        }[m.kind],
    )
)
"""One mutation of one fixture (`raw`: JSON text no parser turns into a finite 64-bit value)."""


def total(result: IngestResult) -> int:
    """Records accounted for: every change kind, signals, skipped and failed."""
    return records(result.summary())


class Recorder:
    """Keeps what each call of an entry point's pipeline returned (the entry point calls the real one)."""

    def __init__(self, *modules: ModuleType) -> None:
        self.results: list[IngestResult] = []
        for module in modules:
            module.PIPELINE.ingest = self._observed(module.PIPELINE.ingest)

    def _observed(self, real: Callable[..., IngestResult]) -> Callable[..., IngestResult]:
        def ingest(*args: Any, **kwargs: Any) -> IngestResult:
            result = real(*args, **kwargs)
            self.results.append(result)
            return result

        return ingest

    def take(self) -> list[IngestResult]:
        """The results since the last call."""
        taken, self.results = self.results, []
        return taken


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store URL in a fresh folder."""
    return f"sqlite:///{tmp_path}/corral.db"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[tuple[ModuleType, Recorder]]:
    """handler.py after a cold start, its pipeline observed."""
    lambda_env(monkeypatch, sqlite_url)
    module = import_entry(ROOT / "functions" / "aws" / "handler.py")
    yield module, Recorder(module)
    module.PIPELINE.close()


@FUZZ
@given(mutation=MUTATIONS)
def test_lambda_eventbridge(aws: tuple[ModuleType, Recorder], mutation: Mutation) -> None:
    """One event per invocation, its detail mutated (Lambda hands over parsed JSON): one record, accounted for."""
    handler, recorder = aws
    detail = mutation.document() if mutation.base != "guardduty-eventbridge" else mutation.document()["detail"]
    wrapper = copy.deepcopy(BASES["guardduty-eventbridge"])
    wrapper["detail"] = detail
    summary = handler.eventbridge(wrapper, LambdaContext())
    [result] = recorder.take()
    assert total(result) == 1
    assert records(summary) == 1


@pytest.mark.parametrize("event_value", [[], [1, 2], "text", "", 3, None, {"detail": "x"}])
def test_lambda_eventbridge_events_that_are_not_objects(aws: tuple[ModuleType, Recorder], event_value: object) -> None:
    """A list, a string or a scalar where the event belongs: dead letters, never AttributeError."""
    handler, recorder = aws
    handler.eventbridge(event_value, LambdaContext())
    [result] = recorder.take()
    expected = len(event_value) if isinstance(event_value, list) else 1
    assert total(result) == expected
    assert result.failed == expected


@FUZZ
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=5))
def test_lambda_sqs(aws: tuple[ModuleType, Recorder], mutations: list[Mutation]) -> None:
    """An SQS batch of mutated bodies: no record is reported failed (no poison), each is accounted for."""
    handler, recorder = aws
    response = handler.guardduty_batch(sqs_event([m.text().decode() for m in mutations]), LambdaContext())
    assert response["batchItemFailures"] == []
    results = recorder.take()
    assert [total(r) for r in results] == [1] * len(mutations)


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[tuple[Callable[..., Any], Recorder]]:
    """The Event Hubs-triggered function, after a cold start, its pipeline observed."""
    azure_env(monkeypatch, sqlite_url)
    module = import_entry(ROOT / "functions" / "azure" / "function_app.py")
    yield user_function(module, "defender_findings"), Recorder(module)
    module.PIPELINE.close()


@FUZZ
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=5), as_array=st.booleans())
def test_azure_event_hubs(
    azure: tuple[Callable[..., Any], Recorder], mutations: list[Mutation], as_array: bool
) -> None:
    """An Event Hubs batch of mutated bodies (or one body holding them as a JSON array): all accounted for."""
    trigger, recorder = azure
    texts = [m.text() for m in mutations]
    bodies = [b"[" + b",".join(texts) + b"]"] if as_array else texts
    events = [func.EventHubEvent(body=body, sequence_number=n, offset=str(n)) for n, body in enumerate(bodies)]
    kept = Out()
    trigger(events=events, kept=kept, context=Context(RetryContext(0, 5)))
    assert kept.get() is None
    [result] = recorder.take()
    # A body that does not parse (a number beyond what JSON parsers take) is one record, whole.
    parses = [_parses(body) for body in bodies]
    expected = sum(len(mutations) if as_array and ok else 1 for ok in parses)
    assert total(result) == expected


def _parses(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[tuple[Any, Any, Recorder]]:
    """The functions-framework apps of the push and CloudEvent targets (one module), its pipeline observed."""
    for name, value in {
        "K_SERVICE": "corral-scc",
        "CORRAL_STORE": sqlite_url,
        "CORRAL_CONFIG": "",
        "CORRAL_ALLOW_LOCAL_STORE": "1",
        "CORRAL_PUSH_VERIFY": "off",
    }.items():
        monkeypatch.setenv(name, value)
    source = str(ROOT / "functions" / "gcp" / "main.py")
    # Each target loads main.py afresh, as each Cloud Run service would.
    push = create_app("scc_push", source, "http").test_client()
    push_module = sys.modules["main"]
    cloudevent = create_app("scc_findings", source, "cloudevent").test_client()
    cloudevent_module = sys.modules["main"]
    yield push, cloudevent, Recorder(push_module, cloudevent_module)
    push_module.PIPELINE.close()
    cloudevent_module.PIPELINE.close()


@FUZZ
@given(mutation=MUTATIONS, as_cloudevent=st.booleans())
def test_gcp_push_and_cloudevent(gcp: tuple[Any, Any, Recorder], mutation: Mutation, as_cloudevent: bool) -> None:
    """A mutated notification through Pub/Sub push or Eventarc: 2xx, never 500, one record accounted for."""
    push, cloudevent, recorder = gcp
    message = {
        "data": base64.b64encode(mutation.text()).decode(),
        "messageId": str(uuid.uuid4()),
        "publishTime": "2026-11-01T00:00:00.123Z",
    }
    body = {"message": message, "subscription": "projects/p/subscriptions/scc"}
    if as_cloudevent:
        envelope = {
            "specversion": "1.0",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/scc",
            "id": message["messageId"],
            "datacontenttype": "application/json",
            "data": body,
        }
        response = cloudevent.post("/", json=envelope, headers={"Content-Type": "application/cloudevents+json"})
    else:
        response = push.post("/", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert 200 <= response.status_code < 300, response.data[:500]
    [result] = recorder.take()
    assert total(result) == 1


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=8))
def test_cli(tmp_path_factory: pytest.TempPathFactory, mutations: list[Mutation]) -> None:
    """`corral ingest` over a JSON-lines file of mutated documents: exit without a traceback, every line counted."""
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "mutated.jsonl"
    path.write_bytes(b"\n".join(m.text() for m in mutations) + b"\n")
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{folder}/c.db", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert records(summary) == len(mutations)


def deep(depth: int) -> Mutation:
    """A GuardDuty finding whose vendor field `service.additionalInfo.value` is `depth` levels deep."""
    path = ("service", "additionalInfo")
    place = places(BASES["guardduty"]).index(path) if path in places(BASES["guardduty"]) else 0
    return Mutation("guardduty", place, "nest", (depth, "dict" if depth % 2 else "list"))


DEPTHS = range(1, 1001)


def test_every_depth_through_the_cli(tmp_path: Path) -> None:
    """One line per depth from 1 to 1,000: every line counted, no traceback."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"\n".join(deep(d).text() for d in DEPTHS) + b"\n")
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{tmp_path}/c.db", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert records(summary) == len(DEPTHS)
    assert summary["failed"] > 0
    assert summary["new"] + summary["updated"] + summary["unchanged"] + summary["stale"] > 0


def test_every_depth_through_lambda(aws: tuple[ModuleType, Recorder]) -> None:
    """EventBridge (parsed events) and SQS (text bodies) at every depth: every record accounted for."""
    handler, recorder = aws
    for d in DEPTHS:
        wrapper = copy.deepcopy(BASES["guardduty-eventbridge"])
        wrapper["detail"] = deep(d).document()
        handler.eventbridge(wrapper, LambdaContext())
    for start in range(1, 1001, 10):
        response = handler.guardduty_batch(
            sqs_event([deep(d).text().decode() for d in range(start, start + 10)]), LambdaContext()
        )
        assert response["batchItemFailures"] == []
    results = recorder.take()
    assert [total(r) for r in results] == [1] * (2 * len(DEPTHS))


def test_every_depth_through_azure(azure: tuple[Callable[..., Any], Recorder]) -> None:
    """One Event Hubs batch of 1,000 events, one per depth: all accounted for, nothing kept for retry."""
    trigger, recorder = azure
    events = [func.EventHubEvent(body=deep(d).text(), sequence_number=d, offset=str(d)) for d in DEPTHS]
    kept = Out()
    trigger(events=events, kept=kept, context=Context(RetryContext(0, 5)))
    assert kept.get() is None
    [result] = recorder.take()
    assert total(result) == len(DEPTHS)


def test_every_depth_through_gcp(gcp: tuple[Any, Any, Recorder]) -> None:
    """Push and CloudEvent at every depth: 2xx each (no poison message), one record each."""
    push, cloudevent, recorder = gcp
    for d in DEPTHS:
        message = {"data": base64.b64encode(deep(d).text()).decode(), "messageId": f"m-{d}"}
        body = {"message": message, "subscription": "projects/p/subscriptions/scc"}
        if d % 2:
            response = push.post("/", data=json.dumps(body), headers={"Content-Type": "application/json"})
        else:
            envelope = {
                "specversion": "1.0",
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": "//pubsub.googleapis.com/projects/p/topics/scc",
                "id": f"m-{d}",
                "data": body,
            }
            response = cloudevent.post("/", json=envelope, headers={"Content-Type": "application/cloudevents+json"})
        assert 200 <= response.status_code < 300, (d, response.data[:300])
    assert [total(r) for r in recorder.take()] == [1] * len(DEPTHS)
