"""The vulnerabilities of a Defender sub-assessment: CVE ids, CVSS, package and fix, exploitability.

Defender reports one assessed package per sub-assessment, with one or more CVEs (or none: a
vendor advisory), in three shapes: the MDVM `vulnerabilityDetails`/`softwareDetails`, the
TVM-style `cve` object, and the legacy `cve[]` list.
"""

from __future__ import annotations

import re
from typing import Any, Final

from corral.sources._core.folded import text
from corral.sources.defender import _common as common
from corral.sources.defender._records import STATUS
from corral.sources.defender._sub_fields import SMALL, SOFTWARE, TVM, VULNERABILITY, Extra, Props, Small, Software, Tvm
from corral.sources.defender._values import boolean_value, listed_value, number_value, texts, time_of

_CVE: Final = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.IGNORECASE)
_VERSIONS: Final = (int, float, str)  # a tuple: a `|` union would be built on every test
_NO_TVM: Final = TVM.read(None)


def _smalls(value: object) -> list[Small]:
    return [SMALL.read(item) for item in listed_value(value) if isinstance(item, dict)]


def vulnerabilities(props: Props, extra: Extra) -> list[dict[str, Any]]:
    """Return one entry per CVE named, else one advisory (Defender's vulnerability id), else none.

    A sub-assessment that names neither (an unscanned image) carries no vulnerability: OCSF's
    `advisory.uid` is an advisory's id, which a sub-assessment's own GUID is not.
    """
    details = VULNERABILITY.read(extra.vulnerability_details)
    software = SOFTWARE.read(extra.software_details)
    has_tvm = isinstance(extra.cve, dict) and bool(extra.cve)
    tvm = TVM.read(extra.cve) if has_tvm else _NO_TVM
    legacy = _smalls(extra.cve)

    ids = _ids(props, details.cve_id, tvm, legacy)
    references = _references(details.references, legacy, extra, software)
    cvss = _cvss(details.cvss, extra, tvm if has_tvm else None)
    fix = _fix(software, extra)
    exploit = _exploit(details.exploitability_assessment, tvm)
    package = _package(software)
    cwe = next((i for w in _smalls(SMALL.read(details.weaknesses).cwe) if (i := text(w.id))), None)
    published = time_of(details.published_date, "publishedDate") or time_of(extra.published_time, "publishedTime")
    modified = time_of(details.last_modified_date, "lastModifiedDate")
    if published is None and has_tvm:
        published = time_of(tvm.published_date, "publishedDate")
        modified = modified or time_of(tvm.last_modified_date, "lastModifiedDate")

    title, remediation, category = text(props.display_name), text(props.remediation), text(props.category)
    base = {
        "title": title,
        "desc": text(props.description),
        "severity": text(details.severity) or text(STATUS.read(props.status).severity),
        "references": references,
        "affected_packages": [package] if package else None,
        "is_fix_available": fix,
        "fix_available": fix,
        "is_exploit_available": exploit,
        "remediation": {"desc": remediation} if remediation else None,
        "category": category if category != "N/A" else None,
    }
    if not ids:
        advisory = text(props.id)
        if not advisory:
            return []
        base["advisory"] = common.compact({"uid": advisory, "title": title, "references": references})
        return [common.compact(base)]
    base = common.compact(base)
    cve = {
        "title": text(tvm.title) if has_tvm else None,
        "cvss": cvss,
        "created_time": published,
        "modified_time": modified,
        "references": references,
        "cwe": {"uid": cwe} if cwe else None,
    }
    cve = common.compact(cve)
    return [{**base, "cve": {"uid": uid, **cve}} for uid in ids]


