"""Class-specific parts of an SCC finding: ATT&CK attacks, vulnerabilities, compliance, remediation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from corral import ocsf
from corral.sources.scc._read import compact, field, mapping, mappings, number, text, texts
from corral.sources.scc._tables import TACTICS, TECHNIQUE_NAMES_BY_UID, TECHNIQUES, enum_caption

# CVSS v3 base metrics: SCC enum name -> vector abbreviation (FIRST CVSS v3.1 specification §2).
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


def _tactic(name: str) -> dict[str, str]:
    uid, caption = TACTICS.get(name, (None, None))
    return {"uid": uid, "name": caption} if uid and caption else {"name": name}


def _technique(name: str) -> dict[str, str]:
    uid = TECHNIQUES.get(name)
    return {"uid": uid, "name": _TECHNIQUE_CAPTIONS[name]} if uid else {"name": name}


def _grouped(names: list[str]) -> list[dict[str, Any]]:
    """Merge SCC's listing of a sub-technique *and* its parent into one (technique, sub_technique) pair."""
    if not names:
        return []
    uids = {TECHNIQUES[n] for n in names if n in TECHNIQUES}
    pairs: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        uid = TECHNIQUES.get(name)
        if uid and "." in uid:
            parent_uid = uid.split(".", 1)[0]
            parent_name = TECHNIQUE_NAMES_BY_UID.get(parent_uid)
            parent = (
                {"uid": parent_uid, "name": _TECHNIQUE_CAPTIONS[parent_name]} if parent_name else {"uid": parent_uid}
            )
            pairs.append({"technique": parent, "sub_technique": _technique(name)})
        elif uid and any(u.startswith(uid + ".") for u in uids):
            continue  # listed only as the parent of a sub-technique above
        elif name not in ("TECHNIQUE_UNSPECIFIED",):
            pairs.append({"technique": _technique(name)})
    return pairs


def _attack(parts: dict[str, Any], version: str | None) -> dict[str, Any]:
    if version:
        parts["version"] = version
    return parts


