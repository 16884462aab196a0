"""Token usage and cost, from the ``usage`` of every ``response.done``.

The server reports, per response, input tokens by modality (text, audio, image) with the
cached subset of each, and output tokens by modality (PROTOCOL.md §3). The whole
conversation so far is input for every response, so input dominates long sessions and
cached tokens matter for cost. :class:`UsageLedger` keeps the session's total, the
usage of recent responses and of recent application turns (bounded), and turns tokens
into money with a :class:`Prices` table the application supplies (prices change; rtagent
ships none).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Prices", "Usage", "UsageLedger"]

_KEEP = 256


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one response, or a sum of them. Cached tokens are part of the input ones."""

    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0
    reasoning: int = 0
    """Reasoning tokens, when the model reports them (they count as output)."""
    responses: int = 0
    """How many responses this sums."""

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio + self.input_image

    @property
    def cached_tokens(self) -> int:
        return self.cached_text + self.cached_audio + self.cached_image

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        # Field by field (twice per response): a loop over dataclasses.fields() cost 5 µs.
        return Usage(
            self.input_text + other.input_text,
            self.input_audio + other.input_audio,
            self.input_image + other.input_image,
            self.cached_text + other.cached_text,
            self.cached_audio + other.cached_audio,
            self.cached_image + other.cached_image,
            self.output_text + other.output_text,
            self.output_audio + other.output_audio,
            self.reasoning + other.reasoning,
            self.responses + other.responses,
        )

    def cost(self, prices: Prices) -> float:
        """The price of these tokens in ``prices``' currency (cached input at its own rate)."""
        per = 1_000_000
        return (
            (self.input_text - self.cached_text) * prices.input_text
            + self.cached_text * prices.cached_text
            + (self.input_audio - self.cached_audio) * prices.input_audio
            + self.cached_audio * prices.cached_audio
            + (self.input_image - self.cached_image) * prices.input_image
            + self.cached_image * prices.cached_image
            + self.output_text * prices.output_text
            + self.output_audio * prices.output_audio
        ) / per

    @classmethod
    def from_wire(cls, usage: Any) -> Usage:
        """Read a ``response.done`` ``usage`` object leniently (missing or odd fields are 0)."""
        if not isinstance(usage, Mapping):
            return cls(responses=1)
        inp = _map(usage.get("input_token_details"))
        out = _map(usage.get("output_token_details"))
        cached = _map(inp.get("cached_tokens_details"))
        return cls(
            input_text=_int(inp.get("text_tokens")),
            input_audio=_int(inp.get("audio_tokens")),
            input_image=_int(inp.get("image_tokens")),
            cached_text=_int(cached.get("text_tokens")),
            cached_audio=_int(cached.get("audio_tokens")),
            cached_image=_int(cached.get("image_tokens")),
            output_text=_int(out.get("text_tokens")),
            output_audio=_int(out.get("audio_tokens")),
            reasoning=_int(out.get("reasoning_tokens")),
            responses=1,
        )


@dataclass(frozen=True, slots=True)
class Prices:
    """Prices per million tokens (any currency); cached input has its own rate.

    Example (check your provider's current prices)::

        Prices(input_text=4.0, cached_text=0.4, input_audio=32.0, cached_audio=0.4,
               output_text=16.0, output_audio=64.0)
    """

    input_text: float = 0.0
    cached_text: float = 0.0
    input_audio: float = 0.0
    cached_audio: float = 0.0
    input_image: float = 0.0
    cached_image: float = 0.0
    output_text: float = 0.0
    output_audio: float = 0.0


class UsageLedger:
    """The session's usage: in total, per recent response and per recent application turn.

    Args:
        prices: turn tokens into cost; None leaves ``cost`` at None.
    """

    def __init__(self, prices: Prices | None = None) -> None:
        self.prices = prices
        self.total = Usage()
        self.responses: deque[tuple[str, Usage]] = deque(maxlen=_KEEP)
        """(response id, usage) of the most recent responses, oldest first."""
        self.turns: deque[tuple[int, Usage]] = deque(maxlen=_KEEP)
        """(turn, usage of every response that answered it) of the most recent turns."""
        self._open: dict[int, Usage] = {}

    @property
    def cost(self) -> float | None:
        """What the whole session cost so far, with ``prices`` (None without them)."""
        return self.total.cost(self.prices) if self.prices is not None else None

    @property
    def last_turn(self) -> Usage | None:
        return self.turns[-1][1] if self.turns else None

    def record(self, response_id: str, usage: Usage, turns: Iterable[int]) -> None:
        """A response finished with ``usage``; it worked for ``turns``."""
        self.total += usage
        self.responses.append((response_id, usage))
        for turn in turns:
            self._open[turn] = self._open.get(turn, Usage()) + usage
        while len(self._open) > _KEEP:  # turns that ended without a response (refused)
            del self._open[next(iter(self._open))]

    def turn_done(self, turn: int) -> Usage:
        """The usage of a finished turn (every response of its tool rounds included)."""
        usage = self._open.pop(turn, Usage())
        self.turns.append((turn, usage))
        return usage


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
