"""The delivery promise, end to end: 1,000 deliveries through the pipeline to three loopback sinks.

The stream is built from the fixtures in `tests/events/`: GuardDuty EventBridge events, Defender
for Cloud alerts and Security Command Center notifications (plain and as Pub/Sub push bodies),
varied into many distinct findings, each with one to four versions (new, updated, escalated,
de-escalated, closed, reopened, and re-publications of unchanged content). Of the 1,000
deliveries, 300 are exact duplicates of another (a third of them right behind their original, as
an at-least-once bus redelivers), 50 are malformed (truncated JSON, an unknown envelope, a
GuardDuty finding without arn or id, a Pub/Sub body whose data is not base64), and some versions
of a finding arrive after a newer one. They are ingested 25 at a time while a Splunk-HEC-like
receiver, a signed-webhook receiver and a Slack-like `chat.postMessage` fail 20% of calls with
429 (Retry-After: 0) or 500, and answer 500 to 5% of the calls they accepted. Then the clock is
moved past every backoff and `redrive` runs, one pass per scheduled `corral redrive`, until
nothing is pending. Without faults one pass would do; with these faults a row that needs k tries
has failed k - 1 times at one in four, so about six passes settle every row of an HTTP sink.
`MAX_REDRIVES` (30) is deliberately above `corral.delivery.MAX_ATTEMPTS` (25): a row that cannot
get through within its attempt budget shows up as dead, not merely as still pending.

Every expectation is computed from the generated data alone: each version's content, severity
rank, open/closed state and source time, and the arrival order, through a small model of the
change rules in architecture.md §4 (source time orders versions, same content is unchanged,
then reopened, closed, escalated, de-escalated, updated).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import config
from corral.delivery import MAX_ATTEMPTS, MAX_DELAY_MS
from corral.pipeline import Inbound, Pipeline
from corral.stores.base import LEASE_MS, FindingQuery, LedgerEntry, LedgerState
from corral.stores.sqlite import SqliteStore
from tests.scenario.receivers import Copy, Faulty, HecReceiver, SlackApi, WebhookReceiver, tag_of
from tests.support.fake_http import FakeHTTPServer as Loopback
from tests.support.fake_http import Reply as ServerReply

EVENTS = Path(__file__).resolve().parents[1] / "events"
SEED = 20260302
TOTAL = 1_000
DUPLICATES = 300
MALFORMED = 50
INVOCATION = 25
MAX_REDRIVES = 30

HEC_TOKEN = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
HOOK_SECRET = "scenario-signing-secret-0123456789"
SLACK_TOKEN = "xoxb-1111-2222-scenario"
CHANNEL = "C0SCENARIO"
HEC, HOOK, SLACK = "splunk_hec:siem", "webhook:soar", "slack:soc"
SIEM_SINKS = (HEC, HOOK)

CHAT_KINDS = frozenset({"new", "escalated", "reopened"})
QUIET_KINDS = frozenset({"unchanged", "stale"})
T0 = int(dt.datetime(2026, 3, 3, tzinfo=dt.UTC).timestamp() * 1000)
START = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)


# --- The generated stream -----------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of one finding: what the source says, independent of how Corral reads it."""

    finding: int
    source: str
    content: int
    """Same content id = same content (a re-publication); it is the `[c<id>]` tag in the title."""
    time_ms: int
    rank: int
    """Severity in the source's own scale, as an ordinal: higher is more severe."""
    closed: bool


@dataclass(frozen=True)
class Item:
    """One delivery of the stream: a version (original or exact duplicate) or a malformed record."""

    ref: str
    data: bytes
    version: Version | None = None
    malformed: str | None = None
    """The expected dead-letter reason (a substring) of a malformed record."""


def _load(path: str) -> Any:
    return json.loads((EVENTS / path).read_text())


GD = _load("aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json")
DEFENDER = _load("azure/defender/alert-k8s-privileged-container-aks.json")
SCC = _load("gcp/scc/ctd-added-binary-executed.notification.json")
SCC_PUSH = _load("gcp/scc/ctd-added-binary-executed.pubsub-push.json")
RANKS = {"gd": (2.0, 5.0, 8.0), "defender": ("Low", "Medium", "High"), "scc": ("LOW", "MEDIUM", "HIGH", "CRITICAL")}


