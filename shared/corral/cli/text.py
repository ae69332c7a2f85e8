"""Text from findings, made safe for a terminal.

Titles, names and reasons come from vendor documents an attacker can write to. A terminal acts
on control characters (ESC sequences set the window title, clear the screen, move the cursor;
a newline forges a line) and bidirectional overrides reorder what is read, so every such
character is shown as U+FFFD; rich markup in the text is escaped as well.
"""

from __future__ import annotations

import re
import sys
from typing import Final

# C0 and C1 controls, DEL, bidirectional marks, embeddings, overrides and isolates, and the
# Unicode line and paragraph separators.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_REPLACEMENT: Final = "\ufffd"


def plain(value: object) -> str:
    r"""`value` as text with every character a terminal would act on replaced.

    Example:
        >>> plain("title\x1b]0;owned\x07\nnext") == "title\ufffd]0;owned\ufffd\ufffdnext"
        True
    """
    return _UNSAFE.sub(_REPLACEMENT, str(value))


def shown(value: object) -> str:
    r"""`plain(value)` with rich markup escaped, for a rich table cell or line.

    Example:
        >>> shown("[bold]x\x1b[2J") == "\\[bold]x\ufffd[2J"
        True
    """
    from rich.markup import escape  # noqa: PLC0415 - the tables import rich anyway

    return escape(plain(value))


def say_skipped(path: str) -> None:
    """Say on stderr that a folder's file is not read; the name is made safe too (file names can hold newlines)."""
    print(plain(f"corral: skipped {path}: not a .json, .jsonl or .ndjson file (nor its .gz)"), file=sys.stderr)
