"""The change rules every store shares: `decide()` over snapshots of two versions."""

from __future__ import annotations

import itertools

import pytest

from corral.stores.base import Snapshot, decide

T = 1_767_225_600_000


def snap(fp: str, *, t: int = T, severity: int = 3, closed: bool = False) -> Snapshot:
    """A snapshot with only what decide() reads."""
    return Snapshot(modified_time=t, fingerprint=fp, severity_id=severity, status_id=4 if closed else 1, closed=closed)


@pytest.mark.parametrize("order", list(itertools.permutations(["a" * 64, "b" * 64, "c" * 64])))
def test_versions_with_the_same_time_converge_whatever_the_arrival_order(order: tuple[str, ...]) -> None:
    """Of versions claiming one time, the greatest fingerprint wins, and replaying them changes nothing."""
    stored: Snapshot | None = None
    for fp in order:
        incoming = snap(fp)
        if decide(stored, incoming) not in ("stale", "unchanged"):
            stored = incoming
    assert stored is not None and stored.fingerprint == max(order)
    for fp in order:
        assert decide(stored, snap(fp)) in ("stale", "unchanged")


def test_a_close_with_the_same_content_is_a_change() -> None:
    """A version that only closes the finding (same fingerprint) is `closed`, not `unchanged`."""
    assert decide(snap("a"), snap("a", t=T + 1, closed=True)) == "closed"
    assert decide(snap("a"), snap("a", t=T + 1)) == "unchanged"


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (snap("a", closed=True), snap("b", t=T + 1), "reopened"),
        (snap("a"), snap("b", t=T + 1, closed=True), "closed"),
        (snap("a", severity=3), snap("b", t=T + 1, severity=5), "escalated"),
        (snap("a", severity=5), snap("b", t=T + 1, severity=2), "deescalated"),
        (snap("a", severity=0), snap("b", t=T + 1, severity=5), "updated"),
        (snap("b"), snap("a", t=T - 1), "stale"),
    ],
)
def test_change_kinds_by_precedence(before: Snapshot, after: Snapshot, kind: str) -> None:
    """Reopened, closed, escalated, deescalated, else updated; older is stale; unknown severity has no order."""
    assert decide(before, after) == kind
