"""What the inspector page shows, as JSON records: pure functions over events, no I/O.

A :class:`Tracker` turns what happened on one source (a chat's session, or one
connection of the local server) into records for the page:

* ``event``: one Realtime event, either way (``origin`` is ``"server"`` or ``"client"``),
  with its payload trimmed (audio and long strings shortened);
* ``tool``: a tool call as it starts and ends (arguments, output, ok, duration);
* ``turn``: a user turn's latencies (first reply token, complete answer, tool rounds);
* ``usage``: a response's token usage and its estimated cost;
* ``connection``: connecting, open, lost, reconnected, closed.

Every record has ``seq`` (its position), ``t`` (seconds since the inspector started)
and ``source``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["PRICES", "Tracker", "cost_of", "prices_for", "trim"]

# USD per million tokens (OpenAI list prices): text in, cached in, out; audio in, cached in, out.
PRICES: dict[str, tuple[float, float, float, float, float, float]] = {
    "gpt-realtime-mini": (0.60, 0.06, 2.40, 10.00, 0.30, 20.00),
    "gpt-realtime": (4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    "gpt-4o-mini-realtime-preview": (0.60, 0.30, 2.40, 10.00, 0.30, 20.00),
    "gpt-4o-realtime-preview": (5.00, 2.50, 20.00, 40.00, 2.50, 80.00),
}

_MAX_STRING = 240
_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
    }
)


def prices_for(model: str) -> tuple[str, tuple[float, float, float, float, float, float]]:
    """The price list used for ``model``: its own, else its family's (longest prefix)."""
    for name in sorted(PRICES, key=len, reverse=True):
        if model.startswith(name):
            return name, PRICES[name]
    return "gpt-realtime", PRICES["gpt-realtime"]


def cost_of(usage: Mapping[str, Any], model: str) -> float:
    """Estimated USD cost of one ``response.done`` usage object at list prices."""
    _, (text_in, cached_text, text_out, audio_in, cached_audio, audio_out) = prices_for(model)
    given = usage.get("input_token_details") or {}
    taken = usage.get("output_token_details") or {}
    cached = given.get("cached_tokens_details") or {}
    cached_t = int(cached.get("text_tokens") or 0)
    cached_a = int(cached.get("audio_tokens") or 0)
    total = (
        (int(given.get("text_tokens") or 0) - cached_t) * text_in
        + cached_t * cached_text
        + (int(given.get("audio_tokens") or 0) - cached_a) * audio_in
        + cached_a * cached_audio
        + int(taken.get("text_tokens") or 0) * text_out
        + int(taken.get("audio_tokens") or 0) * audio_out
    )
    return total / 1_000_000


