"""The vulnerabilities of a Defender sub-assessment: CVE ids, CVSS, package and fix, exploitability.

Defender reports one assessed package per sub-assessment, with one or more CVEs (or none: a
vendor advisory), in three shapes: the MDVM `vulnerabilityDetails`/`softwareDetails`, the
TVM-style `cve` object, and the legacy `cve[]` list.
"""

from __future__ import annotations

from typing import Any

from corral.sources.defender import _common as common
from corral.sources.defender._keys import View, cve_ids, texts


def vulnerabilities(props: View, extra: View, sub_id: str) -> list[dict[str, Any]]:
    details = extra.view("vulnerabilityDetails")
    software = extra.view("softwareDetails")
    tvm = extra.view("cve")
    legacy = extra.views("cve")

    ids = _ids(props, details, tvm, legacy)
    references = _references(details, legacy, extra, software)
    cvss = _cvss(details, extra, tvm)
    fix = _fix(software, extra)
    exploit = _exploit(details, tvm)
    package = _package(software)
    cwe = next((w.text("id") for w in details.view("weaknesses").views("cwe") if w.text("id")), None)
    published = common.first_time(details, "publishedDate") or common.first_time(extra, "publishedTime")
    modified = common.first_time(details, "lastModifiedDate")
    if published is None and tvm:
        published = common.first_time(tvm, "publishedDate")
        modified = modified or common.first_time(tvm, "lastModifiedDate")

    title, remediation, category = props.text("displayName"), props.text("remediation"), props.text("category")
    base: dict[str, Any] = {
        "title": title,
        "desc": props.text("description"),
        "severity": details.text("severity") or props.view("status").text("severity"),
        "references": references,
        "affected_packages": [package] if package else None,
        "is_fix_available": fix,
        "fix_available": fix,
        "is_exploit_available": exploit,
        "remediation": {"desc": remediation} if remediation else None,
        "category": category if category != "N/A" else None,
    }
    if not ids:
        advisory = props.text("id") or common.last_segment(sub_id) or sub_id
        return [{**base, "advisory": {"uid": advisory, "title": title, "references": references}}]
    return [
        {
            **base,
            "cve": {
                "uid": cve,
                "title": tvm.text("title") if tvm else None,
                "cvss": cvss,
                "created_time": published,
                "modified_time": modified,
                "references": references,
                "cwe": {"uid": cwe} if cwe else None,
            },
        }
        for cve in ids
    ]


def _cvss(details: View, extra: View, tvm: View) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    table = details.view("cvss") or extra.view("cvss")
    for version, scores in table.items():
        score = View(scores)
        base = score.number("base", "baseScore")
        if base is not None:
            found.append({"version": version, "base_score": base, "vector_string": score.text("cvssVectorString")})
    if not found and tvm and tvm.number("cvssScore") is not None:
        version = tvm.get("cvssVersion")
        found.append(
            {
                "version": str(version) if isinstance(version, int | float | str) and version != "" else "3",
                "base_score": tvm.number("cvssScore"),
                "vector_string": tvm.text("cvssVectorString"),
            }
        )
    if not found and extra.number("cvssV30Score") is not None:
        found.append({"version": "3.0", "base_score": extra.number("cvssV30Score")})
    return found


def _exploit(details: View, tvm: View) -> bool | None:
    flags = [
        tvm.bool("hasPublicExploit"),
        tvm.bool("isExploitInKit"),
        details.view("exploitabilityAssessment").bool("isInExploitKit"),
        details.view("exploitabilityAssessment").bool("exploitStepsPublished"),
    ]
    known = [flag for flag in flags if flag is not None]
    return any(known) if known else None


def _ids(props: View, details: View, tvm: View, legacy: list[View]) -> list[str]:
    ids: list[str] = []
    for candidate in (details.text("cveId"), tvm.text("title"), *(c.text("title") for c in legacy)):
        ids += cve_ids(candidate)
    if not ids:
        ids = cve_ids(props.text("displayName")) or cve_ids(props.text("id"))
    return list(dict.fromkeys(ids))


def _references(details: View, legacy: list[View], extra: View, software: View) -> list[str]:
    links = [
        *(r.text("link") for r in details.views("references")),
        *(c.text("link") for c in legacy),
        *(r.text("link") for r in extra.views("vendorReferences")),
        software.view("fixReference").text("url"),
    ]
    return list(dict.fromkeys(texts(links)))


def _fix(software: View, extra: View) -> bool | None:
    fix = software.bool("patchable")
    if fix is None:
        fix = extra.bool("patchable")
    if fix is None and software.text("fixStatus"):
        fix = (software.text("fixStatus") or "").lower() == "fixavailable"
    return fix


def _package(software: View) -> dict[str, Any] | None:
    name, version = software.text("packageName"), software.text("version")
    if not (name and version):
        return None
    return {
        "name": name,
        "version": version,
        "fixed_in_version": software.text("fixedVersion"),
        "vendor_name": software.text("vendor"),
    }
