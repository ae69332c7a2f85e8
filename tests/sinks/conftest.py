"""Fixtures the sink tests share."""

from __future__ import annotations

import pytest

from tests.support.fake_http import TlsFiles, make_tls


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for a local endpoint (one per test module)."""
    return make_tls(tmp_path_factory.mktemp("tls"))
