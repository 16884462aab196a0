"""WAV reading, conversion to 24 kHz mono PCM16, and writing (rtagent._wav)."""

from __future__ import annotations

import itertools
import math
import random
import struct
import wave
from array import array
from pathlib import Path

import pytest

from rtagent._errors import ConfigurationError
from rtagent._resample import Engine, _direct, has_soxr, output_length, resample
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


def _riff(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _float_fmt(width: int, *, channels: int = 1, rate: int = 24000, extensible: bool = False) -> bytes:
    block = width * channels
    if not extensible:
        return struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, 8 * width)
    guid = struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
    return struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, 8 * width, 22, 8 * width, 4) + guid


@pytest.mark.parametrize(
    ("width", "extensible"), [(4, False), (8, False), (4, True), (8, True)], ids=["f32", "f64", "f32-ext", "f64-ext"]
)
def test_float_wav_is_read(tmp_path: Path, width: int, extensible: bool) -> None:
    """IEEE float WAV (32/64 bit, plain or WAVE_FORMAT_EXTENSIBLE) becomes PCM16, clipped at ±1."""
    values = [0.0, 0.5, -0.5, 0.25, 1.5, -2.0]
    data = struct.pack(f"<{len(values)}{'f' if width == 4 else 'd'}", *values)
    path = tmp_path / "float.wav"
    path.write_bytes(_riff(_float_fmt(width, extensible=extensible), data))
    assert list(_samples(read_wav(path))) == [0, 16384, -16384, 8192, 32767, -32768]


def test_extensible_pcm_and_odd_chunks(tmp_path: Path) -> None:
    """A WAVE_FORMAT_EXTENSIBLE 16-bit stereo file with an odd-sized extra chunk is read."""
    guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 2, 24000, 96000, 4, 16, 22, 16, 3) + guid
    frames = struct.pack("<4h", 1000, 3000, -2000, -4000)
    junk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"  # padded to an even length
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + junk
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path = tmp_path / "ext.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert list(_samples(read_wav(path))) == [2000, -3000]


def test_compressed_wav_is_refused_clearly(tmp_path: Path) -> None:
    """A compressed WAV (mu-law) gets a message naming the file and the format."""
    path = tmp_path / "ulaw.wav"
    path.write_bytes(_riff(struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8), bytes(100)))
    with pytest.raises(ConfigurationError, match=r"ulaw\.wav: compressed audio \(mu-law\) is not supported"):
        read_wav(path)


def _rms(samples: array[int]) -> float:
    return math.sqrt(sum(v * v for v in samples) / max(1, len(samples)))


ENGINES = ["python", pytest.param("soxr", marks=pytest.mark.skipif(not has_soxr(), reason="soxr not installed"))]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("rate", "tone"), [(48000, 13000), (44100, 15000), (32000, 14000)])
def test_tones_above_the_new_nyquist_are_removed(engine: Engine, rate: int, tone: int) -> None:
    """A tone above 12 kHz is attenuated by at least 75 dB when going to 24 kHz, a 1 kHz tone kept."""
    high = resample(_samples(sine_pcm16(500, freq=tone, amplitude=0.5, rate=rate)), rate, 24000, engine=engine)
    low = resample(_samples(sine_pcm16(500, freq=1000, amplitude=0.5, rate=rate)), rate, 24000, engine=engine)
    edge = 500  # skip the filter's ramp at both ends
    kept = _rms(low[edge:-edge])
    assert kept == pytest.approx(0.5 * 32767 / math.sqrt(2), rel=0.01)
    alias = _rms(high[edge:-edge])
    assert alias == 0 or 20 * math.log10(alias / kept) < -75


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("rate", "frames"), [(8000, 8000), (11025, 11025), (16000, 1601), (22050, 22050),
                                              (44100, 22050), (48000, 48001), (96000, 96000), (24001, 2400)])
def test_lengths_and_pitch_are_exact(engine: Engine, rate: int, frames: int) -> None:
    """Every rate converts to round(frames * 24000 / rate) samples with the pitch kept."""
    tone = sine_pcm16(1000 * frames // rate + 1, freq=440, amplitude=0.5, rate=rate)[: 2 * frames]
    out = resample(_samples(tone), rate, 24000, engine=engine)
    assert len(out) == output_length(frames, rate, 24000) == (frames * 24000 + rate // 2) // rate
    if frames >= rate // 2:
        assert _peak_frequency(out, 24000) == pytest.approx(440, rel=0.01)


@pytest.mark.parametrize(("rate", "target"), [(48000, 24000), (44100, 24000), (16000, 24000), (22050, 24000), (24000, 16000)])
def test_fast_polyphase_equals_the_direct_filter(rate: int, target: int) -> None:
    """The packed big-integer filter gives exactly the samples of the one-at-a-time filter, clipping included."""
    rng = random.Random(rate)
    samples = array("h", (rng.choice((-32768, 32767)) if i % 7 == 0 else rng.randint(-32768, 32767) for i in range(2000)))
    assert resample(samples, rate, target, engine="python") == _direct(samples, rate, target)


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
