"""What the sink tests share: OCSF-shaped findings and deliveries, golden files, canary checks.

`make_finding` (a GuardDuty reverse shell) and `finding` (a privileged EKS container, every part
changeable) build Detection Findings; `make_delivery` and `numbered` wrap them in Deliveries.
`check_golden` compares bytes and `golden` a JSON document with tests/golden/sinks/<kind>/<name>;
both rewrite the file instead when CORRAL_GOLDEN_UPDATE=1. `assert_no_canary` checks that a
secret appears in no Result, log record or request a fake server received.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from corral import ocsf, traits
from corral.sinks.base import Delivery, Result
from corral.stores.base import ChangeKind
from tests.support.fake_http import Recorded

# --- Findings -----------------------------------------------------------------------------------


def make_finding(
    *,
    uid: str = "arn:aws:guardduty:eu-west-1:111122223333:detector/d1/finding/f1",
    title: str = "Reverse shell in a container",
    desc: str = "A process in the container opened a reverse shell to 198.51.100.7.",
    severity_id: int = 4,
    status_id: int = 1,
    time: int = 1_704_164_645_123,
    cluster: str = "prod-eks",
    namespace: str = "payments",
    image: str = "registry.example/payments/api:1.4.2",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an OCSF Detection Finding with cloud and container context."""
    finding = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=ocsf.CREATE,
        time=time,
        severity_id=severity_id,
        status_id=status_id,
        product={"name": "GuardDuty", "vendor_name": "AWS", "uid": "aws.guardduty"},
        delivery_id=None,
    )
    finding["cloud"] = {
        "provider": "AWS",
        "region": "eu-west-1",
        "account": {"uid": "111122223333", "type_id": 10, "type": "AWS Account"},
    }
    finding["finding_info"] = {
        "uid": uid,
        "title": title,
        "desc": desc,
        "types": ["Execution:Runtime/ReverseShell"],
        "modified_time": time,
        "traits": traits.classify(traits.EKS, traits.PLATFORM, traits.THREAT_DETECTION),
    }
    finding["resources"] = [
        {"type": "EKS Cluster", "name": cluster, "uid": f"arn:aws:eks:eu-west-1:111122223333:cluster/{cluster}"},
        {"type": "Pod", "name": "api-7d9f", "namespace": namespace},
    ]
    finding["evidences"] = [
        {
            "process": {
                "name": "sh",
                "pid": 4242,
                "container": {"name": "api", "image": {"name": image, "uid": "sha256:" + "ab" * 32}},
            }
        }
    ]
    finding.update(extra or {})
    return finding


def make_delivery(
    sink: str,
    *,
    version: str = "9f2c" * 16,
    change: ChangeKind = "new",
    finding: dict[str, Any] | None = None,
    **finding_args: Any,
) -> Delivery:
    """Return a Delivery of `finding` (or of `make_finding(**finding_args)`) to `sink`."""
    return Delivery(sink=sink, version=version, change=change, finding=finding or make_finding(**finding_args))


def numbered(sink: str, n: int, **finding_args: Any) -> list[Delivery]:
    """Return `n` deliveries to `sink` of findings "finding-0", "finding-1", ..., versions 0, 1, ... (64 hex digits)."""
    return [make_delivery(sink, version=f"{i:064x}", uid=f"finding-{i}", **finding_args) for i in range(n)]


HOSTILE_TEXTS: tuple[str, ...] = (
    "line one\nline two\r\nline three",
    'quote " and \\" backslash \\ done',
    "pipe | equals = caret ^ hash # percent %",
    "NUL \x00 inside and \x1b[31m escape",
    "RTL \u202e override \u202d and zero-width \u200b",
    "header-ish\r\nX-Injected: 1\r\n\r\nbody",
    '{"create":{"_index":"evil","_id":"x"}}\n{"pwn":1}\n',
    "A" * 100_000,
    "é漢🙂" * 20_000,
)
"""Attacker-controlled titles and descriptions that must not break any payload."""

DIGEST = "sha256:" + "3f" * 32
ECR = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/payments-api"
CONSOLE = "https://eu-west-1.console.aws.amazon.com/guardduty/home?region=eu-west-1#/findings?search=id%3D7c2a"


