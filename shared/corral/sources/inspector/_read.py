"""Plain-dict readers the Inspector normalizer shares, recording what `plain`'s readers would.

A trie node is made only where something is recorded below it: an empty node and a missing one
leave the same `unmapped`, so objects nothing is mapped from cost no node.
"""

from __future__ import annotations

from typing import Final

from corral.sources._core.plain import LEAF, Node
from corral.sources._core.reader import Trie

_MAX_ITEMS: Final = 100


def child(taken: Trie, key: str | int) -> Trie:
    """The trie node below `key`, made when missing (`plain.child_trie`)."""
    node = taken.get(key)
    if node is None:
        node = taken[key] = {}
    elif node is LEAF:
        return {}  # mapped as a whole already: what is recorded below it changes nothing
    return node


def texts(value: object, taken: Trie, key: str) -> list[str]:
    """The non-empty strings of the list `value` (at `key`), each recorded (`plain.texts`)."""
    if not isinstance(value, list) or not value:
        return []
    found = []
    below: Trie | None = None
    for i, item in enumerate(value[:_MAX_ITEMS]):
        if isinstance(item, str) and item:
            if below is None:
                below = child(taken, key)
            below[i] = LEAF
            found.append(item)
    return found


def recommendation(finding: Node) -> str | None:
    """`remediation.recommendation.text`, recorded (`text(sub(sub(finding, ...), ...), "text")`)."""
    remediation = finding[0].get("remediation")
    if not isinstance(remediation, dict):
        return None
    advice = remediation.get("recommendation")
    if not isinstance(advice, dict):
        return None
    text = advice.get("text")
    if not (isinstance(text, str) and text):
        return None
    child(child(finding[1], "remediation"), "recommendation")["text"] = LEAF
    return text
