"""Drive the real headless Chromium over the DevTools protocol on a pipe (no WebSocket library needed).

`--remote-debugging-pipe` makes Chromium read commands from fd 3 and write replies to fd 4, each a
JSON message ended by a NUL byte. That is enough to size the window, switch the colour scheme,
press Tab, read layout numbers and take screenshots, all outside the page's own CSP (the page
runs no script of its own: the measurements come from the protocol's evaluation).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.coverage.test_dashboard import chromium


class Browser:
    """One headless Chromium and one page in it."""

    def __init__(self, profile: Path) -> None:
        """Start Chromium with a DevTools pipe and open a blank page."""
        cmd_read, self._cmd = os.pipe()
        self._out, out_write = os.pipe()

        def wire() -> None:  # in the child: the protocol's fixed descriptors (moved up first, in case they are 3 or 4)
            high_read, high_write = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10), fcntl.fcntl(out_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self._proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4),  # noqa: PLW1509 (Chromium starts before any test thread) stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(cmd_read)
        os.close(out_write)
        self._buffer = b""
        self._next = 0
        self._events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def close(self) -> None:
        """Stop Chromium."""
        with contextlib.suppress(OSError, AssertionError):
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._cmd)
        os.close(self._out)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(60)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._events.append(reply)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command to the page."""
        return self.send(method, params, self._session)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise AssertionError("Chromium did not answer")
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def _wait_event(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    del self._events[i]
                    return
            self._events.append(self._read(max(0.1, deadline - time.monotonic())))

    def open(self, url: str, *, width: int = 1280, height: int = 900, dark: bool = False) -> None:
        """Load `url` at a viewport size and colour scheme; wait for the load event."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})  # fmt: skip
        self.call("Emulation.setEmulatedMedia",
                  {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})  # fmt: skip
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        self._wait_event("Page.loadEventFired")

    def click(self, selector: str) -> None:
        """Follow the first element matching `selector` (as a click does) and wait for the new page."""
        self._events.clear()
        found = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                              "if (!e) return false; e.click(); return true; })()")  # fmt: skip
        assert found, f"nothing matches {selector}"
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """Evaluate an expression in the page (through the protocol, not the page's CSP) and return its value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def press_tab(self) -> None:
        """Press and release Tab, as a keyboard user moves focus."""
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent",
                      {"type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9})  # fmt: skip

    def screenshot(self, path: Path, *, full: bool = True) -> None:
        """Save a PNG of the page (the whole page when `full`)."""
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full})["data"]
        path.write_bytes(base64.b64decode(data))
