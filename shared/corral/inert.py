r"""Characters that act on whoever reads a finding instead of being read, as regex class ranges.

Finding text is attacker-written. Control characters drive terminals (ESC sequences) and forge
lines; bidirectional marks, embeddings, overrides and isolates reorder what is displayed (a file
named `invoice\u202etxt.exe` reads as `invoiceexe.txt`); the Unicode line and paragraph separators
break lines in some clients. Each output removes, replaces or escapes these its own way; the set
is defined once, here.
"""

from __future__ import annotations

from typing import Final

CONTROLS: Final = "\x00-\x08\x0b-\x1f\x7f-\x9f"
"""C0 controls except tab and newline, DEL and the C1 controls."""
LAYOUT: Final = "\t\n"
"""The two C0 controls that are layout where text may span lines."""
DIRECTIONAL: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""Bidirectional marks, embeddings, overrides and isolates."""
SEPARATORS: Final = "\u2028\u2029"
"""The Unicode line and paragraph separators."""
