"""Text from findings, made safe for a terminal.

Titles, names and reasons come from vendor documents an attacker can write to. A terminal acts
on control characters (ESC sequences set the window title, clear the screen, move the cursor;
a newline forges a line) and bidirectional overrides reorder what is read, so every such
character is shown as U+FFFD; rich markup in the text is escaped as well, and the consoles print
emoji codes (:thumbs_up:) as written. JSON output keeps the text exact but writes those characters
as \\u escapes.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Final

import orjson

from corral import inert

if TYPE_CHECKING:
    from rich.console import Console  # noqa: TID251 - the one place that makes a Console

# DEL, C1 controls, bidirectional marks, embeddings, overrides and isolates, and the Unicode line
# and paragraph separators: orjson writes these raw.
_BEYOND_C0: Final = f"{inert.C1}{inert.DIRECTIONAL}{inert.SEPARATORS}"
# All of them and the C0 controls: orjson escapes those in strings itself, and outside strings its
# newlines are layout, so JSON output leaves C0 alone.
_UNSAFE: Final = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
_RAW_IN_JSON: Final = re.compile(f"[{_BEYOND_C0}]")
_REPLACEMENT: Final = "\ufffd"


def plain(value: object) -> str:
    r"""`value` as text with every character a terminal would act on replaced.

    Example:
        >>> plain("title\x1b]0;owned\x07\nnext") == "title\ufffd]0;owned\ufffd\ufffdnext"
        True
    """
    return _UNSAFE.sub(_REPLACEMENT, str(value))


def write_json(value: object, *, indent: bool = False) -> None:
    r"""Write `value` on stdout as JSON (one line, or indented), every character `plain` replaces \u-escaped.

    orjson escapes C0 controls itself, but DEL, C1 controls and bidirectional overrides would reach the
    terminal raw. Outside its strings orjson writes ASCII only, so each escape lands inside a string
    and the data read back is exactly the same.

    Example:
        >>> write_json({"title": "a\u202eb\x9b"})
        {"title":"a\u202eb\u009b"}
    """
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else None).decode()
    sys.stdout.write(_RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n")


def shown(value: object) -> str:
    r"""`plain(value)` with rich markup escaped, for a rich table cell or line.

    Example:
        >>> shown("[bold]x\x1b[2J") == "\\[bold]x\ufffd[2J"
        True
    """
    from rich.markup import escape  # noqa: PLC0415 - the tables import rich anyway

    return escape(plain(value))


def make_console(*, stderr: bool = False) -> Console:
    """The rich Console every command prints with; `shown` escapes markup, and this one reads no emoji codes.

    rich turns `:white_check_mark:` into an emoji by default, and `rich.markup.escape` leaves such
    codes alone: a title could show a check mark or a thumbs-up that its vendor never sent.
    """
    from rich.console import Console  # noqa: PLC0415, TID251 - rich only for commands that print tables

    return Console(stderr=stderr, emoji=False)


def say_skipped(path: str) -> None:
    """Say on stderr that a folder's file is not read; the name is made safe too (file names can hold newlines)."""
    print(plain(f"corral: skipped {path}: not a .json, .jsonl or .ndjson file (nor its .gz)"), file=sys.stderr)
