"""`ledger_for`: the delivery rows of a finding's versions, every sink, on every backend (the finding page reads it)."""

from __future__ import annotations

from corral.stores.base import Store
from tests.stores.test_contract import T, ledger_entry


def test_ledger_for_returns_each_versions_rows(store: Store) -> None:
    """Rows of the asked versions come back with their state; other versions' rows do not."""
    store.ledger_add(
        [
            ledger_entry("v1"),
            ledger_entry("v1", "webhook:x", state="dead", attempts=9, last_error="HTTP 410"),
            ledger_entry("v2", state="delivered", attempts=1, delivered_at=T + 5),
            ledger_entry("v3"),
        ]
    )
    found = sorted(store.ledger_for(["v1", "v2", "missing"]), key=lambda e: (e.version, e.sink))
    assert [(e.version, e.sink, e.state) for e in found] == [
        ("v1", "slack:secops", "pending"),
        ("v1", "webhook:x", "dead"),
        ("v2", "slack:secops", "delivered"),
    ]
    assert found[1].last_error == "HTTP 410" and found[2].delivered_at == T + 5
    assert store.ledger_for([]) == []
