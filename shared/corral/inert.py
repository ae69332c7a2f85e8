r"""Characters that act on whoever reads a finding instead of being read, as regex class ranges.

Finding text is attacker-written. Control characters drive terminals (ESC sequences) and forge
lines; bidirectional marks, embeddings, overrides and isolates reorder what is displayed (a file
named `invoice\u202etxt.exe` reads as `invoiceexe.txt`); the Unicode line and paragraph separators
break lines in some clients. Each output removes, replaces or escapes these its own way; the set
is defined once, here.
"""

from __future__ import annotations

from typing import Final

C1: Final = "\x7f-\x9f"
"""DEL and the C1 controls."""
CONTROLS: Final = f"\x00-\x08\x0b-\x1f{C1}"
"""The C0 controls but tab and newline (layout where text may span lines), and `C1`."""
DIRECTIONAL: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""Bidirectional marks, embeddings, overrides and isolates."""
SEPARATORS: Final = "\u2028\u2029"
"""The Unicode line and paragraph separators."""
