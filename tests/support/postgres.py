"""A real, throwaway PostgreSQL server for tests and benchmarks.

`initdb` into a temporary folder, `pg_ctl start` on a free loopback port (plus a unix socket in
the same folder), trust authentication, no fsync: fast and disposable. `initdb` refuses to run as
root, so as root the server runs as an unprivileged user (`corral-test`, created when absent, or
`nobody`). Without PostgreSQL binaries the fixture fails when `CI` is set and skips otherwise.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SERVICE_USER = "corral-test"


class PostgresUnavailableError(Exception):
    """No PostgreSQL binaries here, or the server would not start."""


def find_bindir() -> Path:
    """Return a folder holding `initdb`, `pg_ctl` and `postgres`, or raise PostgresUnavailableError."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
    # Debian keeps one folder per major version; prefer the newest (numerically: 15 > 9.6).
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()], reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailableError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres): install postgresql"
        " (e.g. apt-get install postgresql) or put its bin folder on PATH"
    )


def _service_user() -> str | None:
    """Return the user to run the server as (None: the current user, who is not root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd:
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                capture_output=True,
                check=False,
                timeout=30,
            )
    for name in (SERVICE_USER, "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailableError("running as root and no unprivileged user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One running server; `url` is its superuser URL (trust authentication, loopback only)."""

    def __init__(self) -> None:
        """Create the cluster and start it, or raise PostgresUnavailableError."""
        self.bindir = find_bindir()
        self.user = _service_user()
        self.root = Path(tempfile.mkdtemp(prefix="corral-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.running = False
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or restart) the server on its port, without fsync: test data is disposable."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.root / "log")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.running = True

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailableError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}\n{tail}")

    def database_url(self, name: str) -> str:
        """Return the URL of database `name` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, prefix: str = "corral") -> str:
        """Create an empty database and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database behind `url` (closing any connection still open to it)."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown); the data folder stays until `remove`."""
        if self.running:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        with contextlib.suppress(PostgresUnavailableError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_or_skip() -> PostgresServer:
    """Start a server; without PostgreSQL, fail under `CI` and skip otherwise."""
    try:
        return PostgresServer()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session."""
    server = start_or_skip()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The superuser URL of the session's PostgreSQL server."""
    return postgres_server.url
