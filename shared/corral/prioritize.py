"""Keep every Vulnerability Finding's priority current as runtime evidence arrives and ages.

The pipeline calls `Prioritizer.prepare` with each batch before the upsert: the batch's image
observations go to the inventory (forward only in source time), and each Vulnerability Finding
of the batch gets its priority from what every cloud says about its image. `Prepared.finish`
then turns the upsert's changes into what routing sees: a finding whose content is unchanged
but whose priority moved is `reprioritized`, and the other open findings of images whose runtime
evidence or exposure moved forward are recomputed and, where their priority changed, stored
again and reported as `reprioritized` too. `Prioritizer.recompute` does the same for findings
whose running evidence aged out of the window, from the hourly source check.

A `reprioritized` change has its own version key, derived from the priority and the source time
it rests on, so that it is sent once, and replays (which add no newer evidence) change nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from corral import inventory, ocsf, priority
from corral.context import ContainerContext, container_context
from corral.stores.base import FUTURE_ALLOWANCE_MS, Change

if TYPE_CHECKING:
    from corral.stores.base import FindingKey, Store
    from corral.stores.images import ImageEvidence, ImageVulnerability


def reprioritized_version(key: FindingKey, given: priority.Priority) -> str:
    """The idempotency key of one reprioritization: identity, priority and the time it rests on."""
    parts = (*key, "reprioritized", str(given.priority_id), str(given.risk_score), given.context)
    text = "\x1f".join((*parts, str(given.exposed), str(given.basis)))
    return hashlib.sha256(text.encode()).hexdigest()


class Prepared:
    """A batch with priorities applied, and what `finish` needs to report reprioritizations.

    A plain class, not a dataclass: every cold start would build a dataclass through `exec`.
    """

    __slots__ = ("before", "contexts", "findings", "given", "moved", "now", "others", "prioritizer")

    def __init__(
        self,
        findings: list[ocsf.Finding],
        prioritizer: Prioritizer,
        now: int,
        *,
        before: dict[FindingKey, priority.Priority] | None = None,
        moved: list[str] | None = None,
        contexts: list[ContainerContext] | None = None,
    ) -> None:
        self.findings = findings
        # The findings' container contexts, read once for the inventory and the store alike.
        self.contexts = contexts if contexts is not None else []
        self.prioritizer = prioritizer
        self.now = now
        # Each Vulnerability Finding's priority, with the facts it was computed from (their image is
        # where the store keeps it).
        self.given: dict[FindingKey, tuple[inventory.Vulnerable, priority.Priority]] = {}
        # The priority each of the batch's Vulnerability Findings was last given (absent: none yet).
        self.before = before if before is not None else {}
        self.moved = moved if moved is not None else []
        # Reprioritizations of findings outside the batch, set by `finish`.
        self.others: list[Change] = []

    def finish(self, changes: Sequence[Change]) -> list[Change]:
        """Return the upsert's changes, reprioritizations marked; those of other findings go to `others`."""
        out: list[Change] = []
        remember: dict[FindingKey, tuple[inventory.Vulnerable, priority.Priority]] = {}
        for change in changes:
            scored = self.given.get(change.key)
            if scored is None or change.kind == "stale":
                out.append(change)
                continue
            given = scored[1]
            previous = self.before.get(change.key)
            if given != previous:  # else it is stored already: a replay, or news that moved nothing
                remember[change.key] = scored
            if change.kind == "unchanged" and previous is not None and not given.same(previous):
                version = reprioritized_version(change.key, given)
                out.append(change._replace(kind="reprioritized", version=version))
            else:
                out.append(change)
        store = self.prioritizer.store
        if remember:
            store.set_image_priorities([remember[key] for key in sorted(remember)])
        if self.moved:
            rows = [r for r in store.image_vulnerabilities(self.moved) if r.key not in self.given]
            self.others = self.prioritizer.reprioritize(rows, self.now)
        return out


class Prioritizer:
    """Inventory and priority around the store, for one pipeline."""

    def __init__(self, store: Store, weights: priority.Weights, clock: Callable[[], int]) -> None:
        self.store = store
        self.weights = weights
        self.clock = clock

    def prepare(self, findings: Sequence[ocsf.Finding], now: int) -> Prepared:
        """Record the batch's image observations and apply a priority to each Vulnerability Finding."""
        contexts: list[ContainerContext] = []
        observed: list[inventory.Observations] = []
        latest = now + FUTURE_ALLOWANCE_MS
        for finding in findings:
            # One finding at a time: the observation reads what the context has just brought into
            # the CPU's cache, where a second pass over the batch would fetch every finding again.
            ctx = container_context(finding)
            contexts.append(ctx)
            observed.append(inventory.capped(inventory.observe(finding, ctx), latest))
        seen = [o for o in observed if not o.is_empty()]
        if not seen:
            return Prepared(list(findings), self, now, contexts=contexts)
        vulnerable = {o.vulnerable.key: o.vulnerable for o in observed if o.vulnerable is not None}
        digests = sorted({v.image for v in vulnerable.values() if v.image.startswith("sha256:")})
        # Read by key before the batch is recorded: the priorities these findings were last given.
        before = self.store.image_priorities(list(vulnerable.values())) if vulnerable else {}
        moved = self.store.record_images(seen, fresh_since=now - self.weights.window_ms)
        evidence = self.store.image_evidence(digests) if digests else {}
        prepared = Prepared([], self, now, before=before, moved=moved, contexts=contexts)
        for finding, seen_in in zip(findings, observed, strict=True):
            facts = seen_in.vulnerable
            if facts is None:
                prepared.findings.append(finding)
                continue
            given = self._score(facts, evidence, now)
            prepared.given[facts.key] = (facts, given)
            prepared.findings.append(priority.apply(finding, given))
        return prepared

    def _score(self, facts: inventory.Vulnerable, evidence: dict[str, ImageEvidence], now: int) -> priority.Priority:
        found = evidence.get(facts.image)
        where = (
            found.runtime(now=now, window_ms=self.weights.window_ms)
            if found is not None
            else priority.runtime(facts.image, [], [], now=now, window_ms=self.weights.window_ms)
        )
        return priority.score(facts, where, self.weights)

    def reprioritize(self, rows: Sequence[ImageVulnerability], now: int) -> list[Change]:
        """Recompute these findings' priorities; store and return a change for each that moved."""
        digests = sorted({r.vulnerable.image for r in rows if r.vulnerable.image.startswith("sha256:")})
        evidence = self.store.image_evidence(digests) if digests else {}
        moved: dict[FindingKey, tuple[inventory.Vulnerable, priority.Priority]] = {}
        documents: list[ocsf.Finding] = []
        for row in rows:
            given = self._score(row.vulnerable, evidence, now)
            if given.same(row.priority):
                continue
            stored = self.store.get(row.key)
            if stored is None or stored.closed:
                continue
            moved[row.key] = (row.vulnerable, given)
            documents.append(priority.apply(stored.document, given))
        if not documents:
            return []
        # Same content, new priority: the upsert finds the finding unchanged and keeps this document.
        stored_changes = self.store.upsert(documents, now=now)
        self.store.set_image_priorities([moved[key] for key in sorted(moved)])
        return [
            Change("reprioritized", c.key, reprioritized_version(c.key, moved[c.key][1]), c.finding, c.previous)
            for c in stored_changes
            if c.kind == "unchanged"
        ]

    def recompute(self) -> list[Change]:
        """Recompute every open finding whose image was last given as running (evidence may have aged out)."""
        rows = [r for r in self.store.image_vulnerabilities() if r.priority is not None and r.priority.running]
        return self.reprioritize(rows, self.clock())
