"""WAV files in and out of the Realtime API's audio format (24 kHz mono PCM16, PROTOCOL §6).

Reads uncompressed integer PCM WAV (8, 16, 24 or 32 bit, any rate, any number of channels)
with the standard ``wave`` module, mixes the channels down to mono and resamples to 24 kHz
by linear interpolation. Pure Python over ``array`` (no ``audioop``, removed in Python
3.13, and no numpy): fine for files of a few minutes. Float and compressed WAV are refused
with a clear :class:`~rtagent._errors.ConfigurationError` rather than decoded wrongly.
"""

from __future__ import annotations

import os
import sys
import wave
from array import array
from pathlib import Path

from ._errors import ConfigurationError

__all__ = ["REALTIME_RATE", "read_wav", "to_pcm16_mono", "write_wav"]

REALTIME_RATE = 24000
"""Sample rate of the Realtime API's ``audio/pcm`` format."""

_BIG_ENDIAN = sys.byteorder == "big"


def read_wav(path: str | os.PathLike[str], *, rate: int = REALTIME_RATE) -> bytes:
    """Read a WAV file as mono little-endian PCM16 at ``rate`` (default 24 kHz).

    Raises:
        ConfigurationError: The file is missing, is not a WAV file, or holds a format this
            reader does not decode (float or compressed samples). The message names the file.
    """
    where = str(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            source_rate = reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{where}: is a folder, not a WAV file") from None
    except (wave.Error, EOFError) as exc:
        raise ConfigurationError(f"{where}: cannot read as WAV: {_explain(exc)}") from exc
    except OSError as exc:
        raise ConfigurationError(f"{where}: {exc.strerror or exc}") from exc
    if channels < 1 or source_rate < 1:
        raise ConfigurationError(f"{where}: invalid WAV header ({channels} channels, {source_rate} Hz)")
    if width not in (1, 2, 3, 4):
        raise ConfigurationError(f"{where}: {8 * width}-bit samples are not supported")
    samples = _to_int16(frames, width)
    return to_pcm16_mono(samples, channels=channels, rate=source_rate, target_rate=rate)


def to_pcm16_mono(
    pcm16: bytes | array[int],
    *,
    channels: int,
    rate: int,
    target_rate: int = REALTIME_RATE,
) -> bytes:
    """Mix interleaved PCM16 down to mono and resample it to ``target_rate``.

    Args:
        pcm16: Interleaved little-endian 16-bit samples (bytes) or an ``array('h')``.
        channels: Number of interleaved channels.
        rate: Sample rate of ``pcm16``.
        target_rate: The rate to convert to.

    Returns:
        Little-endian mono PCM16 bytes.
    """
    samples = pcm16 if isinstance(pcm16, array) else _le_array(pcm16)
    if channels > 1:
        samples = _mix_down(samples, channels)
    if rate != target_rate:
        samples = _resample(samples, rate, target_rate)
    return _le_bytes(samples)


def write_wav(
    path: str | os.PathLike[str], pcm16: bytes, *, rate: int = REALTIME_RATE, channels: int = 1
) -> None:
    """Write little-endian PCM16 (the Realtime API's output audio) as a WAV file."""
    target = Path(path)
    if target.parent and not target.parent.is_dir():
        raise ConfigurationError(f"{target}: folder {target.parent} does not exist")
    with wave.open(str(target), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm16)


# -- helpers ---------------------------------------------------------------------------------


def _explain(exc: BaseException) -> str:
    text = str(exc)
    if "unknown format: 3" in text:
        return "32-bit float samples are not supported (convert to 16-bit PCM)"
    if "unknown format: 65534" in text:
        return "WAVE_FORMAT_EXTENSIBLE headers need Python 3.12+; convert to plain 16-bit PCM"
    if "unknown format" in text:
        return f"compressed audio is not supported ({text}); convert to 16-bit PCM"
    if "RIFF" in text or "WAVE" in text:
        return "not a WAV file"
    if isinstance(exc, EOFError) or not text:
        return "the file is truncated"
    return text


def _le_array(data: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def _le_bytes(samples: array[int]) -> bytes:
    if _BIG_ENDIAN:
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _to_int16(frames: bytes, width: int) -> array[int]:
    """Little-endian integer PCM of any width to 16-bit samples (keeping the top bits)."""
    if width == 2:
        return _le_array(frames)
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return array("h", ((b - 128) << 8 for b in frames))
    # 24/32-bit: the two most significant bytes of each little-endian sample.
    top = bytearray()
    for start in range(width - 2, len(frames) - 1, width):
        top += frames[start : start + 2]
    return _le_array(bytes(top))


def _mix_down(samples: array[int], channels: int) -> array[int]:
    n = len(samples) // channels
    columns = [samples[c : n * channels : channels] for c in range(channels)]
    return array("h", (sum(frame) // channels for frame in zip(*columns, strict=True)))


def _resample(samples: array[int], rate: int, target_rate: int) -> array[int]:
    """Linear interpolation; averages neighbours first when shrinking, to limit aliasing."""
    n = len(samples)
    if n == 0:
        return array("h")
    source = samples
    if target_rate < rate:
        # A short box filter (about one output sample wide) as a cheap low-pass.
        width = max(1, round(rate / target_rate))
        if width > 1:
            prefix = [0]
            for s in samples:
                prefix.append(prefix[-1] + s)
            half = width // 2
            source = array(
                "h",
                (
                    (prefix[min(n, i + width - half)] - prefix[max(0, i - half)])
                    // (min(n, i + width - half) - max(0, i - half))
                    for i in range(n)
                ),
            )
    out_len = max(1, n * target_rate // rate)
    step = rate / target_rate
    last = n - 1
    out = array("h", bytes(2 * out_len))
    for j in range(out_len):
        pos = j * step
        i = int(pos)
        if i >= last:
            out[j] = source[last]
            continue
        frac = pos - i
        a = source[i]
        out[j] = int(a + (source[i + 1] - a) * frac)
    return out
