"""A real rsyslogd on 127.0.0.1 for the syslog sink's tests: one TLS input, one plain TCP input.

The session fixture writes a private rsyslog.conf in a temporary directory (a self-signed
certificate generated with `cryptography`, imtcp with the gtls stream driver in anonymous mode,
two inputs on free ports) and runs `rsyslogd -n` as a subprocess. Each input writes to its own
file, one JSON line per received message with rsyslog's own RFC 5424 parse (priority, hostname,
app-name, procid, msgid, structured data, msg) and the raw message, so tests can count records
and check that no text forged a field. Without rsyslogd the fixture skips, or fails when `CI`
is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_siem import TlsFiles, make_tls

START_TIMEOUT = 15.0

_TEMPLATE = """\
template(name="corral_json" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="protocol_version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}
"""


@dataclass
class Rsyslog:
    """A running rsyslogd: its ports, its CA (the self-signed certificate) and its output files."""

    tls_port: int
    tcp_port: int
    tls: TlsFiles
    tls_out: Path
    tcp_out: Path
    process: subprocess.Popen[bytes]
    log: Path

    def records(self, transport: str) -> list[dict[str, Any]]:
        """Return every message received so far on the "tls" or "tcp" input, parsed."""
        path = self.tls_out if transport == "tls" else self.tcp_out
        if not path.exists():
            return []
        # Only whole lines: rsyslog may be halfway through writing the last one (a long message).
        written, _, _ = path.read_text(encoding="utf-8").rpartition("\n")
        return [json.loads(line) for line in written.splitlines() if line.strip()]

    def wait_for(self, transport: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `count` records arrived (then a moment more, to catch extras)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.records(transport)) >= count:
                break
            time.sleep(0.05)
        # Give rsyslog time to write anything beyond `count`, so a test can see an extra record.
        time.sleep(0.3)
        return self.records(transport)

    def clear(self) -> None:
        """Forget what was received so far (rsyslog reopens the files on the next write)."""
        for path in (self.tls_out, self.tcp_out):
            if path.exists():
                path.write_bytes(b"")

    def port(self, transport: str) -> int:
        """The port of the "tls" or "tcp" input."""
        return self.tls_port if transport == "tls" else self.tcp_port


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rsyslogd exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"rsyslogd did not listen on {port} within {START_TIMEOUT:g}s")


def write_config(
    directory: Path, tls: TlsFiles, tls_port: int, tcp_port: int, max_message_size: str | None = "64k"
) -> Path:
    """Write the private rsyslog.conf and return its path.

    `max_message_size` is rsyslog's global maxMessageSize; None leaves rsyslog's own default.
    """
    work = directory / "work"
    work.mkdir(exist_ok=True)
    conf = directory / "rsyslog.conf"
    size = f'\n  maxMessageSize="{max_message_size}"' if max_message_size is not None else ""
    conf.write_text(
        f"""\
global(
  workDirectory="{work}"{size}
  defaultNetstreamDriverCAFile="{tls.cert}"
  defaultNetstreamDriverCertFile="{tls.cert}"
  defaultNetstreamDriverKeyFile="{tls.key}"
)
module(load="imtcp" maxSessions="50")
{_TEMPLATE}
ruleset(name="from_tls") {{
  action(type="omfile" file="{directory / "tls.jsonl"}" template="corral_json" flushOnTXEnd="on")
}}
ruleset(name="from_tcp") {{
  action(type="omfile" file="{directory / "tcp.jsonl"}" template="corral_json" flushOnTXEnd="on")
}}
input(type="imtcp" port="{tls_port}" address="127.0.0.1" ruleset="from_tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="{tcp_port}" address="127.0.0.1" ruleset="from_tcp")
""",
        encoding="utf-8",
    )
    return conf


def start(directory: Path, max_message_size: str | None = "64k") -> Rsyslog:
    """Start rsyslogd with a private configuration in `directory`; raise when it cannot start.

    `max_message_size` as for `write_config`: None runs rsyslog with its default maxMessageSize.
    """
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if binary is None:
        raise FileNotFoundError("rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)")
    tls = make_tls(directory)
    tls_port, tcp_port = free_port(), free_port()
    conf = write_config(directory, tls, tls_port, tcp_port, max_message_size)
    log = directory / "rsyslogd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    running = Rsyslog(tls_port, tcp_port, tls, directory / "tls.jsonl", directory / "tcp.jsonl", process, log)
    try:
        _wait_port(tls_port, process, log)
        _wait_port(tcp_port, process, log)
    except Exception:
        stop(running)
        raise
    return running


def stop(running: Rsyslog) -> None:
    """Stop rsyslogd (SIGTERM, then SIGKILL) and wait for it."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(timeout=10)


def running(directory: Path, max_message_size: str | None = "64k") -> Iterator[Rsyslog]:
    """A fixture's body: rsyslogd started in `directory` (a failure under CI, else a skip), then stopped."""
    try:
        server = start(directory, max_message_size)
    except (OSError, RuntimeError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"rsyslogd could not start: {exc}")
        pytest.skip(f"rsyslogd could not start: {exc}")
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session", name="rsyslog")
def rsyslog_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """A real rsyslogd receiving RFC 5425 TLS and RFC 6587 plain TCP on 127.0.0.1."""
    yield from running(tmp_path_factory.mktemp("rsyslog"))