def trim(value: Any) -> Any:
    """A copy of a JSON value small enough to show: long strings (audio) shortened."""
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            return f"{value[:_MAX_STRING]}… ({len(value)} characters)"
        return value
    if isinstance(value, Mapping):
        return {str(k): trim(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [trim(v) for v in value[:50]] + ([f"… {len(value) - 50} more"] if len(value) > 50 else [])
    return value


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class _Turn:
    __slots__ = ("first", "number", "rounds", "started")

    def __init__(self, number: int, started: float) -> None:
        self.number = number
        self.started = started
        self.first: float | None = None
        self.rounds = 0


class Tracker:
    """Records for one source; feed it what happens, in order, with the time it happened.

    Args:
        source: The label the page shows ("session", "connection 0"...).
        derive_tools: Find tool calls in the events (a server's view, where no runtime
            notices exist) rather than from ``rtagent.tool.*`` notices.
    """

    def __init__(self, source: str, *, derive_tools: bool = False) -> None:
        self.source = source
        self.derive_tools = derive_tools
        self.model = ""
        self._turn: _Turn | None = None
        self._turns = 0
        self._calls: dict[str, float] = {}

    def server_event(self, t: float, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Records for an event the server sent (as a JSON object)."""
        kind = str(event.get("type"))
        records = [self._event(t, "server", kind, event)]
        if kind in ("session.created", "session.updated"):
            model = (event.get("session") or {}).get("model")
            if isinstance(model, str) and model:
                self.model = model
        elif kind == "conversation.item.added":
            item = event.get("item") or {}
            if item.get("type") == "message" and item.get("role") == "user":
                self._turns += 1
                self._turn = _Turn(self._turns, t)
        elif kind in _DELTAS:
            if self._turn is not None and self._turn.first is None:
                self._turn.first = t
        elif kind == "response.output_item.done" and self.derive_tools:
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                call_id = str(item.get("call_id"))
                self._calls[call_id] = t
                records.append(self._tool(t, call_id, str(item.get("name")), item.get("arguments"), "running"))
        elif kind == "response.done":
            records += self._response_done(t, event.get("response") or {})
        return records

    def client_event(self, t: float, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Records for an event the client sent (seen by a server)."""
        kind = str(event.get("type"))
        records = [self._event(t, "client", kind, event)]
        item = event.get("item") or {}
        if (
            self.derive_tools
            and kind == "conversation.item.create"
            and isinstance(item, Mapping)
            and item.get("type") == "function_call_output"
        ):
            call_id = str(item.get("call_id"))
            started = self._calls.pop(call_id, None)
            record = self._tool(t, call_id, None, None, "done")
            record["output"] = trim(str(item.get("output", "")))
            record["ok"] = not str(item.get("output", "")).startswith("error:")
            record["duration"] = None if started is None else t - started
            records.append(record)
        return records

    def notice(self, t: float, notice: Any) -> list[dict[str, Any]]:
        """Records for one of the runtime's notices (``ToolStarted``, ``Reconnected``...)."""
        kind = str(getattr(notice, "type", type(notice).__name__))
        is_record = dataclasses.is_dataclass(notice) and not isinstance(notice, type)
        fields = dataclasses.asdict(notice) if is_record else {}
        if kind == "rtagent.tool.started":
            return [self._tool(t, fields["call_id"], fields["name"], fields["arguments"], "running")]
        if kind == "rtagent.tool.finished":
            record = self._tool(t, fields["call_id"], fields["name"], fields["arguments"], "done")
            record.update(
                output=trim(fields["output"]), ok=fields["ok"], error=fields["error"], duration=fields["duration"]
            )
            return [record]
        if kind == "rtagent.connection.lost":
            return [self.connection(t, "lost", fields.get("reason", ""))]
        if kind == "rtagent.reconnected":
            what = "rolled over" if fields.get("planned") else "reconnected"
            detail = (
                f"{what} on attempt {fields.get('attempt')}: {fields.get('items_restored')} items, "
                f"{fields.get('outputs_restored')} tool outputs restored"
            )
            not_restored = fields.get("not_restored") or ()
            if not_restored:
                detail += "; not restored: " + ", ".join(not_restored)
            return [self.connection(t, "reconnected", detail)]
        if kind == "rtagent.tool.latency":
            text = (
                f"call {fields['call_id']}: output posted after {_ms(fields['to_output'])}, "
                f"next reply token after {_ms(fields['to_next_delta'])}"
            )
            return [self._base(t, "note", title="tool latency", text=text)]
        return [self._base(t, "note", title=kind, text=json.dumps(trim(fields), default=str))]

    def connection(self, t: float, state: str, detail: str = "") -> dict[str, Any]:
        """A ``connection`` record: connecting, open, lost, reconnected or closed."""
        return self._base(t, "connection", state=state, detail=detail)

    # -- helpers -----------------------------------------------------------------------

    def _base(self, t: float, kind: str, **fields: Any) -> dict[str, Any]:
        return {"t": round(t, 4), "source": self.source, "kind": kind, **fields}

    def _event(self, t: float, origin: str, kind: str, event: Mapping[str, Any]) -> dict[str, Any]:
        return self._base(t, "event", origin=origin, type=kind, data=trim(event))

    def _tool(self, t: float, call_id: str, name: str | None, arguments: Any, status: str) -> dict[str, Any]:
        return self._base(t, "tool", call_id=call_id, name=name, arguments=trim(arguments), status=status)

    def _response_done(self, t: float, response: Mapping[str, Any]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        usage = response.get("usage")
        if isinstance(usage, Mapping):
            model = self.model or "gpt-realtime"
            priced_as, _ = prices_for(model)
            records.append(
                self._base(
                    t,
                    "usage",
                    response_id=response.get("id"),
                    input_tokens=int(usage.get("input_tokens") or 0),
                    output_tokens=int(usage.get("output_tokens") or 0),
                    cost=cost_of(usage, model),
                    model=model,
                    priced_as=priced_as,
                )
            )
        turn = self._turn
        if turn is None:
            return records
        output = response.get("output") or []
        calls = any(isinstance(i, Mapping) and i.get("type") == "function_call" for i in output)
        if calls and response.get("status") == "completed":
            turn.rounds += 1
            return records
        self._turn = None
        records.append(
            self._base(
                t,
                "turn",
                turn=turn.number,
                first=None if turn.first is None else turn.first - turn.started,
                done=t - turn.started,
                rounds=turn.rounds,
                status=response.get("status"),
            )
        )
        return records
