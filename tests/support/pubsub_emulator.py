"""A Pub/Sub emulator for the session: `gcloud beta emulators pubsub start` on a free loopback port.

Without the emulator (gcloud or java missing) the fixture fails when `CI` is set and skips otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """Start the emulator and yield its `host:port` (the value of PUBSUB_EMULATOR_HOST)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        reason = "the Pub/Sub emulator needs gcloud (with the pubsub-emulator component) and java"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)
    host = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port={host}", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                message = f"the Pub/Sub emulator did not start on {host}"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(0.3)
        yield host
    finally:
        # gcloud starts java as a child: end the whole process group it leads.
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
