"""Sans-I/O per-connection Realtime conversation engine (GA dialect).

Feed it client events (:meth:`Engine.handle_text` / :meth:`Engine.handle`) and
send what it returns; then drain streamed response events one at a time with
:meth:`Engine.next_event`, so the I/O layer can pace them and a
``response.cancel`` or a VAD barge-in can land mid-response. This module is the
single place that knows the protocol rules (PROTOCOL.md); it never awaits.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._audio import synth_speech
from ._brains import Brain, Conversation, RuleBrain, Turn
from ._conversation_store import ConversationStore, public_item
from ._input_audio import InputAudio
from ._session_config import DEFAULT_MODEL, SessionConfig, default_session
from ._specs import CLIENT_EVENT_TYPES, EVENT_SPECS
from ._usage import UsageMeter
from ._usage import tokens as _tokens
from ._validate import Invalid, check
from ._wire import Event, Ids, server_event

# DEFAULT_MODEL, Ids and default_session are re-exported for bench/server.py.
__all__ = ["DEFAULT_MODEL", "Engine", "Ids", "default_session"]

logger = logging.getLogger(__name__)

_SESSION_MAX_MESSAGE = "Your session hit the maximum duration of 60 minutes."


def _chunks(text: str, size: int) -> list[str]:
    """Split text into deltas of about ``size`` characters, on word boundaries."""
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        piece = word if not current and not out else " " + word
        if current and len(current) + len(piece) > size:
            out.append(current)
            current = piece
        else:
            current += piece
    if current or not out:
        out.append(current)
    return out


@dataclass
class _Open:
    """The output item of a response that is still streaming (closed on cancel)."""

    item: dict[str, Any]
    output_index: int
    part_added: bool = False
    text: str = ""
    audio: bytearray = field(default_factory=bytearray)
    arguments: str = ""


@dataclass
class _Run:
    """One response in flight."""

    id: str
    in_conversation: bool
    modalities: list[str]
    max_output_tokens: int | str
    voice: str
    audio_format: dict[str, Any]
    metadata: dict[str, str] | None
    convo: Conversation
    turn: Turn
    output: list[dict[str, Any]] = field(default_factory=list)
    current: _Open | None = None
    stream: Generator[Event, None, None] | None = None
    started: bool = False
    finished: bool = False


class Engine:
    """The server side of one Realtime WebSocket connection.

    Args:
        brain: decides replies (shared across connections for ScriptedBrain).
        ids: id factory shared by the server's connections.
        model: the ``model`` query parameter.
        connection_index: 0-based index of this connection on its server.
        session_max_seconds: lifetime advertised in ``expires_at``.
        session_overrides: initial session fields (from an ephemeral client secret).
        audio_chunk_ms: duration of each ``response.output_audio.delta``.
        duplicate_call_ids: fault: issue each function_call twice with one call_id.
        auto_response_after_output: fault: start a response when a function output arrives.
        clock: wall clock (seconds), for ``expires_at``.
    """

    def __init__(
        self,
        brain: Brain | None = None,
        *,
        ids: Ids | None = None,
        model: str = DEFAULT_MODEL,
        connection_index: int = 0,
        session_max_seconds: float = 3600,
        session_overrides: dict[str, Any] | None = None,
        audio_chunk_ms: int = 100,
        duplicate_call_ids: bool = False,
        auto_response_after_output: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.brain: Brain = brain if brain is not None else RuleBrain()
        self.ids = ids or Ids()
        self.connection_index = connection_index
        self.audio_chunk_ms = max(1, audio_chunk_ms)
        self.duplicate_call_ids = duplicate_call_ids
        self.auto_response_after_output = auto_response_after_output
        expires_at = int(clock() + session_max_seconds)
        self._config = SessionConfig(self.ids, model, expires_at, session_overrides)
        self._store = ConversationStore(self.ids)
        self._input = InputAudio(self.ids, self._config, self._store)
        self._runs: list[_Run] = []
        self._default_run: _Run | None = None
        self._spoke = False
        self._usage_meter = UsageMeter()

    # ---- public API ------------------------------------------------------------------------

    def start(self) -> list[Event]:
        """Events to send right after the handshake: ``session.created``."""
        return [self._config.created()]

    def handle_text(self, text: str | bytes) -> list[Event]:
        """Handle one raw client frame; malformed JSON becomes an ``error`` event."""
        try:
            event = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            return [self.error("invalid_json", f"Invalid JSON in client event: {exc}.")]
        if not isinstance(event, dict):
            return [self.error("invalid_json", "Client events must be JSON objects.")]
        return self.handle(event)

    def handle(self, event: dict[str, Any]) -> list[Event]:
        """Handle one parsed client event; return the events to send now."""
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        if not isinstance(kind, str):
            msg = (
                "Missing required parameter: 'type'."
                if kind is None
                else "Invalid type for 'type'."
            )
            code = "missing_required_parameter" if kind is None else "invalid_type"
            return [self.error(code, msg, param="type", event_id=eid)]
        if kind not in EVENT_SPECS:
            supported = ", ".join(f"'{t}'" for t in CLIENT_EVENT_TYPES)
            return [
                self.error(
                    "invalid_value",
                    f"Invalid value: '{kind}'. Supported values are: {supported}.",
                    param="type",
                    event_id=eid,
                )
            ]
        try:
            check(EVENT_SPECS[kind], event)
            handler = getattr(self, "_on_" + kind.replace(".", "_"))
            result: list[Event] = handler(event, eid)
        except Invalid as exc:
            return [self.error(exc.code, exc.message, param=exc.param, event_id=eid)]
        return result

    def next_event(self) -> Event | None:
        """The next streamed response event (round-robin over active responses), or None."""
        while self._runs:
            run = self._runs.pop(0)
            assert run.stream is not None
            event = next(run.stream, None)
            if event is None:
                continue
            if not run.finished:
                self._runs.append(run)
            return event
        return None

    @property
    def has_active_response(self) -> bool:
        """True while a response writes to the default conversation."""
        return self._default_run is not None

    def error(
        self,
        code: str | None,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        event_id: str | None = None,
    ) -> Event:
        """An ``error`` server event (the socket stays open)."""
        body = {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        return self._event("error", error=body)

    def error_from_body(self, body: dict[str, Any]) -> Event:
        """An ``error`` event from a fault's error body, completed with defaults."""
        full = {
            "type": "server_error",
            "code": None,
            "message": "Injected error.",
            "param": None,
            "event_id": None,
        }
        full.update(body)
        return self._event("error", error=full)

    def session_expired(self) -> Event:
        """The error the real server sends when the 60-minute limit is reached."""
        return self.error("session_expired", _SESSION_MAX_MESSAGE)

    # ---- helpers ---------------------------------------------------------------------------

    def _event(self, type: str, **fields: Any) -> Event:
        return server_event(self.ids, type, **fields)

    # ---- session ---------------------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        """The effective session config."""
        return self._config.session

    def _on_session_update(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        updated = self._config.update(event["session"], spoke=self._spoke)
        self._input.reset_vad()
        return [updated]

    # ---- conversation items ----------------------------------------------------------------

    @property
    def items(self) -> list[dict[str, Any]]:
        """The items of the default conversation, in order."""
        return self._store.items

    @property
    def conversation_id(self) -> str:
        """Id of the default conversation (``response.conversation_id``)."""
        return self._store.id

    def _on_conversation_item_create(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        item, out = self._store.create(event["item"], event.get("previous_item_id"))
        if (
            item["type"] == "function_call_output"
            and self.auto_response_after_output
            and self._default_run is None
        ):
            out += self._start_response({})
        return out

    def _on_conversation_item_retrieve(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        return [self._store.retrieve(event["item_id"])]

    def _on_conversation_item_delete(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        return [self._store.delete(event["item_id"])]

    def _on_conversation_item_truncate(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        truncated = self._store.truncate(
            event["item_id"], event["content_index"], event["audio_end_ms"]
        )
        return [truncated]

    # ---- input audio -----------------------------------------------------------------------

    def _on_input_audio_buffer_append(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        changes = self._input.append(event["audio"])
        td = self._config.turn_detection() or {}
        out: list[Event] = []
        for change in changes:
            if change.kind == "started":
                # input_audio_buffer.speech_started: the barge-in signal.
                out.append(self._input.speech_started(change.ms))
                if td.get("interrupt_response", True) and self._default_run is not None:
                    out += self._cancel(self._default_run, "turn_detected")
            else:
                out += self._input.speech_stopped(change.ms)
                if td.get("create_response", True) and self._default_run is None:
                    out += self._start_response({})
        return out

    def _on_input_audio_buffer_commit(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        return self._input.commit()

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        return [self._input.clear()]

    def _on_output_audio_buffer_clear(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        raise Invalid(
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            "type",
        )

    # ---- responses -------------------------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        params = event.get("response") or {}
        if params.get("conversation", "auto") == "auto" and self._default_run is not None:
            rid = self._default_run.id
            return [
                self.error(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {rid}. "
                    "Wait until the response is finished before creating a new one.",
                    event_id=eid,
                )
            ]
        return self._start_response(params)

    def _on_response_cancel(self, event: dict[str, Any], eid: str | None) -> list[Event]:
        wanted = event.get("response_id")
        run: _Run | None
        if wanted is not None:
            run = next((r for r in self._runs if r.id == wanted and not r.finished), None)
        else:
            run = self._default_run or next(
                (r for r in reversed(self._runs) if not r.finished), None
            )
        if run is None:
            return [
                self.error(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found",
                    event_id=eid,
                )
            ]
        return self._cancel(run, "client_cancelled")

    def _context(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if "input" not in params:
            return self._store.snapshot()
        return self._store.resolve_input(params["input"])

    def _start_response(self, params: dict[str, Any]) -> list[Event]:
        """Start a response; returns its first events, sent at once like the real server.

        ``response.created`` goes out before any event caused by a later client event,
        so a client can rely on it to know a response started; the rest streams lazily.
        """
        session = self._config.session
        in_conversation = params.get("conversation", "auto") == "auto"
        convo = Conversation(
            items=self._context(params),
            instructions=str(params.get("instructions", session.get("instructions") or "")),
            tools=copy.deepcopy(params.get("tools", session.get("tools") or [])),
            tool_choice=copy.deepcopy(
                params.get("tool_choice", session.get("tool_choice", "auto"))
            ),
            connection_index=self.connection_index,
        )
        try:
            turn = self.brain.reply(convo).resolve(convo)
        except Exception as exc:  # a broken script fails the response, not the connection
            logger.exception("brain failed")
            turn = Turn(fail=f"The local brain raised {type(exc).__name__}: {exc}")
        out_audio = params.get("audio", {}).get("output", {})
        voice = out_audio.get("voice", session["audio"]["output"].get("voice", "marin"))
        run = _Run(
            id=self.ids.new("resp"),
            in_conversation=in_conversation,
            modalities=list(
                params.get("output_modalities", session.get("output_modalities", ["audio"]))
            ),
            max_output_tokens=params.get(
                "max_output_tokens", session.get("max_output_tokens", "inf")
            ),
            voice=str(voice["id"] if isinstance(voice, dict) else voice),
            audio_format=copy.deepcopy(
                out_audio.get("format", session["audio"]["output"]["format"])
            ),
            metadata=copy.deepcopy(params.get("metadata")),
            convo=convo,
            turn=turn,
        )
        run.stream = self._stream(run)
        self._runs.append(run)
        if in_conversation:
            self._default_run = run
        run.started = True
        limit = 4096 if run.max_output_tokens == "inf" else int(run.max_output_tokens)
        return [
            self._event("response.created", response=self._response(run, "in_progress")),
            self._event(
                "rate_limits.updated",
                rate_limits=[
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {
                        "name": "tokens",
                        "limit": 800000,
                        "remaining": 800000 - limit,
                        "reset_seconds": 0.307,
                    },
                ],
            ),
        ]

    def _response(
        self, run: _Run, status: str, details: Any = None, usage: Any = None
    ) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": run.id,
            "status": status,
            "status_details": details,
            "output": [public_item(i) for i in run.output] if status != "in_progress" else [],
            "conversation_id": self._store.id if run.in_conversation else None,
            "output_modalities": run.modalities,
            "max_output_tokens": run.max_output_tokens,
            "audio": {"output": {"format": run.audio_format, "voice": run.voice}},
            "usage": usage,
            "metadata": run.metadata,
        }

    def _usage(self, run: _Run) -> dict[str, Any]:
        return self._usage_meter.measure(run.convo, run.output, self._store.audio)

    def _finish(self, run: _Run) -> None:
        run.finished = True
        run.current = None
        if self._default_run is run:
            self._default_run = None

    def _stream(self, run: _Run) -> Generator[Event, None, None]:
        """All events of one response, generated lazily so a cancel can cut in between."""
        limit = 4096 if run.max_output_tokens == "inf" else int(run.max_output_tokens)
        turn = run.turn
        if turn.fail:
            message = (
                turn.fail
                if isinstance(turn.fail, str)
                else ("The server had an error while processing your request. Sorry about that!")
            )
            self._finish(run)
            failure: dict[str, Any] = {
                "type": "failed",
                "error": {"type": "server_error", "code": "server_error", "message": message},
            }
            yield self._event(
                "response.done", response=self._response(run, "failed", failure, self._usage(run))
            )
            return
        budget = limit
        incomplete = False
        text = turn.text if isinstance(turn.text, str) else None
        if text:
            if _tokens(text) > budget:
                text, incomplete = text[: budget * 4], True
            budget -= _tokens(text)
            yield from self._stream_message(run, text, incomplete)
        if not incomplete:
            for call in turn.calls:
                call_id = call.call_id or self.ids.new("call")
                for _ in range(2 if self.duplicate_call_ids else 1):
                    args = call.arguments_json()
                    if _tokens(args) + 5 > budget:
                        incomplete = True
                        break
                    budget -= _tokens(args) + 5
                    yield from self._stream_call(run, call.name, call_id, args)
                if incomplete:
                    break
        self._finish(run)
        status = "incomplete" if incomplete else "completed"
        details: dict[str, Any] | None = (
            {"type": "incomplete", "reason": "max_output_tokens"} if incomplete else None
        )
        yield self._event(
            "response.done", response=self._response(run, status, details, self._usage(run))
        )

    def _open_item(self, run: _Run, item: dict[str, Any]) -> Iterator[Event]:
        run.current = _Open(item=item, output_index=len(run.output))
        run.output.append(item)
        yield self._event(
            "response.output_item.added",
            response_id=run.id,
            output_index=run.current.output_index,
            item=public_item(item),
        )
        if run.in_conversation:
            yield from self._store.insert(item)

    def _close_item(self, run: _Run, status: str) -> list[Event]:
        cur = run.current
        assert cur is not None
        cur.item["status"] = status
        run.current = None
        out = [
            self._event(
                "response.output_item.done",
                response_id=run.id,
                output_index=cur.output_index,
                item=public_item(cur.item),
            )
        ]
        if run.in_conversation and self._store.find(cur.item["id"]) >= 0:
            out.append(self._store.done(cur.item))
        return out

    def _stream_message(self, run: _Run, text: str, incomplete: bool) -> Iterator[Event]:
        audio = run.modalities == ["audio"]
        item_id = self._store.new_item_id()
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        yield from self._open_item(run, item)
        cur = run.current
        assert cur is not None
        where = {
            "response_id": run.id,
            "item_id": item_id,
            "output_index": cur.output_index,
            "content_index": 0,
        }
        item["content"].append(
            {"type": "output_audio", "transcript": ""}
            if audio
            else {"type": "output_text", "text": ""}
        )
        cur.part_added = True
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        yield self._event("response.content_part.added", **where, part=part)
        chunk_bytes = self.audio_chunk_ms * 48
        for delta in _chunks(text, 12):
            cur.text += delta
            if audio:
                item["content"][0]["transcript"] = cur.text
                yield self._event("response.output_audio_transcript.delta", **where, delta=delta)
                pcm = synth_speech(delta)
                self._spoke = True
                if item_id not in self._store.audio:
                    # Shared with the streaming buffer (no copy per chunk); a truncate
                    # replaces the entry, so later chunks no longer count.
                    self._store.keep_audio(item_id, cur.audio)
                for start in range(0, len(pcm), chunk_bytes):
                    piece = pcm[start : start + chunk_bytes]
                    cur.audio += piece
                    yield self._event(
                        "response.output_audio.delta",
                        **where,
                        delta=base64.b64encode(piece).decode("ascii"),
                    )
            else:
                item["content"][0]["text"] = cur.text
                yield self._event("response.output_text.delta", **where, delta=delta)
        yield from self._end_message(run, "incomplete" if incomplete else "completed")

    def _end_message(self, run: _Run, status: str) -> list[Event]:
        cur = run.current
        assert cur is not None
        where = {
            "response_id": run.id,
            "item_id": cur.item["id"],
            "output_index": cur.output_index,
            "content_index": 0,
        }
        out: list[Event] = []
        if cur.part_added:
            if run.modalities == ["audio"]:
                out.append(self._event("response.output_audio.done", **where))
                out.append(
                    self._event(
                        "response.output_audio_transcript.done", **where, transcript=cur.text
                    )
                )
                part = {"type": "audio", "transcript": cur.text}
            else:
                out.append(self._event("response.output_text.done", **where, text=cur.text))
                part = {"type": "text", "text": cur.text}
            out.append(self._event("response.content_part.done", **where, part=part))
        return out + self._close_item(run, status)

    def _stream_call(self, run: _Run, name: str, call_id: str, args: str) -> Iterator[Event]:
        item_id = self._store.new_item_id()
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        yield from self._open_item(run, item)
        cur = run.current
        assert cur is not None
        step = max(1, math.ceil(len(args) / 3))
        for start in range(0, len(args), step):
            delta = args[start : start + step]
            cur.arguments += delta
            item["arguments"] = cur.arguments
            yield self._event(
                "response.function_call_arguments.delta",
                response_id=run.id,
                item_id=item_id,
                output_index=cur.output_index,
                call_id=call_id,
                delta=delta,
            )
        yield from self._end_call(run, "completed")

    def _end_call(self, run: _Run, status: str) -> list[Event]:
        cur = run.current
        assert cur is not None
        done = self._event(
            "response.function_call_arguments.done",
            response_id=run.id,
            item_id=cur.item["id"],
            output_index=cur.output_index,
            call_id=cur.item["call_id"],
            name=cur.item["name"],
            arguments=cur.arguments,
        )
        return [done, *self._close_item(run, status)]

    def _cancel(self, run: _Run, reason: str) -> list[Event]:
        """Close a streaming response now: incomplete items, then response.done cancelled."""
        out: list[Event] = []
        if run.current is not None:
            if run.current.item["type"] == "message":
                out += self._end_message(run, "incomplete")
            else:
                out += self._end_call(run, "incomplete")
        if run.stream is not None:
            run.stream.close()
        if run in self._runs:
            self._runs.remove(run)
        self._finish(run)
        details = {"type": "cancelled", "reason": reason}
        out.append(
            self._event(
                "response.done",
                response=self._response(run, "cancelled", details, self._usage(run)),
            )
        )
        return out
