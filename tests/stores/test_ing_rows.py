"""The upsert's hot path gives what the plain readings give, for every fixture and for odd shapes.

`_sql._finding_row` puts the values of `columns()` straight into the row, `Snapshot.of` builds its
record positionally, and the inventory parses each image and resource type once: each is pinned
here to the reading it replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import inventory, ocsf, reader, traits
from corral.context import container_context
from corral.normalize import normalize
from corral.stores import _shared, _sql
from corral.stores.base import TIMELESS_LABEL, Snapshot, columns, finding_id, fingerprint, is_closed

EVENTS = Path(__file__).resolve().parents[1] / "events"
RECEIVED = 1_767_225_600_000


def _fixture_findings() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EVENTS.rglob("*.json")):
        for document in reader.read(str(path)):
            if document.error is None:
                found += [o.finding for o in normalize(document.parsed, received_time=RECEIVED) if o.finding]
    return found


FINDINGS = _fixture_findings()


def _row_by_columns(
    key: tuple[str, str, str], finding: dict[str, Any], after: _sql.Current, text: bytes | None, ctx: Any
) -> tuple[Any, ...]:
    """The row as it was built before: through the Columns record."""
    cols = columns(finding, snapshot=after.snapshot, context=ctx)
    return (
        *key,
        *cols[:15],
        after.first_seen,
        after.last_seen,
        after.versions,
        _sql.dumps(_shared.trait_map(finding)),
        text.decode() if text is not None else _sql.dumps(finding),
        finding_id(key),
        cols.sample,
        cols.search,
        *_sql._order(after),
    )


def _snapshot_by_keyword(finding: dict[str, Any], fp: str) -> Snapshot:
    metadata = finding.get("metadata") or {}
    logged, sequence = metadata.get("logged_time"), metadata.get("sequence")
    return Snapshot(
        modified_time=ocsf.modified_time(finding),
        fingerprint=fp,
        severity_id=int(finding.get("severity_id", 0)),
        status_id=int(finding.get("status_id", 0)),
        closed=is_closed(finding),
        logged_time=logged if isinstance(logged, int) and not isinstance(logged, bool) else None,
        sequence=sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
        timeless=TIMELESS_LABEL in (metadata.get("labels") or ()),
    )


def _place_by_lowering(finding: dict[str, Any], ctx: Any) -> tuple[str, str, str]:
    """`inventory._place` as it was: every resource type lowered and searched each time."""
    cluster, namespace = ctx.cluster or "", ctx.namespace or ""
    workload = pod = ""
    for resource in inventory._dicts(finding.get("resources")):
        kind = inventory._text(resource.get("type")).lower()
        name = inventory._text(resource.get("name"))
        if not name:
            continue
        if not cluster and kind in inventory._SERVICE_TYPES:
            cluster = name
        if kind.startswith("kubernetes ") and inventory._WORKLOAD.search(kind):
            workload = workload or name
        elif kind == "kubernetes pod":
            pod = pod or name
        elif kind == "aws::ecs::task":
            definition = inventory._text(inventory._mapping(resource.get("data")).get("definition_arn"))
            workload = workload or definition.rpartition("/")[2].partition(":")[0]
    return cluster, namespace, workload or pod or ctx.pod or ctx.container or ""


def test_there_are_fixtures() -> None:
    assert len(FINDINGS) > 50


@pytest.mark.parametrize("with_context", [True, False])
@pytest.mark.parametrize("with_text", [True, False])
def test_finding_row_is_the_columns_row(with_context: bool, with_text: bool) -> None:
    for n, finding in enumerate(FINDINGS):
        key = ocsf.identity(finding)
        snapshot = Snapshot.of(finding, now=None).accepted(("a", "b"))
        after = _sql.Current(snapshot, 5, 7 + n, 3)
        text = orjson.dumps(finding) if with_text else None
        ctx = container_context(finding) if with_context else None
        assert _sql._finding_row(key, finding, after, text, ctx) == _row_by_columns(key, finding, after, text, ctx)


def test_snapshot_is_the_keyword_snapshot() -> None:
    for finding in FINDINGS:
        fp = fingerprint(finding)
        assert Snapshot.of(finding, fp, now=None) == _snapshot_by_keyword(finding, fp)
        assert Snapshot.of(finding, now=None) == _snapshot_by_keyword(finding, fp)


def _observe_uncached(finding: dict[str, Any]) -> inventory.Observations:
    inventory._IMAGES.clear()
    inventory._PLACE_KINDS.clear()
    return inventory.observe(finding)


def test_observations_do_not_depend_on_the_caches() -> None:
    for finding in FINDINGS:
        ctx = container_context(finding)
        assert inventory._place(finding, ctx) == _place_by_lowering(finding, ctx)
    warm = [inventory.observe(f, container_context(f)) for f in FINDINGS]
    again = [inventory.observe(f, container_context(f)) for f in FINDINGS]
    cold = [_observe_uncached(f) for f in FINDINGS]
    assert warm == again == cold


_TEXT = st.one_of(st.none(), st.integers(), st.sampled_from(["", "sha256:" + "ab" * 32]), st.text(max_size=12))
_KIND = st.one_of(
    st.sampled_from(
        [
            "Kubernetes Pod",
            "kubernetes deployment",
            "AWS::ECS::Task",
            "run.googleapis.com/Service",
            "Other",
            "",
            None,
            3,
        ]
    ),
    st.text(max_size=16),
)


@settings(max_examples=300, deadline=None)
@given(
    uid=_TEXT,
    name=st.one_of(_TEXT, st.sampled_from(["repo/app:1.0", "registry.io/team/app@sha256:" + "cd" * 32])),
    tag=_TEXT,
    kinds=st.lists(st.tuples(_KIND, _TEXT), max_size=4),
)
def test_image_and_place_match_their_parsing(uid: object, name: object, tag: object, kinds: list[Any]) -> None:
    image = {"uid": uid, "name": name, "tag": tag}
    expected = inventory._parse_image(
        inventory._text(uid), inventory._text(name), inventory._text(tag), "", "example.azurecr.io"
    )
    assert inventory._image(image, host="example.azurecr.io") == expected
    assert inventory._image(image, host="example.azurecr.io") == expected
    finding = {"resources": [{"type": kind, "name": text, "data": {}} for kind, text in kinds]}
    ctx = container_context(finding)
    assert inventory._place(finding, ctx) == _place_by_lowering(finding, ctx)
    inventory._PLACE_KINDS.clear()
    assert inventory._place(finding, ctx) == _place_by_lowering(finding, ctx)
    for kind, _ in kinds:
        if isinstance(kind, str):
            lowered = kind.lower()
            flags = inventory._place_kind(kind)
            assert flags[0] == (lowered in inventory._SERVICE_TYPES)
            assert flags[2] == (lowered == "kubernetes pod")


def test_trait_classification_read_once_matches() -> None:
    for finding in FINDINGS:
        row = _sql._finding_row(
            ocsf.identity(finding), finding, _sql.Current(Snapshot.of(finding, now=None), 1, 1, 1), None, None
        )
        classification = traits.read(finding)
        assert row[10:13] == (
            classification.get(traits.SERVICE),
            classification.get(traits.LAYER),
            classification.get(traits.TASK),
        )
