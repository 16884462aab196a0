"""The input audio of one connection: the buffer, server VAD, commit and transcription.

``input_audio_buffer.append`` adds audio (no reply event). With turn detection on, the
VAD reports ``speech_started`` (the barge-in signal) and ``speech_stopped``; a stop
commits the buffer as a user item. Without it, ``input_audio_buffer.commit`` does
(PROTOCOL.md §2, §5, §6). What follows a VAD transition (cancelling the active
response, starting a new one) is the engine's call: :meth:`InputAudio.append` only
returns the transitions, and the engine asks for each one's events in turn.

On a call the caller's audio arrives over the media (SIP/WebRTC) rather than in
``input_audio_buffer.append``: :meth:`InputAudio.append_media` feeds the same buffer and
VAD with PCM16 at 24 kHz, and may say what the speech means (the local server has no
speech recognition), so the model hears those words.

Input transcription (when the session enables it) streams like the real service's:
``conversation.item.input_audio_transcription.delta`` events, then ``...completed``,
produced lazily by :meth:`InputAudio.next_event`, so that they come after the
``response.created`` a VAD stop causes and interleave with the reply.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Iterator
from typing import Any

from ._audio import EnergyVad, VadEvent, bytes_per_ms, decode_samples
from ._conversation_store import ConversationStore
from ._session_config import SessionConfig
from ._validate import Invalid
from ._wire import Event, Ids, server_event

__all__ = ["InputAudio"]


class InputAudio:
    """The input audio buffer and its VAD.

    Args:
        ids: id factory (event ids).
        config: the session (turn detection, input format, transcription).
        store: the conversation committed audio is added to.
    """

    def __init__(self, ids: Ids, config: SessionConfig, store: ConversationStore) -> None:
        self._ids = ids
        self._config = config
        self._store = store
        self._buffer = bytearray()
        self._vad = EnergyVad()
        self._speech_item_id: str | None = None
        self._transcriptions: deque[Iterator[Event]] = deque()
        self._meanings: deque[str] = deque()
        """What the next committed utterances from the media say, oldest first."""

    def next_event(self) -> Event | None:
        """The next streamed input transcription event, or None."""
        while self._transcriptions:
            event = next(self._transcriptions[0], None)
            if event is not None:
                return event
            self._transcriptions.popleft()
        return None

    def append(self, audio: str) -> list[VadEvent]:
        """Buffer base64 audio; return the VAD transitions it caused (none without VAD).

        For each transition, in order, the caller sends :meth:`speech_started` or
        :meth:`speech_stopped` (plus whatever it decides follows) before the next one.

        Raises:
            Invalid: ``audio`` is not base64.
        """
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Invalid(
                "invalid_value", "Invalid 'audio': expected base64-encoded audio bytes.", "audio"
            ) from exc
        return self._feed(data, self._config.input_format())

    def append_media(self, pcm: bytes, meaning: str | None = None) -> list[VadEvent]:
        """Buffer the caller's audio from a call's media (PCM16, 24 kHz); like :meth:`append`.

        Args:
            pcm: the audio.
            meaning: what this speech says, heard by the model once it is committed.
        """
        if meaning is not None:
            self._meanings.append(meaning)
        return self._feed(pcm, "audio/pcm")

    def _feed(self, data: bytes, fmt: str) -> list[VadEvent]:
        self._buffer += data
        td = self._config.turn_detection()
        if td is None:
            return []
        self._vad.threshold = float(td.get("threshold", 0.5))
        self._vad.prefix_padding_ms = int(td.get("prefix_padding_ms", 300))
        eagerness = {"low": 800, "high": 250}.get(str(td.get("eagerness")), 500)
        self._vad.silence_duration_ms = int(td.get("silence_duration_ms", eagerness))
        rate = 24000 if fmt == "audio/pcm" else 8000
        return self._vad.feed(decode_samples(data, fmt), rate)

    def speech_started(self, audio_start_ms: int) -> Event:
        """``input_audio_buffer.speech_started``, naming the user item to come."""
        self._speech_item_id = self._store.new_item_id()
        return server_event(
            self._ids,
            "input_audio_buffer.speech_started",
            audio_start_ms=audio_start_ms,
            item_id=self._speech_item_id,
        )

    def speech_stopped(self, audio_end_ms: int) -> list[Event]:
        """``input_audio_buffer.speech_stopped``, then the commit of the buffer."""
        item_id = self._speech_item_id or self._store.new_item_id()
        stopped = server_event(
            self._ids,
            "input_audio_buffer.speech_stopped",
            audio_end_ms=audio_end_ms,
            item_id=item_id,
        )
        return [stopped, *self._commit(item_id)]

    def commit(self) -> list[Event]:
        """``input_audio_buffer.commit``: the buffer becomes a user item (no response starts).

        Raises:
            Invalid: less than 100 ms of audio is buffered.
        """
        ms = len(self._buffer) / bytes_per_ms(self._config.input_format())
        if ms < 100:
            raise Invalid(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
            )
        self._vad.reset()
        return self._commit(self._speech_item_id or self._store.new_item_id())

    def clear(self) -> Event:
        """``input_audio_buffer.clear``: drop the buffer and the utterance in progress."""
        self._buffer.clear()
        self._vad.reset()
        self._speech_item_id = None
        return server_event(self._ids, "input_audio_buffer.cleared")

    def reset_vad(self) -> None:
        """Forget the utterance in progress (the session's VAD settings changed)."""
        self._vad.reset()

    def _commit(self, item_id: str) -> list[Event]:
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._speech_item_id = None
        prev = self._store.last_id()
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._store.keep_audio(item_id, audio)
        meaning = self._meanings.popleft() if self._meanings else None
        if meaning is not None:
            self._store.heard[item_id] = meaning
        out = [
            server_event(
                self._ids, "input_audio_buffer.committed", previous_item_id=prev, item_id=item_id
            )
        ]
        out += self._store.insert(item)
        out.append(self._store.done(item))
        if self._config.transcribes_input():
            seconds = len(audio) / (bytes_per_ms(self._config.input_format()) * 1000)
            self._transcriptions.append(self._transcribe(item, seconds, meaning))
        return out

    def _transcribe(
        self, item: dict[str, Any], seconds: float, meaning: str | None
    ) -> Iterator[Event]:
        """Stream the transcript of a committed user item, then complete it."""
        transcript = meaning or f"(speech, {seconds:.1f} s)"
        where = {"item_id": item["id"], "content_index": 0}
        for i, word in enumerate(transcript.split(" ")):
            delta = word if i == 0 else " " + word
            yield server_event(
                self._ids,
                "conversation.item.input_audio_transcription.delta",
                **where,
                delta=delta,
                obfuscation=self._ids.obfuscation(delta),
            )
        item["content"][0]["transcript"] = transcript
        if "whisper" in self._config.transcription_model():
            usage: dict[str, Any] = {"type": "duration", "seconds": round(seconds, 3)}
        else:  # as recorded for gpt-4o-transcribe: token counts
            audio_tokens = max(1, round(seconds * 10))
            text_tokens = max(1, len(transcript) // 4)
            usage = {
                "type": "tokens",
                "total_tokens": audio_tokens + text_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": text_tokens,
            }
        yield server_event(
            self._ids,
            "conversation.item.input_audio_transcription.completed",
            **where,
            transcript=transcript,
            usage=usage,
        )
