"""Session-wide test rules.

In CI (`CI` set) a skipped test is a failure: every service the tests need is installed and started
by `.ci/run` and the fixtures, so a skip there can only mean a missing install step.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests check what is true, not how fast: a per-example deadline only flakes on a loaded
# machine (the benchmarks measure speed, as same-run ratios).
settings.register_profile("corral", deadline=None)
settings.load_profile("corral")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the CI run when any test was skipped."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; in CI every test must run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
