"""`corral normalize`: deliveries in, one OCSF finding per line out."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from corral import reader
from corral.cli.text import plain, say_skipped
from corral.normalize import normalize as normalize_document
from corral.pipeline import now_ms

Paths = Annotated[
    list[str] | None,
    typer.Argument(help="Files or folders (searched recursively); '-' or nothing reads stdin."),
]


def normalize(paths: Paths = None) -> None:
    """Normalize deliveries to OCSF 1.8.0 findings, one JSON object per line on stdout.

    A file may hold one JSON document, a JSON array or JSON lines, in any envelope the three
    clouds deliver. Each failed input gives `corral: error: PATH#N: reason` on stderr and the rest
    carry on; recognized non-findings give `corral: skip: PATH#N: reason`. Exit status 1 when
    anything failed.
    """
    failed = False
    out = sys.stdout.buffer
    write, dumps = out.write, orjson.dumps
    received = now_ms()
    for name in reader.expand(paths or ["-"], on_skip=say_skipped):
        for document in reader.read(name):
            if document.error is not None:
                _say("error", document.ref, document.error)
                failed = True
                continue
            stand_in = document.received_time or received
            for outcome in normalize_document(document.parsed, received_time=stand_in, order=False):
                if outcome.finding is not None:
                    write(dumps(outcome.finding, option=orjson.OPT_APPEND_NEWLINE))
                    continue
                ref = f"{document.ref}: {outcome.where}" if outcome.where else document.ref
                if outcome.signal is not None:
                    signal = outcome.signal
                    state = "healthy" if signal.healthy else "unhealthy"
                    _say(
                        "skip",
                        ref,
                        f"health signal: {signal.source} {state} for {signal.service} in {signal.account_uid}",
                    )
                elif outcome.skipped is not None:
                    _say("skip", ref, outcome.skipped)
                else:
                    _say("error", ref, outcome.error or "failed")
                    failed = True
    out.flush()
    if failed:
        raise typer.Exit(1)


def _say(level: str, ref: str, message: str) -> None:
    # One line per input, whatever the message holds: attacker text must not forge extra lines.
    line = plain(" ".join(f"corral: {level}: {ref}: {message}".split()))
    print(line, file=sys.stderr)
