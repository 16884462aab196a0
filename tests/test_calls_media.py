"""A WebRTC call with real media against the local server (the ``webrtc`` extra, aiortc).

An aiortc peer plays the browser: it offers audio and the ``oai-events`` data channel,
speaks a tone, and listens. The local server answers with its own aiortc peer, runs the
call's session, and the application attaches over the sideband and runs the tool. aiortc
is asyncio-only, so these tests are too; the browser test (``-m browser``) does the same
from headless Chromium.
"""

from __future__ import annotations

import json
import math
import struct
import urllib.request
from fractions import Fraction
from typing import Any

import anyio
import anyio.to_thread
import pytest

from rtagent import Agent, connect, tool
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn

aiortc = pytest.importorskip("aiortc")
av = pytest.importorskip("av")

pytestmark = [
    pytest.mark.webrtc,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),  # aiortc runs on asyncio only
]

KEY = "sk-media-test"


class Weather(Agent):
    instructions = "You report the weather."

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[str] = []

    @tool
    def get_weather(self, city: str) -> str:
        """Current weather for a city."""
        self.runs.append(city)
        return f"sunny in {city}"


class Caller(aiortc.MediaStreamTrack):  # type: ignore[misc]
    """A microphone that is silent, says something (a tone) once, then is silent again."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> Any:
        now = anyio.current_time()
        self.start = now if self.start is None else self.start
        due = self.start + self.sent * 0.02
        if due > now:
            await anyio.sleep(due - now)
        ms = self.sent * 20
        loud = 300 <= ms < 1100
        samples = [int(9000 * math.sin(2 * math.pi * 440 * (ms / 1000 + i / 48000))) if loud else 0
                   for i in range(960)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(struct.pack("<960h", *samples))
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.sent * 960, Fraction(1, 48000)
        self.sent += 1
        return frame


def post_offer(url: str, sdp: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=sdp.encode(), method="POST", headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, dict(answer.headers), answer.read().decode()


async def test_a_webrtc_call_carries_audio_both_ways_and_runs_the_tool_on_the_server() -> None:
    """Speech from the peer starts a turn, the sideband runs the tool, the reply is heard; the data channel sees it all."""
    brain = ScriptedBrain([Turn(calls=[Call("get_weather", {"city": "Paris"})]),
                           Turn(text="It is sunny in Paris today, with a light breeze.")])
    agent = Weather()
    messages: list[dict[str, Any]] = []
    heard = {"frames": 0, "loud": 0}
    reply_heard = anyio.Event()
    pc = aiortc.RTCPeerConnection()
    pc.addTrack(Caller())
    channel = pc.createDataChannel("oai-events")
    channel.on("message", lambda m: messages.append(json.loads(m)))

    async def listen(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except aiortc.mediastreams.MediaStreamError:
                return
            heard["frames"] += 1
            pcm = frame.to_ndarray().tobytes()
            if max(abs(v) for v in struct.unpack(f"<{len(pcm) // 2}h", pcm)) > 1000:
                heard["loud"] += 1
                if heard["loud"] == 5:
                    reply_heard.set()

    with anyio.fail_after(30):
        async with LocalRealtimeServer(brain, api_key=KEY) as server, anyio.create_task_group() as tg:
            pc.on("track", lambda track: tg.start_soon(listen, track))
            await pc.setLocalDescription(await pc.createOffer())
            status, headers, answer = await anyio.to_thread.run_sync(
                post_offer, f"{server.http_url}/realtime/calls", pc.localDescription.sdp)
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
            call = server.calls.get(headers["Location"].rsplit("/", 1)[-1])
            assert call is not None and call.peer is not None
            async with connect(agent, call_id=call.id, base_url=server.http_url, api_key=KEY) as session:
                await call.wait_until(lambda c: any(
                    e["type"] == "response.done" and e["response"]["output"]
                    and e["response"]["output"][0]["type"] == "message" for e in c.events))
                await reply_heard.wait()  # the reply is played in real time: wait to hear it
                await pc.close()  # the caller hangs up
                await call.wait_state("ended")
                async for _ in session:
                    pass
            tg.cancel_scope.cancel()
    assert status == 201 and "a=candidate" in answer
    assert agent.runs == ["Paris"]
    assert messages[0]["type"] == "session.created"
    kinds = [m["type"] for m in messages]
    assert "input_audio_buffer.speech_started" in kinds and "output_audio_buffer.started" in kinds
    assert "response.output_audio.delta" not in kinds  # the audio travels on the media track
    assert call.peer.received_ms > 1000 and heard["loud"] >= 5
    assert (call.ended_by, session.ended) == ("caller", "the call ended")
