"""Shared inputs for the intake tests: real fixtures, made hostile in one place each."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"


def event(relative: str) -> Any:
    """Parse one fixture under tests/events/."""
    return json.loads((EVENTS / relative).read_text())


def guardduty(uid: str = "f-1") -> dict[str, Any]:
    """A GuardDuty finding (the EventBridge fixture's detail) with its own id."""
    finding = copy.deepcopy(event("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")["detail"])
    finding["id"] = uid
    finding["arn"] = finding["arn"].rsplit("/", 1)[0] + f"/{uid}"
    return dict(finding)


def nested(depth: int, leaf: object = "x") -> object:
    """A value `depth` levels of objects deep."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def scc_notification(pid: object) -> dict[str, Any]:
    """An SCC notification whose first process has the given pid."""
    notification = copy.deepcopy(event("gcp/scc/crtd-reverse-shell.notification.json"))
    notification["finding"]["processes"][0]["pid"] = pid
    return dict(notification)


NOT_RECORDS = frozenset({"suppressed", "reprioritized"})
"""Summary counts that are not records of the input: a subset of the stored ones, and other findings."""


def records(summary: dict[str, Any]) -> int:
    """Records a summary accounts for: every change kind, signals, skipped and failed."""
    return sum(v for k, v in summary.items() if isinstance(v, int) and k not in NOT_RECORDS)
