"""ATT&CK tactics as Defender names them (`Intent`, `mITRETacticsAndTechniques`), by lower-cased word."""

from __future__ import annotations

from typing import Final

TACTICS: Final = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resourcedevelopment": ("TA0042", "Resource Development"),
    "initialaccess": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilegeescalation": ("TA0004", "Privilege Escalation"),
    "defenseevasion": ("TA0005", "Defense Evasion"),
    "credentialaccess": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateralmovement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "commandandcontrol": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
