"""The inspector page in real headless Chromium, driven over the DevTools protocol, with a screenshot.

Run with ``pytest -m browser`` (``.ci/run`` does, after installing Debian's chromium).
The screenshot is written to ``$RTAGENT_SCREENSHOTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal
from chromium import DevTools, chromium

from rtagent import Agent, ToolError, connect, tool
from rtagent._inspect import open_inspector
from rtagent.local import LocalRealtimeServer

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 1000


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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium(tmp_path / "profile", [f"--window-size={WIDTH},{HEIGHT}"]) as page:
        yield page


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_inspector_page_in_chromium(browser: DevTools, tmp_path: Path) -> None:
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
                browser.wait_for("document.getElementById('status')?.textContent === 'live'")
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
