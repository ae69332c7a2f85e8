"""Class-specific parts of an SCC finding: ATT&CK attacks, vulnerabilities, compliance, remediation."""

from __future__ import annotations

import math
from typing import Any, Final

from corral import ocsf
from corral.sources.scc._spelling import EMPTY, camel, inner, objects, string
from corral.sources.scc._tables import TACTICS, TECHNIQUE_NAMES_BY_UID, TECHNIQUES, enum_caption

# CVSS v3 base metrics: SCC enum name -> vector abbreviation (FIRST CVSS v3.0 and v3.1 specifications §2,
# identical for the base metrics).
_CVSS_METRICS: Final = (
    (
        "attackVector",
        "AV",
        {
            "ATTACK_VECTOR_NETWORK": "N",
            "ATTACK_VECTOR_ADJACENT": "A",
            "ATTACK_VECTOR_LOCAL": "L",
            "ATTACK_VECTOR_PHYSICAL": "P",
        },
    ),
    ("attackComplexity", "AC", {"ATTACK_COMPLEXITY_LOW": "L", "ATTACK_COMPLEXITY_HIGH": "H"}),
    (
        "privilegesRequired",
        "PR",
        {"PRIVILEGES_REQUIRED_NONE": "N", "PRIVILEGES_REQUIRED_LOW": "L", "PRIVILEGES_REQUIRED_HIGH": "H"},
    ),
    ("userInteraction", "UI", {"USER_INTERACTION_NONE": "N", "USER_INTERACTION_REQUIRED": "R"}),
    ("scope", "S", {"SCOPE_UNCHANGED": "U", "SCOPE_CHANGED": "C"}),
    ("confidentialityImpact", "C", {"IMPACT_HIGH": "H", "IMPACT_LOW": "L", "IMPACT_NONE": "N"}),
    ("integrityImpact", "I", {"IMPACT_HIGH": "H", "IMPACT_LOW": "L", "IMPACT_NONE": "N"}),
    ("availabilityImpact", "A", {"IMPACT_HIGH": "H", "IMPACT_LOW": "L", "IMPACT_NONE": "N"}),
)
# `exploitationActivity`: exploitation seen or an exploit public -> True; none known -> False.
_EXPLOIT_AVAILABLE: Final = {
    "WIDE": True,
    "CONFIRMED": True,
    "AVAILABLE": True,
    "ANTICIPATED": False,
    "NO_KNOWN": False,
}


# Captions are worked out once, at import: every finding names a few techniques.
_TECHNIQUE_CAPTIONS: Final = {name: enum_caption(name) for name in TECHNIQUES}
_TACTIC_NAMES: Final = frozenset(TACTICS)
_TECHNIQUE_NAMES: Final = frozenset(TECHNIQUES)


# Each technique name's OCSF object, and for a sub-technique its parent's: worked out once, at import.
_TECHNIQUE_OBJECTS: Final = {name: {"uid": uid, "name": _TECHNIQUE_CAPTIONS[name]} for name, uid in TECHNIQUES.items()}
_PARENTS: Final = {
    name: {"uid": parent, "name": _TECHNIQUE_CAPTIONS[TECHNIQUE_NAMES_BY_UID[parent]]}
    if (parent := uid.split(".", 1)[0]) in TECHNIQUE_NAMES_BY_UID
    else {"uid": parent}
    for name, uid in TECHNIQUES.items()
    if "." in uid
}


def _tactic(name: str) -> dict[str, str]:
    uid, caption = TACTICS.get(name, (None, None))
    return {"uid": uid, "name": caption} if uid and caption else {"name": name}


def _technique(name: str) -> dict[str, str]:
    found = _TECHNIQUE_OBJECTS.get(name)
    return dict(found) if found else {"name": name}