def _iso(ms: int, digits: int) -> str:
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    fraction = f"{ms % 1000:03d}".ljust(digits, "0")
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


def render(v: Version, push: bool) -> bytes:
    """Return the delivery bytes of one version, in its source's real delivery shape."""
    if v.source == "gd":
        doc = copy.deepcopy(GD)
        detail = doc["detail"]
        uid = f"{v.finding:032x}"
        doc["id"] = f"{v.finding:08x}-0000-4000-8000-{v.time_ms % 10**12:012d}"
        doc["time"] = _iso(v.time_ms, 3)[:19] + "Z"
        detail["id"] = uid
        detail["arn"] = detail["arn"].rsplit("/", 1)[0] + "/" + uid
        detail["updatedAt"] = _iso(v.time_ms, 3)
        detail["severity"] = RANKS["gd"][v.rank - 1]
        detail["service"]["archived"] = v.closed
        detail["title"] = f"[c{v.content}] {GD['detail']['title']}"
    elif v.source == "defender":
        doc = copy.deepcopy(DEFENDER)
        doc["SystemAlertId"] = f"2516900000000000000_{v.finding:08x}-0000-4000-8000-000000000001"
        doc["ProcessingEndTime"] = _iso(v.time_ms, 7)
        doc["Severity"] = RANKS["defender"][v.rank - 1]
        doc["Status"] = "Resolved" if v.closed else "Active"
        doc["AlertDisplayName"] = f"[c{v.content}] {DEFENDER['AlertDisplayName']}"
    else:
        doc = copy.deepcopy(SCC)
        finding = doc["finding"]
        finding["name"] = finding["name"].rsplit("/", 1)[0] + f"/{v.finding:032x}"
        finding["canonicalName"] = finding["canonicalName"].rsplit("/", 1)[0] + f"/{v.finding:032x}"
        finding["eventTime"] = _iso(v.time_ms, 9)
        finding["severity"] = RANKS["scc"][v.rank - 1]
        finding["state"] = "INACTIVE" if v.closed else "ACTIVE"
        finding["category"] = f"[c{v.content}] {SCC['finding']['category']}"
        if push:
            wrapper = copy.deepcopy(SCC_PUSH)
            wrapper["message"]["data"] = base64.b64encode(orjson.dumps(doc)).decode()
            wrapper["message"]["messageId"] = wrapper["message"]["message_id"] = f"{v.finding}{v.time_ms}"
            doc = wrapper
    return orjson.dumps(doc)


def versions_of(
    rng: random.Random, finding: int, source: str, count: int, next_content: Iterator[int]
) -> list[Version]:
    """Return `count` versions of one finding in source-time order, each a plausible change of the last."""
    top = len(RANKS[source])
    time_ms = T0 + finding * 7_000 + rng.randrange(1_000_000)
    v = Version(finding, source, next(next_content), time_ms, rng.randint(1, top), rng.random() < 0.1)
    out = [v]
    for _ in range(count - 1):
        time_ms += rng.randrange(1_000, 600_000)
        ops = ["update", "republish"]
        if v.closed:
            ops += ["reopen", "reopen", "reopen"]
        else:
            ops += ["close", "close"]
            ops += ["escalate", "escalate"] if v.rank < top else []
            ops += ["deescalate"] if v.rank > 1 else []
        op = rng.choice(ops)
        if op == "republish":
            v = Version(finding, source, v.content, time_ms, v.rank, v.closed)
        else:
            rank = v.rank + (op == "escalate") - (op == "deescalate")
            closed = {"close": True, "reopen": False}.get(op, v.closed)
            v = Version(finding, source, next(next_content), time_ms, rank, closed)
        out.append(v)
    return out


