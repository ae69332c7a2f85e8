"""ATT&CK tactics and techniques that GuardDuty attack sequences name; GuardDuty gives none elsewhere."""

from __future__ import annotations

import re
from typing import Any, Final

from corral.sources._core.reader import Fields

# ATT&CK Enterprise tactics by name, for attack-sequence indicators that name a tactic.
_TACTICS: Final = {
    "reconnaissance": "TA0043",
    "resourcedevelopment": "TA0042",
    "initialaccess": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilegeescalation": "TA0004",
    "defenseevasion": "TA0005",
    "credentialaccess": "TA0006",
    "discovery": "TA0007",
    "lateralmovement": "TA0008",
    "collection": "TA0009",
    "commandandcontrol": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}
_TACTIC_ID: Final = re.compile(r"^(TA\d{4})\s*-\s*(.+)$")
_TECHNIQUE: Final = re.compile(r"^(T\d{4})(\.\d{3})?\s*-\s*([^:]+?)(?:\s*:\s*(.+))?$")
_TACTIC_NAME_NOISE: Final = re.compile(r"[\s_-]")


def attacks(sequence: Fields) -> list[dict[str, Any]]:
    """ATT&CK tactics/techniques that attack sequences name; GuardDuty gives none elsewhere."""
    attacks: list[dict[str, Any]] = []
    seen: set[str] = set()
    indicators = sequence.objects("sequenceIndicators")
    for signal in sequence.objects("signals"):
        indicators += signal.objects("signalIndicators")
    for indicator in indicators:
        parse = _PARSERS.get(indicator.peek_text("key") or "")
        if parse is None:
            continue
        values = indicator.raw("values")
        if not isinstance(values, list):
            continue
        parsed = [parse(v) if isinstance(v, str) else None for v in values]
        for value, attack in zip(values, parsed, strict=True):
            if attack is not None and value not in seen:
                seen.add(value)
                attacks.append(attack)
        if all(a is not None for a in parsed):
            indicator.mark("values")
            indicator.mark("key")
    return attacks


def _tactic(value: str) -> dict[str, Any] | None:
    match = _TACTIC_ID.match(value.strip())
    if match:
        return {"tactic": {"uid": match.group(1), "name": match.group(2)}}
    uid = _TACTICS.get(_TACTIC_NAME_NOISE.sub("", value).lower())
    return {"tactic": {"uid": uid, "name": value}} if uid else None


def _technique(value: str) -> dict[str, Any] | None:
    match = _TECHNIQUE.match(value.strip())
    if not match:
        # A bare technique name is what the source says; no id is invented for it.
        return {"technique": {"name": value}} if value.strip() else None
    uid, sub, name, sub_name = match.groups()
    attack: dict[str, Any] = {"technique": {"uid": uid, "name": name}}
    if sub:
        attack["sub_technique"] = {"uid": uid + sub, "name": sub_name or name}
    return attack


_PARSERS: Final = {"ATTACK_TACTIC": _tactic, "ATTACK_TECHNIQUE": _technique}
