"""A real `moto_server` on loopback for tests and benchmarks: AWS APIs over HTTP, no account.

The server is the `moto_server` command of the running interpreter's environment, started as a
subprocess on a free 127.0.0.1 port. Tests talk to it over HTTP with an explicit endpoint URL, so
nothing global points boto3 at it; botocore still insists on credentials, so the fixture provides
fake ones in the environment for the session (restored afterwards) and spawned processes inherit
them. Without `moto_server` the fixture fails when `CI` is set and skips otherwise.

Note: moto's `TransactWriteItems` is not isolated (it snapshots and restores whole tables), so
concurrency tests against it are only meaningful for single-item conditional writes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 30.0
FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# A real profile or session token in the developer's shell must not mix with the fake keys.
HIDDEN_VARIABLES = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")


class MotoUnavailableError(Exception):
    """`moto_server` is not installed here, or it would not start."""


def moto_server_command() -> Path:
    """Return the `moto_server` script beside the running interpreter, or raise MotoUnavailableError."""
    script = Path(sys.executable).parent / "moto_server"
    if not script.exists():
        raise MotoUnavailableError(
            f"no moto_server beside {sys.executable}: install moto[server] in this environment"
            " (pip install 'moto[server]')"
        )
    return script


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def start_moto_server() -> tuple[str, Callable[[], None]]:
    """Start `moto_server` on a free loopback port; return its URL and a function that stops it.

    Example:
        >>> url, stop = start_moto_server()
        >>> url.startswith("http://127.0.0.1:")
        True
        >>> stop()
    """
    command = moto_server_command()
    port = _free_port()
    # moto logs every request; a pipe nobody reads would fill up and block it. stop() closes the file.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        [str(command), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace").strip()
            stop()
            raise MotoUnavailableError(f"moto_server on port {port} did not start: {tail or 'no output'}")
        time.sleep(0.05)
    return url, stop


@contextlib.contextmanager
def fake_aws_credentials() -> Iterator[None]:
    """Set fake AWS credentials in the environment for the block, and restore what was there."""
    saved = {name: os.environ.get(name) for name in (*FAKE_CREDENTIALS, *HIDDEN_VARIABLES)}
    for name in HIDDEN_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(FAKE_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a `moto_server` shared by the session (fake credentials set meanwhile)."""
    try:
        url, stop = start_moto_server()
    except MotoUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (required in CI)")
        pytest.skip(str(exc))
    try:
        with fake_aws_credentials():
            yield url
    finally:
        stop()
