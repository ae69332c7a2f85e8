"""Tests of the sinks; the helpers below build OCSF-shaped findings and compare golden files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from corral import ocsf, traits

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "sinks"
UPDATE = os.environ.get("CORRAL_GOLDEN_UPDATE") == "1"

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


def golden(kind: str, name: str, payload: Any) -> None:
    """Compare `payload` with tests/golden/sinks/<kind>/<name>.json (rewrite it when CORRAL_GOLDEN_UPDATE=1)."""
    path = GOLDEN / kind / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run the tests with CORRAL_GOLDEN_UPDATE=1 to write it"
    assert json.loads(path.read_text(encoding="utf-8")) == payload, f"render differs from {path}"
