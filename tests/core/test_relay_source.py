"""The relay source: OCSF findings relayed by another Corral pass through, checked but unchanged."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from corral import ocsf, priority
from corral.errors import MalformedEventError
from corral.sources import relay
from tests.stores.factory import make_finding

Edit = Callable[[dict[str, Any]], None]


@pytest.mark.parametrize("class_uid", sorted(ocsf.CLASS_NAMES))
def test_relayed_finding_passes_through_unchanged(class_uid: int) -> None:
    """A complete relayed finding of each class Corral emits is returned equal and unmodified."""
    finding = make_finding(class_uid=class_uid, delivery_id="first-hop")
    before = copy.deepcopy(finding)
    assert relay.recognizes(finding)
    result = relay.normalize(finding, "second-hop", received_time=1)
    assert result == before
    assert finding == before


def _set(path: tuple[str, ...], value: object) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


def _drop(path: tuple[str, ...]) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_set(("class_uid",), 1001), "class_uid"),
        (_set(("class_uid",), "2004"), "class_uid"),
        (_set(("metadata", "version"), "1.1.0"), "OCSF"),
        (_set(("metadata", "version"), None), "OCSF"),
        (_drop(("metadata", "product")), "identity"),
        (_drop(("cloud",)), "identity"),
        (_drop(("cloud", "account", "uid")), "identity"),
        (_set(("cloud",), ["not", "an", "object"]), "identity"),
        (_drop(("finding_info", "uid")), "identity"),
        (_set(("finding_info", "uid"), ""), "empty identity"),
        (_set(("metadata", "product", "uid"), 42), "empty identity"),
        (_set(("cloud", "account", "uid"), ""), "empty identity"),
        (_set(("finding_info", "modified_time"), "yesterday"), "time"),
        (_set(("finding_info", "modified_time"), {"t": 1}), "time"),
        # No vendor time is read as 2**62 ms: beyond any date a sink or page could write.
        (_set(("finding_info", "modified_time"), 2**62), "finding_info.modified_time"),
        (_set(("finding_info", "modified_time"), "1767225600000"), "finding_info.modified_time"),
        (_set(("finding_info", "modified_time"), 1767225600000.5), "finding_info.modified_time"),
        (_set(("finding_info", "modified_time"), True), "finding_info.modified_time"),
        (_set(("time",), 2**62), "relayed finding time"),
        (_set(("time",), -1), "relayed finding time"),
        (_drop(("time",)), "relayed finding time"),
        (_set(("finding_info", "created_time"), 10**13), "finding_info.created_time"),
        (_set(("finding_info", "last_seen_time"), 1767225600), "finding_info.last_seen_time"),
        (_set(("finding_info", "first_seen_time"), "now"), "finding_info.first_seen_time"),
    ],
)
def test_broken_relayed_finding_is_malformed(edit: Edit, reason: str) -> None:
    """Wrong class, wrong OCSF version or a missing identity is a MalformedEventError with a reason."""
    finding = make_finding()
    edit(finding)
    assert relay.recognizes(finding)
    with pytest.raises(MalformedEventError, match=reason):
        relay.normalize(finding)


@pytest.mark.parametrize(
    "doc",
    [
        {"class_uid": 2004, "finding_info": {}},
        {"metadata": {"version": "1.8.0"}, "finding_info": {}},
        {"metadata": {"version": "1.8.0"}, "class_uid": 2004},
        {"metadata": "1.8.0", "class_uid": 2004, "finding_info": {}},
    ],
)
def test_documents_without_ocsf_markers_are_not_relayed_findings(doc: dict[str, Any]) -> None:
    """Only documents with class_uid, metadata.version and finding_info are recognized."""
    assert not relay.recognizes(doc)


def test_a_relayed_detection_cannot_carry_a_priority() -> None:
    """Priority fields and traits, which routes match on, are Corral's to give, and only to Vulnerability Findings."""
    forged = priority.apply(make_finding("gd-1"), priority.Priority(4, 99, "running", True, "forged"))
    out = relay.normalize(forged)
    assert isinstance(out, dict)
    assert not set(priority.FIELDS) & set(out)
    assert priority.read(out) == (None, None)
    kept = [t for t in out["finding_info"]["traits"] if t.get("category") != priority.TRAIT_CATEGORY]
    assert out["finding_info"]["traits"] == kept and kept  # the finding's own traits stay
    cve = dict(forged, class_uid=ocsf.VULNERABILITY)
    assert relay.normalize(cve) == cve  # the hub prioritizes a Vulnerability Finding itself
