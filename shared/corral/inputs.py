"""Which files an input path names: a file as given, `-` for stdin, a folder walked for deliveries.

A folder walk reads `.json`, `.jsonl` and `.ndjson` files and their `.gz` forms, and reports
every other file it skips (README, PROVENANCE) instead of treating it as bad input.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

SUFFIXES: Final = (".json", ".jsonl", ".ndjson")
# What `Path.is_file` takes for "no such file" rather than an error (a dangling or looping link).
_ABSENT: Final = frozenset((errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP))


def readable(path: Path) -> bool:
    """True for the file names a folder walk reads: .json, .jsonl, .ndjson, each optionally .gz."""
    return _readable_name(path.name)


def _readable_name(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(SUFFIXES)


def expand(paths: Iterable[str], on_skip: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield files to read: folders searched recursively (sorted), `-` for stdin.

    In a folder only `readable` files are read; each other file is passed to `on_skip`. A file
    named explicitly is always read.
    """
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            for found, file_name in _files(str(path)):
                if file_name.startswith("."):
                    continue
                if _readable_name(file_name):
                    yield found
                elif on_skip is not None:
                    on_skip(found)
        else:
            yield name


def _files(top: str) -> list[tuple[str, str]]:
    """The files under folder `top` (as `Path` spells it), with their names, in `sorted(Path(top).rglob("*"))` order.

    One scan per folder, where `rglob` makes two and a `Path` for every entry: folders are entered
    without following links, an unreadable folder gives nothing, and the order is `Path`'s, by
    the sequence of path parts (`a/b` before `a-c`, which string order puts the other way round).
    """
    prefix = "" if top == "." else top if top.endswith("/") else top + "/"
    found: list[tuple[tuple[str, ...], str, str]] = []
    folders: list[tuple[tuple[str, ...], str]] = [((), top)]
    while folders:
        parts, folder = folders.pop()
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except PermissionError:
            continue
        for entry in entries:
            here = (*parts, entry.name)
            text = prefix + "/".join(here)
            if entry.is_dir(follow_symlinks=False):
                folders.append((here, text))
            elif _is_file(entry):
                found.append((here, text, entry.name))
    found.sort()
    return [(text, name) for _, text, name in found]


def _is_file(entry: os.DirEntry[str]) -> bool:
    """`Path.is_file` of an entry: links followed, and one that leads nowhere is no file."""
    try:
        return entry.is_file()
    except OSError as exc:
        if exc.errno in _ABSENT:
            return False
        raise
