"""Fault injection for the local server: the failures real Realtime connections show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["Faults", "FaultsSpec", "faults_for"]


@dataclass(frozen=True)
class Faults:
    """What goes wrong on one connection.

    Attributes:
        drop_after_sent: abort the TCP connection (no close frame) right after sending
            the ``drop_nth`` server event of this type.
        drop_nth: which occurrence of ``drop_after_sent`` / ``drop_after_received`` triggers.
        drop_after_received: abort right after receiving the ``drop_nth`` client event of
            this type; the pseudo-type ``"function_call_output"`` matches a
            ``conversation.item.create`` carrying a function_call_output. The event is
            recorded but not processed.
        delay: seconds to sleep before sending each event of the given types.
        inject_after: after sending event type X, send this raw text frame verbatim.
        error_after: after sending event type X, send an ``error`` event with this body
            (e.g. ``{"type": "server_error", "message": "..."}``).
        duplicate_call_ids: issue each function_call twice in its response with the
            same ``call_id`` (distinct item ids).
        auto_response_after_output: start a server-initiated response as soon as a
            function_call_output arrives (the VAD race), so the client's own
            ``response.create`` meets ``conversation_already_has_active_response``.
        expire_after: end the session after this many seconds with the real
            ``session_expired`` error, then close the socket.
    """

    drop_after_sent: str | None = None
    drop_nth: int = 1
    drop_after_received: str | None = None
    delay: dict[str, float] = field(default_factory=dict)
    inject_after: list[tuple[str, str]] = field(default_factory=list)
    error_after: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    duplicate_call_ids: bool = False
    auto_response_after_output: bool = False
    expire_after: float | None = None


FaultsSpec = Union[
    None, Faults, Sequence[Union[Faults, None]], Callable[[int], Union[Faults, None]]
]


def faults_for(spec: FaultsSpec, index: int) -> Faults:
    """The faults of the ``index``-th connection (none past the end of a sequence)."""
    if spec is None:
        return Faults()
    if isinstance(spec, Faults):
        return spec
    if callable(spec):
        return spec(index) or Faults()
    return (spec[index] if index < len(spec) else None) or Faults()
