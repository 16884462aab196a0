"""Audio in and out of a live session: ``session.audio``.

Input is PCM16 (24 kHz mono by default) sent as ``input_audio_buffer.append`` chunks.
Output reaches the application two ways: sinks, called in the reader for each
``response.output_audio.delta`` (the cheapest way to feed a player: no task switch per
chunk), and ``output()`` iterators, each with its own bounded stream.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .. import _events as ev
from .._errors import InputError
from .broadcaster import Broadcaster

if TYPE_CHECKING:
    from .driver import Driver

__all__ = ["AudioHub", "SessionAudio", "decode_audio"]

logger = logging.getLogger("rtagent.session")

AudioSink = Callable[[bytes], object]
_OUTPUT_BUFFER = 4096


def decode_audio(delta: str) -> bytes | None:
    """The PCM of one ``response.output_audio.delta``; None when it is not valid base64."""
    try:
        return base64.b64decode(delta, validate=True)
    except (binascii.Error, ValueError):
        return None


class AudioHub:
    """Where decoded assistant audio goes: sinks and iterators."""

    def __init__(self) -> None:
        self.sinks: list[AudioSink] = []
        self.streams: Broadcaster[bytes] = Broadcaster(_OUTPUT_BUFFER)

    @property
    def wanted(self) -> bool:
        return bool(self.sinks) or self.streams.observed

    def deliver(self, delta: str) -> bool:
        """Decode one base64 delta and hand it on; False when it is not valid base64."""
        chunk = decode_audio(delta)
        if chunk is None:
            return False
        for sink in tuple(self.sinks):
            try:
                sink(chunk)
            except Exception:
                # A broken player must not end the conversation: drop that sink.
                logger.exception("audio sink %r failed; removed", sink)
                if sink in self.sinks:
                    self.sinks.remove(sink)
        self.streams.publish(chunk)
        return True

    def close(self) -> None:
        self.streams.close()


class SessionAudio:
    """The audio side of a :class:`~rtagent.RealtimeSession` (``session.audio``)."""

    def __init__(self, driver: Driver, hub: AudioHub, chunk_bytes: int) -> None:
        self._driver = driver
        self._hub = hub
        self._chunk = max(2, chunk_bytes - chunk_bytes % 2)

    async def send(self, pcm16: bytes) -> None:
        """Stream input audio (raw samples in the session's input format), in chunks."""
        self._driver.check_open()
        if not isinstance(pcm16, (bytes, bytearray, memoryview)):
            raise InputError(f"audio must be bytes of PCM16 samples, not {type(pcm16).__name__}")
        step = self._chunk
        events = [
            ev.InputAudioBufferAppend(audio=base64.b64encode(pcm16[i : i + step]).decode("ascii"))
            for i in range(0, len(pcm16), step)
        ]
        await self._driver.execute(self._driver.core.send_now(*events))

    async def commit(self) -> None:
        """End the user's audio turn when VAD is off (``input_audio_buffer.commit``)."""
        await self._simple(ev.InputAudioBufferCommit)

    async def clear(self) -> None:
        """Drop the audio sent since the last commit (``input_audio_buffer.clear``)."""
        await self._simple(ev.InputAudioBufferClear)

    async def _simple(self, kind: type[ev.InputAudioBufferCommit | ev.InputAudioBufferClear]) -> None:
        self._driver.check_open()
        core = self._driver.core
        await self._driver.execute(core.send_now(kind(event_id=core.ids.event())))

    def played(self, item_id: str, played_ms: int) -> None:
        """Report how much of an assistant audio item the user has heard.

        On barge-in the item is truncated there (``conversation.item.truncate``), so
        the model's context matches what was heard.
        """
        self._driver.core.mirror.report_playback(item_id, played_ms)

    def add_sink(self, sink: AudioSink) -> Callable[[], None]:
        """Call ``sink(pcm16_chunk)`` for each chunk of assistant audio as it arrives.

        The sink runs in the reader, so it must not block; one that raises is removed.
        Returns a function that removes the sink.
        """
        self._hub.sinks.append(sink)

        def remove() -> None:
            if sink in self._hub.sinks:
                self._hub.sinks.remove(sink)

        return remove

    async def output(self) -> AsyncIterator[bytes]:
        """Decoded chunks of assistant audio from now on, until the session ends."""
        receive = self._hub.streams.subscribe()
        try:
            async with receive:
                async for chunk in receive:
                    yield chunk
        finally:
            self._hub.streams.unsubscribe(receive)
