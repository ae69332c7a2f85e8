"""Checks of sink settings shared by the sink kinds; each raises ConfigError naming `<where>.<key>`.

The messages say what to write instead and never quote the value: a mistyped setting may be a
secret pasted in the wrong place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from corral.errors import ConfigError

MAX_TIMEOUT: Final = 300.0
"""The longest `timeout` (seconds) a SIEM or webhook sink accepts."""
LABEL_LIMIT: Final = 512


def number(
    settings: Mapping[str, Any],
    key: str,
    where: str,
    default: float,
    *,
    minimum: float,
    maximum: float,
    unit: str = "",
) -> float:
    """Return a numeric setting within [minimum, maximum], or `default`; `unit` names it in errors.

    Example:
        >>> number({"size": 2048}, "size", "sinks.x", 1024, minimum=1024, maximum=4096)
        2048.0
    """
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        kind = f"a number of {unit}" if unit else "a number"
        raise ConfigError(f"{where}.{key}: use {kind} from {minimum:g} to {maximum:g}")
    return float(value)


def seconds(
    settings: Mapping[str, Any], key: str, where: str, default: float, *, minimum: float, maximum: float
) -> float:
    """Return a duration setting (seconds) within [minimum, maximum], or `default`."""
    return number(settings, key, where, default, minimum=minimum, maximum=maximum, unit="seconds")


def label(settings: Mapping[str, Any], key: str, where: str, default: str) -> str:
    """Return a short printable text setting (no control characters), or `default`."""
    value = settings.get(key, default)
    if not isinstance(value, str) or not value or len(value) > LABEL_LIMIT or not value.isprintable():
        raise ConfigError(f"{where}.{key}: use a non-empty printable text of at most {LABEL_LIMIT} characters")
    return value


def ca_bundle(settings: Mapping[str, Any], where: str) -> str | None:
    """Return the `ca_file` setting (a PEM file that exists), or None for the system trust store."""
    value = settings.get("ca_file")
    if value is None:
        return None
    if not isinstance(value, str) or not Path(value).is_file():
        raise ConfigError(f"{where}.ca_file: name an existing PEM file of trusted CA certificates")
    return value


PUBLIC_URL_HELP: Final = (
    "Base URL at which people reach Corral's dashboard (`corral serve`), e.g. `https://corral.example`; "
    "adds an Open in Corral link to each finding's page (default: the top-level `public_url`, else none)."
)


def public_url(settings: Mapping[str, Any], where: str) -> str | None:
    """Return the `public_url` setting (https, or http on loopback) without a trailing slash, or None."""
    value = settings.get("public_url")
    if value is None:
        return None
    # Loaded here: the HTTP helpers are only needed by the sinks that link to Corral.
    from corral.sinks.http import require_https  # noqa: PLC0415

    url = require_https(value, f"{where}.public_url")
    parts = url.split("?", 1)[0].split("#", 1)[0]
    if parts != url:
        raise ConfigError(f"{where}.public_url: use the dashboard's base URL, without a query or fragment")
    return url.rstrip("/")
