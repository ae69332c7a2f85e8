"""Delivery: backoff, and what the Deliverer records in the ledger for each sink's answer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral import delivery
from corral.delivery import BASE_DELAY_MS, CLOSE_WAIT_MS, MAX_ATTEMPTS, MAX_DELAY_MS, Deliverer, backoff_ms
from corral.sinks.base import Delivery, Result, SinkFamily
from corral.stores import _sql, open_store
from corral.stores.base import ChangeKind, Claim, LedgerEntry, Store
from corral.stores.sqlite import SqliteStore
from tests.stores.factory import BASE_TIME, make_finding

NOW = BASE_TIME + 3_600_000
SECRET = "xoxb-0000-very-secret-token"


def ceiling(attempts: int) -> int:
    """The largest delay before jitter: base doubled per earlier attempt, capped."""
    return min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** max(0, attempts - 1))


@pytest.mark.parametrize("attempts", [0, 1, 2, 3, 5, 8, 20, 100])
@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
def test_backoff_is_exponential_with_full_jitter(attempts: int, draw: float) -> None:
    """The delay is the draw's share of an exponentially growing, capped ceiling (at least 1 s)."""
    assert backoff_ms(attempts, None, rng=lambda: draw) == max(int(ceiling(attempts) * draw), 1_000)


def test_backoff_ceiling_doubles_until_the_cap() -> None:
    """With the largest draw, each attempt doubles the delay until MAX_DELAY_MS, then stays there."""
    delays = [backoff_ms(a, None, rng=lambda: 1.0) for a in range(1, 15)]
    for earlier, later in itertools.pairwise(delays):
        assert later == min(2 * earlier, MAX_DELAY_MS)
    assert delays[-1] == MAX_DELAY_MS


