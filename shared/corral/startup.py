"""A cloud function's start-up: importing Corral and building the pipeline, once per instance.

Everything start-up makes lives as long as the instance: modules, classes, functions, the
pipeline and its store. Python's cycle collector would walk these objects again and again while
they pile up, and free none of them; afterwards every full collection would walk them again. So
start-up runs with the collector paused, and what it made is then frozen (`gc.freeze`): moved to
the permanent generation, which collections never scan. The collector is on again for the
invocations, as it was before.

Only the functions' entry modules use this, around their own start-up and nothing else, so the
platform's SDK imports are not affected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Pause the cycle collector for the block; then freeze what exists and restore the collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
