"""Validate findings against the official OCSF 1.8.0 JSON Schema, plus the checks it cannot make.

The schema comes from `ocsf-json-schema` (the official schema.ocsf.io export) and is compiled
with `fastjsonschema` once per class per test session (about 2 s each).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from corral import ocsf

CLASS_SCHEMA_NAMES = {2002: "vulnerability_finding", 2003: "compliance_finding", 2004: "detection_finding"}
TIME_FIELDS = ("time", "created_time", "modified_time", "first_seen_time", "last_seen_time", "start_time", "end_time")


def _escape_dollar_in_patterns(node: Any) -> Any:
    # fastjsonschema rewrites every unescaped '$' in a pattern to '\Z'; OCSF's email_t regex has
    # one inside a character class, which then fails to compile.
    if isinstance(node, dict):
        return {
            k: (v.replace("!#$%", "!#\\$%") if k == "pattern" and isinstance(v, str) else _escape_dollar_in_patterns(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_escape_dollar_in_patterns(v) for v in node]
    return node


@functools.cache
def _generator() -> OcsfJsonSchemaEmbedded:
    return OcsfJsonSchemaEmbedded(get_ocsf_schema(version=ocsf.VERSION))


@functools.cache
def validator(class_uid: int) -> Callable[[Any], Any]:
    """Return the compiled JSON Schema validator for one finding class with cloud+container."""
    schema = _generator().get_class_schema(CLASS_SCHEMA_NAMES[class_uid], list(ocsf.PROFILES))
    return fastjsonschema.compile(_escape_dollar_in_patterns(schema))


def _timestamps(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("unmapped", "raw_data", "data"):
                continue
            here = f"{path}.{key}" if path else key
            if key in TIME_FIELDS or key.endswith("_time"):
                found.append((here, value))
            found += _timestamps(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _timestamps(value, f"{path}[{i}]")
    return found


def problems(finding: Mapping[str, Any]) -> list[str]:
    """Return every way `finding` falls short of OCSF 1.8.0 (empty when valid)."""
    found: list[str] = []
    class_uid = finding.get("class_uid")
    if class_uid not in CLASS_SCHEMA_NAMES:
        return [f"class_uid {class_uid!r} is not a finding class Corral emits"]
    try:
        validator(class_uid)(finding)
    except fastjsonschema.JsonSchemaValueException as exc:
        found.append(f"schema: {exc.message}")
    activity = finding.get("activity_id")
    if finding.get("type_uid") != class_uid * 100 + (activity or 0):
        found.append(f"type_uid {finding.get('type_uid')} != class_uid*100 + activity_id")
    if finding.get("category_uid") != class_uid // 1000:
        found.append("category_uid does not match class_uid")
    sev = finding.get("severity_id")
    if sev != 99 and finding.get("severity") != ocsf.SEVERITY_NAMES.get(sev):
        found.append(f"severity {finding.get('severity')!r} is not the caption of {sev}")
    status_id = finding.get("status_id")
    if status_id is not None and status_id != 99 and finding.get("status") != ocsf.STATUS_NAMES.get(status_id):
        found.append("status caption does not match status_id")
    if finding.get("activity_name") != ocsf.ACTIVITY_NAMES.get(activity):
        found.append("activity_name caption does not match activity_id")
    for path, value in _timestamps(finding):
        if not isinstance(value, int) or not 10**12 <= value < 10**13:
            found.append(f"{path} = {value!r} is not epoch milliseconds")
    meta = finding.get("metadata", {})
    if meta.get("version") != ocsf.VERSION:
        found.append("metadata.version is not 1.8.0")
    if set(ocsf.PROFILES) - set(meta.get("profiles", [])):
        found.append("metadata.profiles lacks cloud or container")
    try:
        if not all(ocsf.identity(finding)):
            found.append("identity triple has an empty part")
    except (KeyError, TypeError):
        found.append("identity triple is missing")
    return found


def assert_valid(finding: Mapping[str, Any]) -> None:
    """Fail with every problem listed when `finding` is not valid OCSF 1.8.0."""
    issues = problems(finding)
    assert not issues, "\n".join(issues)
