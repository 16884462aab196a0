"""A real WebRTC peer for a WebRTC call (the ``webrtc`` extra: aiortc), so media flows.

The real service answers ``POST /v1/realtime/calls`` with its own peer: Opus audio both
ways and an ``oai-events`` data channel carrying the session's events (``session.created``
first, then everything the sidebands see) and taking client events. :class:`Peer` does
the same with aiortc: the caller's audio is resampled to PCM16 at 24 kHz and fed to the
call's VAD (:meth:`~._calls.LocalCall.media_in`), the session's spoken output is played
back in real time, 20 ms a frame, and when the browser's connection fails or closes the
caller has hung up.

aiortc runs on asyncio only, so a server on trio (or without aiortc) answers with
signalling only (:func:`~._sdp.signalling_answer`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import anyio

from ._wire import Event, server_event

if TYPE_CHECKING:
    from ._calls import LocalCall

__all__ = ["Peer", "answer_with_media"]

logger = logging.getLogger("rtagent.local")

Spawn = Callable[..., None]

_RATE = 24000
_FRAME_MS = 20
_FRAME_SAMPLES = _RATE * _FRAME_MS // 1000
_FRAME_BYTES = _FRAME_SAMPLES * 2


def _available() -> bool:
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    try:
        import sniffio
    except ImportError:
        return True  # trio needs sniffio: without it this is asyncio
    return bool(sniffio.current_async_library() == "asyncio")


async def answer_with_media(call: LocalCall, offer: str, spawn: Spawn) -> str | None:
    """Answer ``offer`` with a real peer for ``call``; None when aiortc cannot run here.

    Raises:
        Invalid: aiortc could not use the offer.
    """
    if not _available():
        return None
    peer = Peer(call, spawn)
    answer = await peer.answer(offer)
    call.peer = peer
    return answer


class Peer:
    """The service's end of one WebRTC call: audio in and out, the ``oai-events`` channel.

    Args:
        call: the call whose media this is.
        spawn: starts a task in the server's task group.
    """

    def __init__(self, call: LocalCall, spawn: Spawn) -> None:
        from aiortc import RTCPeerConnection

        self._call = call
        self._spawn = spawn
        self._pc = RTCPeerConnection()
        self._speaker = _speaker_track()
        self._pc.addTrack(self._speaker)
        self.received_ms = 0
        """How much of the caller's audio arrived (for tests and the log)."""
        self._closing = False
        self._pc.on("track", self._on_track)
        self._pc.on("datachannel", self._on_datachannel)
        self._pc.on("connectionstatechange", self._on_state)

    async def answer(self, offer: str) -> str:
        """Take the browser's offer; return this peer's answer (its candidates included)."""
        from aiortc import RTCSessionDescription

        from ._validate import Invalid

        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except ValueError as exc:  # aiortc's answer to an offer it cannot use
            await self._pc.close()
            raise Invalid("invalid_offer", f"Invalid SDP offer: {exc}.", "sdp") from exc
        return str(self._pc.localDescription.sdp)

    def play(self, pcm: bytes) -> None:
        """Queue the session's speech (PCM16, 24 kHz) for the caller."""
        self._speaker.queue += pcm

    def clear(self) -> None:
        """Stop speaking at once: drop what is queued."""
        self._speaker.queue.clear()

    async def aclose(self) -> None:
        """Hang up the media (the call ended); closing twice is harmless."""
        self._closing = True
        await self._pc.close()

    # ---- aiortc callbacks (run on the event loop) ------------------------------------------

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self._spawn(self._listen, track, name=f"rtagent.local call {self._call.id} audio in")

    async def _listen(self, track: Any) -> None:
        """Feed the caller's audio to the call's VAD, resampled to 24 kHz mono PCM16."""
        import av
        from aiortc.mediastreams import MediaStreamError

        resampler = av.AudioResampler(format="s16", layout="mono", rate=_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = bytes(out.planes[0])[: out.samples * 2]
                self.received_ms += out.samples * 1000 // _RATE
                self._call.media_in(pcm)

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != "oai-events":
            return
        engine = self._call.engine
        if engine is None:
            return
        listener = _Channel(channel)
        # The data channel is a client of the call's session from the start: it gets
        # session.created (a sideband does not), then every event of the call.
        listener.push(
            [server_event(engine.ids, "session.created", session=copy.deepcopy(engine.session))]
        )
        self._call.attach(listener)

        def on_message(message: str | bytes) -> None:
            self._call.handled(listener, engine.handle_text(message))

        channel.on("message", on_message)
        channel.on("close", lambda: self._call.detach(listener))

    def _on_state(self) -> None:
        state = self._pc.connectionState
        logger.info("call %s media: %s", self._call.id, state)
        if state in ("failed", "closed") and not self._closing:
            self._call.end("caller")  # the browser left: the caller hung up


class _Channel:
    """The ``oai-events`` data channel as a listener of the call."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def push(self, events: list[Event]) -> None:
        if self._channel.readyState == "open":
            for event in events:
                self._channel.send(json.dumps(event))

    def close(self, code: int, reason: str) -> None:
        self._channel.close()


def _speaker_track() -> Any:
    """An outgoing audio track that plays what is queued in real time, silence otherwise."""
    import av
    from aiortc import MediaStreamTrack

    # Without aiortc installed (type checking in CI), MediaStreamTrack is Any.
    class Speaker(MediaStreamTrack):  # type: ignore[misc,unused-ignore]
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.queue = bytearray()
            self._start: float | None = None
            self._sent = 0

        async def recv(self) -> Any:
            # Paced like aiortc's own tracks: frame n leaves at start + n * 20 ms.
            now = anyio.current_time()
            if self._start is None:
                self._start = now
            due = self._start + self._sent * _FRAME_MS / 1000
            if due > now:
                await anyio.sleep(due - now)
            chunk = bytes(self.queue[:_FRAME_BYTES])
            del self.queue[:_FRAME_BYTES]
            frame = av.AudioFrame(format="s16", layout="mono", samples=_FRAME_SAMPLES)
            frame.planes[0].update(chunk.ljust(_FRAME_BYTES, b"\0"))
            frame.sample_rate = _RATE
            frame.pts = self._sent * _FRAME_SAMPLES
            frame.time_base = Fraction(1, _RATE)
            self._sent += 1
            return frame

    return Speaker()
