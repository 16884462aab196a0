"""The inspector page in real headless Chromium, driven over the DevTools protocol, with a screenshot.

Run with ``pytest -m browser`` (``.ci/run`` does, after installing Debian's chromium).
The screenshot is written to ``$RTAGENT_SCREENSHOTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from websockets.sync.client import connect as ws_connect

from rtagent import Agent, ToolError, connect, tool
from rtagent._inspect import open_inspector
from rtagent.local import LocalRealtimeServer

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 1000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    f"--window-size={WIDTH},{HEIGHT}",
]


class Harbour(Agent):
    output_modalities = ["text"]

    @tool
    def get_weather(self, port: str) -> str:
        """Weather at a port.

        Args:
            port: Name of the port.
        """
        if port == "Lima":
            raise ToolError("No news from Lima.")
        return "fog at dawn, then a fair westerly"

    @tool
    def rum_price(self, bottles: int) -> str:
        """Price of rum in doubloons for a number of bottles."""
        return f"{bottles * 3} doubloons"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium)")


class _DevTools:
    """A minimal Chrome DevTools protocol client over one page target."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=20))
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"the page never satisfied {expression}"
            time.sleep(0.1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[_DevTools]:
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.Popen(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            assert proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = active.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        with ws_connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            yield _DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_inspector_page_in_chromium(browser: _DevTools, tmp_path: Path) -> None:
    """The page shows a live session's tool calls, failures, latency bars and usage; the screenshot is checked."""
    with start_blocking_portal() as portal:
        server = portal.wrap_async_context_manager(LocalRealtimeServer())
        inspect = portal.wrap_async_context_manager(open_inspector(title="Harbour"))
        with server as srv, inspect as inspector:
            agent_session = portal.wrap_async_context_manager(connect(Harbour(), url=srv.url))
            with agent_session as session:
                portal.call(inspector.follow, session)
                browser.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                             deviceScaleFactor=1, mobile=False)
                browser.call("Page.enable")
                browser.call("Page.navigate", url=inspector.url)
                browser.wait_for("document.getElementById('status').textContent === 'live'")
                # Live: the page is open while the session runs.
                for question in ("What is the weather in Tortuga?", "How much for 3 bottles of rum?",
                                 "What is the weather in Lima?"):
                    portal.call(session.ask, question)
                browser.wait_for("document.querySelectorAll('#tools tbody tr.ok, #tools tbody tr.failed').length === 3")
                browser.wait_for("document.querySelectorAll('#turns rect.done').length === 3")
                rows = browser.evaluate(
                    "[...document.querySelectorAll('#tools tbody tr')].map(r => [r.className, "
                    "r.querySelector('.name').textContent, r.querySelector('.args').textContent, "
                    "r.querySelector('.result').textContent, r.querySelector('.duration').textContent])"
                )
                summary = browser.evaluate(
                    "({turns: document.getElementById('turn-count').textContent, "
                    "tokens: document.getElementById('tokens').textContent, "
                    "cost: document.getElementById('cost').textContent, "
                    "timeline: document.querySelectorAll('#timeline li').length})"
                )
                shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    folder = Path(os.environ.get("RTAGENT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inspector.png"
    path.write_bytes(shot)
    print(f"screenshot: {path}")

    assert [r[:4] for r in rows] == [
        ["ok", "get_weather", '{"port":"Tortuga"}', "→ fog at dawn, then a fair westerly"],
        ["ok", "rum_price", '{"bottles":3}', "→ 9 doubloons"],
        ["failed", "get_weather", '{"port":"Lima"}', "✗ No news from Lima."],
    ]
    assert all(r[4].endswith(("ms", " s")) for r in rows)
    assert summary["turns"] == "3" and summary["timeline"] > 20
    assert summary["cost"].startswith("$") and summary["cost"] != "$0.0000"
    assert _png_size(shot) == (WIDTH, HEIGHT)
    assert len(shot) > 20_000  # a rendered page, not a blank one
