"""Retention: closed findings expire after `[retention] closed_days`; open ones never do."""

from __future__ import annotations

from pathlib import Path

from corral import config
from corral.pipeline import Inbound, Pipeline
from corral.stores.base import FindingQuery

GUARDDUTY = Path(__file__).resolve().parents[1] / "events" / "aws" / "guardduty"
DAY = 86_400_000
T0 = 1_767_225_600_000


def test_closed_findings_expire_after_the_retention_and_open_ones_stay(tmp_path: Path) -> None:
    """An archived finding last seen two days ago expires with closed_days = 1; an open one stays."""
    now = [T0]
    settings = config.parse({"store": f"sqlite:///{tmp_path / 'c.db'}", "retention": {"closed_days": 1}}, "t")
    pipeline = Pipeline.from_settings(settings, {})
    pipeline.clock = lambda: now[0]
    try:
        closed = GUARDDUTY / "eks-runtime-newbinaryexecuted-archived.json"
        still_open = GUARDDUTY / "eks-audit-privilegedcontainer.json"
        counts = pipeline.ingest([Inbound(p.read_bytes(), p.name) for p in (closed, still_open)]).counts
        assert (counts["new"], counts["failed"]) == (2, 0)
        assert pipeline.expire() == 0
        now[0] = T0 + 2 * DAY
        assert pipeline.expire() == 1
        left = pipeline.store.query(FindingQuery()).items
        assert [item.closed for item in left] == [False]
    finally:
        pipeline.close()


def test_without_retention_nothing_expires(tmp_path: Path) -> None:
    """With no [retention] table, expire() deletes nothing, however old."""
    pipeline = Pipeline.from_settings(config.parse({"store": f"sqlite:///{tmp_path / 'c.db'}"}, "t"), {})
    try:
        pipeline.ingest([Inbound((GUARDDUTY / "eks-runtime-newbinaryexecuted-archived.json").read_bytes(), "x")])
        pipeline.clock = lambda: T0 + 10_000 * DAY
        assert pipeline.expire() == 0
    finally:
        pipeline.close()
