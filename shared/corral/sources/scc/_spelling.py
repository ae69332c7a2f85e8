"""The two spellings of SCC keys, and what is left of an object once its mapped keys are taken.

SCC findings reach us as protobuf JSON (camelCase), but some published renderings use the proto
field names (snake_case, e.g. `primary_tactic`, `project_display_name`). The normalizer reads
camelCase only: `camel()` gives it each object with the camelCase spelling of every key it reads
(the camelCase one wins when both are sent), and hands back the object itself, uncopied, when it
has no snake_case key the normalizer reads, which is nearly always.

The reader (`Fields`) is exact about keys: `both_spellings()` extends what it recorded of a
camelCase view to the snake_case keys the view was read from, so that `unmapped` leaves out a
mapped key in whichever spelling it was sent.
"""

from __future__ import annotations

import re
from typing import Any, Final

from corral.sources._core.reader import Fields, Trie

# Every multi-word key the normalizer reads, in any object (single words are spelled alike).
_READ: Final = (
    "eventTime",
    "createTime",
    "muteUpdateTime",
    "findingClass",
    "canonicalName",
    "externalUri",
    "parentDisplayName",
    "sourceDisplayName",
    "moduleName",
    "resourceName",
    "muteInitiator",
    "mitreAttack",
    "nextSteps",
    "sourceProperties",
    "securityMarks",
    "toxicCombination",
    "relatedFindings",
    "muteInfo",
    "staticMute",
    "assetDisplayName",
    "displayName",
    "cloudProvider",
    "gcpMetadata",
    "projectDisplayName",
    "resourcePathString",
    "projectName",
    "awsMetadata",
    "organizationalUnits",
    "azureMetadata",
    "resourceFolder",
    "resourceFolderDisplayName",
    "nodePools",
    "imageId",
    "parentPid",
    "partiallyHashed",
    "principalEmail",
    "principalSubject",
    "methodName",
    "callerIp",
    "serviceName",
    "primaryTactic",
    "additionalTactics",
    "primaryTechniques",
    "additionalTechniques",
    "baseScore",
    "attackVector",
    "attackComplexity",
    "privilegesRequired",
    "userInteraction",
    "confidentialityImpact",
    "integrityImpact",
    "availabilityImpact",
    "offendingPackage",
    "fixedPackage",
    "packageName",
    "packageVersion",
    "packageType",
    "cpeUri",
    "upstreamFixAvailable",
    "exploitationActivity",
    "ProjectId",
    "Explanation",
    "Recommendation",
)

_HUMP: Final = re.compile(r"(?<!^)(?=[A-Z])")

CAMEL: Final = {_HUMP.sub("_", key).lower(): key for key in _READ}
"""snake_case spelling -> the camelCase key the normalizer reads."""
_SNAKE: Final = frozenset(CAMEL)
_SNAKE_OF: Final = {key: snake for snake, key in CAMEL.items()}


def camel(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `obj` with the camelCase spelling of each key read; `obj` itself when it has no snake_case one."""
    if _SNAKE.isdisjoint(obj):
        return obj
    view = dict(obj)
    for key, value in obj.items():
        name = CAMEL.get(key)
        if name is not None and name not in obj:
            view[name] = value
    return view


def recorded(*keys: str) -> Trie:
    """Return what `Fields` records for `keys` mapped in full: a fixed record, made once."""
    taken: Trie = {}
    record = Fields({}, taken)
    for key in keys:
        record.mark(key)
    return taken


LEAF: Final = recorded("key")["key"]
"""What `Fields` records for a key mapped in full: hot paths write it into a record directly."""


def take_texts(obj: dict[str, Any], taken: Trie, keys: tuple[str, ...]) -> list[str | None]:
    """Return the non-empty string at each of `keys` (else None), recording each one found, as `Fields.text` does."""
    # A plain loop: for the few keys of a finding it costs less than chaining map/compress in C.
    found: list[str | None] = []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            taken[key] = LEAF
            found.append(value)
        else:
            found.append(None)
    return found


def without(obj: dict[str, Any], taken: Trie) -> dict[str, Any]:
    """Return `Fields(obj, taken).rest(as_sent=True)` for a record of keys of `obj` each mapped in full.

    That is `obj` without the recorded keys, in the order sent; this normalizer records nothing
    deeper (objects it maps in part stay whole), so no recorded path has to be walked.
    """
    return {key: value for key, value in obj.items() if key not in taken}


def both_spellings(taken: Trie) -> Trie:
    """Return a copy of `taken` (a `Fields` record of camelCase keys) recording each key's snake_case spelling too."""
    both = dict(taken)
    record = Fields({}, both)
    for key in taken:
        if isinstance(key, str) and (spelling := _SNAKE_OF.get(key)):
            record.mark(spelling)
    return both


EMPTY: Final[dict[str, Any]] = {}
"""What `inner()` gives for a missing object; never written."""


def inner(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """Return the object at `key` of `obj` as `camel()` spells it, else EMPTY."""
    value = obj.get(key)
    if not isinstance(value, dict):
        return EMPTY
    return value if _SNAKE.isdisjoint(value) else camel(value)


def objects(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Return the objects in the list at `key` of `obj` as sent, skipping anything that is not an object."""
    value = obj.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def string(value: object) -> str | None:
    """Return `value` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None
