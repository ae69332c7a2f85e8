"""One record never takes its batch down: whatever fails for it, at whichever stage, is its own dead letter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import config, ocsf
from corral.context import ContainerContext
from corral.errors import PermanentError
from corral.normalize import normalize
from corral.pipeline import Inbound, Pipeline
from corral.routing import Router
from corral.stores import open_store
from corral.stores.base import Change, FindingQuery, Store, Suppression
from corral.stores.sqlite import SqliteStore
from tests.intake.helpers import guardduty, nested, scc_notification

NOW = 1_800_000_000_000
CORRAL = [sys.executable, "-m", "corral.cli.__main__"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    opened = open_store(f"sqlite:///{tmp_path}/corral.db")
    opened.migrate()
    yield opened
    opened.close()


def run(store: Store, *bodies: bytes, router: Router | None = None) -> Any:
    """Ingest each body as one delivery."""
    pipe = Pipeline(store, router, clock=lambda: NOW)
    return pipe.ingest([Inbound(body, f"in#{n}") for n, body in enumerate(bodies, start=1)])


def stored_uids(store: Store) -> set[str]:
    """The finding uids in the store."""
    return {item.key[2] for item in store.query(FindingQuery(limit=1000)).items}


def test_a_vendor_field_254_levels_deep_costs_only_its_record(store: Store) -> None:
    """The issue's 1.3 KB input: that record is dead-lettered with Corral's own limit; the others are stored."""
    deep = guardduty("deep")
    deep["service"]["additionalInfo"] = {"value": nested(254), "type": "default"}
    good = [guardduty(f"good-{n}") for n in range(3)]
    result = run(store, *(json.dumps(f).encode() for f in (good[0], deep, good[1], good[2])))
    assert result.counts["new"] == 3
    assert result.failed == 1
    assert len(stored_uids(store)) == 3
    [letter] = store.dead_letters()
    assert "levels deep" in letter.reason
    assert letter.raw == json.dumps(deep).encode()


def test_an_scc_pid_of_1e300_costs_only_its_record(store: Store) -> None:
    """A float pid far beyond 64 bits: a dead letter naming the range; the good notification is stored."""
    bad = orjson.dumps(scc_notification(1e300))
    good = orjson.dumps(scc_notification(77))
    result = run(store, bad, good)
    assert (result.counts["new"], result.failed) == (1, 1)
    [letter] = store.dead_letters()
    assert "64-bit range" in letter.reason
    assert letter.raw == bad


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_refused_with_a_reason(value: int, store: Store) -> None:
    """Integers that Python's parser (Lambda's) keeps exactly but stores cannot: the record's own failure."""
    big = guardduty("big")
    big["service"]["additionalInfo"] = {"value": {"n": value}, "type": "default"}
    pipe = Pipeline(store, clock=lambda: NOW)
    result = pipe.ingest([Inbound(big, "lambda"), Inbound(guardduty("ok"), "lambda")])
    assert result.counts["new"] == 1
    assert result.failed == 1
    [letter] = store.dead_letters()
    assert "64-bit range" in letter.reason
    assert str(value).encode() in letter.raw


class RefusingStore(SqliteStore):
    """A real SQLite store that refuses one finding uid in `upsert`, as a backend refuses a bad row."""

    refuse = "poison"

    def upsert(
        self,
        findings: Sequence[ocsf.Finding],
        *,
        now: int,
        documents: Sequence[bytes | None] = (),
        contexts: Sequence[ContainerContext | None] = (),
    ) -> list[Change]:
        """Refuse any batch holding the poison finding; store the rest."""
        if any(f["finding_info"]["uid"].endswith(self.refuse) for f in findings):
            raise ValueError("the backend refused this row")
        return super().upsert(findings, now=now, documents=documents, contexts=contexts)


def test_a_store_refusing_one_finding_costs_only_that_finding(tmp_path: Path) -> None:
    """The batch is retried one by one; only the refused finding is dead-lettered, with the stage in its reason."""
    store = RefusingStore(f"sqlite:///{tmp_path}/corral.db")
    store.migrate()
    try:
        bodies = [orjson.dumps(guardduty(uid)) for uid in ("a", "poison", "b", "c")]
        result = run(store, *bodies)
        assert (result.counts["new"], result.failed) == (3, 1)
        [letter] = store.dead_letters()
        assert letter.reason.startswith("failed while storing: ValueError")
        assert letter.raw == bodies[1]
    finally:
        store.close()


class RaisingRouter(Router):
    """A router whose suppression check fails on one finding, as a broken rule would."""

    def suppression(self, finding: ocsf.Finding, now: int) -> Suppression | None:
        """Fail for the poison finding only."""
        if finding["finding_info"]["uid"].endswith("poison"):
            raise KeyError("rule")
        return super().suppression(finding, now)


def test_a_routing_failure_costs_only_that_record(store: Store) -> None:
    """Routing one record fails: it is dead-lettered, the others are routed and counted."""
    bodies = [orjson.dumps(guardduty(uid)) for uid in ("a", "poison", "b")]
    result = run(store, *bodies, router=RaisingRouter(config.parse({}).router.routes))
    assert (result.counts["new"], result.failed) == (2, 1)
    [letter] = store.dead_letters()
    assert letter.reason.startswith("failed while routing: KeyError")
    assert letter.raw == bodies[1]


@pytest.mark.parametrize("detail", [[1, 2], "text", None])
def test_an_eventbridge_detail_that_is_not_an_object_is_a_dead_letter(detail: object, store: Store) -> None:
    """Lists and strings where the detail object belongs: one dead letter, nothing raised."""
    event = {"version": "0", "id": "e", "detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": detail}
    result = run(store, orjson.dumps(event), orjson.dumps(guardduty("ok")))
    assert (result.counts["new"], result.failed) == (1, 1)


def test_the_cli_prints_one_line_per_failure_and_no_traceback(tmp_path: Path) -> None:
    """`corral ingest` over a file of mixed records: good ones stored, each bad one named on its own line."""
    deep = guardduty("deep")
    deep["service"]["additionalInfo"] = {"value": nested(300)}
    lines = [orjson.dumps(guardduty("a")), json.dumps(deep).encode(), orjson.dumps(scc_notification(1e300))]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([*lines, orjson.dumps(guardduty("b"))]) + b"\n")
    proc = subprocess.run(
        [*CORRAL, "ingest", "--json", "--store", f"sqlite:///{tmp_path}/c.db", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CORRAL_CONFIG": ""},
    )
    assert "Traceback" not in proc.stderr
    counts = json.loads(proc.stdout)
    assert (counts["new"], counts["failed"]) == (2, 2)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("corral: error:")]
    assert len(errors) == 2
    assert f"{path}#2" in errors[0]
    assert f"{path}#3" in errors[1]


@pytest.mark.parametrize("value", [nested(300), 2**70, -(2**64)])
def test_the_store_refuses_what_is_beyond_the_limits_with_corrals_reason(value: object, store: Store) -> None:
    """Called directly, the store's fingerprint names Corral's limit instead of raising orjson's TypeError."""
    finding = run_normalized(guardduty("direct"))
    finding["unmapped"] = {"deep": value}
    with pytest.raises(PermanentError, match="finding cannot be stored"):
        store.upsert([finding], now=NOW)


def run_normalized(doc: dict[str, Any]) -> ocsf.Finding:
    """The OCSF finding a GuardDuty document normalizes to."""
    [outcome] = list(normalize(doc))
    assert outcome.finding is not None
    return dict(outcome.finding)
