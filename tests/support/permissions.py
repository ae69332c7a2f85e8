"""Owner-only files: the `loose_umask` fixture (umask 022, the usual default) and `mode`, a path's permission bits.

Corral's files hold findings and raw vendor records; whatever the umask, a file it creates must be
0600 and a folder it creates 0700. Under umask 022 the defaults would be 0644 and 0755, so a test
that sets it tells an explicit mode from a lucky umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """Set the process umask to 022 for the test (spawned processes inherit it), then restore it."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path | str) -> int:
    """Return the permission bits of `path`, e.g. 0o600."""
    return stat.S_IMODE(os.stat(path).st_mode)  # noqa: PTH116