def malformed(rng: random.Random, n: int, sample: bytes) -> Item:
    """Return the n-th malformed record, cycling through four kinds of breakage."""
    ref = f"malformed-{n:03d}"
    kind = n % 4
    if kind == 0:
        return Item(ref, sample[: rng.randrange(10, len(sample) - 10)], malformed="invalid JSON")
    if kind == 1:
        unknown = {"hello": "world", "kind": "not a finding", "n": n}
        return Item(ref, orjson.dumps(unknown), malformed="no source recognizes this document")
    if kind == 2:
        doc = copy.deepcopy(GD)
        del doc["detail"]["id"], doc["detail"]["arn"]
        doc["id"] = f"malformed-{n}"
        return Item(ref, orjson.dumps(doc), malformed="no arn and no id")
    doc = copy.deepcopy(SCC_PUSH)
    doc["message"]["data"] = f"%%not*base64%%{n}"
    return Item(ref, orjson.dumps(doc), malformed="not valid base64")


def build_stream(seed: int) -> list[Item]:
    """Return the 1,000 deliveries: distinct versions, exact duplicates and malformed records, in arrival order."""
    rng = random.Random(seed)
    contents = iter(range(1, 10**6))
    originals = TOTAL - DUPLICATES - MALFORMED
    findings: list[list[Version]] = []
    total = 0
    while total < originals:
        count = min(rng.choice((1, 1, 2, 2, 3, 4)), originals - total)
        source = ("gd", "defender", "scc")[len(findings) % 3]
        findings.append(versions_of(rng, len(findings), source, count, contents))
        total += count
    # Out of order: in a quarter of the findings with several versions, one older version arrives
    # right after a newer one.
    arrivals: list[list[Version]] = []
    for vs in findings:
        order = list(vs)
        if len(order) > 1 and rng.random() < 0.25:
            i = rng.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        arrivals.append(order)
    # A random merge that keeps each finding's arrival order.
    keyed: list[tuple[float, Item]] = []
    for order in arrivals:
        slots = sorted(rng.random() * TOTAL for _ in order)
        for slot, v in zip(slots, order, strict=True):
            push = v.source == "scc" and rng.random() < 0.5
            keyed.append((slot, Item(f"v{v.finding}.{v.content}.{v.time_ms}", render(v, push), v)))
    keyed.sort(key=lambda pair: pair[0])
    placed = [(float(i), item) for i, (_, item) in enumerate(keyed)]
    for d in range(DUPLICATES):
        at, item = rng.choice(placed[:originals])
        slot = at + 0.5 if d % 3 == 0 else rng.uniform(at, originals)
        placed.append((slot, Item(f"{item.ref}#dup{d}", item.data, item.version)))
    for n in range(MALFORMED):
        placed.append((rng.uniform(0, originals), malformed(rng, n, rng.choice(keyed)[1].data)))
    placed.sort(key=lambda pair: pair[0])
    return [item for _, item in placed]


# --- The model of the change rules --------------------------------------------------------------


def decide(current: Version | None, incoming: Version) -> str:
    """The change kind of `incoming` over the stored version (architecture.md §4), from our own data."""
    if current is None:
        return "new"
    if incoming.time_ms < current.time_ms:
        return "stale"
    if incoming.content == current.content:
        return "unchanged"
    if current.closed and not incoming.closed:
        return "reopened"
    if incoming.closed and not current.closed:
        return "closed"
    if incoming.rank > current.rank:
        return "escalated"
    if incoming.rank < current.rank:
        return "deescalated"
    return "updated"


@dataclass
class Expected:
    """What the stream must produce: stored findings, their history and each sink's deliveries."""

    latest: dict[int, Version] = field(default_factory=dict)
    history: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    siem: set[tuple[int, str]] = field(default_factory=set)
    chat: set[tuple[int, str]] = field(default_factory=set)
    malformed: dict[str, str] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)


def expect(stream: list[Item]) -> Expected:
    """Run the stream through the model: SIEM sinks get every change but unchanged and stale; chat
    gets new, escalated and reopened, and closed once the finding has had a chat message."""
    out = Expected()
    stored: dict[int, Version] = {}
    chatted: set[int] = set()
    for item in stream:
        if item.malformed is not None:
            out.malformed[item.ref] = item.malformed
            continue
        v = item.version
        assert v is not None
        kind = decide(stored.get(v.finding), v)
        out.kinds[kind] += 1
        if kind == "stale":
            continue
        if kind == "unchanged":
            stored[v.finding] = max(stored[v.finding], v, key=lambda x: x.time_ms)
            continue
        stored[v.finding] = v
        out.history[v.finding].append(kind)
        out.siem.add((v.content, kind))
        if kind in CHAT_KINDS or (kind == "closed" and v.finding in chatted):
            out.chat.add((v.content, kind))
        if kind in CHAT_KINDS:
            chatted.add(v.finding)
    out.latest = stored
    return out