def attacks(finding: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Return OCSF `attacks[]` from `mitreAttack`, and whether every name was found in the tables."""
    mitre = mapping(finding, "mitreAttack")
    if not mitre:
        return [], True
    version = text(mitre, "version")
    primary = text(mitre, "primaryTactic")
    additional_tactics = texts(mitre, "additionalTactics")
    primary_techniques = texts(mitre, "primaryTechniques")
    additional_techniques = texts(mitre, "additionalTechniques")
    complete = (
        (primary is None or primary in TACTICS)
        and all(n in TACTICS for n in additional_tactics)
        and all(n in TECHNIQUES for n in primary_techniques)
        and all(n in TECHNIQUES for n in additional_techniques)
    )
    # Each entry is built without empty values (a tactic, a technique or both, then the version).
    result: list[dict[str, Any]] = []
    primary_tactic = _tactic(primary) if primary and primary != "TACTIC_UNSPECIFIED" else None
    primary_pairs = _grouped(primary_techniques)
    for pair in primary_pairs or ([{}] if primary_tactic else []):
        # A fresh tactic object per entry: the entries are separate objects to whoever edits them.
        result.append(_attack({"tactic": dict(primary_tactic), **pair} if primary_tactic else pair, version))
    for name in additional_tactics:
        if name != "TACTIC_UNSPECIFIED":
            result.append(_attack({"tactic": _tactic(name)}, version))
    for pair in _grouped(additional_techniques):
        result.append(_attack(pair, version))
    return result, complete


def _cvss(cve: Mapping[str, Any]) -> list[dict[str, Any]]:
    cvss = mapping(cve, "cvssv3")
    score = number(field(cvss, "baseScore"))
    if score is None:
        return []
    parts: list[str] = []
    for key, abbreviation, values in _CVSS_METRICS:
        value = values.get(text(cvss, key) or "")
        if value is None:
            parts = []  # an incomplete vector would misstate the score's basis
            break
        parts.append(f"{abbreviation}:{value}")
    # The SCC `Cvssv3` message documents the CVSS v3.1 specification.
    vector = "CVSS:3.1/" + "/".join(parts) if parts else None
    return [compact({"version": "3.1", "base_score": score, "vector_string": vector})]


def vulnerability(finding: Mapping[str, Any], severity_caption: str) -> dict[str, Any] | None:
    """Return the OCSF `vulnerability` of a finding with a CVE, or None."""
    vuln = mapping(finding, "vulnerability")
    cve = mapping(vuln, "cve")
    cve_id = text(cve, "id")
    if cve_id is None:
        return None
    references = [uri for ref in mappings(cve, "references") if (uri := text(ref, "uri"))]
    offending = mapping(vuln, "offendingPackage")
    fixed = mapping(vuln, "fixedPackage")
    package = None
    if text(offending, "packageName") and text(offending, "packageVersion"):
        package = compact(
            {
                "name": text(offending, "packageName"),
                "version": text(offending, "packageVersion"),
                "package_manager": text(offending, "packageType"),
                "cpe_name": text(offending, "cpeUri"),
                "fixed_in_version": text(fixed, "packageVersion"),
            }
        )
    fix = field(cve, "upstreamFixAvailable")
    is_fix_available = fix if isinstance(fix, bool) else (True if text(fixed, "packageVersion") else None)
    return compact(
        {
            "title": cve_id,
            "desc": text(finding, "description"),
            "severity": severity_caption,
            "cve": compact({"uid": cve_id, "cvss": _cvss(cve), "references": references}),
            "references": references,
            "affected_packages": [package] if package else [],
            "is_fix_available": is_fix_available,
            "is_exploit_available": _EXPLOIT_AVAILABLE.get(text(cve, "exploitationActivity") or ""),
            "vendor_name": "Google",
        }
    )


def compliance_standards(finding: Mapping[str, Any]) -> list[tuple[str, str | None, list[str]]]:
    """Return (standard, version, ids) from `compliances[]`, else from the older `compliance_standards` property."""
    found = [
        (standard, text(c, "version"), texts(c, "ids"))
        for c in mappings(finding, "compliances")
        if (standard := text(c, "standard"))
    ]
    if found:
        return found
    properties = source_properties(finding)
    legacy = field(properties, "compliance_standards")
    if isinstance(legacy, dict):
        for standard, entries in legacy.items():
            if isinstance(standard, str) and isinstance(entries, list):
                found += [(standard, text(e, "version"), texts(e, "ids")) for e in entries if isinstance(e, dict)]
    return found


def compliance(finding: Mapping[str, Any], active: bool) -> dict[str, Any]:
    """Return the OCSF `compliance` object: the control is the SCC category; Fail while active."""
    standards = compliance_standards(finding)
    status_id = ocsf.COMPLIANCE_FAIL if active else ocsf.COMPLIANCE_PASS
    return compact(
        {
            "control": text(finding, "category"),
            "standards": list(dict.fromkeys(" ".join(p for p in (std, version) if p) for std, version, _ in standards)),
            "requirements": list(
                dict.fromkeys(
                    f"{' '.join(p for p in (std, version) if p)} {rid}"
                    for std, version, ids in standards
                    for rid in ids
                )
            ),
            "status_id": status_id,
            "status": ocsf.COMPLIANCE_NAMES[status_id],
        }
    )


def source_properties(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return `sourceProperties` as a mapping, also when published as a list of {key, value} pairs."""
    value = field(finding, "sourceProperties")
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {
            k: item.get("value") for item in value if isinstance(item, dict) and isinstance(k := item.get("key"), str)
        }
    return {}


def remediation(finding: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return `remediation` from `nextSteps`, else the older `Recommendation` source property."""
    desc = text(finding, "nextSteps") or text(source_properties(finding), "Recommendation")
    return {"desc": desc} if desc else None
