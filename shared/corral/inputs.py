"""Which files an input path names: a file as given, `-` for stdin, a folder walked for deliveries.

A folder walk reads `.json`, `.jsonl` and `.ndjson` files and their `.gz` forms, and reports
every other file it skips (README, PROVENANCE) instead of treating it as bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

SUFFIXES: Final = (".json", ".jsonl", ".ndjson")


def readable(path: Path) -> bool:
    """True for the file names a folder walk reads: .json, .jsonl, .ndjson, each optionally .gz."""
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(SUFFIXES)


def expand(paths: Iterable[str], on_skip: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield files to read: folders searched recursively (sorted), `-` for stdin.

    In a folder only `readable` files are read; each other file is passed to `on_skip`. A file
    named explicitly is always read.
    """
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            for found in sorted(path.rglob("*")):
                if not found.is_file() or found.name.startswith("."):
                    continue
                if readable(found):
                    yield str(found)
                elif on_skip is not None:
                    on_skip(str(found))
        else:
            yield name
