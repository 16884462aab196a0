"""The client's copy of the session config, merged by the protocol's rules.

``session.update`` changes only the fields it carries (PROTOCOL.md §5). Objects merge
field by field, except an object whose ``type`` changes (``server_vad`` to
``semantic_vad``, one audio format for another): the server replaces it, so the copy
does too. Otherwise a later reconnect would send fields the new type does not accept
and the server would refuse the whole config.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["merge_config", "output_bytes_per_ms", "server_cancels_on_speech"]


def merge_config(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``update`` applied as ``session.update`` would; both stay untouched."""
    merged = dict(current)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and _same_type(old, value):
            merged[key] = merge_config(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _same_type(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return "type" not in new or new.get("type") == old.get("type")


def server_cancels_on_speech(server: dict[str, Any], client: dict[str, Any]) -> bool:
    """Whether server VAD cancels the active response itself when the user speaks.

    The server's effective config (``session.updated``) decides; before the first one
    arrives the client's copy does, with the server's default (server VAD with
    ``interrupt_response: true``) for what it does not set.
    """
    for config in (server, client):
        audio = config.get("audio")
        if not isinstance(audio, dict):
            continue
        audio_in = audio.get("input")
        if not isinstance(audio_in, dict) or "turn_detection" not in audio_in:
            continue
        detection = audio_in["turn_detection"]
        if not isinstance(detection, dict):
            return False  # null: no VAD, nothing is automatic
        return bool(detection.get("interrupt_response", True))
    return True


def output_bytes_per_ms(server: dict[str, Any], client: dict[str, Any]) -> int:
    """Bytes per millisecond of the assistant's audio, from the output format in use."""
    for config in (server, client):
        audio = config.get("audio")
        output = audio.get("output") if isinstance(audio, dict) else None
        fmt = output.get("format") if isinstance(output, dict) else None
        if isinstance(fmt, dict) and isinstance(fmt.get("type"), str):
            if fmt["type"] in ("audio/pcmu", "audio/pcma"):
                return 8  # G.711: 8 kHz, one byte per sample
            rate = fmt.get("rate", 24000)
            return max(1, rate * 2 // 1000) if isinstance(rate, int) else 48
    return 48  # PCM16 at 24 kHz (PROTOCOL.md §6)
