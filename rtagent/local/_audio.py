"""Audio helpers: an energy VAD over input audio and synthetic "speech" for output.

Input is PCM16 little-endian mono 24 kHz (``audio/pcm``) or G.711 at 8 kHz
(``audio/pcmu`` / ``audio/pcma``), as in PROTOCOL.md §6. The VAD is a plain RMS
gate: good enough to emulate ``server_vad`` events deterministically in tests.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

__all__ = [
    "EnergyVad",
    "VadEvent",
    "bytes_per_ms",
    "decode_samples",
    "rms_threshold",
    "silence_pcm16",
    "sine_pcm16",
    "synth_speech",
]

_RATE = 24000


def bytes_per_ms(fmt: str) -> int:
    """Bytes of one millisecond of audio in a GA format (``audio/pcm`` = 48)."""
    return 48 if fmt == "audio/pcm" else 8


def _ulaw(byte: int) -> int:
    u = ~byte & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def _alaw(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if (a & 0x80) else -t


_ULAW = [_ulaw(b) for b in range(256)]
_ALAW = [_alaw(b) for b in range(256)]


def decode_samples(data: bytes, fmt: str) -> list[int]:
    """Decode audio bytes to 16-bit sample values."""
    if fmt == "audio/pcmu":
        return [_ULAW[b] for b in data]
    if fmt == "audio/pcma":
        return [_ALAW[b] for b in data]
    n = len(data) // 2
    return list(struct.unpack(f"<{n}h", data[: n * 2]))


def rms_threshold(threshold: float) -> float:
    """Map turn_detection.threshold (0..1) to an RMS level (fraction of full scale).

    0.5 (the default) is -30 dBFS; each 0.1 step moves the gate by 8 dB, so a
    normal speaking level (-20..-10 dBFS) opens it and silence or hiss does not.
    """
    db = -70.0 + 80.0 * threshold
    return float(10 ** (db / 20.0))


@dataclass
class VadEvent:
    """A VAD transition: ``kind`` is "started" or "stopped"; ``ms`` its audio timestamp."""

    kind: str
    ms: int


@dataclass
class EnergyVad:
    """Frame-wise RMS gate with the server_vad timing rules.

    Speech starts after ``min_speech_ms`` of frames above the gate and stops after
    ``silence_duration_ms`` below it. Timestamps count all audio appended in the
    session (``audio_start_ms`` / ``audio_end_ms`` semantics).
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    frame_ms: int = 10
    min_speech_ms: int = 20
    total_ms: float = 0.0
    speaking: bool = False
    _pending: list[int] = field(default_factory=list)
    _speech_run_ms: int = 0
    _silence_run_ms: int = 0
    _last_speech_end_ms: int = 0

    def reset(self) -> None:
        """Forget the current utterance (input_audio_buffer.clear / commit)."""
        self.speaking = False
        self._pending.clear()
        self._speech_run_ms = 0
        self._silence_run_ms = 0

    def feed(self, samples: list[int], rate: int) -> list[VadEvent]:
        """Consume samples; return the transitions they caused, in order."""
        events: list[VadEvent] = []
        gate = rms_threshold(self.threshold)
        self._pending.extend(samples)
        frame = rate * self.frame_ms // 1000
        while len(self._pending) >= frame:
            chunk, self._pending = self._pending[:frame], self._pending[frame:]
            rms = math.sqrt(sum(s * s for s in chunk) / frame) / 32768.0
            start_ms = int(self.total_ms)
            self.total_ms += self.frame_ms
            if rms >= gate:
                self._silence_run_ms = 0
                self._speech_run_ms += self.frame_ms
                self._last_speech_end_ms = int(self.total_ms)
                if not self.speaking and self._speech_run_ms >= self.min_speech_ms:
                    self.speaking = True
                    onset = start_ms + self.frame_ms - self._speech_run_ms
                    events.append(VadEvent("started", max(0, onset - self.prefix_padding_ms)))
            else:
                self._speech_run_ms = 0
                if self.speaking:
                    self._silence_run_ms += self.frame_ms
                    if self._silence_run_ms >= self.silence_duration_ms:
                        self.speaking = False
                        self._silence_run_ms = 0
                        events.append(VadEvent("stopped", self._last_speech_end_ms))
        return events


def sine_pcm16(ms: int, *, freq: float = 440.0, amplitude: float = 0.3, rate: int = _RATE) -> bytes:
    """A loud sine tone as PCM16 LE (what tests use as "speech")."""
    n = rate * ms // 1000
    peak = int(32767 * amplitude)
    return struct.pack(
        f"<{n}h", *(int(peak * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )


def silence_pcm16(ms: int, *, rate: int = _RATE) -> bytes:
    """Digital silence as PCM16 LE."""
    return bytes(2 * (rate * ms // 1000))


def synth_speech(text: str, *, ms_per_char: int = 12, rate: int = _RATE) -> bytes:
    """Deterministic speech-like PCM16: one soft voiced 'syllable' per character.

    Args:
        text: the transcript being "spoken"; its length sets the duration.
        ms_per_char: duration of one character.
        rate: sample rate.
    """
    out = bytearray()
    per = rate * ms_per_char // 1000
    for ch in text:
        if ch.isspace():
            out += bytes(2 * per)
            continue
        freq = 110.0 + (ord(ch) % 32) * 6.0
        samples = []
        for i in range(per):
            env = math.sin(math.pi * i / per)
            samples.append(int(6000 * env * math.sin(2 * math.pi * freq * i / rate)))
        out += struct.pack(f"<{per}h", *samples)
    return bytes(out)
