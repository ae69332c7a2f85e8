"""The vulnerabilities of a Defender sub-assessment: CVE ids, CVSS, package and fix, exploitability.

Defender reports one assessed package per sub-assessment, with one or more CVEs (or none: a
vendor advisory), in three shapes: the MDVM `vulnerabilityDetails`/`softwareDetails`, the
TVM-style `cve` object, and the legacy `cve[]` list.
"""

from __future__ import annotations

import re
from typing import Any, Final

from corral.sources._core.folded import Folded
from corral.sources._core.reader import Fields
from corral.sources.defender import _common as common
from corral.sources.defender._values import boolean, number, objects, texts

_CVE: Final = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)


def vulnerabilities(props: Fields, extra: Fields, sub_id: str) -> list[dict[str, Any]]:
    details = extra.view("vulnerabilityDetails")
    software = extra.view("softwareDetails")
    tvm = extra.view("cve")
    legacy = objects(extra, "cve")

    ids = _ids(props, details, tvm, legacy)
    references = _references(details, legacy, extra, software)
    cvss = _cvss(details, extra, tvm)
    fix = _fix(software, extra)
    exploit = _exploit(details, tvm)
    package = _package(software)
    cwe = next((w.first_text("id") for w in objects(details.view("weaknesses"), "cwe") if w.first_text("id")), None)
    published = common.first_time(details, "publishedDate") or common.first_time(extra, "publishedTime")
    modified = common.first_time(details, "lastModifiedDate")
    if published is None and tvm.doc:
        published = common.first_time(tvm, "publishedDate")
        modified = modified or common.first_time(tvm, "lastModifiedDate")

    title, remediation, category = (
        props.first_text("displayName"),
        props.first_text("remediation"),
        props.first_text("category"),
    )
    base = {
        "title": title,
        "desc": props.first_text("description"),
        "severity": details.first_text("severity") or props.view("status").first_text("severity"),
        "references": references,
        "affected_packages": [package] if package else None,
        "is_fix_available": fix,
        "fix_available": fix,
        "is_exploit_available": exploit,
        "remediation": {"desc": remediation} if remediation else None,
        "category": category if category != "N/A" else None,
    }
    if not ids:
        advisory = props.first_text("id") or common.last_segment(sub_id) or sub_id
        base["advisory"] = common.compact({"uid": advisory, "title": title, "references": references})
        return [common.compact(base)]
    base = common.compact(base)
    cve = {
        "title": tvm.first_text("title") if tvm.doc else None,
        "cvss": cvss,
        "created_time": published,
        "modified_time": modified,
        "references": references,
        "cwe": {"uid": cwe} if cwe else None,
    }
    cve = common.compact(cve)
    return [{**base, "cve": {"uid": uid, **cve}} for uid in ids]


def _cvss(details: Fields, extra: Fields, tvm: Fields) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    table = details.view("cvss")
    if not table.doc:
        table = extra.view("cvss")
    for version, scores in table.doc.items():
        if not isinstance(scores, dict):
            continue
        score = Folded(scores, {})
        base = number(score, "base", "baseScore")
        if base is not None:
            vector = score.first_text("cvssVectorString")
            found.append(common.compact({"version": version, "base_score": base, "vector_string": vector}))
    if not found and tvm.doc and number(tvm, "cvssScore") is not None:
        version = tvm.get("cvssVersion")
        found.append(
            common.compact(
                {
                    "version": str(version) if isinstance(version, int | float | str) and version != "" else "3",
                    "base_score": number(tvm, "cvssScore"),
                    "vector_string": tvm.first_text("cvssVectorString"),
                }
            )
        )
    if not found and number(extra, "cvssV30Score") is not None:
        found.append({"version": "3.0", "base_score": number(extra, "cvssV30Score")})
    return found


def _exploit(details: Fields, tvm: Fields) -> bool | None:
    flags = [
        boolean(tvm, "hasPublicExploit"),
        boolean(tvm, "isExploitInKit"),
        boolean(details.view("exploitabilityAssessment"), "isInExploitKit"),
        boolean(details.view("exploitabilityAssessment"), "exploitStepsPublished"),
    ]
    known = [flag for flag in flags if flag is not None]
    return any(known) if known else None


def _ids(props: Fields, details: Fields, tvm: Fields, legacy: list[Fields]) -> list[str]:
    ids: list[str] = []
    for candidate in (details.first_text("cveId"), tvm.first_text("title"), *(c.first_text("title") for c in legacy)):
        ids += cve_ids(candidate)
    if not ids:
        ids = cve_ids(props.first_text("displayName")) or cve_ids(props.first_text("id"))
    return list(dict.fromkeys(ids))


def _references(details: Fields, legacy: list[Fields], extra: Fields, software: Fields) -> list[str]:
    links = [
        *(r.first_text("link") for r in objects(details, "references")),
        *(c.first_text("link") for c in legacy),
        *(r.first_text("link") for r in objects(extra, "vendorReferences")),
        software.view("fixReference").first_text("url"),
    ]
    return list(dict.fromkeys(texts(links)))


def _fix(software: Fields, extra: Fields) -> bool | None:
    fix = boolean(software, "patchable")
    if fix is None:
        fix = boolean(extra, "patchable")
    if fix is None and software.first_text("fixStatus"):
        fix = (software.first_text("fixStatus") or "").lower() == "fixavailable"
    return fix


def _package(software: Fields) -> dict[str, Any] | None:
    name, version = software.first_text("packageName"), software.first_text("version")
    if not (name and version):
        return None
    return common.compact(
        {
            "name": name,
            "version": version,
            "fixed_in_version": software.first_text("fixedVersion"),
            "vendor_name": software.first_text("vendor"),
        }
    )


def cve_ids(text: str | None) -> list[str]:
    """Return the CVE ids named in `text`, upper-cased, in order and without repeats."""
    if not text:
        return []
    return list(dict.fromkeys(match.upper() for match in _CVE.findall(text)))
