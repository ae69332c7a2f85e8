"""What a source module is: the functions it exposes and the facts it declares about itself.

Health (reporting windows, names), coverage (which cells a source can serve) and attribution
(which product a finding comes from) read these facts through the registry in
`corral.sources`, so a new source declares them once, in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from corral.records import NamedTuple, Normalized

# NamedTuples, not frozen dataclasses: the home cloud's facts load at every cold start, and a
# dataclass costs ten times as much to build (see corral.records).


class Capability(NamedTuple):
    """A detector, offered by one source, that can produce findings for some coverage cells."""

    name: str
    source: str
    services: tuple[str, ...]
    cells: tuple[tuple[str, str], ...]
    """(layer, task) pairs the detector reports on, for each of `services`."""


class Facts(NamedTuple):
    """What one source declares about itself."""

    source: str
    """Its id, `<cloud>.<service>`."""
    name: str
    """The product's name for people ("Amazon GuardDuty")."""
    product_uid: str
    """The `metadata.product.uid` of its findings."""
    home_cloud: str
    """The cloud of accounts it reports for unless an account id says otherwise: AWS, Azure or GCP."""
    window_minutes: int
    """Minutes without a delivery after which an account of this source is silent (health)."""
    why_window: str
    """The source's delivery cadence that sets the window, for the health docs and reviewers."""
    capabilities: tuple[Capability, ...] = ()
    """The detectors it offers and the coverage cells each can serve."""


class Source(Protocol):
    """The interface every source module satisfies (modules are checked against it by mypy)."""

    @property
    def SOURCE(self) -> str:  # noqa: N802 - a module constant, as the modules spell it
        """The source id."""
        ...

    @property
    def FACTS(self) -> Facts | None:  # noqa: N802
        """Its facts; None for a pass-through source that is no product of its own (relay)."""
        ...

    def recognizes(self, doc: Mapping[str, Any]) -> bool:
        """Whether a bare document (already out of its envelope) is this source's own."""
        ...

    def normalize(
        self, doc: Mapping[str, Any], delivery_id: str | None = None, *, received_time: int | None = None
    ) -> Normalized:
        """Map one document; pure; raises `MalformedEventError` (or `UnsupportedSourceError`) only."""
        ...
