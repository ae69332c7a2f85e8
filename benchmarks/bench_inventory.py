"""The image inventory's cost on ingest: the same findings through the pipeline with and without it.

N GuardDuty EKS Runtime findings, each naming its own image digest and pod (so that every one
writes a name and a sighting: the inventory's worst case), and every tenth a Defender running-image
Vulnerability Finding of one of those digests (so that priorities are computed against stored
evidence), ingested into a fresh SQLite store. Runs alternate with and without the inventory;
the ratio of the medians is the cost (goal <= 1.15x). The same ratio in CPU time is printed beside
it: on a shared machine it moves less with what else runs.

A second line measures a fleet as it usually is: the same findings share 300 images run by 900
workloads, each finding seen a second after the one before and the last one now, so that most
sightings refresh a row inside the priority window instead of adding one. It is shown for
context; the goal is the worst case.
"""

from __future__ import annotations

import copy
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from corral import ocsf
from corral.pipeline import Inbound, Pipeline
from corral.prioritize import Prepared, Prioritizer
from corral.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
RUNTIME = EVENTS / "aws" / "guardduty" / "eks-runtime-newbinaryexecuted-eventbridge.json"
VULNERABILITY = EVENTS / "azure" / "defender" / "subassessment-runtime-image-cve.camelcase.json"
FINDINGS = 6_000
ROUNDS = 5
GOAL = 1.15
FLEET_IMAGES = 300


class WithoutInventory(Prioritizer):
    """The pipeline as it was before the inventory: findings go to the store as they are."""

    def prepare(self, findings: Sequence[ocsf.Finding], now: int) -> Prepared:
        """Record nothing, prioritize nothing."""
        return Prepared(list(findings), self, now)


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _seen(start: datetime, n: int) -> str:
    """The n-th finding's time: a second after the one before."""
    return (start + timedelta(seconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deliveries(count: int, images: int | None = None) -> list[Any]:
    """`count` parsed deliveries: runtime findings, every tenth a CVE of the image before it.

    Each runtime finding has its own digest and pod, or, with `images`, one of that many digests
    run by three times as many workloads. The last is seen now: the evidence is inside the
    priority window, as a live fleet's is.
    """
    start = datetime.now(UTC) - timedelta(seconds=count)
    runtime = json.loads(RUNTIME.read_text())
    vulnerability = json.loads(VULNERABILITY.read_text())
    found: list[Any] = []
    for n in range(count):
        image = n if images is None else n % images
        if n % 10 == 9:
            doc = copy.deepcopy(vulnerability)
            doc["id"] = doc["id"][:-12] + f"{n:012x}"
            doc["properties"]["additionalData"]["artifactDetails"]["digest"] = _digest(image - 1)
        else:
            doc = copy.deepcopy(runtime)
            detail = doc["detail"]
            detail["id"] = detail["id"][:-8] + f"{n:08x}"
            detail["arn"] = detail["arn"].rsplit("/", 1)[0] + "/" + detail["id"]
            detail["updatedAt"] = detail["service"]["eventLastSeen"] = _seen(start, n)
            kubernetes = detail["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
            kubernetes["name"] = f"web-{n if images is None else n % (3 * images):08x}"
            repository = f"111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/web-{image % 97}"
            kubernetes["containers"][0]["image"] = f"{repository}:1@{_digest(image)}"
        found.append(doc)
    return found


def _run(docs: list[Any], *, inventory: bool, tmp: Path, label: str) -> tuple[float, float]:
    """Seconds (wall, CPU) of one ingest of `docs` into a fresh store."""
    store = open_store(f"sqlite:///{tmp}/{label}.db")
    pipeline = Pipeline(store)
    if not inventory:
        pipeline.prioritizer = WithoutInventory(store, pipeline.settings.priority, pipeline.clock)
    inbound = [Inbound(copy.deepcopy(doc), f"bench#{n}") for n, doc in enumerate(docs)]
    start, cpu = time.perf_counter(), time.process_time()
    result = pipeline.ingest(inbound)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    pipeline.close()
    if result.counts["new"] != len(docs):
        raise SystemExit(f"bench_inventory: expected {len(docs)} new findings, got {result.summary()}")
    return elapsed, cpu


def main() -> list[str]:
    """The worst case and a usual fleet; print and return a line each."""
    return [
        _compare(deliveries(FINDINGS), f"ingest of {FINDINGS:,} findings", f"(goal <= {GOAL}x)"),
        _compare(
            deliveries(FINDINGS, FLEET_IMAGES),
            f"the same over {FLEET_IMAGES} images",
            "(a usual fleet; for context)",
        ),
    ]


def _compare(docs: list[Any], label: str, goal: str) -> str:
    """Alternate runs with and without the inventory; print and return the ratio of the medians."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(ROUNDS):
            for inventory in (False, True):
                run = f"{'with' if inventory else 'without'}-{round_}"
                elapsed, spent = _run(docs, inventory=inventory, tmp=Path(tmp), label=run)
                timings[inventory].append(elapsed)
                cpu[inventory].append(spent)
    without, with_ = statistics.median(timings[False]), statistics.median(timings[True])
    ratio = with_ / without
    cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    line = (
        f"inventory: {label:<32} {len(docs) / with_:7,.0f}/s with the image inventory, "
        f"{len(docs) / without:7,.0f}/s without; ratio {ratio:5.3f}x {goal}  (CPU time {cpu_ratio:5.3f}x)"
    )
    print(line, flush=True)
    return line


if __name__ == "__main__":
    main()