def finding(
    *,
    title: str = "Container launched with a privileged security context",
    desc: str = "A privileged container was started in pod api-7d9f in namespace payments.",
    severity_id: int = 5,
    status_id: int = ocsf.STATUS_NEW,
    provider: str = "AWS",
    account: str = "111122223333",
    region: str | None = "eu-west-1",
    service: str = traits.EKS,
    cluster: str | None = "prod-eks",
    namespace: str | None = "payments",
    pod: str | None = "api-7d9f",
    container: str | None = "api",
    image: tuple[str, str, str] | None = (ECR, "1.4.2", DIGEST),
    types: list[str] | None = None,
    src_url: str | None = CONSOLE,
    product: tuple[str, str] = ("GuardDuty", "aws.guardduty"),
    uid: str = "7c2a9e0b1d4f",
    sample: bool = False,
) -> dict[str, Any]:
    """Return an OCSF Detection Finding with EKS container context; every part can be changed."""
    doc = ocsf.envelope(
        class_uid=ocsf.DETECTION,
        activity_id=ocsf.CREATE,
        time=1_717_000_000_000,
        severity_id=severity_id,
        status_id=status_id,
        product={"name": product[0], "vendor_name": provider, "uid": product[1]},
        delivery_id=None,
    )
    doc["cloud"] = ocsf.cloud(provider, account, region)
    doc["finding_info"] = ocsf.prune(
        {
            "uid": uid,
            "title": title,
            "desc": desc,
            "types": ["PrivilegeEscalation:Kubernetes/PrivilegedContainer"] if types is None else types,
            "src_url": src_url,
            "traits": traits.classify(service, traits.PLATFORM, traits.THREAT_DETECTION, sample=sample),
        }
    )
    resources = []
    if cluster:
        resources.append(
            {"type": "AWS::EKS::Cluster", "name": cluster, "uid": f"arn:aws:eks:{region}:{account}:cluster/{cluster}"}
        )
    if pod:
        resources.append({"type": "Kubernetes Pod", "name": pod, "namespace": namespace})
    elif namespace:
        resources.append({"type": "Kubernetes Namespace", "name": namespace})
    if resources:
        doc["resources"] = resources
    if container or image:
        box: dict[str, Any] = {"name": container}
        if image:
            box["image"] = {"name": image[0], "tag": image[1], "uid": image[2]}
        doc["evidences"] = [{"process": {"name": "runc", "pid": 4242, "container": ocsf.prune(box)}}]
    return doc


AZURE_ALERT = "https://portal.azure.com/#blade/Microsoft_Azure_Security/AlertBlade/alertId/2517"

AKS_DEFENDER: dict[str, Any] = {
    "provider": "Azure",
    "account": "5f1c2a00-0000-4000-8000-00000000abcd",
    "region": "westeurope",
    "service": traits.AKS,
    "cluster": "aks-prod",
    "namespace": "kube-system",
    "pod": "coredns-5d78c9869d-abcde",
    "container": "coredns",
    "image": ("mcr.microsoft.com/oss/kubernetes/coredns", "v1.9.4", "sha256:" + "ab" * 32),
    "types": ["K8S_PrivilegedContainer"],
    "src_url": AZURE_ALERT,
    "product": ("Microsoft Defender for Cloud", "azure.defender"),
    "severity_id": 4,
    "title": "Privileged container detected",
}
"""`finding` arguments for a Defender for Cloud alert on an AKS cluster (the chat renders' Azure case)."""


# --- Golden files -------------------------------------------------------------------------------

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "sinks"


def _golden_file(kind: str, name: str, data: bytes) -> Path | None:
    """Return tests/golden/sinks/<kind>/<name>, or write `data` there and return None when updating."""
    path = GOLDEN_DIR / kind / name
    if os.environ.get("CORRAL_GOLDEN_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return None
    assert path.is_file(), f"missing golden file {path}; run the tests with CORRAL_GOLDEN_UPDATE=1 and review the diff"
    return path


def check_golden(kind: str, name: str, data: bytes) -> None:
    """Compare `data` with tests/golden/sinks/<kind>/<name> byte for byte (rewrite it when updating)."""
    path = _golden_file(kind, name, data)
    if path is not None:
        assert data == path.read_bytes(), (
            f"{path} differs; if the change is intended, rerun with CORRAL_GOLDEN_UPDATE=1"
        )


def golden(kind: str, name: str, payload: Any) -> None:
    """Compare `payload` with the JSON of tests/golden/sinks/<kind>/<name>.json (rewrite it when updating)."""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    path = _golden_file(kind, f"{name}.json", text.encode("utf-8"))
    if path is not None:
        assert json.loads(path.read_text(encoding="utf-8")) == payload, f"render differs from {path}"


# --- Canary secrets -----------------------------------------------------------------------------


def assert_no_canary(
    canary: str,
    results: Iterable[Result],
    caplog: pytest.LogCaptureFixture,
    requests: Iterable[Recorded] = (),
    *,
    in_path: bool = True,
) -> None:
    """Assert `canary` is in no Result.error, no captured log record and no request body (nor path,
    unless `in_path` is False: where the secret is the path itself)."""
    assert all(canary not in (r.error or "") for r in results)
    assert all(canary not in record.getMessage() for record in caplog.records), [
        r.getMessage() for r in caplog.records if canary in r.getMessage()
    ]
    for request in requests:
        assert canary.encode() not in request.body
        assert not in_path or canary not in request.path