# --- The rig: three faulty loopback receivers and a pipeline ------------------------------------


class Clock:
    """A clock the test moves: epoch milliseconds."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        """Move the clock forward."""
        self.now += ms


class Rig:
    """Starts the receivers (each behind `Faulty`), writes the configuration, opens the pipeline."""

    def __init__(self, tmp: Path, *, seed: int = SEED, faults: bool = True, store: type[SqliteStore] | None = None):
        rng = random.Random(seed)
        self.hec = Faulty(HecReceiver(HEC_TOKEN), random.Random(rng.random()), enabled=faults)
        self.hook = Faulty(WebhookReceiver(HOOK_SECRET, "/hooks/corral"), random.Random(rng.random()), enabled=faults)
        self.slack = Faulty(SlackApi(SLACK_TOKEN, CHANNEL), random.Random(rng.random()), enabled=faults)
        self.faulty = {HEC: self.hec, HOOK: self.hook, SLACK: self.slack}
        self.servers = {sink: Loopback(f) for sink, f in self.faulty.items()}
        self.tmp = tmp
        self.store_class = store
        self.clock = Clock(START)

    def __enter__(self) -> Rig:
        for server in self.servers.values():
            server.__enter__()
        env = {
            "HEC_TOKEN": HEC_TOKEN,
            "HOOK_URL": self.servers[HOOK].url + "/hooks/corral",
            "HOOK_SECRET": HOOK_SECRET,
            "SLACK_TOKEN": SLACK_TOKEN,
        }
        self.settings = config.parse(
            {
                "store": f"sqlite:///{self.tmp / 'corral.db'}",
                "sinks": {
                    HEC: {
                        "url": self.servers[HEC].url,
                        "token_env": "HEC_TOKEN",
                        "index": "security",
                        "max_request_bytes": 65_536,
                        "timeout": 5,
                    },
                    HOOK: {"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", "timeout": 5},
                    SLACK: {
                        "token_env": "SLACK_TOKEN",
                        "channel": CHANNEL,
                        "api_url": self.servers[SLACK].url + "/api/",
                        "min_interval": 0,
                        "timeout": 5,
                    },
                },
                "routes": [{"name": "everything", "to": [HEC, HOOK, SLACK]}],
            },
            "scenario.toml",
        )
        built = Pipeline.from_settings(self.settings, env)
        store = built.store
        if self.store_class is not None:
            store.close()
            store = self.store_class(self.settings.store)
        self.pipeline = Pipeline(store, built.router, built.sinks, clock=self.clock, settings=self.settings)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.pipeline.close()
        for server in self.servers.values():
            server.__exit__()

    def copies(self, sink: str) -> list[Copy]:
        """Everything the sink's receiver accepted (fail-after-accept copies included)."""
        return list(self.faulty[sink].inner.copies)

    def redrive_until_settled(self, bound: int) -> int:
        """Run redrive passes, each after every backoff has run out, until nothing is pending; return how many."""
        for passes in range(1, bound + 1):
            self.clock.advance(2 * MAX_DELAY_MS)
            self.pipeline.redrive()
            if not pending(self.pipeline):
                return passes
        return bound + 1


def pending(pipeline: Pipeline) -> int:
    """How many ledger rows are pending."""
    counts = pipeline.store.ledger_summary().counts
    return sum(n for (_, state), n in counts.items() if state == "pending")


def inbound(item: Item) -> Inbound:
    """The item as an entry point hands it to the pipeline."""
    return Inbound(item.data, item.ref)


