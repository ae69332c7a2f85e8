"""The optional packages a store or sink loads, and how an operator includes a missing one.

Stores and sinks import their drivers and SDKs only when configured, so a deployment carries
only what it uses. When one is missing, start-up fails with one line that names the package,
the Corral extra that provides it and the requirements line an artifact needs, instead of an
import traceback from deep inside the first call.
"""

from __future__ import annotations

from typing import Final

from corral.errors import ConfigError

# Module (or its leading part) -> (requirement to install, Corral extra that includes it).
PROVIDERS: Final[dict[str, tuple[str, str]]] = {
    "psycopg": ("psycopg[binary]", "postgresql"),
    "psycopg_binary": ("psycopg[binary]", "postgresql"),
    "boto3": ("boto3", "aws"),
    "botocore": ("boto3", "aws"),
    "azure.monitor": ("azure-monitor-ingestion", "azure"),
    "azure.identity": ("azure-identity", "azure"),
    "azure": ("azure-monitor-ingestion", "azure"),
    "google.auth": ("google-auth[requests]", "gcp"),
    "google.oauth2": ("google-auth[requests]", "gcp"),
    "requests": ("google-auth[requests]", "gcp"),
    "google": ("google-cloud-pubsub", "gcp"),
    "grpc": ("google-cloud-pubsub", "gcp"),
    "urllib3": ("urllib3", "chat"),
}


def provider(module: str) -> tuple[str, str] | None:
    """Return (requirement, extra) for a missing module, by its longest known leading part.

    Example:
        >>> provider("azure.identity._credentials")
        ('azure-identity', 'azure')
        >>> provider("left_pad") is None
        True
    """
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = PROVIDERS.get(".".join(parts[:n]))
        if found:
            return found
    return None


def missing(exc: ModuleNotFoundError, what: str) -> ConfigError:
    """The one-line ConfigError for `what` (e.g. "sinks.sentinel:soc") needing a module that is absent.

    Example:
        >>> print(missing(ModuleNotFoundError(name="boto3"), "store dynamodb://corral"))
        store dynamodb://corral: needs the Python package boto3, which is not installed; \
install corral[aws], or add boto3 to the function's requirements.txt
    """
    module = exc.name or "an optional package"
    found = provider(module)
    if found is None:
        return ConfigError(f"{what}: needs the Python module {module}, which is not installed")
    requirement, extra = found
    return ConfigError(
        f"{what}: needs the Python package {requirement}, which is not installed; "
        f"install corral[{extra}], or add {requirement} to the function's requirements.txt"
    )
