"""ATT&CK tactics and techniques that GuardDuty attack sequences name; GuardDuty gives none elsewhere."""

from __future__ import annotations

import re
from typing import Any, Final

from corral.sources._core.plain import LEAF, Node, subs

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
# Parsed indicator values, shared: never handed out, only copied.
_PARSED: dict[tuple[str, str], dict[str, Any] | None] = {}
_MAX_PARSED: Final = 4096


def attacks(sequence: Node) -> list[dict[str, Any]]:
    """ATT&CK tactics/techniques that attack sequences name; GuardDuty gives none elsewhere."""
    attacks: list[dict[str, Any]] = []
    seen: set[str] = set()
    indicators = subs(sequence, "sequenceIndicators")
    for signal in subs(sequence, "signals"):
        indicators += subs(signal, "signalIndicators")
    for doc, taken in indicators:
        kind = doc.get("key")
        if not isinstance(kind, str) or kind not in _PARSERS:
            continue
        values = doc.get("values")
        if not isinstance(values, list):
            continue
        parsed = [_parsed(kind, v) if isinstance(v, str) else None for v in values]
        for value, attack in zip(values, parsed, strict=True):
            if attack is not None and value not in seen:
                seen.add(value)
                attacks.append({name: dict(part) for name, part in attack.items()})  # a copy of the shared one
        if None not in parsed:
            taken["values"] = LEAF
            taken["key"] = LEAF
    return attacks


def _parsed(kind: str, value: str) -> dict[str, Any] | None:
    """The attack an indicator value names, parsed once per value (ATT&CK names are a bounded set)."""
    key = (kind, value)
    if key in _PARSED:
        return _PARSED[key]
    attack = _PARSERS[kind](value)
    if len(_PARSED) < _MAX_PARSED:
        _PARSED[key] = attack
    return attack


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
