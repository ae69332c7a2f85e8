"""The fixed tables of the SCC normalizer: severities, finding classes, MITRE ATT&CK enum names.

SCC sends MITRE ATT&CK tactics and techniques as enum *names* (`UNIX_SHELL`), not ids. The ids
below are the ones Google documents for each name in `google.cloud.securitycenter.v2.MitreAttack`
(the `Tactic` and `Technique` enum comments). A name missing here is kept by name, without an id.
"""

from __future__ import annotations

from typing import Final

SEVERITIES: Final = {
    "CRITICAL": 5,
    "HIGH": 4,
    "MEDIUM": 3,
    "LOW": 2,
    "SEVERITY_UNSPECIFIED": 0,
}

THREAT: Final = "THREAT"
VULNERABILITY: Final = "VULNERABILITY"
MISCONFIGURATION: Final = "MISCONFIGURATION"
OBSERVATION: Final = "OBSERVATION"
SCC_ERROR: Final = "SCC_ERROR"
POSTURE_VIOLATION: Final = "POSTURE_VIOLATION"
TOXIC_COMBINATION: Final = "TOXIC_COMBINATION"
KNOWN_CLASSES: Final = frozenset(
    {THREAT, VULNERABILITY, MISCONFIGURATION, OBSERVATION, SCC_ERROR, POSTURE_VIOLATION, TOXIC_COMBINATION}
)

# Findings written before `findingClass` existed (2019-2021) carry only their source's name;
# `parentDisplayName` (v1: `sourceDisplayName`) says which built-in service wrote them.
CLASS_BY_SOURCE: Final = {
    "Security Health Analytics": MISCONFIGURATION,
    "Event Threat Detection": THREAT,
    "Container Threat Detection": THREAT,
    "Virtual Machine Threat Detection": THREAT,
    "Cloud Run Threat Detection": THREAT,
    "Web Security Scanner": VULNERABILITY,
}

TACTICS: Final = {
    "RECONNAISSANCE": ("TA0043", "Reconnaissance"),
    "RESOURCE_DEVELOPMENT": ("TA0042", "Resource Development"),
    "INITIAL_ACCESS": ("TA0001", "Initial Access"),
    "EXECUTION": ("TA0002", "Execution"),
    "PERSISTENCE": ("TA0003", "Persistence"),
    "PRIVILEGE_ESCALATION": ("TA0004", "Privilege Escalation"),
    "DEFENSE_EVASION": ("TA0005", "Defense Evasion"),
    "CREDENTIAL_ACCESS": ("TA0006", "Credential Access"),
    "DISCOVERY": ("TA0007", "Discovery"),
    "LATERAL_MOVEMENT": ("TA0008", "Lateral Movement"),
    "COLLECTION": ("TA0009", "Collection"),
    "COMMAND_AND_CONTROL": ("TA0011", "Command and Control"),
    "EXFILTRATION": ("TA0010", "Exfiltration"),
    "IMPACT": ("TA0040", "Impact"),
}

