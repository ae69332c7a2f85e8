"""The change rules every store shares: `decide()` over snapshots of two versions."""

from __future__ import annotations

import itertools

import pytest

from corral.stores.base import FUTURE_ALLOWANCE_MS, TIMELESS_LABEL, Snapshot, decide, remember

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


def _dated(modified: int, *labels: str) -> dict[str, object]:
    """The fields of a finding `Snapshot.of` reads (its fingerprint is given)."""
    info = {"modified_time": modified}
    return {"time": modified, "severity_id": 3, "finding_info": info, "metadata": {"labels": list(labels)}}


@pytest.mark.parametrize(
    ("modified", "order", "timeless"),
    [
        (T - 1, T - 1, False),
        (T + FUTURE_ALLOWANCE_MS, T + FUTURE_ALLOWANCE_MS, False),
        (T + FUTURE_ALLOWANCE_MS + 1, T + FUTURE_ALLOWANCE_MS, True),
        (4_070_908_800_000, T + FUTURE_ALLOWANCE_MS, True),
    ],
)
def test_a_time_past_the_arrival_orders_as_the_arrival_plus_the_allowance(
    modified: int, order: int, timeless: bool
) -> None:
    """Ordinary skew orders as the source says; a time beyond the allowance is capped and counts as timeless."""
    snapshot = Snapshot.of(_dated(modified), "a" * 64, now=T)
    assert (snapshot.modified_time, snapshot.timeless) == (order, timeless)


def test_a_stored_document_read_back_keeps_its_time() -> None:
    """With no arrival (`now=None`) nothing is capped; the transport's label still marks a timeless record."""
    assert Snapshot.of(_dated(4_070_908_800_000), "a" * 64, now=None).modified_time == 4_070_908_800_000
    assert Snapshot.of(_dated(T, TIMELESS_LABEL), "a" * 64, now=T).timeless


def test_a_capped_content_already_seen_is_stale_whenever_it_returns() -> None:
    """Future-dated content A, then B, then A again an hour later: A's claim of 2099 cannot win it back."""
    hour = 3_600_000
    first = Snapshot.of(_dated(4_070_908_800_000), "a" * 64, now=T)
    stored = first.accepted(remember((), "a" * 64))
    later = T + FUTURE_ALLOWANCE_MS + 1
    update = snap("b" * 64, t=later, severity=5)
    assert decide(stored, update) == "escalated"
    stored = update.accepted(remember(stored.seen, "b" * 64))
    assert decide(stored, Snapshot.of(_dated(4_070_908_800_000), "a" * 64, now=later + hour)) == "stale"
