"""Corral: container security findings from AWS, Azure and Google Cloud, in one pen.

Importing this package is every function's cold start, so it imports nothing heavy: no cloud
SDK, no HTTP client, no database driver. Each of those loads where it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"
OCSF_VERSION = "1.8.0"

__all__ = ["OCSF_VERSION", "__version__"]
