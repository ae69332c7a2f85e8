"""One image shape: the same image, by the same digest, gets the same OCSF image uid from every source."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.normalize import normalize

EVENTS = Path(__file__).resolve().parents[1] / "events"
DIGEST = "sha256:" + "c0ffee00" * 8
REFERENCE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.4.2"


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def image_uids(finding: dict[str, Any]) -> set[str]:
    """Every image uid a finding names: `image` objects, and Container Image resources."""
    found = {obj["image"]["uid"] for obj in _walk(finding) if isinstance(obj.get("image"), dict)}
    found |= {r["uid"] for r in finding.get("resources", []) if r.get("type") == "Container Image"}
    return found


def guardduty(digest: str | None) -> Any:
    event = json.loads((EVENTS / "aws/guardduty/eks-runtime-newbinaryexecuted-eventbridge.json").read_text())
    for obj in _walk(event):
        if isinstance(obj.get("image"), str):
            obj["image"] = REFERENCE + (f"@{digest}" if digest else "")
            obj.pop("imageUid", None)
    return event


def defender(digest: str | None) -> Any:
    doc = json.loads((EVENTS / "azure/defender/subassessment-acr-image-cve.pascalcase.json").read_text())
    for obj in _walk(doc):
        if "ImageDigest" in obj:
            obj["ImageDigest"] = digest
    return doc


def scc(digest: str | None) -> Any:
    doc = json.loads((EVENTS / "gcp/scc/gke-image-cve.notification.json").read_text())
    for obj in _walk(doc):
        if "imageId" in obj:
            obj["uri"] = REFERENCE
            obj["imageId"] = digest
    return doc


def inspector(digest: str | None) -> Any:
    event = json.loads((EVENTS / "aws/inspector/ecr-image-package-vulnerability.eventbridge.json").read_text())
    for obj in _walk(event):
        if "imageHash" in obj:
            obj["imageHash"] = digest
    return event


SOURCES: dict[str, Callable[[str | None], Any]] = {
    "aws.guardduty": guardduty,
    "azure.defender": defender,
    "gcp.scc": scc,
    "aws.inspector2": inspector,
}


def finding_of(doc: Any) -> dict[str, Any]:
    [outcome] = list(normalize(doc))
    assert outcome.finding is not None, outcome.error
    return outcome.finding


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_names_the_image_by_its_digest(source: str) -> None:
    finding = finding_of(SOURCES[source](DIGEST))
    assert finding["metadata"]["product"]["uid"] in (source, "microsoft.defender_for_cloud", "google.scc")
    assert image_uids(finding) == {DIGEST}


def test_the_same_image_gets_one_uid_from_all_four_sources() -> None:
    uids = {source: image_uids(finding_of(make(DIGEST))) for source, make in SOURCES.items()}
    assert set(uids) == {"aws.guardduty", "azure.defender", "gcp.scc", "aws.inspector2"}
    assert set().union(*uids.values()) == {DIGEST}


def test_without_a_digest_the_reference_without_digest_is_the_uid() -> None:
    assert image_uids(finding_of(guardduty(None))) == {REFERENCE}
    assert image_uids(finding_of(scc(None))) == {REFERENCE}
