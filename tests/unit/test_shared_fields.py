"""The envelope, the traits and the container context every finding shares, pinned to their
straightforward readings: same values, same key order, fresh objects per finding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import context, ocsf, traits


def _envelope(**kw: Any) -> dict[str, Any]:
    product = dict(kw["product"])
    metadata: dict[str, Any] = {"version": ocsf.VERSION, "profiles": list(ocsf.PROFILES), "product": product}
    if kw.get("delivery_id"):
        metadata["uid"] = kw["delivery_id"]
    if kw.get("log_name"):
        metadata["log_name"] = kw["log_name"]
    class_uid, activity_id, severity_id = kw["class_uid"], kw["activity_id"], kw["severity_id"]
    vendor = kw.get("vendor_severity")
    return {
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": class_uid,
        "class_name": ocsf.CLASS_NAMES[class_uid],
        "activity_id": activity_id,
        "activity_name": ocsf.ACTIVITY_NAMES[activity_id],
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{ocsf.CLASS_NAMES[class_uid]}: {ocsf.ACTIVITY_NAMES[activity_id]}",
        "time": kw["time"],
        "severity_id": severity_id,
        "severity": str(vendor) if severity_id == 99 and vendor is not None else ocsf.SEVERITY_NAMES[severity_id],
        "status_id": kw["status_id"],
        "status": ocsf.STATUS_NAMES[kw["status_id"]],
        "metadata": metadata,
    }


@settings(max_examples=500, deadline=None)
@given(
    class_uid=st.sampled_from(sorted(ocsf.CLASS_NAMES)),
    activity_id=st.sampled_from(sorted(ocsf.ACTIVITY_NAMES)),
    severity_id=st.sampled_from(sorted(ocsf.SEVERITY_NAMES)),
    vendor_severity=st.one_of(st.none(), st.text(max_size=5), st.integers()),
    status_id=st.sampled_from(sorted(ocsf.STATUS_NAMES)),
    delivery_id=st.one_of(st.none(), st.just(""), st.text(max_size=5)),
    log_name=st.one_of(st.none(), st.just(""), st.text(max_size=5)),
)
def test_envelope_is_the_plain_reading(**kw: Any) -> None:
    kw.update(time=1_717_147_358_760, product={"name": "GuardDuty", "feature": {"name": "x"}})
    made = ocsf.envelope(**kw)
    assert orjson.dumps(made) == orjson.dumps(_envelope(**kw))
    made["time"] = 0
    made["metadata"]["profiles"].append("x")
    assert orjson.dumps(ocsf.envelope(**kw)) == orjson.dumps(_envelope(**kw))


def _classify(service: str, layer: str, task: str, sample: bool) -> list[dict[str, Any]]:
    pairs = [("container_service", service), ("layer", layer), ("task", task)]
    pairs += [("sample", "true")] if sample else []
    return [{"uid": f"corral.{n}", "name": n, "category": "corral.classification", "values": [v]} for n, v in pairs]


@pytest.mark.parametrize("sample", [False, True])
@pytest.mark.parametrize("service", [*traits.CONTAINER_SERVICES, traits.NO_SERVICE])
def test_classify_is_the_plain_reading(service: str, sample: bool) -> None:
    for layer in traits.LAYERS:
        for task in traits.TASKS:
            made = traits.classify(service, layer, task, sample=sample)
            assert orjson.dumps(made) == orjson.dumps(_classify(service, layer, task, sample))
            made[0]["values"].append("x")
            assert traits.classify(service, layer, task, sample=sample)[0]["values"] == [service]


@pytest.mark.parametrize(
    ("service", "layer", "task", "message"),
    [
        ("EKS ", traits.PLATFORM, traits.HARDENING, "container service"),
        (traits.EKS, "os", traits.HARDENING, "layer"),
        (traits.EKS, traits.PLATFORM, "triage", "task"),
        ("x", "y", "z", "container service"),
    ],
)
def test_classify_refuses_unknown_words(service: str, layer: str, task: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        traits.classify(service, layer, task)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _context(finding: Mapping[str, Any]) -> tuple[str | None, ...]:
    """`container_context` as first written: two passes, every field read."""
    cluster = namespace = pod = image = digest = None
    resources = finding.get("resources")
    for resource in resources if isinstance(resources, list) else ():
        if not isinstance(resource, Mapping):
            continue
        kind = str(resource.get("type", "")).lower()
        name, uid = _text(resource.get("name")), _text(resource.get("uid"))
        namespace = namespace or _text(resource.get("namespace"))
        if cluster is None and "cluster" in kind:
            cluster = name or uid
        elif pod is None and "pod" in kind:
            pod = name or uid
        elif namespace is None and "namespace" in kind:
            namespace = name or uid
        if kind == "container image":
            digest = digest or (uid if uid and uid.startswith("sha256:") else None)
            image = image or name
    found = []
    evidences = finding.get("evidences")
    for evidence in evidences if isinstance(evidences, list) else ():
        if isinstance(evidence, Mapping):
            for holder in (evidence, evidence.get("process"), evidence.get("device")):
                if isinstance(holder, Mapping) and isinstance(holder.get("container"), Mapping):
                    found.append(holder["container"])
    device = finding.get("device")
    if isinstance(device, Mapping) and isinstance(device.get("container"), Mapping):
        found.append(device["container"])
    container = orchestrator = None
    for box in found:
        container = container or _text(box.get("name"))
        orchestrator = orchestrator or _text(box.get("orchestrator"))
        img = box.get("image")
        if isinstance(img, Mapping):
            name, tag = _text(img.get("name")), _text(img.get("tag"))
            image = image or (f"{name}:{tag}" if name and tag and ":" not in name else name)
            uid = _text(img.get("uid"))
            if digest is None and uid and uid.startswith("sha256:"):
                digest = uid
    return (cluster, namespace, pod, container, image, digest, orchestrator)


_WORDS = st.one_of(st.none(), st.just(""), st.integers(0, 2), st.sampled_from(["a", "b:1", "sha256:ab", "1.2"]))
_KIND = st.one_of(
    _WORDS, st.sampled_from(["Kubernetes Cluster", "pod", "NAMESPACE", "container image", "Container Image", "x"])
)
_RESOURCE = st.one_of(
    st.fixed_dictionaries({}, optional={"type": _KIND, "name": _WORDS, "uid": _WORDS, "namespace": _WORDS}), _WORDS
)
_IMAGE = st.one_of(_WORDS, st.fixed_dictionaries({}, optional={"name": _WORDS, "tag": _WORDS, "uid": _WORDS}))
_CONTAINER = st.one_of(
    _WORDS, st.fixed_dictionaries({}, optional={"name": _WORDS, "orchestrator": _WORDS, "image": _IMAGE})
)
_HOLDER = st.one_of(_WORDS, st.fixed_dictionaries({}, optional={"container": _CONTAINER}))
_EVIDENCE = st.one_of(
    _WORDS, st.fixed_dictionaries({}, optional={"container": _CONTAINER, "process": _HOLDER, "device": _HOLDER})
)
_FINDING = st.fixed_dictionaries(
    {},
    optional={
        "resources": st.one_of(_WORDS, st.lists(_RESOURCE, max_size=5)),
        "evidences": st.one_of(_WORDS, st.lists(_EVIDENCE, max_size=5)),
        "device": _HOLDER,
    },
)


@settings(max_examples=3000, deadline=None)
@given(_FINDING)
def test_container_context_is_the_plain_reading(finding: dict[str, Any]) -> None:
    assert tuple(context.container_context(finding)) == _context(finding)
