"""The Azure function app, its functions obtained from the FunctionApp and called with SDK objects."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import azure.functions.timer
import pytest

from corral.errors import ConfigError, StoreUnavailableError
from corral.stores import open_store

from .conftest import EVENTS, FUNCTIONS, UNROUTED_NOTICE, closed_store_url, import_entry, spare_sink_config

APP = FUNCTIONS / "azure" / "function_app.py"
ALERT = (EVENTS / "azure/defender/alert-k8s-privileged-container-aks.json").read_bytes()
ARRAY = (EVENTS / "azure/defender/eventhub-body.array.json").read_bytes()
ASSESSMENT = (EVENTS / "azure/defender/assessment-aks-authorized-ip-ranges.unhealthy.json").read_bytes()


@dataclass
class RetryContext:
    """The host's retry state, as the worker passes it in `context.retry_context`."""

    retry_count: int
    max_retry_count: int


@dataclass
class Context:
    """The invocation context the Python worker hands to a function that asks for one."""

    retry_context: RetryContext
    invocation_id: str = "00000000-0000-4000-8000-000000000001"
    function_name: str = "defender_findings"


class Out:
    """An output binding value holder, as the worker provides for `func.Out[T]`."""

    def __init__(self) -> None:
        self.value: bytes | None = None

    def set(self, value: bytes) -> None:
        """Record what the function writes."""
        self.value = value

    def get(self) -> bytes | None:
        """What the function wrote, if anything."""
        return self.value


