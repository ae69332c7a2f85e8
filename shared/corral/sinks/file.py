"""File sink: OCSF JSON lines appended to a local file, flushed and fsync'd once per batch.

Each delivery is one line: `{"idempotency_key": …, "change": …, "finding": {…}}`, or the bare
OCSF finding with `format = "ocsf"` (for tools that read OCSF JSON lines directly). orjson
escapes every control character, so attacker text can never start a new line. A batch is written
with one `write` on a file opened for appending, so lines from concurrent writers do not
interleave mid-line on local file systems. A file the sink creates is owner-only (0600), and so are
the folders it creates (0700), whatever the umask: findings are sensitive. Used by the local demo
and for archiving.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from corral.errors import ConfigError
from corral.sinks.base import Delivery, Result, SinkFamily, whole_finding
from corral.sinks.settings import PUBLIC_URL_HELP, public_url
from corral.sinks.text import finding_link

FAMILY: Final[SinkFamily] = "file"
SETTINGS: Final[Mapping[str, str]] = {
    "kind": "The sink kind; may be left out when the sink id starts with it (`file:name`).",
    "path": "File to append JSON lines to, e.g. `out/findings.jsonl`.",
    "format": (
        "`corral` (default: each line holds the change, the idempotency key and the finding) or `ocsf` (each "
        "line is the bare OCSF finding)."
    ),
    "public_url": PUBLIC_URL_HELP,
}
"""Every setting this sink reads, with its description: the one declaration behind the configuration
check and docs/configuration.md."""

Format = Literal["corral", "ocsf"]
FORMATS: Final[tuple[Format, ...]] = ("corral", "ocsf")

log = logging.getLogger(__name__)


def render(delivery: Delivery, fmt: Format = "corral", public_url: str | None = None) -> bytes:
    """Return one JSON line (newline-terminated) for `delivery`.

    In the `corral` format, `public_url` adds `corral_url`, the finding's page on Corral's dashboard.

    Example:
        >>> from corral.sinks.base import Delivery
        >>> render(Delivery("file:x", "k1", "new", {"class_uid": 2004}))
        b'{"idempotency_key":"k1","change":"new","finding":{"class_uid":2004}}\\n'
    """
    if fmt == "ocsf":
        return orjson.dumps(whole_finding(delivery), option=orjson.OPT_APPEND_NEWLINE)
    doc: dict[str, object] = {"idempotency_key": delivery.version, "change": delivery.change}
    link = finding_link(public_url, delivery.finding)
    if link:
        doc["corral_url"] = link
    doc["finding"] = whole_finding(delivery)
    return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)


class FileSink:
    """Appends findings to one file."""

    family: SinkFamily = FAMILY

    def __init__(self, sink_id: str, *, path: Path, fmt: Format = "corral", public_url: str | None = None) -> None:
        self.id = sink_id
        self._public_url = public_url
        self.path = path
        self._format: Format = fmt
        self._lock = threading.Lock()

    def send(self, deliveries: Sequence[Delivery]) -> list[Result]:
        """Append one line per delivery, then flush and fsync; one Result each."""
        results: list[Result | None] = [None] * len(deliveries)
        lines: list[bytes] = []
        written: list[int] = []
        for i, delivery in enumerate(deliveries):
            try:
                lines.append(render(delivery, self._format, self._public_url))
            except TypeError as exc:  # orjson.JSONEncodeError: an integer over 64 bits, a non-str key
                results[i] = Result.failure(
                    delivery.version, f"{self.id}: cannot render the finding ({type(exc).__name__})", permanent=True
                )
                continue
            written.append(i)
        if lines:
            try:
                self._append(b"".join(lines))
            except OSError as exc:
                # Disk full, read-only or missing permissions: all worth retrying once fixed; the
                # ledger backs off. Some lines may have landed; the idempotency key marks repeats.
                reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
                log.warning("%s: cannot append to the file (%s)", self.id, reason)
                for i in written:
                    results[i] = Result.failure(
                        deliveries[i].version, f"{self.id}: cannot append to the file ({reason})"
                    )
            else:
                for i in written:
                    results[i] = Result.success(deliveries[i].version)
        return [r for r in results if r is not None]

    def _append(self, data: bytes) -> None:
        with self._lock:
            _private_folders(self.path.parent)
            with open(self.path, "ab", opener=_owner_only) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    def close(self) -> None:
        """Nothing to release: the file is opened per batch."""


def _owner_only(path: str, flags: int) -> int:
    """`open`'s opener: a file it creates is 0600 (findings are sensitive); an existing one keeps its mode."""
    return os.open(path, flags, 0o600)


def _private_folders(folder: Path) -> None:
    """Create `folder` and the folders missing above it 0700; existing ones keep their mode."""
    missing: list[Path] = []
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for name in reversed(missing):
        name.mkdir(mode=0o700, exist_ok=True)


def from_config(sink_id: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> FileSink:
    """Build the sink from its settings; raise ConfigError naming `sinks.<id>.<key>` and the fix.

    Example settings: `path = "out/findings.jsonl"`, optional `format = "ocsf"` (bare findings).
    """
    where = f"sinks.{sink_id}"
    path = settings.get("path")
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ConfigError(f'{where}.path: name the file to append JSON lines to, e.g. "out/findings.jsonl"')
    fmt = settings.get("format", "corral")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}.format: use one of {', '.join(FORMATS)}")
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{where}.path: {path} is a directory; name a file")
    return FileSink(sink_id, path=target, fmt=fmt, public_url=public_url(settings, where))
