"""What a call's events subject carries: each session event worth following elsewhere,
as a small JSON object (transcripts, tools, usage, latency, the connection)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import _events as ev
from .._notices import (
    ConnectionLost,
    Reconnected,
    ToolFinished,
    ToolStarted,
    ToolTurnLatency,
    UsageReported,
)
from .._runtime.driver import SessionEvent

__all__ = ["describe"]


def describe(event: SessionEvent) -> dict[str, Any] | None:
    """The JSON form of ``event`` for the events subject, or None if not published."""
    match event:
        case ev.ConversationItemInputAudioTranscriptionCompleted():
            return {"type": "transcript", "role": "user", "item_id": event.item_id,
                    "text": event.transcript}
        case ev.ResponseOutputAudioTranscriptDone():
            return {"type": "transcript", "role": "assistant", "item_id": event.item_id,
                    "text": event.transcript}
        case ev.ResponseOutputTextDone():
            return {"type": "transcript", "role": "assistant", "item_id": event.item_id,
                    "text": event.text}
        case ToolStarted():
            return {"type": "tool.started", "tool_call_id": event.call_id, "name": event.name,
                    "arguments": event.arguments}
        case ToolFinished():
            return {"type": "tool.finished", "tool_call_id": event.call_id, "name": event.name,
                    "ok": event.ok, "error": event.error, "duration": event.duration}
        case UsageReported():
            return {"type": "usage", "response_id": event.response_id,
                    "usage": dataclasses.asdict(event.usage), "cost": event.cost}
        case ToolTurnLatency():
            return {"type": "latency", "tool_call_id": event.call_id,
                    "to_output": event.to_output, "to_next_delta": event.to_next_delta}
        case ConnectionLost():
            return {"type": "connection.lost", "reason": event.reason}
        case Reconnected():
            return {"type": "connection.restored", "attempt": event.attempt}
    return None
