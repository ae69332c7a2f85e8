"""The store fixtures of the store contract suite, so that intake tests run on every backend too."""

from __future__ import annotations

from tests.stores.conftest import moto_server, postgres_server, postgres_url, store, store_url

__all__ = ["moto_server", "postgres_server", "postgres_url", "store", "store_url"]
