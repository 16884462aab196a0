"""WAV files in and out of the Realtime API's audio format (24 kHz mono PCM16, PROTOCOL §6).

Reads uncompressed WAV: integer PCM (8, 16, 24 or 32 bit) and IEEE float (32 or 64 bit),
with a plain or a ``WAVE_FORMAT_EXTENSIBLE`` header, any rate and any number of
channels. The RIFF chunks are parsed here (the ``wave`` module reads only integer PCM,
and extensible headers only from Python 3.12). Channels are mixed down to mono and the
rate converted to 24 kHz by :mod:`rtagent._resample` (soxr when installed, else a
filtered polyphase resampler). Compressed formats are refused with a clear
:class:`~rtagent._errors.ConfigurationError` rather than decoded wrongly.
"""

from __future__ import annotations

import os
import struct
import sys
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigurationError
from ._resample import resample

__all__ = ["REALTIME_RATE", "read_wav", "to_pcm16_mono", "write_wav"]

REALTIME_RATE = 24000
"""Sample rate of the Realtime API's ``audio/pcm`` format."""

_BIG_ENDIAN = sys.byteorder == "big"
_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# The tail shared by the KSDATAFORMAT_SUBTYPE GUIDs (the first two bytes are the format tag).
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_COMPRESSED = {0x0002: "ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0055: "MP3"}


@dataclass(frozen=True)
class _Format:
    tag: int
    """_PCM or _FLOAT (an extensible header's subformat)."""
    channels: int
    rate: int
    width: int
    """Bytes per sample of one channel."""


def read_wav(path: str | os.PathLike[str], *, rate: int = REALTIME_RATE) -> bytes:
    """Read a WAV file as mono little-endian PCM16 at ``rate`` (default 24 kHz).

    Args:
        path: The WAV file.
        rate: The sample rate wanted.

    Returns:
        Mono PCM16 bytes: exactly ``round(frames * rate / file_rate)`` samples.

    Raises:
        ConfigurationError: The file is missing, is not a WAV file, or holds a format this
            reader does not decode (compressed samples). The message names the file.
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{where}: is a folder, not a WAV file") from None
    except OSError as exc:
        raise ConfigurationError(f"{where}: {exc.strerror or exc}") from exc
    try:
        fmt, frames = _parse(data)
    except _Unreadable as exc:
        raise ConfigurationError(f"{where}: cannot read as WAV: {exc}") from None
    except _Unsupported as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if fmt.tag == _FLOAT:
        samples = _float_to_int16(frames, fmt.width)
    else:
        samples = _to_int16(frames, fmt.width)
    return to_pcm16_mono(samples, channels=fmt.channels, rate=fmt.rate, target_rate=rate)


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
        samples = resample(samples, rate, target_rate)
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


class _Unreadable(Exception):
    """Not a WAV file, or a damaged one."""


class _Unsupported(Exception):
    """A WAV file in a format this reader does not decode."""


def _parse(data: bytes) -> tuple[_Format, bytes]:
    """The format and the sample bytes (whole frames) of a RIFF/WAVE file."""
    if len(data) < 12:
        raise _Unreadable("the file is truncated" if data[:4] == b"RIFF" or not data else "not a WAV file")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _Unreadable("not a WAV file")
    fmt: _Format | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]  # a streamed file may claim more than it has
        if chunk == b"fmt ":
            fmt = _format(body)
        elif chunk == b"data":
            if fmt is None:
                raise _Unreadable("the data chunk comes before the fmt chunk")
            frame = fmt.width * fmt.channels
            return fmt, body[: len(body) - len(body) % frame]
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
    raise _Unreadable("the file is truncated" if fmt is not None else "no fmt chunk")


def _format(body: bytes) -> _Format:
    if len(body) < 16:
        raise _Unreadable("the fmt chunk is truncated")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40 or body[26:40] != _GUID_TAIL:
            raise _Unsupported("WAVE_FORMAT_EXTENSIBLE with an unknown subformat is not supported")
        tag = struct.unpack_from("<H", body, 24)[0]
    if channels < 1 or rate < 1 or block_align < channels:
        raise _Unreadable(f"invalid header ({channels} channels, {rate} Hz, {block_align}-byte frames)")
    width = block_align // channels
    if tag == _FLOAT:
        if width not in (4, 8):
            raise _Unsupported(f"{8 * width}-bit float samples are not supported (32 or 64 bit)")
    elif tag == _PCM:
        if width not in (1, 2, 3, 4):
            raise _Unsupported(f"{bits}-bit samples are not supported")
    else:
        name = _COMPRESSED.get(tag, f"format tag 0x{tag:04x}")
        raise _Unsupported(f"compressed audio ({name}) is not supported; convert to 16-bit PCM")
    return _Format(tag, channels, rate, width)


def _float_to_int16(frames: bytes, width: int) -> array[int]:
    """IEEE float samples (nominally -1.0 to 1.0) to 16-bit, clipped; NaN becomes 0."""
    values = array("f" if width == 4 else "d")
    values.frombytes(frames)
    if _BIG_ENDIAN:
        values.byteswap()
    return array(
        "h", (32767 if v >= 1.0 else -32768 if v <= -1.0 else round(v * 32767) if v == v else 0 for v in values)
    )


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
