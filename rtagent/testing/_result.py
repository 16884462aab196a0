"""What one turn of a test run did: the tool calls, the answer, the events.

A :class:`TurnResult` is plain data built from the session's event stream (the
``ToolStarted``/``ToolFinished`` notices and the server events between the question and
its answer), so it can be inspected, printed and compared after the session has ended.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _events as ev
from .._notices import ToolFinished, ToolStarted
from .._runtime import SessionEvent

if TYPE_CHECKING:
    from ._expect import Expect

__all__ = ["ToolCallRecord", "TurnResult", "format_arguments", "is_final_response"]

_CLIP = 160


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call the agent ran during a turn.

    Attributes:
        name: the tool the model called.
        arguments: the arguments, decoded from JSON (empty when they were not a JSON object).
        raw_arguments: the arguments exactly as the model sent them.
        call_id: the ``call_id`` of the ``function_call`` item.
        output: the ``function_call_output`` text, or None if the call was still
            running when the turn ended.
        ok: False when the call failed in any way (see ``error``).
        error: None on success, else why it failed (``"tool_error"``, ``"exception"``,
            ``"timeout"``, ``"invalid_arguments"``, ``"unknown_tool"``...).
        duration: seconds the tool ran, or None if it had not finished.
    """

    name: str
    arguments: dict[str, Any]
    raw_arguments: str
    call_id: str
    output: str | None = None
    ok: bool = False
    error: str | None = None
    duration: float | None = None

    @property
    def finished(self) -> bool:
        """Whether the call had finished when the turn ended."""
        return self.output is not None

    def __str__(self) -> str:
        call = f"{self.name}({format_arguments(self)})"
        if self.output is None:
            return f"{call} (still running)"
        status = "ok" if self.ok else f"failed: {self.error}"
        return f"{call} -> {_clip(self.output)} ({status})"


@dataclass(frozen=True)
class TurnResult:
    """What happened between a question and its answer.

    Attributes:
        prompt: the user's message.
        text: the assistant text that answers it (after every tool round).
        tool_calls: the tool calls run during the turn, in the order they started.
        events: every server event and runtime notice recorded during the turn.
    """

    prompt: str
    text: str
    tool_calls: tuple[ToolCallRecord, ...] = ()
    events: tuple[SessionEvent, ...] = field(default=(), repr=False)

    @classmethod
    def from_events(cls, prompt: str, text: str, events: Iterable[SessionEvent]) -> TurnResult:
        """Build the result of a turn from the events recorded while it ran."""
        recorded = tuple(events)
        return cls(prompt, text, _tool_calls(recorded), recorded)

    @property
    def expect(self) -> Expect:
        """Assertions on this turn: ``result.expect.tool_call("get_weather", city="Paris")``."""
        from ._expect import Expect

        return Expect(self)

    @property
    def responses(self) -> int:
        """How many responses the model produced for this turn (one per tool round, plus one)."""
        return sum(1 for e in self.events if isinstance(e, ev.ResponseDone) and _in_conversation(e))

    @property
    def errors(self) -> list[ev.ErrorDetail]:
        """Server ``error`` events seen during the turn."""
        return [e.error for e in self.events if isinstance(e, ev.Error)]

    @property
    def usage(self) -> dict[str, int]:
        """Tokens of the turn's responses, summed: ``input_tokens``, ``output_tokens``, ``total_tokens``."""
        total = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        for event in self.events:
            if isinstance(event, ev.ResponseDone) and event.response.usage:
                for key in total:
                    value = event.response.usage.get(key)
                    if isinstance(value, int):
                        total[key] += value
        return total

    def describe(self) -> str:
        """The turn as a short transcript (what failure messages show)."""
        lines = [f"  user:      {_clip(self.prompt)}"]
        lines += [f"  tool call: {call}" for call in self.tool_calls]
        lines += [f"  error:     {e.code or e.type}: {e.message}" for e in self.errors]
        lines.append(f"  answer:    {_clip(self.text)}" if self.text else "  answer:    (no text)")
        return "\n".join(lines)


def _tool_calls(events: Sequence[SessionEvent]) -> tuple[ToolCallRecord, ...]:
    calls: dict[str, ToolCallRecord] = {}
    for event in events:
        if isinstance(event, ToolStarted) and event.call_id not in calls:
            calls[event.call_id] = _record(event.name, event.arguments, event.call_id)
        elif isinstance(event, ToolFinished):
            started = calls.get(event.call_id) or _record(event.name, event.arguments, event.call_id)
            calls[event.call_id] = ToolCallRecord(
                started.name, started.arguments, started.raw_arguments, started.call_id,
                event.output, event.ok, event.error, event.duration,
            )
    return tuple(calls.values())


def _record(name: str, raw: str, call_id: str) -> ToolCallRecord:
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError:
        decoded = None
    arguments = decoded if isinstance(decoded, dict) else {}
    return ToolCallRecord(name, arguments, raw, call_id)


def is_final_response(event: SessionEvent) -> bool:
    """Whether ``event`` is a ``response.done`` that ends a turn (no tool round follows).

    A completed response that made function calls is followed by another response once
    their outputs are posted; any other finished response in the conversation ends it.
    """
    if not isinstance(event, ev.ResponseDone) or not _in_conversation(event):
        return False
    response = event.response
    if response.status != "completed":
        return True
    return not any(item.type == "function_call" for item in response.output)


def _in_conversation(event: ev.ResponseDone) -> bool:
    # An out-of-band response (conversation="none") says so with conversation_id: null.
    response = event.response
    return "conversation_id" not in response.model_fields_set or response.conversation_id is not None


def format_arguments(call: ToolCallRecord) -> str:
    """The call's arguments as ``key='value', n=2`` (the raw text when not a JSON object)."""
    if not call.arguments and call.raw_arguments.strip() not in ("", "{}"):
        return _clip(call.raw_arguments)
    return ", ".join(f"{key}={value!r}" for key, value in call.arguments.items())


def _clip(value: object) -> str:
    """``repr(value)``, cut short when long."""
    text = repr(value)
    return text if len(text) <= _CLIP else text[: _CLIP - 4] + "...'"
