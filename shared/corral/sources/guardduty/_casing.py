"""Turn a PascalCase GuardDuty finding (AWS CLI / boto3 `GetFindings`) into the camelCase one.

EventBridge, S3 exports and the REST API speak camelCase; the SDKs rename every member to
PascalCase. Lower-casing the first letter restores almost every name; the exceptions below are
the members whose wire name differs from the SDK name (botocore's `locationName`), and the
maps whose keys are data, not member names.
"""

from __future__ import annotations

from typing import Any, Final

# SDK member name -> wire name, wherever the member appears inside a Finding.
_RENAMED: Final = {
    "SourceIps": "sourceIPs",
    "Latitude": "lat",
    "Longitude": "lon",
    "Code": "productCodeId",
    "ProductType": "productCodeType",
    "KubernetesResourcesTypes": "type",
    "TaskCreatedAt": "createdAt",
}

# Renames that hold only inside one parent (by the parent's SDK name).
_RENAMED_IN: Final = {
    ("Account", "Name"): "account",
    ("Ec2Instance", "IamInstanceProfile"): "IamInstanceProfile",
}

# Wire names already worked out, by SDK name, for names whose wire name does not depend on the
# parent. Bounded: keys of maps that are not data-keyed above could be anything.
_WIRE_NAMES: dict[str, str] = {}
_MAX_WIRE_NAMES: Final = 4096
_CONTEXTUAL: Final = frozenset(name for _, name in _RENAMED_IN)
_CONTAINERS: Final = (dict, list)

# Members whose value is a map keyed by data (API names, profile names): how many levels of
# keys to keep as they are before member names resume.
_DATA_KEYED: Final = {"AffectedResources": 1, "Profiles": 2, "Behavior": 2}


def wire_name(name: str, parent: str | None = None) -> str:
    """Return the camelCase wire name of the SDK member `name` (inside `parent`, if known).

    Example:
        >>> wire_name("EksClusterDetails"), wire_name("SourceIps"), wire_name("HostIPC")
        ('eksClusterDetails', 'sourceIPs', 'hostIPC')
    """
    known = _WIRE_NAMES.get(name)
    if known is not None:
        return known
    if name in _CONTEXTUAL:
        contextual = _RENAMED_IN.get((parent or "", name))
        if contextual is not None:
            return contextual
    wire = _RENAMED.get(name) or name[:1].lower() + name[1:]
    if name not in _CONTEXTUAL and len(_WIRE_NAMES) < _MAX_WIRE_NAMES:
        _WIRE_NAMES[name] = wire
    return wire


def is_pascal_finding(doc: dict[str, Any]) -> bool:
    """True when `doc` is a finding as the SDKs return it (`Arn`, not `arn`)."""
    return isinstance(doc.get("Arn"), str) and "arn" not in doc


def camel_finding(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the camelCase form of a PascalCase finding; values are kept as they are."""
    return _convert_mapping(doc, None)


def _convert(value: Any, parent: str | None) -> Any:
    if isinstance(value, dict):
        return _convert_mapping(value, parent)
    if isinstance(value, list):
        return [_convert(item, parent) if isinstance(item, _CONTAINERS) else item for item in value]
    return value


def _convert_mapping(doc: dict[Any, Any], parent: str | None) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    known = _WIRE_NAMES.get
    for key, value in doc.items():
        wire = known(key)
        if wire is not None and not isinstance(value, _CONTAINERS):
            out[wire] = value  # most members: a known name and a plain value
            continue
        if not isinstance(key, str):
            out[key] = value
            continue
        depth = _DATA_KEYED.get(key)
        if depth:
            converted = _keep_keys(value, depth)
        elif isinstance(value, _CONTAINERS):
            converted = _convert(value, key)
        else:
            converted = value  # most values: no call needed
        out[wire or wire_name(key, parent)] = converted
    return out


def _keep_keys(value: Any, depth: int) -> Any:
    # Keys of a data-keyed map are user data (e.g. "AWS::IAM::Role"): keep them, convert below.
    if not isinstance(value, dict):
        return _convert(value, None)
    if depth <= 1:
        return {k: _convert(v, None) for k, v in value.items()}
    return {k: _keep_keys(v, depth - 1) for k, v in value.items()}
