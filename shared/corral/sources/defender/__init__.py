"""Placeholder: being written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.errors import MalformedEventError
from corral.records import Normalized

SOURCE = "azure.defender"


def recognizes(doc: Mapping[str, Any]) -> bool:
    return False


def normalize(doc: Mapping[str, Any], delivery_id: str | None = None) -> Normalized:
    raise MalformedEventError("not implemented")
