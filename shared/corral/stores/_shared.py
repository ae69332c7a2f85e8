"""Pure helpers every backend uses the same way: traits, batch folding and cursor packing.

They hold no backend detail: each backend turns what they return into its own rows or items.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from corral import traits
from corral.records import HealthSignal
from corral.stores.base import SourceSeen
from corral.vocabulary import CLOUDS

SignalKey = tuple[str, str, str, str, str]
"""(source, account, service, region, resource), "" for a region or resource not named."""
"""(source, account, service, region): the region is "" when absent, because it is part of a key."""


def trait_map(finding: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return every trait of a finding as {name: [values]}, for the `trait` query filter.

    OCSF traits carry `value` or `values`; both are read, and every category counts, so that a
    filter on a source's own trait works as well as one on Corral's classification.
    """
    found: dict[str, list[str]] = {}
    traits = finding.get("finding_info", {}).get("traits") or []
    for trait in traits:
        # dict first: the ABC check of Mapping costs more than the rest of the loop.
        if not (isinstance(trait, dict) or isinstance(trait, Mapping)) or not isinstance(trait.get("name"), str):  # noqa: SIM101
            continue
        values = found.setdefault(trait["name"], [])
        candidates = trait.get("values") or ()
        value = trait.get("value")
        for candidate in (*candidates, value) if value is not None else candidates:
            text = candidate if isinstance(candidate, str) else str(candidate)
            if text not in values:
                values.append(text)
    return found


SourceUpdate = tuple[str, str, int, int | None, int, str | None]


def source_updates(seen: Sequence[SourceSeen]) -> list[SourceUpdate]:
    """Fold a batch of deliveries per (source, account): latest times, how many, and the account's cloud.

    Rows are `(source, account_uid, last_delivery, last_finding_time, deliveries, cloud)`.
    """
    folded: dict[tuple[str, str], tuple[int, int | None, int, str | None]] = {}
    for item in seen:
        key = (item.source, item.account_uid)
        at, finding_time, count, cloud = folded.get(key, (item.at, item.finding_time, 0, item.cloud))
        times = [t for t in (finding_time, item.finding_time) if t is not None]
        folded[key] = (max(at, item.at), max(times) if times else None, count + 1, item.cloud or cloud)
    return [(*key, *values) for key, values in folded.items()]


def latest_signals(signals: Sequence[HealthSignal]) -> dict[SignalKey, HealthSignal]:
    """Keep the latest signal per (source, account, service, region, resource) of a batch; ties go to the later one."""
    latest: dict[SignalKey, HealthSignal] = {}
    for signal in signals:
        key = (signal.source, signal.account_uid, signal.service, signal.region or "", signal.resource)
        if key not in latest or signal.time >= latest[key].time:
            latest[key] = signal
    return latest


CLOUD_NAMES: Final = {name.lower(): name for name in CLOUDS}
SERVICE_NAMES: Final = {name.lower(): name for name in traits.CONTAINER_SERVICES}


def canonical(value: str, names: Mapping[str, str]) -> str:
    """Return a fixed-vocabulary value as stored ("aws" → "AWS"); unknown values unchanged (they match nothing)."""
    return names.get(value.lower(), value)


def pack_cursor(values: Sequence[Any]) -> str:
    """Return an opaque query cursor holding `values` (JSON, URL-safe base64)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode()


def unpack_cursor(cursor: str, size: int) -> tuple[Any, ...]:
    """Return the `size` values of a cursor made by `pack_cursor`; raise ValueError for anything else."""
    try:
        values = tuple(orjson.loads(base64.urlsafe_b64decode(cursor.encode())))
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise not_a_cursor(cursor) from None
    if len(values) != size:
        raise not_a_cursor(cursor)
    return values


def not_a_cursor(cursor: str) -> ValueError:
    """Return the error for a cursor that no query made."""
    return ValueError(f"not a query cursor: {cursor[:40]!r}")
