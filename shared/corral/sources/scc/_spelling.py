"""The two spellings of SCC keys, and what is left of an object once its mapped keys are taken.

SCC findings reach us as protobuf JSON (camelCase), but some published renderings use the proto
field names (snake_case, e.g. `primary_tactic`, `project_display_name`). The normalizer reads
camelCase only: `camel()` gives it each object with the camelCase spelling of every key it reads
(the camelCase one wins when both are sent), and hands back the object itself, uncopied, when it
has no snake_case key the normalizer reads, which is nearly always.

The reader (`Fields`) is exact about keys, and its `rest()` prunes empty values; SCC keeps its
leftovers as sent (an empty `containers: []` stays), key for key in either spelling, so
`leftover()` takes the keys recorded in a `Fields` trie out of the object it read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

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


def leftover(obj: dict[str, Any], taken: Iterable[Any], spelled: bool = True) -> dict[str, Any]:
    """Return `obj` without the keys in `taken` (camelCase) in either spelling; values shared, as sent.

    `spelled` says that `obj` has no snake_case key the normalizer reads (`camel(obj) is obj`).
    A copy of the object less a few keys, rather than a walk over every key sent.
    """
    rest = dict(obj)
    pop = rest.pop
    for key in taken:
        pop(key, None)
        if not spelled and (snake := _SNAKE_OF.get(key)):
            pop(snake, None)
    return rest


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
