"""Token accounting for ``response.done.usage`` (PROTOCOL.md §3).

Approximate but consistent: about four characters per text token, ~10 tokens per
second of input audio and ~20 per second of output audio. The whole context is input
for every response, and once a connection has sent 1024 input tokens, the prefix
shared with the previous response counts as cached (in steps of 64).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ._brains import Conversation, message_text

__all__ = ["UsageMeter", "tokens"]


def tokens(text: str) -> int:
    """Text tokens of ``text`` (about four characters each; at least one if not empty)."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


class UsageMeter:
    """The ``usage`` of each response on one connection (remembers the last input size)."""

    def __init__(self) -> None:
        self._last_input_tokens = 0

    def measure(
        self,
        convo: Conversation,
        output: list[dict[str, Any]],
        audio: Mapping[str, bytes | bytearray],
    ) -> dict[str, Any]:
        """The ``usage`` object of a finished response.

        Args:
            convo: what the model saw (context items, instructions, tools).
            output: the response's output items.
            audio: item id -> audio bytes kept by the conversation.
        """
        text_in = tokens(convo.instructions) + (
            tokens(json.dumps(convo.tools)) if convo.tools else 0
        )
        audio_in = 0
        for item in convo.items:
            if item.get("type") == "message":
                text_in += tokens(message_text(item)) + 4
                if item.get("id") in audio and item.get("role") == "user":
                    audio_in += len(audio[item["id"]]) // 480  # ~10 tokens per second
            else:
                text_in += tokens(json.dumps(item)) + 4
        cached = (
            (min(self._last_input_tokens, text_in) // 64) * 64
            if self._last_input_tokens >= 1024
            else 0
        )
        self._last_input_tokens = text_in + audio_in
        text_out = sum(
            tokens(message_text(i))
            if i["type"] == "message"
            else tokens(i.get("arguments", "")) + 5
            for i in output
        )
        audio_out = sum(len(audio.get(i["id"], b"")) // 240 for i in output)  # ~20 tokens/s
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached,
                    "audio_tokens": 0,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