# --- The scenario -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run of the scenario left behind, for the tests below to judge."""

    stream: list[Item]
    expected: Expected
    copies: dict[str, list[Copy]]
    after_accept: dict[str, list[Copy]]
    faults: dict[str, Counter[str]]
    failed: int
    redrives: int
    ledger: dict[tuple[str, LedgerState], int]
    stored: list[Any]
    history: dict[tuple[str, str, str], list[str]]
    dead_letters: list[Any]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Ingest the stream 25 deliveries at a time, then redrive until settled; keep what every party saw."""
    stream = build_stream(SEED)
    with Rig(tmp_path_factory.mktemp("scenario")) as rig:
        failed = 0
        for start in range(0, len(stream), INVOCATION):
            result = rig.pipeline.ingest(inbound(item) for item in stream[start : start + INVOCATION])
            failed += result.failed
            rig.clock.advance(1_000)
        redrives = rig.redrive_until_settled(MAX_REDRIVES)
        store = rig.pipeline.store
        stored, cursor = [], None
        while True:
            page = store.query(FindingQuery(limit=500, cursor=cursor))
            stored += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        return Outcome(
            stream=stream,
            expected=expect(stream),
            copies={sink: rig.copies(sink) for sink in rig.faulty},
            after_accept={sink: list(f.after_accept) for sink, f in rig.faulty.items()},
            faults={sink: Counter(f.counts) for sink, f in rig.faulty.items()},
            failed=failed,
            redrives=redrives,
            ledger=dict(store.ledger_summary().counts),
            stored=stored,
            history={s.key: [h.kind for h in store.history(s.key)] for s in stored},
            dead_letters=store.dead_letters(limit=10 * MALFORMED),
        )


def test_stream_has_the_required_shape(scenario: Outcome) -> None:
    """The generated stream holds 1,000 deliveries: 30% exact duplicates, 5% malformed, out-of-order versions."""
    stream = scenario.stream
    assert len(stream) == TOTAL
    assert sum("#dup" in item.ref for item in stream) == DUPLICATES
    assert sum(item.malformed is not None for item in stream) == MALFORMED
    assert len({item.data for item in stream if item.malformed is None}) == TOTAL - DUPLICATES - MALFORMED
    kinds = scenario.expected.kinds
    for kind in ("new", "updated", "escalated", "deescalated", "closed", "reopened", "unchanged", "stale"):
        assert kinds[kind] > 0, f"the stream exercises no {kind!r} change: {dict(kinds)}"


def test_faults_were_injected_at_every_sink(scenario: Outcome) -> None:
    """Every receiver answered 429, 500 and fail-after-accept 500s, about a fifth of calls refused."""
    for sink, counts in scenario.faults.items():
        calls = sum(counts.values())
        assert counts["429"] and counts["500"] and counts["after_accept"], f"{sink}: {dict(counts)}"
        assert 0.12 < (counts["429"] + counts["500"]) / calls < 0.28, f"{sink}: {dict(counts)}"
        assert len(scenario.after_accept[sink]) >= counts["after_accept"]


def test_ledger_settles_within_bounded_redrives(scenario: Outcome) -> None:
    """After the retries and at most MAX_REDRIVES redrive passes nothing is pending and nothing is dead."""
    assert scenario.redrives <= MAX_REDRIVES, f"still pending after {MAX_REDRIVES} redrives: {scenario.ledger}"
    states: Counter[str] = Counter()
    for (_, state), n in scenario.ledger.items():
        states[state] += n
    assert states["pending"] == 0 and states["dead"] == 0, scenario.ledger


def test_every_valid_finding_is_stored_once(scenario: Outcome) -> None:
    """Each generated finding is stored exactly once, holding its newest version and the modelled history."""
    expected = scenario.expected
    by_tag = {s.document["finding_info"]["title"]: s for s in scenario.stored}
    keys = [s.key for s in scenario.stored]
    assert len(keys) == len(set(keys)) == len(expected.latest)
    tags = sorted(tag_of(title) for title in by_tag)
    assert tags == sorted(v.content for v in expected.latest.values())
    for s in scenario.stored:
        latest = next(v for v in expected.latest.values() if v.content == tag_of(s.document["finding_info"]["title"]))
        assert s.closed == latest.closed, s.key
        assert scenario.history[s.key] == expected.history[latest.finding], s.key


def test_siem_sinks_receive_every_change(scenario: Outcome) -> None:
    """The HEC and webhook receivers hold every change but unchanged and stale, and nothing else."""
    for sink in SIEM_SINKS:
        got = {(c.tag, c.change) for c in scenario.copies[sink]}
        missing = scenario.expected.siem - got
        extra = got - scenario.expected.siem
        assert not missing and not extra, f"{sink}: {len(missing)} missing {sorted(missing)[:5]}, extra {extra}"


def test_chat_sink_receives_new_escalated_reopened_and_threaded_closes(scenario: Outcome) -> None:
    """Slack holds every new, escalated and reopened change, and each close of a finding it has a message about."""
    copies = scenario.copies[SLACK]
    got = {(c.tag, c.change) for c in copies}
    missing = scenario.expected.chat - got
    extra = got - scenario.expected.chat
    by_kind = Counter(kind for _, kind in missing)
    assert not missing and not extra, f"{SLACK}: missing {dict(by_kind)} e.g. {sorted(missing)[:5]}; extra {extra}"
    tops = {c.ts for c in copies if c.thread is None}
    for c in copies:
        if c.change == "closed":
            assert c.thread in tops, f"close of c{c.tag} not posted as a reply under a first message"


def test_duplicates_at_a_sink_come_only_from_fail_after_accept(scenario: Outcome) -> None:
    """At each sink, the extra copies of a change are no more than its fail-after-accept faults."""
    report = []
    for sink, copies in scenario.copies.items():
        seen = Counter((c.tag, c.change) for c in copies)
        faulted = Counter((c.tag, c.change) for c in scenario.after_accept[sink])
        excess = {k: (n - 1, faulted[k]) for k, n in seen.items() if n - 1 > faulted[k]}
        extra = sum(n - 1 for n in seen.values())
        if excess:
            report.append(
                f"{sink}: {extra} duplicates, {len(scenario.after_accept[sink])} fail-after-accept copies; "
                f"{len(excess)} changes with more copies than faults, e.g. (tag, change): (duplicates, faults) "
                f"{dict(sorted(excess.items())[:3])}"
            )
    assert not report, "\n".join(report)


def test_duplicates_carry_the_same_idempotency_key(scenario: Outcome) -> None:
    """Every copy of one change carries one idempotency key, and different changes carry different keys."""
    for sink in SIEM_SINKS:
        keys: defaultdict[tuple[int, str], set[str | None]] = defaultdict(set)
        for c in scenario.copies[sink]:
            keys[(c.tag, c.change)].add(c.key)
        assert all(len(k) == 1 and None not in k for k in keys.values()), sink
        flat = [next(iter(k)) for k in keys.values()]
        assert len(flat) == len(set(flat)), sink


def test_every_malformed_record_is_dead_lettered_with_its_reason(scenario: Outcome) -> None:
    """Each malformed record is in the dead letter, once, with the reason for its breakage; no valid input is."""
    expected = scenario.expected.malformed
    assert scenario.failed == MALFORMED
    # Rows a sink gave up on are dead-lettered too, under the sink's name; the ledger test judges those.
    inputs = [letter for letter in scenario.dead_letters if letter.source not in (HEC, HOOK, SLACK)]
    refs = Counter(letter.ref for letter in inputs)
    assert refs == Counter(expected.keys()), set(refs) ^ set(expected)
    for letter in inputs:
        assert expected[letter.ref] in letter.reason, (letter.ref, letter.reason)
        assert letter.size > 0 and letter.raw


# --- Focused cases ------------------------------------------------------------------------------

RATE_LIMITED = ServerReply.json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"})


def one_version(content: int, *, finding: int = 7, rank: int = 2, closed: bool = False, minute: int = 0) -> Item:
    """A GuardDuty delivery of one version of one finding."""
    v = Version(finding, "gd", content, T0 + minute * 60_000, rank, closed)
    return Item(f"v{content}", render(v, push=False), v)


class ProcessKilledError(Exception):
    """Stands for the process dying (a Lambda timeout, an OOM kill)."""


class KilledAfterAccept(SqliteStore):
    """A store whose first write of a `delivered` ledger state never happens: the process dies first."""

    kills = 1

    def ledger_update(self, entries: Sequence[LedgerEntry]) -> None:
        """Die instead of recording the first delivery; record every other update."""
        delivered = [e for e in entries if e.state == "delivered"]
        if delivered and self.kills:
            self.kills -= 1
            raise ProcessKilledError(f"killed after {delivered[0].sink} accepted {delivered[0].version[:12]}")
        super().ledger_update(entries)


@pytest.mark.parametrize("recovery", ["redelivery", "redrive"])
def test_process_killed_after_accept_resends_with_the_same_key_once(tmp_path: Path, recovery: str) -> None:
    """A crash between the sink's acceptance and the ledger write re-sends that version once, with the same key."""
    item = one_version(1)
    with Rig(tmp_path, faults=False, store=KilledAfterAccept) as rig:
        with pytest.raises(ProcessKilledError):
            rig.pipeline.ingest([inbound(item)])
        first = {sink: rig.copies(sink) for sink in SIEM_SINKS}
        assert sum(len(c) for c in first.values()) == 1, first
        # The dead process's claim holds its rows until it lapses; only then may another send them.
        rig.clock.advance(LEASE_MS)
        if recovery == "redelivery":
            rig.pipeline.ingest([inbound(item)])
        else:
            rig.pipeline.redrive()
        assert pending(rig.pipeline) == 0
        # Later redeliveries and redrives find every row delivered and send nothing.
        for _ in range(2):
            rig.clock.advance(2 * MAX_DELAY_MS)
            rig.pipeline.ingest([inbound(item)])
            rig.pipeline.redrive()
        for sink in SIEM_SINKS:
            copies = rig.copies(sink)
            expected = 2 if first[sink] else 1
            assert len(copies) == expected, (sink, copies)
            assert len({c.key for c in copies}) == 1 and {(c.tag, c.change) for c in copies} == {(1, "new")}
        assert len(rig.copies(SLACK)) == 1