TECHNIQUES: Final = {
    "MASQUERADING": "T1036",
    "MATCH_LEGITIMATE_NAME_OR_LOCATION": "T1036.005",
    "BOOT_OR_LOGON_INITIALIZATION_SCRIPTS": "T1037",
    "STARTUP_ITEMS": "T1037.005",
    "NETWORK_SERVICE_DISCOVERY": "T1046",
    "PROCESS_DISCOVERY": "T1057",
    "COMMAND_AND_SCRIPTING_INTERPRETER": "T1059",
    "UNIX_SHELL": "T1059.004",
    "PYTHON": "T1059.006",
    "EXPLOITATION_FOR_PRIVILEGE_ESCALATION": "T1068",
    "PERMISSION_GROUPS_DISCOVERY": "T1069",
    "CLOUD_GROUPS": "T1069.003",
    "INDICATOR_REMOVAL_FILE_DELETION": "T1070.004",
    "APPLICATION_LAYER_PROTOCOL": "T1071",
    "DNS": "T1071.004",
    "SOFTWARE_DEPLOYMENT_TOOLS": "T1072",
    "VALID_ACCOUNTS": "T1078",
    "DEFAULT_ACCOUNTS": "T1078.001",
    "LOCAL_ACCOUNTS": "T1078.003",
    "CLOUD_ACCOUNTS": "T1078.004",
    "PROXY": "T1090",
    "EXTERNAL_PROXY": "T1090.002",
    "MULTI_HOP_PROXY": "T1090.003",
    "ACCOUNT_MANIPULATION": "T1098",
    "ADDITIONAL_CLOUD_CREDENTIALS": "T1098.001",
    "SSH_AUTHORIZED_KEYS": "T1098.004",
    "ADDITIONAL_CONTAINER_CLUSTER_ROLES": "T1098.006",
    "INGRESS_TOOL_TRANSFER": "T1105",
    "NATIVE_API": "T1106",
    "BRUTE_FORCE": "T1110",
    "SHARED_MODULES": "T1129",
    "ACCESS_TOKEN_MANIPULATION": "T1134",
    "TOKEN_IMPERSONATION_OR_THEFT": "T1134.001",
    "EXPLOIT_PUBLIC_FACING_APPLICATION": "T1190",
    "DOMAIN_POLICY_MODIFICATION": "T1484",
    "DATA_DESTRUCTION": "T1485",
    "SERVICE_STOP": "T1489",
    "INHIBIT_SYSTEM_RECOVERY": "T1490",
    "RESOURCE_HIJACKING": "T1496",
    "NETWORK_DENIAL_OF_SERVICE": "T1498",
    "CLOUD_SERVICE_DISCOVERY": "T1526",
    "STEAL_APPLICATION_ACCESS_TOKEN": "T1528",
    "ACCOUNT_ACCESS_REMOVAL": "T1531",
    "STEAL_WEB_SESSION_COOKIE": "T1539",
    "CREATE_OR_MODIFY_SYSTEM_PROCESS": "T1543",
    "EVENT_TRIGGERED_EXECUTION": "T1546",
    "ABUSE_ELEVATION_CONTROL_MECHANISM": "T1548",
    "UNSECURED_CREDENTIALS": "T1552",
    "MODIFY_AUTHENTICATION_PROCESS": "T1556",
    "IMPAIR_DEFENSES": "T1562",
    "DISABLE_OR_MODIFY_TOOLS": "T1562.001",
    "EXFILTRATION_OVER_WEB_SERVICE": "T1567",
    "EXFILTRATION_TO_CLOUD_STORAGE": "T1567.002",
    "DYNAMIC_RESOLUTION": "T1568",
    "LATERAL_TOOL_TRANSFER": "T1570",
    "MODIFY_CLOUD_COMPUTE_INFRASTRUCTURE": "T1578",
    "CREATE_SNAPSHOT": "T1578.001",
    "CLOUD_INFRASTRUCTURE_DISCOVERY": "T1580",
    "OBTAIN_CAPABILITIES": "T1588",
    "ACTIVE_SCANNING": "T1595",
    "SCANNING_IP_BLOCKS": "T1595.001",
    "CONTAINER_ADMINISTRATION_COMMAND": "T1609",
    "DEPLOY_CONTAINER": "T1610",
    "ESCAPE_TO_HOST": "T1611",
    "CONTAINER_AND_RESOURCE_DISCOVERY": "T1613",
    "STEAL_OR_FORGE_AUTHENTICATION_CERTIFICATES": "T1649",
}
TECHNIQUE_NAMES_BY_UID: Final = {uid: name for name, uid in TECHNIQUES.items()}

_SMALL_WORDS: Final = frozenset({"and", "or", "of", "to", "for", "in", "on"})
_ACRONYMS: Final = frozenset({"DNS", "SSH", "API", "IP"})


def enum_caption(name: str) -> str:
    """Return a readable caption for an SCC enum name.

    Example:
        >>> enum_caption("COMMAND_AND_SCRIPTING_INTERPRETER")
        'Command and Scripting Interpreter'
    """
    words = []
    for i, word in enumerate(name.split("_")):
        lower = word.lower()
        if word in _ACRONYMS:
            words.append(word)
        elif i and lower in _SMALL_WORDS:
            words.append(lower)
        else:
            words.append(lower.capitalize())
    return " ".join(w for w in words if w)