def _grouped(names: list[str]) -> list[dict[str, Any]]:
    """Merge SCC's listing of a sub-technique *and* its parent into one (technique, sub_technique) pair."""
    if not names:
        return []
    # The parents of the sub-techniques listed: listed themselves, they need no entry of their own.
    covered = {parent["uid"] for n in names if (parent := _PARENTS.get(n))}
    pairs: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        parent = _PARENTS.get(name)
        if parent is not None:
            pairs.append({"technique": dict(parent), "sub_technique": _technique(name)})
        elif TECHNIQUES.get(name) in covered:
            continue
        elif name != "TECHNIQUE_UNSPECIFIED":
            pairs.append({"technique": _technique(name)})
    return pairs


def _attack(parts: dict[str, Any], version: str | None) -> dict[str, Any]:
    if version:
        parts["version"] = version
    return parts


_NO_NAMES: Final[list[str]] = []  # never written


def _names(mitre: dict[str, Any], key: str) -> list[str]:
    value = mitre.get(key)
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def attacks(finding: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Return OCSF `attacks[]` from `mitreAttack`, and whether every name was found in the tables."""
    mitre = inner(finding, "mitreAttack")
    if not mitre:
        return [], True
    get = mitre.get
    version, primary = get("version"), get("primaryTactic")
    version = version if isinstance(version, str) and version else None
    primary = primary if isinstance(primary, str) and primary else None
    additional_tactics = _names(mitre, "additionalTactics") if "additionalTactics" in mitre else _NO_NAMES
    primary_techniques = _names(mitre, "primaryTechniques")
    additional_techniques = _names(mitre, "additionalTechniques") if "additionalTechniques" in mitre else _NO_NAMES
    complete = (
        (primary is None or primary in TACTICS)
        and _TACTIC_NAMES.issuperset(additional_tactics)
        and _TECHNIQUE_NAMES.issuperset(primary_techniques)
        and _TECHNIQUE_NAMES.issuperset(additional_techniques)
    )
    # Each entry is built without empty values (a tactic, a technique or both, then the version).
    result: list[dict[str, Any]] = []
    primary_tactic = _tactic(primary) if primary and primary != "TACTIC_UNSPECIFIED" else None
    primary_pairs = _grouped(primary_techniques)
    for pair in primary_pairs or ([{}] if primary_tactic else []):
        # A fresh tactic object per entry: the entries are separate objects to whoever edits them.
        entry = {"tactic": dict(primary_tactic), **pair} if primary_tactic else pair
        if version:
            entry["version"] = version
        result.append(entry)
    for name in additional_tactics:
        if name != "TACTIC_UNSPECIFIED":
            result.append({"tactic": _tactic(name), "version": version} if version else {"tactic": _tactic(name)})
    if additional_techniques:
        result += [_attack(pair, version) for pair in _grouped(additional_techniques)]
    return result, complete


def _cvss(cve: dict[str, Any]) -> list[dict[str, Any]]:
    cvss = inner(cve, "cvssv3")
    score = cvss.get("baseScore")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return []
    parts: list[str] = []
    for key, abbreviation, values in _CVSS_METRICS:
        name = cvss.get(key)
        value = values.get(name) if isinstance(name, str) else None
        if value is None:
            parts = []  # an incomplete vector would misstate the score's basis
            break
        parts.append(f"{abbreviation}:{value}")
    # Google's `Cvssv3` message says only "Common Vulnerability Scoring System version 3": it sends
    # the base metrics one by one, with no vector and no minor version. So the version is "3" (OCSF
    # `cvss.version` is a free string) and the vector is the base metrics alone, without the
    # "CVSS:3.x/" label FIRST defines for a v3.0 or v3.1 vector: the label would state a minor
    # version Google never gave. The eight base metrics and their values are the same in v3.0 and
    # v3.1, so the unlabelled vector is exact either way, and it stays shaped like OCSF's own
    # example ("3.1/AV:L/..."): metric:value pairs a reader can split on "/" and ":".
    found: dict[str, Any] = {"version": "3", "base_score": float(score)}
    if parts:
        found["vector_string"] = "/".join(parts)
    return [found]


def _package(vuln: dict[str, Any], fixed_version: str | None) -> dict[str, Any] | None:
    offending = inner(vuln, "offendingPackage")
    name = string(offending.get("packageName"))
    version = string(offending.get("packageVersion"))
    if not (name and version):
        return None
    package = {"name": name, "version": version}
    if manager := string(offending.get("packageType")):
        package["package_manager"] = manager
    if cpe := string(offending.get("cpeUri")):
        package["cpe_name"] = cpe
    if fixed_version:
        package["fixed_in_version"] = fixed_version
    return package


def vulnerability(finding: dict[str, Any], severity_caption: str) -> dict[str, Any] | None:
    """Return the OCSF `vulnerability` of a finding with a CVE, or None."""
    vuln = inner(finding, "vulnerability")
    cve = inner(vuln, "cve")
    cve_id = string(cve.get("id"))
    if cve_id is None:
        return None
    references = [uri for ref in objects(cve, "references") if (uri := string(ref.get("uri")))]
    fixed_version = string(inner(vuln, "fixedPackage").get("packageVersion"))
    package = _package(vuln, fixed_version)
    fix = cve.get("upstreamFixAvailable")
    is_fix_available = fix if isinstance(fix, bool) else (True if fixed_version else None)
    out: dict[str, Any] = {"title": cve_id}
    if desc := string(finding.get("description")):
        out["desc"] = desc
    if severity_caption:
        out["severity"] = severity_caption
    out["cve"] = {"uid": cve_id}
    if cvss := _cvss(cve):
        out["cve"]["cvss"] = cvss
    if references:
        out["cve"]["references"] = references
        out["references"] = references
    if package:
        out["affected_packages"] = [package]
    if is_fix_available is not None:
        out["is_fix_available"] = is_fix_available
    activity = cve.get("exploitationActivity")
    if isinstance(activity, str) and (exploit := _EXPLOIT_AVAILABLE.get(activity)) is not None:
        out["is_exploit_available"] = exploit
    out["vendor_name"] = "Google"
    return out


def _standards(finding: dict[str, Any]) -> list[tuple[str, str | None, list[str]]]:
    """Return (standard, version, ids) from `compliances[]`, else from the older `compliance_standards` property."""
    found = [
        (standard, string(c.get("version")), _names(c, "ids"))
        for c in objects(finding, "compliances")
        if (standard := string(c.get("standard")))
    ]
    if found:
        return found
    legacy = source_properties(finding).get("compliance_standards")
    if isinstance(legacy, dict):
        for standard, entries in legacy.items():
            if isinstance(standard, str) and isinstance(entries, list):
                found += [
                    (standard, string(e.get("version")), _names(e, "ids")) for e in entries if isinstance(e, dict)
                ]
    return found


def compliance(finding: dict[str, Any], active: bool) -> dict[str, Any]:
    """Return the OCSF `compliance` object: the control is the SCC category; Fail while active."""
    standards = _standards(finding)
    status_id = ocsf.COMPLIANCE_FAIL if active else ocsf.COMPLIANCE_PASS
    out: dict[str, Any] = {}
    if control := string(finding.get("category")):
        out["control"] = control
    if standards:
        names = [f"{std} {version}" if version else std for std, version, _ in standards]
        out["standards"] = list(dict.fromkeys(names))
        requirements = [f"{name} {rid}" for name, (_, _, ids) in zip(names, standards, strict=True) for rid in ids]
        if requirements:
            out["requirements"] = list(dict.fromkeys(requirements))
    out["status_id"] = status_id
    out["status"] = ocsf.COMPLIANCE_NAMES[status_id]
    return out


def source_properties(finding: dict[str, Any]) -> dict[str, Any]:
    """Return `sourceProperties` as `camel()` spells it, also when published as a list of {key, value} pairs."""
    value = finding.get("sourceProperties")
    if isinstance(value, dict):
        return camel(value)
    if isinstance(value, list):
        pairs = {
            k: item.get("value") for item in value if isinstance(item, dict) and isinstance(k := item.get("key"), str)
        }
        return camel(pairs)
    return EMPTY


def remediation(finding: dict[str, Any], next_steps: str | None) -> dict[str, Any] | None:
    """Return `remediation` from `nextSteps` (the text read, else None), else the older `Recommendation` property."""
    desc = next_steps or string(source_properties(finding).get("Recommendation"))
    return {"desc": desc} if desc else None