def test_exact_duplicate_in_one_invocation_reaches_each_sink_once(tmp_path: Path) -> None:
    """A delivery and its exact duplicate in the same invocation give one copy at each sink (no faults)."""
    item = one_version(1)
    with Rig(tmp_path, faults=False) as rig:
        rig.pipeline.ingest([inbound(item), inbound(item)])
        sent = {sink: len(rig.copies(sink)) for sink in rig.faulty}
    assert sent == {HEC: 1, HOOK: 1, SLACK: 1}


def test_close_in_the_same_invocation_as_the_first_message_reaches_chat(tmp_path: Path) -> None:
    """A finding's new and closed versions in one invocation give Slack the message and the close in its thread."""
    new, closed = one_version(1), one_version(2, closed=True, minute=5)
    with Rig(tmp_path, faults=False) as rig:
        rig.pipeline.ingest([inbound(new), inbound(closed)])
        got = [(c.tag, c.change, c.thread is not None) for c in rig.copies(SLACK)]
    assert got == [(1, "new", False), (2, "closed", True)]


def test_close_while_the_first_message_is_pending_reaches_chat(tmp_path: Path) -> None:
    """A close arriving while the first Slack message waits for a retry is posted in its thread after the redrive."""
    new, closed = one_version(1), one_version(2, closed=True, minute=5)
    with Rig(tmp_path, faults=False) as rig:
        rig.servers[SLACK].push(RATE_LIMITED)
        rig.pipeline.ingest([inbound(new)])
        rig.clock.advance(1_000)
        rig.pipeline.ingest([inbound(closed)])
        assert rig.redrive_until_settled(MAX_REDRIVES) <= MAX_REDRIVES
        got = [(c.tag, c.change, c.thread is not None) for c in rig.copies(SLACK)]
    assert got == [(1, "new", False), (2, "closed", True)]


def test_chat_message_held_back_by_rate_limits_is_not_dead_lettered_unsent(tmp_path: Path) -> None:
    """When Slack rate-limits the first message of every pass, the message behind it is not dead-lettered unsent."""
    items = [one_version(1, finding=1), one_version(2, finding=2)]
    with Rig(tmp_path, faults=False) as rig:
        rig.servers[SLACK].push(RATE_LIMITED)
        rig.pipeline.ingest(inbound(item) for item in items)
        for _ in range(MAX_ATTEMPTS):
            rig.servers[SLACK].push(RATE_LIMITED)
            rig.clock.advance(2 * MAX_DELAY_MS)
            rig.pipeline.redrive()
        counts = rig.pipeline.store.ledger_summary().counts
    # Each pass Slack saw one request, the first message's; only that message may be given up on.
    assert counts.get((SLACK, "dead"), 0) <= 1, counts