def _cvss(table: object, extra: Extra, tvm: Tvm | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if not (isinstance(table, dict) and table):
        table = extra.cvss
    if not isinstance(table, dict):
        table = {}
    for version, scores in table.items():
        if not isinstance(scores, dict):
            continue
        score = SMALL.read(scores)
        base = number_value(score.base)
        if base is None:
            base = number_value(score.base_score)
        if base is not None:
            vector = text(score.cvss_vector_string)
            found.append(common.compact({"version": version, "base_score": base, "vector_string": vector}))
    if not found and tvm is not None and (tvm_score := number_value(tvm.cvss_score)) is not None:
        version = tvm.cvss_version
        found.append(
            common.compact(
                {
                    "version": str(version) if isinstance(version, _VERSIONS) and version != "" else "3",
                    "base_score": tvm_score,
                    "vector_string": text(tvm.cvss_vector_string),
                }
            )
        )
    if not found and (v30 := number_value(extra.cvss_v30_score)) is not None:
        found.append({"version": "3.0", "base_score": v30})
    return found


def _exploit(assessment: object, tvm: Tvm) -> bool | None:
    """True when Defender says an exploit exists; None (unset) otherwise, never False.

    Exploit evidence, as Microsoft documents it:
    - MDVM `vulnerabilityDetails.exploitabilityAssessment` ("Container vulnerability assessments
      powered by Microsoft Defender Vulnerability Management subassessments", ExploitabilityAssessment):
      `isInExploitKit` "Is part of the exploit kit", `exploitStepsPublished` "Had the exploits steps
      been published", `exploitStepsVerified` "Had the exploit steps verified", `exploitUris`
      (links to an example exploit);
    - the TVM-style `cve` object, with the fields of Defender Vulnerability Management's
      vulnerability API: `hasPublicExploit` ("Public exploit exists"), `isExploitVerified`
      ("Exploit is verified to work"), `isExploitInKit` ("Exploit is part of an exploit kit"),
      `exploitUris` ("Exploit source URLs").
    A false flag only says that one kind of evidence is missing (not in an exploit kit is not "no
    exploit exists"), so nothing here sets False. `isVerified` and `isPubliclyDisclosed` of the
    newer exploitabilityAssessment are not defined by Microsoft's documentation (publicly
    disclosed is about the vulnerability, not an exploit): they are not read, and stay in
    `unmapped` with the rest of the assessment.
    """
    exploitability = SMALL.read(assessment)
    flags = (
        tvm.has_public_exploit,
        tvm.is_exploit_verified,
        tvm.is_exploit_in_kit,
        exploitability.is_in_exploit_kit,
        exploitability.exploit_steps_published,
        exploitability.exploit_steps_verified,
    )
    if any(boolean_value(flag) for flag in flags):
        return True
    if texts(listed_value(tvm.exploit_uris)) or texts(listed_value(exploitability.exploit_uris)):
        return True
    return None


def _ids(props: Props, cve_id: object, tvm: Tvm, legacy: list[Small]) -> list[str]:
    ids: list[str] = []
    for candidate in (text(cve_id), text(tvm.title), *(text(c.title) for c in legacy)):
        ids += cve_ids(candidate)
    if not ids:
        ids = cve_ids(text(props.display_name)) or cve_ids(text(props.id))
    return list(dict.fromkeys(ids))


def _references(references: object, legacy: list[Small], extra: Extra, software: Software) -> list[str]:
    links = [
        *(r.link for r in _smalls(references)),
        *(c.link for c in legacy),
        *(r.link for r in _smalls(extra.vendor_references)),
        SMALL.read(software.fix_reference).url,
    ]
    return list(dict.fromkeys(texts(links)))


def _fix(software: Software, extra: Extra) -> bool | None:
    fix = boolean_value(software.patchable)
    if fix is None:
        fix = boolean_value(extra.patchable)
    if fix is None and (status := text(software.fix_status)):
        fix = status.lower() == "fixavailable"
    return fix


def _package(software: Software) -> dict[str, Any] | None:
    name, version = text(software.package_name), text(software.version)
    if not (name and version):
        return None
    return common.compact(
        {
            "name": name,
            "version": version,
            "fixed_in_version": text(software.fixed_version),
            "vendor_name": text(software.vendor),
        }
    )


def cve_ids(text: str | None) -> list[str]:
    """Return the CVE ids named in `text`, upper-cased, in order and without repeats."""
    if not text:
        return []
    return list(dict.fromkeys(match.upper() for match in _CVE.findall(text)))
