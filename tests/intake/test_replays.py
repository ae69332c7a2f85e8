"""Replays converge: any interleaving and repetition of a finding's versions ends in one state, sent once.

Versions are ordered by the source's own time; where it is missing (timeless records) or ties,
by the transport's stable order (Event Hubs enqueued time and sequence, Pub/Sub publish time,
EventBridge time), never by when Corral happened to process them.
"""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import config
from corral.pipeline import Inbound, Pipeline
from corral.stores import open_store
from corral.stores.base import FindingQuery, Store, fingerprint
from tests.core.test_pipeline import RecordingSink
from tests.intake.helpers import ROOT, event
from tests.support.permissions import loose_umask, mode  # noqa: F401  (loose_umask: the fixture)

BASE = 1_790_000_000_000  # epoch ms
Versions = list[Inbound]


def iso(ms: int) -> str:
    """An ISO 8601 UTC time with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def guardduty_versions() -> Versions:
    """A GuardDuty finding updated three times (EventBridge events, as Lambda hands them over), then reopened."""
    base = event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
    versions = []
    titles = ["first", "second", "third", "first"]  # the last brings back the first content, later: a reopen
    for n, title in enumerate(titles):
        doc = copy.deepcopy(base)
        doc["detail"]["title"] = title
        doc["detail"]["updatedAt"] = iso(BASE + n * 60_000)
        doc["detail"]["service"]["archived"] = n == 2
        doc["time"] = iso(BASE + n * 60_000)[:19] + "Z"
        doc["id"] = f"evt-{n}"
        versions.append(Inbound(doc, f"eventbridge:{n}", delivery_id=f"evt-{n}"))
    return versions


def scc_versions() -> Versions:
    """SCC notifications whose eventTime ties while the state changes: only the publish time orders them."""
    base = event("gcp/scc/crtd-reverse-shell.notification.json")
    versions = []
    for n, (state, severity) in enumerate([("ACTIVE", "HIGH"), ("ACTIVE", "CRITICAL"), ("INACTIVE", "CRITICAL")]):
        doc = copy.deepcopy(base)
        doc["finding"]["state"] = state
        doc["finding"]["severity"] = severity
        message = {
            "data": base64.b64encode(orjson.dumps(doc)).decode(),
            "messageId": f"m-{n}",
            "publishTime": iso(BASE + n * 1000),
        }
        body = orjson.dumps({"message": message, "subscription": "projects/p/subscriptions/s"})
        versions.append(Inbound(body, f"push:{n}"))
    return versions


def defender_timeless_versions() -> Versions:
    """A Defender attack path (no time of its own) changing three times: Event Hubs order stands in."""
    base = event("azure/defender/attackpath-legacy-internet-exposed-pod.json")
    versions = []
    for n, impact in enumerate(["low", "medium", "high"]):
        doc = copy.deepcopy(base)
        doc["properties"]["potentialImpact"] = impact
        versions.append(Inbound(orjson.dumps(doc), f"eventhub:{n}", received_time=BASE + n * 1000, sequence=100 + n))
    return versions


def defender_alert_versions() -> Versions:
    """A Defender alert moving Active → InProgress → Resolved, each with its own processing end time."""
    base = event("azure/defender/alert-k8s-privileged-container-aks.json")
    versions = []
    for n, status in enumerate(["Active", "InProgress", "Resolved"]):
        doc = copy.deepcopy(base)
        doc["Status"] = status
        doc["ProcessingEndTime"] = iso(BASE + n * 60_000)
        versions.append(Inbound(orjson.dumps(doc), f"eventhub:{n}", received_time=BASE + 5_000_000, sequence=n))
    return versions


KINDS: dict[str, Callable[[], Versions]] = {
    "guardduty": guardduty_versions,
    "scc-tied-times": scc_versions,
    "defender-timeless": defender_timeless_versions,
    "defender-alert": defender_alert_versions,
}


class Harness:
    """A fresh store and a recording sink routed every change."""

    def __init__(self, path: Path) -> None:
        self.store: Store = open_store(f"sqlite:///{path}")
        self.sink = RecordingSink("file:siem", "siem")
        settings = config.parse({"sinks": {self.sink.id: {}}, "routes": [{"to": [self.sink.id]}]})
        self.clock = iter(range(BASE + 10**9, BASE + 2 * 10**9, 1000))
        self.pipe = Pipeline(self.store, settings.router, {self.sink.id: self.sink}, clock=lambda: next(self.clock))

    def deliver(self, versions: Versions) -> None:
        """Ingest each delivery on its own, as separate invocations would."""
        for inbound in versions:
            result = self.pipe.ingest([inbound])
            assert result.failed == 0, result.errors

    def state(self) -> list[tuple[Any, ...]]:
        """What is stored, without what changes on every delivery."""
        items = self.store.query(FindingQuery(limit=10)).items
        return sorted((i.key, fingerprint(i.document), i.modified_time, i.status_id, i.closed) for i in items)

    def close(self) -> None:
        """Release the store."""
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[[], Harness]]:
    """Fresh harnesses, each with its own store file."""
    made: list[Harness] = []

    def make() -> Harness:
        made.append(Harness(tmp_path / f"corral-{len(made)}.db"))
        return made[-1]

    yield make
    for each in made:
        each.close()


def orders(count: int) -> st.SearchStrategy[list[int]]:
    """Every version at least once, some repeated, in any order."""
    return st.lists(st.integers(0, count - 1), max_size=3 * count).flatmap(
        lambda extra: st.permutations([*range(count), *extra])
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_interleaving_converges_and_only_the_first_pass_sends(
    kind: str, data: st.DataObject, harness: Callable[[], Harness]
) -> None:
    """In order, or shuffled with repeats: the same final state; replays after that send nothing."""
    versions = KINDS[kind]()
    reference = harness()
    reference.deliver(versions)
    expected = reference.state()

    run = harness()
    run.deliver([versions[i] for i in data.draw(orders(len(versions)), label="first pass")])
    assert run.state() == expected
    sent = len(run.sink.sent)
    assert sent >= 1
    for label in ("replay", "another replay"):
        run.deliver([versions[i] for i in data.draw(orders(len(versions)), label=label)])
        assert run.state() == expected
    assert len(run.sink.sent) == sent, "a replay sent something"


def test_tied_source_times_follow_the_publish_time(harness: Callable[[], Harness]) -> None:
    """A state change that leaves eventTime unchanged, published later, wins: the close is not stale."""
    versions = scc_versions()
    run = harness()
    run.deliver([versions[2], versions[0], versions[1]])
    [(_, _, _, _, closed)] = run.state()
    assert closed


@pytest.mark.usefixtures("loose_umask")
def test_the_demo_twice_leaves_siem_and_previews_unchanged(tmp_path: Path) -> None:
    """`make demo` run again: siem.jsonl and every preview keep the same lines; under umask 022 all are owner-only."""
    out = ROOT / "demo-out"
    names = (
        "siem.jsonl",
        "preview-slack.json",
        "preview-teams.json",
        "preview-splunk-hec.jsonl",
        "preview-syslog-cef.txt",
    )

    def run() -> dict[str, bytes]:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "demo" / "run.py")], capture_output=True, timeout=600, check=False
        )
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        return {name: (out / name).read_bytes() for name in names}

    shutil.rmtree(out, ignore_errors=True)  # generated output: start from what a first `make demo` sees
    first = run()
    assert first["siem.jsonl"].count(b"\n") > 10
    # Findings and raw vendor records: the store (with its -wal and -shm), the sink's file, the
    # report, the previews and the log are 0600, in a 0700 folder.
    written = {p.name: mode(p) for p in out.iterdir()}
    assert {*names, "corral.db", "report.html", "functions.log"} <= written.keys()
    assert written == dict.fromkeys(written, 0o600)
    assert mode(out) == 0o700
    assert run() == first