def azure_env(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    """What the Functions host and the Bicep app settings put in the environment."""
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.setenv("CORRAL_STORE", store_url)
    monkeypatch.setenv("CORRAL_CONFIG", "")
    monkeypatch.setenv("CORRAL_ALLOW_LOCAL_STORE", "1")
    monkeypatch.setenv("CORRAL_EVENTHUB_NAME", "defender-findings")


def user_function(module: ModuleType, name: str) -> Callable[..., Any]:
    """The user callable the host would invoke, looked up through the FunctionApp (indexed once)."""
    if not hasattr(module, "_indexed"):
        module._indexed = {f.get_function_name(): f for f in module.app.get_functions()}
    return module._indexed[name].get_user_function()  # type: ignore[no-any-return]


def events(*bodies: bytes) -> list[func.EventHubEvent]:
    """Event Hubs events as the trigger delivers them with cardinality=many."""
    return [
        func.EventHubEvent(body=body, sequence_number=100 + i, offset=str(4096 * i)) for i, body in enumerate(bodies)
    ]


def findings_in(store_url: str) -> int:
    """How many findings the store holds."""
    store = open_store(store_url)
    try:
        return sum(row.count for row in store.counts())
    finally:
        store.close()


def dead_letters_in(store_url: str) -> int:
    """How many dead letters the store holds."""
    store = open_store(store_url)
    try:
        return len(store.dead_letters(limit=100))
    finally:
        store.close()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> ModuleType:
    """function_app.py imported as the Python worker does at start."""
    azure_env(monkeypatch, sqlite_url)
    return import_entry(APP)


def test_app_declares_its_triggers(app: ModuleType) -> None:
    """The app registers the Event Hubs, blob and timer functions, the hub ones with a retry policy."""
    user_function(app, "redrive")  # indexes the app once, as the worker does
    functions = {name: json.loads(f.get_function_json()) for name, f in app._indexed.items()}
    assert set(functions) == {"defender_findings", "relayed_findings", "kept_events", "redrive", "source_check"}
    trigger = next(b for b in functions["defender_findings"]["bindings"] if b["type"] == "eventHubTrigger")
    assert trigger["cardinality"].lower() == "many" and trigger["connection"] == "DEFENDER_EVENTHUB"
    retry = app._indexed["defender_findings"].get_settings_dict("retry_policy")
    assert retry is not None and retry["strategy"] == "exponential_backoff" and int(retry["max_retry_count"]) >= 3
    blob_out = next(b for b in functions["defender_findings"]["bindings"] if b["type"] == "blob")
    assert blob_out["path"].startswith("corral-retry/")


def test_one_record_body_and_array_body_are_stored(app: ModuleType, sqlite_url: str) -> None:
    """A body holding one record and a body holding a JSON array of records are both stored."""
    fn = user_function(app, "defender_findings")
    kept = Out()
    fn(events=events(ALERT), kept=kept, context=Context(RetryContext(0, 5)))
    one = findings_in(sqlite_url)
    fn(events=events(ARRAY), kept=kept, context=Context(RetryContext(0, 5)))
    kinds = [record.get("type", record.get("AlertType")) for record in json.loads(ARRAY)]
    assert one == 1
    # The array repeats the same alert, adds an assessment and a sub-assessment (two more findings)
    # and a secure score, which is not a finding.
    assert kinds[0] == "K8S_PrivilegedContainer" and "Microsoft.Security/secureScores" in kinds
    assert findings_in(sqlite_url) == 3
    assert kept.get() is None


def test_poison_body_is_dead_lettered_and_the_rest_stored(app: ModuleType, sqlite_url: str) -> None:
    """A body that is not JSON goes to the dead letter; the other events of the batch are stored."""
    fn = user_function(app, "defender_findings")
    fn(events=events(ALERT, b"\x00not json", ASSESSMENT), kept=Out(), context=Context(RetryContext(0, 5)))
    assert findings_in(sqlite_url) == 2
    assert dead_letters_in(sqlite_url) == 1


def test_store_down_retries_then_keeps_events_and_loses_none(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    """Store down: raise while the host retries, keep the raw events on the last try, re-ingest them later."""
    azure_env(monkeypatch, closed_store_url())
    down = import_entry(APP)
    fn = user_function(down, "defender_findings")
    kept = Out()
    batch = events(ALERT, ASSESSMENT, b"\x00not json")
    with pytest.raises(StoreUnavailableError):
        fn(events=batch, kept=kept, context=Context(RetryContext(2, 5)))
    assert kept.get() is None
    fn(events=batch, kept=kept, context=Context(RetryContext(5, 5)))  # last retry: returns, checkpoint moves
    blob = kept.get()
    assert blob is not None

    azure_env(monkeypatch, sqlite_url)  # the store is back
    up = import_entry(APP)
    stream = func.blob.InputStream(data=blob, name="corral-retry/0b1c.json", uri="https://x/corral-retry/0b1c.json")
    user_function(up, "kept_events")(blob=stream)
    assert findings_in(sqlite_url) == 2
    assert dead_letters_in(sqlite_url) == 1


def test_kept_events_raise_while_the_store_is_still_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-ingesting kept events with the store still down raises, so the blob trigger retries."""
    azure_env(monkeypatch, closed_store_url())
    down = import_entry(APP)
    kept = Out()
    user_function(down, "defender_findings")(events=events(ALERT), kept=kept, context=Context(RetryContext(5, 5)))
    assert kept.get() is not None
    stream = func.blob.InputStream(data=kept.get() or b"", name="corral-retry/1.json")
    with pytest.raises(StoreUnavailableError):
        user_function(down, "kept_events")(blob=stream)


def test_timers_run(app: ModuleType) -> None:
    """The redrive and source-check timer functions run against the store."""
    timer = azure.functions.timer.TimerRequest(past_due=False)
    user_function(app, "redrive")(timer=timer)
    user_function(app, "source_check")(timer=timer)


def test_cold_start_refuses_sqlite_on_azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In Azure Functions, a SQLite store is refused at start unless CORRAL_ALLOW_LOCAL_STORE=1."""
    azure_env(monkeypatch, f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("CORRAL_ALLOW_LOCAL_STORE")
    with pytest.raises(ConfigError, match=r"SQLite store inside Azure Functions"):
        import_entry(APP)


def test_cold_start_logs_a_sink_no_route_names(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink no route names is accepted, and the cold start says so once at WARNING."""
    azure_env(monkeypatch, sqlite_url)
    monkeypatch.setenv("CORRAL_CONFIG", spare_sink_config(tmp_path))
    import_entry(APP)
    warned = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [("corral.azure", UNROUTED_NOTICE)]
