"""The image-inventory contract runs over the same migrated stores of every backend as tests/stores."""

from __future__ import annotations

from tests.stores.conftest import store, store_url
from tests.support.moto import moto_server
from tests.support.postgres import postgres_server, postgres_url

__all__ = ["moto_server", "postgres_server", "postgres_url", "store", "store_url"]
