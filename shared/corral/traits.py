"""The classification every finding carries in `finding_info.traits`.

Three questions a security architect asks of every finding: which container service does it
concern, at which layer (infrastructure, platform, application), and which task does it serve
(hardening, vulnerability management, threat detection)? Routing, queries and the coverage
matrix all read the answers from here, so the vocabulary is fixed in this one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

EKS: Final = "EKS"
ECS_EC2: Final = "ECS on EC2"
ECS_FARGATE: Final = "ECS on Fargate"
AKS: Final = "AKS"
CONTAINER_APPS: Final = "Azure Container Apps"
FUNCTION_APPS: Final = "Azure Function Apps"
GKE: Final = "GKE"
CLOUD_RUN: Final = "Cloud Run"
NO_SERVICE: Final = "none"
CONTAINER_SERVICES: Final = (EKS, ECS_EC2, ECS_FARGATE, AKS, CONTAINER_APPS, FUNCTION_APPS, GKE, CLOUD_RUN)
SERVICE_GROUPS: Final = {"ECS": (ECS_EC2, ECS_FARGATE)}
"""A name a route condition may use for several container services: "ECS" is ECS on either launch type."""
SERVICE_CLOUD: Final = {
    EKS: "AWS",
    ECS_EC2: "AWS",
    ECS_FARGATE: "AWS",
    AKS: "Azure",
    CONTAINER_APPS: "Azure",
    FUNCTION_APPS: "Azure",
    GKE: "GCP",
    CLOUD_RUN: "GCP",
}

INFRASTRUCTURE: Final = "infrastructure"
PLATFORM: Final = "platform"
APPLICATION: Final = "application"
LAYERS: Final = (INFRASTRUCTURE, PLATFORM, APPLICATION)

HARDENING: Final = "hardening"
VULNERABILITY_MANAGEMENT: Final = "vulnerability management"
THREAT_DETECTION: Final = "threat detection"
TASKS: Final = (HARDENING, VULNERABILITY_MANAGEMENT, THREAT_DETECTION)

SERVICE: Final = "container_service"
LAYER: Final = "layer"
TASK: Final = "task"
SAMPLE: Final = "sample"
_CATEGORY: Final = "corral.classification"
_SERVICE_UID: Final = f"corral.{SERVICE}"
_LAYER_UID: Final = f"corral.{LAYER}"
_TASK_UID: Final = f"corral.{TASK}"
_SAMPLE_UID: Final = f"corral.{SAMPLE}"
# Every valid classification, so that a finding's costs one set lookup.
_VALID: Final = frozenset(
    (service, layer, task) for service in (*CONTAINER_SERVICES, NO_SERVICE) for layer in LAYERS for task in TASKS
)


def classify(service: str, layer: str, task: str, *, sample: bool = False) -> list[dict[str, Any]]:
    """Return the `finding_info.traits` list for one finding.

    Example:
        >>> classify(EKS, PLATFORM, THREAT_DETECTION)[0]["values"]
        ['EKS']
    """
    if (service, layer, task) not in _VALID:
        if service != NO_SERVICE and service not in CONTAINER_SERVICES:
            raise ValueError(f"unknown container service {service!r}")
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        raise ValueError(f"unknown task {task!r}")
    # Literal dicts with constant keys: every finding gets its own, built without f-strings.
    made = [
        {"uid": _SERVICE_UID, "name": SERVICE, "category": _CATEGORY, "values": [service]},
        {"uid": _LAYER_UID, "name": LAYER, "category": _CATEGORY, "values": [layer]},
        {"uid": _TASK_UID, "name": TASK, "category": _CATEGORY, "values": [task]},
    ]
    if sample:
        made.append({"uid": _SAMPLE_UID, "name": SAMPLE, "category": _CATEGORY, "values": ["true"]})
    return made


def read(finding: Mapping[str, Any]) -> dict[str, str]:
    """Return a finding's classification as {name: value}, e.g. {"container_service": "EKS", ...}."""
    traits = finding.get("finding_info", {}).get("traits", [])
    return {
        t["name"]: t["values"][0]
        for t in traits
        if isinstance(t, dict) and t.get("category") == _CATEGORY and t.get("values")
    }


def is_sample(finding: Mapping[str, Any]) -> bool:
    """True for vendor-generated sample findings (GuardDuty "Generate sample findings")."""
    return read(finding).get(SAMPLE) == "true"
