"""Turns one session's event stream into GenAI spans and metrics.

:class:`Tracker` is fed every event of the session in order (:meth:`Tracker.handle`) and
never awaits. The span tree of a turn with one tool round::

    invoke_agent Weather                      the user's message ... the answer
    ├── realtime_inference gpt-realtime       the response that made the call
    ├── execute_tool get_weather              the call, as the tool ran
    └── realtime_inference gpt-realtime       the response that answered

A turn starts when the server adds a user message to the conversation (typed, or a
committed audio item) and ends with the first response after it that makes no tool
call: ``completed``; ``interrupted`` when that response was cancelled (barge-in);
``failed``/``incomplete`` after the response's status; ``session_closed`` when the
session ends first. A response answers every turn open when it was created, so a message
sent during a tool round is answered, and its turn ended, by the round's reply.
Conversation items replayed after a reconnect keep their ids and start no turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import _events as ev
from .._notices import (
    ConnectionLost,
    Notice,
    Reconnected,
    ToolFinished,
    ToolStarted,
    ToolTurnLatency,
)
from . import semconv as sc

__all__ = ["Instruments", "SessionInfo", "Tracker"]

_SEEN_LIMIT = 10_000
"""User item ids remembered to skip replays (more than a replay ever holds)."""


@dataclass(frozen=True)
class SessionInfo:
    """What every span of a session says about where it runs.

    Attributes:
        agent_name: the agent's name (its class name).
        model: the model the session uses.
        provider: ``openai`` or ``azure.ai.openai``.
        server_address: the host of the Realtime endpoint.
        server_port: its port.
        capture_content: record messages, tool arguments and results.
    """

    agent_name: str
    model: str
    provider: str
    server_address: str | None = None
    server_port: int | None = None
    capture_content: bool = False

    def common(self) -> dict[str, Any]:
        """Attributes every span and measurement shares."""
        return {sc.PROVIDER_NAME: self.provider, sc.SYSTEM: "openai", sc.REQUEST_MODEL: self.model}


@dataclass(frozen=True)
class Instruments:
    """The histograms a session records into (shared by the sessions of one meter)."""

    token_usage: Histogram
    duration: Histogram
    time_to_output: Histogram
    time_to_next_delta: Histogram


@dataclass(eq=False)
class _Turn:
    span: Span
    item_id: str
    started: float
    responses: int = 0
    tool_calls: int = 0


@dataclass(eq=False)
class _Response:
    span: Span
    started: float
    turns: list[_Turn] = field(default_factory=list)
    out_of_band: bool = False


class Tracker:
    """Spans and measurements for one session, from its events.

    Args:
        tracer: where spans go.
        instruments: where measurements go.
        info: the session's model, provider, server and agent.
        parent: the context the turns' spans are children of (the caller's of ``connect()``).
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        instruments: Instruments,
        info: SessionInfo,
        parent: otel_context.Context | None = None,
    ) -> None:
        self._tracer = tracer
        self._m = instruments
        self._info = info
        self._parent = parent
        self._common = info.common()
        self._conversation_id: str | None = None
        self._seen: dict[str, None] = {}
        self._open: list[_Turn] = []
        self._by_item: dict[str, _Turn] = {}
        self._responses: dict[str, _Response] = {}
        self._call_turn: dict[str, _Turn] = {}
        self._tools: dict[str, tuple[Span, str]] = {}
        self._tool_names: dict[str, str] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.SessionCreated: self._session_created,
            ev.ConversationItemAdded: self._item_added,
            ev.ConversationItemCreated: self._item_added,
            ev.ConversationItemInputAudioTranscriptionCompleted: self._transcribed,
            ev.ResponseCreated: self._response_created,
            ev.ResponseOutputItemDone: self._output_item_done,
            ev.ResponseDone: self._response_done,
            ev.Error: self._error,
            ToolStarted: self._tool_started,
            ToolFinished: self._tool_finished,
            ToolTurnLatency: self._latency,
            ConnectionLost: self._connection_lost,
            Reconnected: self._reconnected,
        }

    def handle(self, event: ev.ServerEvent | Notice) -> None:
        """Account for one event of the session (most kinds need nothing)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def close(self) -> None:
        """The session ended: end every open span, saying so."""
        for call_id in list(self._tools):
            span, _name = self._tools.pop(call_id)
            span.set_attribute(sc.TOOL_OUTCOME, "session_closed")
            span.end()
        for response in self._responses.values():
            response.span.set_attribute(sc.RESPONSE_STATUS, "session_closed")
            response.span.end()
        self._responses.clear()
        for turn in list(self._open):
            self._end_turn(turn, "session_closed")

    # -- turns ---------------------------------------------------------------------------

    def _session_created(self, event: ev.SessionCreated) -> None:
        session_id = event.session.get("id")
        if isinstance(session_id, str) and self._conversation_id is None:
            self._conversation_id = session_id

    def _item_added(self, event: ev.ConversationItemAdded | ev.ConversationItemCreated) -> None:
        item = event.item
        if item.type != "message" or item.role != "user" or item.id is None:
            return
        if item.id in self._seen:
            return  # replayed after a reconnect: the same item, not a new turn
        self._seen[item.id] = None
        if len(self._seen) > _SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]
        attributes = {
            sc.OPERATION_NAME: sc.INVOKE_AGENT,
            sc.AGENT_NAME: self._info.agent_name,
            **self._common,
            **self._server(),
        }
        if self._conversation_id is not None:
            attributes[sc.CONVERSATION_ID] = self._conversation_id
        span = self._tracer.start_span(
            f"{sc.INVOKE_AGENT} {self._info.agent_name}", self._parent, SpanKind.INTERNAL, attributes
        )
        turn = _Turn(span, item.id, time.perf_counter())
        self._open.append(turn)
        self._by_item[item.id] = turn
        if self._info.capture_content and item.text():
            _set_messages(span, sc.INPUT_MESSAGES, "user", item.text())

    def _transcribed(self, event: ev.ConversationItemInputAudioTranscriptionCompleted) -> None:
        turn = self._by_item.get(event.item_id)
        if turn is not None and self._info.capture_content:
            _set_messages(turn.span, sc.INPUT_MESSAGES, "user", event.transcript)

    def _end_turn(self, turn: _Turn, outcome: str, error: str | None = None) -> None:
        if turn not in self._open:
            return
        self._open.remove(turn)
        self._by_item.pop(turn.item_id, None)
        span = turn.span
        span.set_attribute(sc.TURN_OUTCOME, outcome)
        span.set_attribute(sc.TURN_RESPONSES, turn.responses)
        span.set_attribute(sc.TURN_TOOL_CALLS, turn.tool_calls)
        attributes = {sc.OPERATION_NAME: sc.INVOKE_AGENT, **self._common}
        if error is not None:
            span.set_attribute(sc.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, f"the response {outcome}"))
            attributes[sc.ERROR_TYPE] = error
        span.end()
        self._m.duration.record(time.perf_counter() - turn.started, attributes)

    # -- responses -----------------------------------------------------------------------

    def _response_created(self, event: ev.ResponseCreated) -> None:
        rid = event.response.id
        if rid is None or rid in self._responses:
            return
        self._responses[rid] = self._start_response(rid, event.response)

    def _start_response(self, rid: str, response: ev.Response) -> _Response:
        out_of_band = _out_of_band(response)
        turns = [] if out_of_band else list(self._open)
        parent = trace.set_span_in_context(turns[0].span) if turns else self._parent
        attributes = {sc.OPERATION_NAME: sc.INFERENCE, **self._common, **self._server(),
                      sc.RESPONSE_ID: rid}
        if self._conversation_id is not None:
            attributes[sc.CONVERSATION_ID] = self._conversation_id
        if out_of_band:
            attributes[sc.RESPONSE_OUT_OF_BAND] = True
        span = self._tracer.start_span(
            f"{sc.INFERENCE} {self._info.model}", parent, SpanKind.CLIENT, attributes
        )
        for turn in turns:
            turn.responses += 1
        return _Response(span, time.perf_counter(), turns, out_of_band)

    def _output_item_done(self, event: ev.ResponseOutputItemDone) -> None:
        item = event.item
        response = self._responses.get(event.response_id)
        if item.type == "function_call" and item.call_id and response is not None and response.turns:
            turn = response.turns[0]
            turn.tool_calls += 1
            self._call_turn[item.call_id] = turn

    def _response_done(self, event: ev.ResponseDone) -> None:
        response = event.response
        rid = response.id or ""
        record = self._responses.pop(rid, None) or self._start_response(rid, response)
        calls = any(item.type == "function_call" for item in response.output)
        reason = _finish_reason(response, calls)
        span = record.span
        span.set_attribute(sc.RESPONSE_FINISH_REASONS, [reason])
        span.set_attribute(sc.RESPONSE_STATUS, response.status)
        usage = response.usage or {}
        tokens = {"input": usage.get("input_tokens"), "output": usage.get("output_tokens")}
        if isinstance(tokens["input"], int):
            span.set_attribute(sc.USAGE_INPUT_TOKENS, tokens["input"])
        if isinstance(tokens["output"], int):
            span.set_attribute(sc.USAGE_OUTPUT_TOKENS, tokens["output"])
        details = usage.get("input_token_details")
        if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
            span.set_attribute(sc.USAGE_CACHE_READ_INPUT_TOKENS, details["cached_tokens"])
        error = _error_type(response)
        attributes = {sc.OPERATION_NAME: sc.INFERENCE, **self._common}
        if error is not None:
            span.set_attribute(sc.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, "the response failed"))
            attributes[sc.ERROR_TYPE] = error
        text = _answer_text(response)
        if self._info.capture_content and text:
            _set_messages(span, sc.OUTPUT_MESSAGES, "assistant", text, reason)
        span.end()
        self._m.duration.record(time.perf_counter() - record.started, attributes)
        for kind, count in tokens.items():
            if isinstance(count, int):
                self._m.token_usage.record(count, {**attributes, sc.TOKEN_TYPE: kind})
        if record.out_of_band or (response.status == "completed" and calls):
            return  # a tool round: the turn goes on with the response its outputs ask for
        outcome = {"completed": "completed", "cancelled": "interrupted", "failed": "failed"}.get(
            response.status, response.status
        )
        for turn in record.turns:
            if self._info.capture_content and text and outcome == "completed":
                _set_messages(turn.span, sc.OUTPUT_MESSAGES, "assistant", text, reason)
            self._end_turn(turn, outcome, error)

    # -- tools ---------------------------------------------------------------------------

    def _tool_started(self, event: ToolStarted) -> None:
        self._start_tool(event.call_id, event.name, event.arguments)

    def _start_tool(self, call_id: str, name: str, arguments: str, start_time: int | None = None) -> Span:
        turn = self._call_turn.get(call_id) or (self._open[0] if self._open else None)
        parent = trace.set_span_in_context(turn.span) if turn is not None else self._parent
        attributes = {
            sc.OPERATION_NAME: sc.EXECUTE_TOOL,
            sc.TOOL_NAME: name,
            sc.TOOL_CALL_ID: call_id,
            sc.TOOL_TYPE: "function",
            **self._common,
        }
        if self._conversation_id is not None:
            attributes[sc.CONVERSATION_ID] = self._conversation_id
        if self._info.capture_content:
            attributes[sc.TOOL_CALL_ARGUMENTS] = arguments
        span = self._tracer.start_span(
            f"{sc.EXECUTE_TOOL} {name}", parent, SpanKind.INTERNAL, attributes, start_time=start_time
        )
        self._tools[call_id] = (span, name)
        return span

    def _tool_finished(self, event: ToolFinished) -> None:
        self._call_turn.pop(event.call_id, None)
        found = self._tools.pop(event.call_id, None)
        if found is None:  # its ToolStarted was not seen (events dropped)
            start = time.time_ns() - int(event.duration * 1e9)
            span = self._start_tool(event.call_id, event.name, event.arguments, start)
            self._tools.pop(event.call_id, None)
        else:
            span = found[0]
        span.set_attribute(sc.TOOL_OUTCOME, "ok" if event.ok else event.error or "error")
        attributes = {sc.OPERATION_NAME: sc.EXECUTE_TOOL, sc.TOOL_NAME: event.name, **self._common}
        if not event.ok:
            error = event.error or "error"
            span.set_attribute(sc.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, _clip(event.output)))
            attributes[sc.ERROR_TYPE] = error
        if self._info.capture_content:
            span.set_attribute(sc.TOOL_CALL_RESULT, event.output)
        span.end()
        self._m.duration.record(event.duration, attributes)
        self._tool_names[event.call_id] = event.name
        if len(self._tool_names) > _SEEN_LIMIT:
            del self._tool_names[next(iter(self._tool_names))]

    def _latency(self, event: ToolTurnLatency) -> None:
        attributes = dict(self._common)
        name = self._tool_names.pop(event.call_id, None)
        if name is not None:
            attributes[sc.TOOL_NAME] = name
        self._m.time_to_output.record(event.to_output, attributes)
        self._m.time_to_next_delta.record(event.to_next_delta, attributes)

    # -- the connection ------------------------------------------------------------------

    def _connection_lost(self, event: ConnectionLost) -> None:
        # A response cut off by the drop never gets its response.done: end it here. The
        # turns stay open; the runtime asks again on the next connection.
        for response in self._responses.values():
            response.span.set_attribute(sc.RESPONSE_STATUS, "connection_lost")
            response.span.set_attribute(sc.RESPONSE_FINISH_REASONS, ["connection_lost"])
            response.span.end()
        self._responses.clear()
        for turn in self._open:
            turn.span.add_event("rtagent.connection.lost", {"reason": event.reason})

    def _reconnected(self, event: Reconnected) -> None:
        for turn in self._open:
            turn.span.add_event("rtagent.reconnected", {
                "attempt": event.attempt, "planned": event.planned,
                "items_restored": event.items_restored,
            })

    def _error(self, event: ev.Error) -> None:
        error = event.error
        for turn in self._open:
            turn.span.add_event("rtagent.server_error", {
                "code": error.code or "", "type": error.type, "message": _clip(error.message),
            })

    def _server(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._info.server_address:
            out[sc.SERVER_ADDRESS] = self._info.server_address
        if self._info.server_port is not None:
            out[sc.SERVER_PORT] = self._info.server_port
        return out


def _out_of_band(response: ev.Response) -> bool:
    # conversation="none" responses say so with conversation_id: null (absent: not known).
    return "conversation_id" in response.model_fields_set and response.conversation_id is None


def _finish_reason(response: ev.Response, calls: bool) -> str:
    if response.status == "completed":
        return "tool_calls" if calls else "stop"
    if response.status == "failed":
        return "error"
    details = response.status_details or {}
    reason = details.get("reason")
    return str(reason) if reason else response.status


def _error_type(response: ev.Response) -> str | None:
    if response.status != "failed":
        return None
    details = response.status_details or {}
    error = details.get("error")
    if isinstance(error, Mapping):
        return str(error.get("code") or error.get("type") or "failed")
    return "failed"


def _answer_text(response: ev.Response) -> str:
    messages = [item for item in response.output if item.type == "message"]
    finals = [m for m in messages if m.phase == "final_answer"]
    return "".join(m.text() for m in (finals or messages))


def _set_messages(span: Span, key: str, role: str, text: str, finish: str | None = None) -> None:
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish is not None:
        message["finish_reason"] = finish
    span.set_attribute(key, json.dumps([message], ensure_ascii=False))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
