"""The web example in real headless Chromium: a WebRTC call from the page, tools run by the app.

Run with ``pytest -m browser`` (``.ci/run`` does, with the ``webrtc`` extra). The page
gets a client secret from the app, creates the call with ``POST /v1/realtime/calls``
against the local server, hands the app the call id, and the app attaches over the
sideband and runs the tool. Two runs:

* ``media`` (needs aiortc): the local server answers with a real WebRTC peer. Chromium's
  fake microphone plays a WAV (silence, a tone, silence); the server's VAD hears the
  tone as a turn, the scripted model calls the tool, the app runs it, and the spoken
  answer comes back over the audio track, measured by the page's ``getStats()``.
* ``signalling``: no WebRTC stack, so no media; the caller types into the page, which
  the app sends as a user message over the sideband.

Each run saves a screenshot to ``$RTAGENT_SCREENSHOTS`` (default: the test's tmp folder)
and checks it: the right size, the green "in call" badge, and a rendered tool line.
"""

from __future__ import annotations

import base64
import importlib.util
import math
import os
import struct
import sys
import wave
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from asgi import serving
from chromium import MEDIA_FLAGS, chromium, count_color, read_png

from rtagent import Endpoint, RetryPolicy
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parent.parent / "examples" / "web" / "app.py"
KEY = "sk-browser-test"
WIDTH, HEIGHT = 1000, 760
GREEN = (0x1F, 0x9D, 0x55)  # the "in call" badge and the agent's lines
AMBER = (0xB7, 0x79, 0x1F)  # the border of a tool line


def load_web() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_web_app", WEB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def caller_wav(path: Path) -> Path:
    """What the fake microphone says: 1 s of silence, 0.8 s of a tone, then silence."""
    rate = 48000
    samples = [0] * rate
    samples += [int(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(rate * 0.8))]
    samples += [0] * (rate * 6)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


@pytest.mark.parametrize("mode", ["media", "signalling"])
def test_a_browser_call_runs_the_tools_on_the_server(mode: str, tmp_path: Path) -> None:
    """The page makes the WebRTC call, the app attaches and runs the tool; the screenshot shows the live call."""
    if mode == "media":
        pytest.importorskip("aiortc", reason="the media run needs the webrtc extra (aiortc)")
        brain: Any = ScriptedBrain([Turn(calls=[Call("get_weather", {"city": "Paris"})]),
                                    Turn(text="It is sunny in Paris today.")])
        flags = [*MEDIA_FLAGS, f"--use-file-for-fake-audio-capture={caller_wav(tmp_path / 'caller.wav')}%noloop"]
    else:
        brain, flags = None, MEDIA_FLAGS
    web = load_web()
    # uvicorn and aiortc run on asyncio only.
    with start_blocking_portal(backend="asyncio") as portal, chromium(tmp_path / "profile", flags) as page:
        local = portal.wrap_async_context_manager(
            LocalRealtimeServer(brain, api_key=KEY, webrtc=mode == "media"))
        with local as server:
            endpoint = Endpoint.resolve(base_url=server.http_url, api_key=KEY)
            app = web.create_app(endpoint=endpoint,
                                 connect_options={"retry": RetryPolicy(max_attempts=3, delays=[0.05])})
            with portal.wrap_async_context_manager(serving(app)) as url:
                page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                          deviceScaleFactor=1, mobile=False)
                page.call("Page.enable")
                page.call("Page.navigate", url=url)
                page.wait_for("document.readyState === 'complete' && !!document.getElementById('start')")
                page.evaluate("document.getElementById('start').click()")
                page.wait_for("document.getElementById('status').textContent === 'in call'")
                call_id = page.evaluate("document.getElementById('call-id').textContent")
                call = server.calls.get(call_id)
                assert call is not None and call.kind == "webrtc"
                if mode == "signalling":
                    page.evaluate("document.getElementById('text').value = \"What's the weather in Paris?\";"
                                  "document.getElementById('send').click()")
                page.wait_for("[...document.querySelectorAll('#log li.tool')].some("
                              "li => li.textContent.includes('21°C and sunny in Paris'))")
                page.wait_for("document.querySelectorAll('#log li.agent').length >= 1")
                if mode == "media":  # the spoken answer arrives over the audio track
                    page.wait_for("(call.heard || 0) > 0.0001")
                lines = page.evaluate("[...document.querySelectorAll('#log li')].map(li => [li.className, li.textContent])")
                media = page.evaluate("document.getElementById('media').textContent")
                events = page.evaluate("Number(document.getElementById('events').textContent) || 0")
                shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
                page.evaluate("document.getElementById('hangup').click()")
                page.wait_for("document.getElementById('status').textContent === 'ended'")
    folder = Path(os.environ.get("RTAGENT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"web_call_{mode}.png"
    path.write_bytes(shot)
    print(f"screenshot: {path}")

    tools = [text for kind, text in lines if kind == "tool"]
    assert any('get_weather({"city":"Paris"}) → 21°C and sunny in Paris' in text for text in tools), lines
    assert (call.state, call.ended_by) == ("ended", "hangup")
    assert call.sidebands and call.sidebands[0].received_types()[0] == "session.update"
    if mode == "media":
        assert media == "connected" and events > 0  # audio and the oai-events channel flowed
        assert call.peer is not None and call.peer.received_ms > 1000
        assert any(kind == "agent" and "sunny in Paris" in text for kind, text in lines), lines
    else:
        assert call.peer is None and events == 0  # signalling only: no media, no data channel
        assert ["caller", "callerWhat's the weather in Paris?"] in lines
    width, height, rows = read_png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    assert count_color(rows, GREEN) > 1000, "no green 'in call' badge in the screenshot"
    assert count_color(rows, AMBER) > 100, "no tool line in the screenshot"