@given(
    st.integers(min_value=0, max_value=200),
    st.none() | st.floats(min_value=0, max_value=10 * MAX_DELAY_MS / 1000),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_bounds(attempts: int, retry_after: float | None, draw: float) -> None:
    """Never below 1 s or the sink's Retry-After; never above the cap unless Retry-After asks for more."""
    delay = backoff_ms(attempts, retry_after, rng=lambda: draw)
    floor = max(1_000, int(retry_after * 1000) if retry_after is not None else 0)
    assert delay >= floor
    assert delay <= max(ceiling(attempts), floor)


class RecordingSink:
    """A sink that records every batch and answers each delivery with `answer(delivery)`."""

    def __init__(self, sink_id: str, family: SinkFamily, answer: Callable[[Delivery], Result] | None = None) -> None:
        self.id = sink_id
        self.family = family
        self.token = SECRET
        self.answer = answer or (lambda d: Result.success(d.version))
        self.batches: list[list[Delivery]] = []

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Record the batch and answer each delivery."""
        self.batches.append(list(deliveries))
        return [self.answer(d) for d in deliveries]

    def close(self) -> None:
        """Nothing to release."""

    @property
    def sent(self) -> list[Delivery]:
        """Every delivery received, in order."""
        return [d for batch in self.batches for d in batch]


class BrokenSink(RecordingSink):
    """A sink whose `send` raises, as a buggy sink might."""

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Record the batch, then fail."""
        self.batches.append(list(deliveries))
        raise RuntimeError(f"boom with {SECRET}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    opened = open_store(f"sqlite:///{tmp_path}/x.db")
    yield opened
    opened.close()


def rows(
    store: Store, sinks: Sequence[str], change: ChangeKind = "new", uid: str = "f-1", **kw: object
) -> list[LedgerEntry]:
    """Store a finding and queue one ledger row per sink for it; return the rows as stored."""
    [stored] = store.upsert([make_finding(uid, **kw)], now=NOW)  # type: ignore[arg-type]
    entries = [
        LedgerEntry(stored.version, sink, stored.key, change, stored.finding, created=NOW, next_attempt=NOW)
        for sink in sinks
    ]
    return store.ledger_add(entries, claim=Claim.new(NOW))


def current(store: Store, row: LedgerEntry) -> LedgerEntry:
    """Return the row as the ledger holds it now, whatever its state."""
    assert isinstance(store, SqliteStore)
    [found] = store._select(f"SELECT {store._ledger_read} WHERE l.version = ? AND l.sink = ?", (row.version, row.sink))
    return _sql.ledger_entry(found)


def deliverer(store: Store, *sinks: RecordingSink) -> Deliverer:
    """A Deliverer over these sinks with a fixed clock."""
    return Deliverer(store, {s.id: s for s in sinks}, lambda: NOW)


def test_success_marks_delivered_and_keeps_the_chat_message_ref(store: Store) -> None:
    """An accepted delivery is marked delivered; a chat sink's message ref is kept for threading."""
    chat = RecordingSink("slack:soc", "chat", lambda d: Result.success(d.version, message_ref=f"ts-{d.version[:6]}"))
    siem = RecordingSink("splunk_hec:main", "siem")
    queued = rows(store, [chat.id, siem.id])
    totals = deliverer(store, chat, siem).deliver(queued)
    assert totals == {"delivered": 2}
    for row in queued:
        now = current(store, row)
        assert (now.state, now.attempts, now.delivered_at, now.last_error) == ("delivered", 1, NOW, None)
    assert store.message_ref(queued[0].key, chat.id) == f"ts-{queued[0].version[:6]}"
    assert [d.finding for d in chat.sent] == [queued[0].document]
    assert [d.change for d in siem.sent] == ["new"]


@pytest.mark.parametrize("retry_after", [None, 0.5, 120.0, 7200.0])
def test_retryable_failure_keeps_the_row_pending(store: Store, retry_after: float | None) -> None:
    """A retryable failure leaves the row pending with its error and a next attempt after Retry-After."""
    sink = RecordingSink("webhook:x", "siem", lambda d: Result.failure(d.version, "503", retry_after=retry_after))
    [row] = rows(store, [sink.id])
    assert deliverer(store, sink).deliver([row]) == {"pending": 1}
    now = current(store, row)
    assert (now.state, now.attempts, now.last_error) == ("pending", 1, "503")
    floor = max(1_000, int((retry_after or 0) * 1000))
    assert NOW + floor <= now.next_attempt <= NOW + max(ceiling(1), floor)
    assert store.ledger_due(now=now.next_attempt - 1) == []
    assert [r.version for r in store.ledger_due(now=now.next_attempt)] == [row.version]


def test_permanent_failure_goes_to_the_dead_letter_without_secrets(store: Store) -> None:
    """A permanent refusal marks the row dead and dead-letters the finding with the reason, and no secret."""
    sink = RecordingSink("webhook:x", "siem", lambda d: Result.failure(d.version, "400 bad field", permanent=True))
    [row] = rows(store, [sink.id])
    assert deliverer(store, sink).deliver([row]) == {"dead": 1}
    now = current(store, row)
    assert (now.state, now.attempts, now.last_error) == ("dead", 1, "400 bad field")
    [letter] = store.dead_letters()
    assert letter.reason == "400 bad field"
    assert letter.source == sink.id
    assert row.version in letter.ref
    assert orjson.loads(letter.raw) == {"sink": sink.id, "change": "new", "finding": row.document}
    assert SECRET.encode() not in letter.raw
    assert SECRET not in letter.reason


def test_the_last_attempt_goes_to_the_dead_letter(store: Store) -> None:
    """A retryable failure on the MAX_ATTEMPTS-th attempt is final."""
    sink = RecordingSink("webhook:x", "siem", lambda d: Result.failure(d.version, "timeout"))
    [row] = rows(store, [sink.id])
    row = row._replace(attempts=MAX_ATTEMPTS - 2)
    assert deliverer(store, sink).deliver([row]) == {"pending": 1}
    # The first outcome released the claim: the second pass holds the row by a new one.
    [again] = store.ledger_claim(Claim.new(2 * NOW))
    assert deliverer(store, sink).deliver([again._replace(attempts=MAX_ATTEMPTS - 1)]) == {"dead": 1}
    assert current(store, row).state == "dead"
    assert len(store.dead_letters()) == 1


def test_a_sink_that_raises_leaves_its_rows_retryable_and_others_unaffected(store: Store) -> None:
    """An exception from one sink makes all its deliveries retryable; the other sinks still deliver."""
    broken = BrokenSink("elastic:x", "siem")
    fine = RecordingSink("file:archive", "file")
    queued = rows(store, [broken.id, fine.id], uid="a") + rows(store, [broken.id, fine.id], uid="b")
    totals = deliverer(store, broken, fine).deliver(queued)
    assert totals == {"pending": 2, "delivered": 2}
    assert len(broken.sent) == 2
    for row in queued:
        now = current(store, row)
        if row.sink == broken.id:
            assert (now.state, now.attempts) == ("pending", 1)
            assert now.last_error == f"{broken.id}: sink failed (RuntimeError)"
            assert now.next_attempt > NOW
        else:
            assert now.state == "delivered"
    assert store.dead_letters() == []


def test_a_sink_answering_the_wrong_number_of_results_is_a_retryable_failure(store: Store) -> None:
    """A sink that answers fewer results than deliveries gets every delivery retried."""
    sink = RecordingSink("webhook:x", "siem")
    sink.send = lambda deliveries: [Result.success(deliveries[0].version)]  # type: ignore[method-assign]
    queued = rows(store, [sink.id], uid="a") + rows(store, [sink.id], uid="b")
    assert deliverer(store, sink).deliver(queued) == {"pending": 2}
    assert {current(store, r).state for r in queued} == {"pending"}


def test_closed_without_a_first_message_waits_then_is_not_sent_to_chat(store: Store) -> None:
    """A chat `closed` with no first message waits for it, then is dropped unsent; other families get it."""
    chat = RecordingSink("slack:soc", "chat")
    siem = RecordingSink("splunk_hec:main", "siem")
    queued = rows(store, [chat.id, siem.id], change="closed")
    assert deliverer(store, chat, siem).deliver(queued) == {"pending": 1, "delivered": 1}
    waiting = current(store, queued[0])
    assert (waiting.state, waiting.attempts) == ("pending", 0)
    later = Deliverer(store, {chat.id: chat}, lambda: NOW + CLOSE_WAIT_MS)
    assert later.deliver([waiting]) == {"dropped": 1}
    assert chat.sent == []
    assert [d.change for d in siem.sent] == ["closed"]
    dropped = current(store, queued[0])
    assert dropped.state == "delivered"
    assert "closed without a first message" in (dropped.last_error or "")


def test_a_close_to_a_chat_sink_without_threads_is_settled_at_once(store: Store) -> None:
    """A webhook chat sink has no thread to reply in: its close is settled unsent at once, not retried for a day."""
    chat = RecordingSink("teams:soc", "chat")
    chat.threads = False  # type: ignore[attr-defined]
    [first] = rows(store, [chat.id], uid="f-1")
    [close] = rows(store, [chat.id], change="closed", uid="f-2")
    assert deliverer(store, chat).deliver([first, close]) == {"delivered": 1, "dropped": 1}
    assert [d.change for d in chat.sent] == ["new"]
    settled = current(store, close)
    assert (settled.state, settled.attempts) == ("delivered", 0)
    assert "no threads" in (settled.last_error or "")
    assert store.ledger_due(now=NOW + CLOSE_WAIT_MS) == []


def test_teams_and_slack_webhooks_say_they_have_no_threads() -> None:
    """The deliverer asks a chat sink whether it has threads: both webhook kinds say no, Slack's bot says yes."""
    from corral.sinks import slack, teams

    env = {
        "HOOK": "https://hooks.slack.com/services/T0/B0/x",
        "TEAMS": "https://example.invalid/hook",
        "TOKEN": "xoxb-0-0-x",
    }
    assert teams.from_config("teams:soc", {"webhook_url_env": "TEAMS"}, env).threads is False
    assert slack.from_config("slack:a", {"webhook_url_env": "HOOK"}, env).threads is False
    assert slack.from_config("slack:b", {"token_env": "TOKEN", "channel": "C0123ABCD"}, env).threads is True


def test_a_close_follows_its_first_message_in_one_batch(store: Store) -> None:
    """A new and a closed version of one finding in one batch: the close goes as a reply to the first."""
    chat = RecordingSink("slack:soc", "chat", lambda d: Result.success(d.version, message_ref="ts-1"))
    first = rows(store, [chat.id], change="new", uid="f-9")
    [stored] = store.upsert([make_finding("f-9", status_id=4, modified=BASE_TIME + 1)], now=NOW)  # type: ignore[arg-type]
    close = store.ledger_add(
        [LedgerEntry(stored.version, chat.id, stored.key, "closed", stored.finding, created=NOW + 1, next_attempt=NOW)]
    )
    assert deliverer(store, chat).deliver([*close, *first]) == {"delivered": 2}
    assert [(d.change, d.thread_ref) for d in chat.sent] == [("new", None), ("closed", "ts-1")]


def test_follow_up_to_chat_carries_the_thread_ref(store: Store) -> None:
    """After a first chat message, later changes (closed included) are sent as replies with its ref."""
    chat = RecordingSink("slack:soc", "chat", lambda d: Result.success(d.version, message_ref=f"ts-{len(chat.sent)}"))
    first = rows(store, [chat.id], change="new", modified=BASE_TIME)
    deliverer(store, chat).deliver(first)
    ref = store.message_ref(first[0].key, chat.id)
    assert ref == "ts-1"
    later = rows(store, [chat.id], change="escalated", modified=BASE_TIME + 1, severity_id=5)
    closed = rows(store, [chat.id], change="closed", modified=BASE_TIME + 2, status_id=4)
    assert deliverer(store, chat).deliver(later + closed) == {"delivered": 2}
    assert [(d.change, d.thread_ref) for d in chat.sent] == [("new", None), ("escalated", ref), ("closed", ref)]
    assert store.message_ref(first[0].key, chat.id) == ref


def test_rows_for_an_unconfigured_sink_stay_pending(store: Store) -> None:
    """A row whose sink is no longer configured is kept pending, unsent, and let go for later."""
    [row] = rows(store, ["webhook:gone"])
    assert deliverer(store).deliver([row]) == {"pending": 1}
    assert current(store, row) == row._replace(claim=None, next_attempt=NOW + BASE_DELAY_MS)


def test_only_pending_rows_are_sent(store: Store) -> None:
    """Delivered and dead rows handed to the Deliverer are not sent again."""
    sink = RecordingSink("webhook:x", "siem")
    [row] = rows(store, [sink.id])
    assert deliverer(store, sink).deliver([row._replace(state="delivered"), row._replace(state="dead")]) == {}
    assert sink.sent == []


def test_module_constants_are_consistent() -> None:
    """The cap is above the base delay and MAX_ATTEMPTS allows at least one retry."""
    assert delivery.MAX_DELAY_MS > delivery.BASE_DELAY_MS > 0
    assert delivery.MAX_ATTEMPTS > 1
