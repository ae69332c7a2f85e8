"""The fixed vocabularies that filters name values in, and the one way each is read.

A route or suppression condition (`when` in corral.toml) and an option of `corral findings list`
name the same things (a cloud, a container service, a source, a finding class) and accept the same
values: the lists are here, a value is matched in any case and read as its canonical spelling, and
a value outside a list is refused with the accepted ones. A value no finding can carry would
otherwise be taken and match nothing, silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from corral import ocsf
from corral.errors import ConfigError

CLOUDS: Final = ("AWS", "Azure", "GCP")
"""`cloud.provider` as every source writes it."""

CLASSES: Final[dict[str, int]] = {
    **{name.removesuffix(" Finding"): uid for uid, name in ocsf.CLASS_NAMES.items()},
    **{name: uid for uid, name in ocsf.CLASS_NAMES.items()},
    **{str(uid): uid for uid in ocsf.CLASS_NAMES},
}
"""A finding class by its short name (Detection), its OCSF name (Detection Finding) or its uid (2004)."""

CORRAL_PRODUCT: Final = "corral"
"""The product uid of Corral's own findings (a source gone silent)."""


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """Return ` (did you mean 'X'?)` for the closest known value in any case, or "" when none is close."""
    import difflib  # noqa: PLC0415 - only a mistake needs a suggestion

    folded = {name.lower(): name for name in known}
    close = difflib.get_close_matches(value.strip().lower(), list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def choose(where: str, value: str, allowed: Sequence[str]) -> str:
    """Return the entry of `allowed` that `value` names in any case; raise ConfigError naming `where` otherwise.

    Example:
        >>> choose("--cloud", "aws", CLOUDS)
        'AWS'
    """
    wanted = value.strip().lower()
    for choice in allowed:
        if choice.lower() == wanted:
            return choice
    raise ConfigError(
        f"{where}: unknown value {value!r}{did_you_mean(value, allowed)}; use one of {', '.join(allowed)}"
    )


def sources() -> list[str]:
    """Every value a `source` filter accepts: the source ids, their product uids and Corral's own."""
    from corral.sources import PRODUCT_SOURCES  # noqa: PLC0415 - the registry loads every source module

    return sorted({*PRODUCT_SOURCES.values(), *PRODUCT_SOURCES, CORRAL_PRODUCT})


def products_of(source: str) -> list[str]:
    """Return the product uids (lower case) a source id stands for, and the value itself (a product uid is one too).

    Example:
        >>> products_of("azure.defender")
        ['azure.defender', 'microsoft.defender_for_cloud']
    """
    from corral.sources import PRODUCT_SOURCES  # noqa: PLC0415 - the registry loads every source module

    wanted = source.lower()
    return sorted({wanted, *(product.lower() for product, src in PRODUCT_SOURCES.items() if src.lower() == wanted)})
