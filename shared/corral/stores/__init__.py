"""Open a store by URL: `sqlite:///path`, `postgresql://…` or `dynamodb://table?region=…`.

The registry is literal; each backend module is imported only when its scheme is used, so that
`import corral` never loads a database driver or a cloud SDK.
"""

from __future__ import annotations

import importlib
from typing import Final
from urllib.parse import urlsplit

from corral import optional
from corral.errors import ConfigError
from corral.redaction import redact_url
from corral.stores.base import Store

DEFAULT_URL: Final = "sqlite:///corral.db"
BACKENDS: Final = {
    "sqlite": "corral.stores.sqlite",
    "postgresql": "corral.stores.postgresql",
    "postgres": "corral.stores.postgresql",
    "dynamodb": "corral.stores.dynamodb",
}


def open_store(url: str = DEFAULT_URL) -> Store:
    """Return the store for `url` (each backend module exposes `open(url) -> Store`).

    Example:
        >>> store = open_store("sqlite:///:memory:")
    """
    scheme = urlsplit(url).scheme
    module_name = BACKENDS.get(scheme)
    if module_name is None:
        known = ", ".join(sorted({f"{s}://" for s in BACKENDS}))
        raise ConfigError(f"store URL {redact(url)!r}: unknown scheme {scheme!r}; use one of {known}")
    try:
        store: Store = importlib.import_module(module_name).open(url)
    except ModuleNotFoundError as exc:
        raise optional.missing(exc, f"store {redact(url)}") from None
    return store


def redact(url: str) -> str:
    """Return `url` without its credentials (user-info password, secret query values), for messages and logs.

    Example:
        >>> redact("postgresql://corral@db/corral?password=hunter2")
        'postgresql://corral@db/corral?password=***'
    """
    return redact_url(url)
