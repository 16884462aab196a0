"""WAV reading, conversion to 24 kHz mono PCM16, and writing (rtagent._wav)."""

from __future__ import annotations

import itertools
import math
import struct
import wave
from array import array
from pathlib import Path

import pytest

from rtagent._errors import ConfigurationError
from rtagent._wav import read_wav, to_pcm16_mono, write_wav
from rtagent.local import sine_pcm16


def _write(path: Path, frames: bytes, *, rate: int, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def _samples(pcm16: bytes) -> array[int]:
    out = array("h")
    out.frombytes(pcm16)
    return out


def _peak_frequency(samples: array[int], rate: int) -> float:
    """Frequency from zero crossings (enough for a clean sine)."""
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    return crossings * rate / len(samples)


def test_stereo_44k_becomes_mono_24k(tmp_path: Path) -> None:
    """Stereo 44.1 kHz 16-bit is mixed to mono and resampled to 24 kHz, keeping pitch and level."""
    left = _samples(sine_pcm16(500, freq=440, amplitude=0.5, rate=44100))
    frames = array("h", (v for s in left for v in (s, s // 2)))
    path = _write(tmp_path / "stereo.wav", frames.tobytes(), rate=44100, channels=2)
    out = _samples(read_wav(path))
    assert abs(len(out) - 12000) <= 1  # 0.5 s at 24 kHz
    assert _peak_frequency(out, 24000) == pytest.approx(440, rel=0.02)
    # The mix is the mean of the channels: 0.75 of the left channel's peak.
    assert max(out) == pytest.approx(0.75 * 0.5 * 32767, rel=0.05)


def test_8khz_is_upsampled(tmp_path: Path) -> None:
    """8 kHz mono (telephone audio) is upsampled to three times as many samples."""
    path = _write(tmp_path / "phone.wav", sine_pcm16(200, freq=300, rate=8000), rate=8000)
    out = _samples(read_wav(path))
    assert len(out) == 4800
    assert _peak_frequency(out, 24000) == pytest.approx(300, rel=0.03)


def test_24khz_mono_passes_through_unchanged(tmp_path: Path) -> None:
    """Audio already in the API's format comes back byte for byte."""
    pcm = sine_pcm16(100)
    assert read_wav(_write(tmp_path / "same.wav", pcm, rate=24000)) == pcm


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_integer_widths(tmp_path: Path, width: int) -> None:
    """8-bit (unsigned), 24-bit and 32-bit integer PCM are read as 16-bit."""
    values = [0, 16384, -16384, 32767, -32768]
    if width == 1:
        frames = bytes((v >> 8) + 128 for v in values)
    else:
        frames = b"".join((v << (8 * (width - 2))).to_bytes(width, "little", signed=True) for v in values)
    out = list(_samples(read_wav(_write(tmp_path / "w.wav", frames, rate=24000, width=width))))
    assert out == [v & ~0xFF for v in values] if width == 1 else out == values


def test_float_wav_is_refused_clearly(tmp_path: Path) -> None:
    """A 32-bit float WAV (format tag 3) gets a message saying so, naming the file."""
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.25)
    fmt = struct.pack("<HHIIHH", 3, 1, 24000, 96000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "float.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ConfigurationError, match=r"float\.wav: .*float samples are not supported"):
        read_wav(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not audio at all", "not a WAV file"),
        (b"", "cannot read as WAV"),
        (None, "no such file"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    """Garbage, empty and missing files raise ConfigurationError with a clear message."""
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message):
        read_wav(path)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    """write_wav writes 24 kHz mono PCM16 that read_wav returns unchanged."""
    pcm = sine_pcm16(50, freq=1000)
    path = tmp_path / "out.wav"
    write_wav(path, pcm)
    with wave.open(str(path), "rb") as r:
        assert (r.getnchannels(), r.getsampwidth(), r.getframerate()) == (1, 2, 24000)
    assert read_wav(path) == pcm


def test_to_pcm16_mono_downsamples_bytes() -> None:
    """The converter also works on raw bytes (48 kHz → 24 kHz halves the length, silence stays silent)."""
    out = to_pcm16_mono(bytes(4 * 480), channels=2, rate=48000)
    assert out == bytes(480)
    assert math.isclose(len(to_pcm16_mono(sine_pcm16(10, rate=48000), channels=1, rate=48000)), 480)
