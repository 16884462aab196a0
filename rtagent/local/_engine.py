"""Sans-I/O per-connection Realtime conversation engine (GA dialect).

Feed it client events (:meth:`Engine.handle_text` / :meth:`Engine.handle`) and
send what it returns; then drain streamed response events one at a time with
:meth:`Engine.next_event`, so the I/O layer can pace them and a
``response.cancel`` or a VAD barge-in can land mid-response. It never awaits.

The engine is a coordinator: :attr:`Engine.HANDLERS` routes each GA client event
type to one handler, and each handler asks the part that owns the state:

- :class:`~._session_config.SessionConfig`: the session and ``session.update`` rules;
- :class:`~._conversation_store.ConversationStore`: items, their audio, item ids;
- :class:`~._input_audio.InputAudio`: the input buffer, VAD, commit;
- :class:`~._responses.Responses`: responses in flight and their event streams;
- :class:`~._api_error.ApiError`: the ``error`` event for a broken rule;
- :class:`~._hosted_mcp.HostedServers`: hosted MCP servers; the network work they need
  is handed to the connection as jobs (``engine.hosted.take_jobs()``).

The rules that span parts (a VAD stop commits and may start a response, speech
interrupts the active one) live here, with what is not a GA client event at all: a
binary frame (refused with ``invalid_event``, as the real service does) and
``session.close`` (the socket is closed normally).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from ._api_error import SESSION_EXPIRED, ApiError, injected_error_body
from ._audio import VadEvent
from ._brains import Brain, RuleBrain
from ._conversation_store import ConversationStore
from ._hosted_mcp import HostedServers
from ._input_audio import InputAudio
from ._models import DEFAULT_MODEL
from ._responses import MediaOut, Responses
from ._session_config import SessionConfig, default_session
from ._specs import CLIENT_EVENT_TYPES, EVENT_SPECS
from ._validate import Invalid, check, without_unset_nulls
from ._wire import PLAIN, Event, Flavor, Ids, parse_json, server_event

# DEFAULT_MODEL, Ids and default_session are re-exported for bench/server.py.
__all__ = ["DEFAULT_MODEL", "Engine", "Ids", "default_session"]

_Handler = Callable[["Engine", dict[str, Any]], list[Event]]


class Engine:
    """The server side of one Realtime WebSocket connection.

    Args:
        brain: decides replies (shared across connections for ScriptedBrain).
        ids: id factory shared by the server's connections.
        model: the ``model`` query parameter.
        connection_index: 0-based index of this connection on its server.
        flavor: the service imitated (Azure, a sideband of a call).
        session_max_seconds: lifetime advertised in ``expires_at``.
        session_overrides: initial session fields (from an ephemeral client secret).
        audio_chunk_ms: duration of each ``response.output_audio.delta``.
        duplicate_call_ids: fault: issue each function_call twice with one call_id.
        auto_response_after_output: fault: start a response when a function output arrives.
        clock: wall clock (seconds), for ``expires_at``.
        media: a call's media, where spoken output is played (sideband flavor).
    """

    HANDLERS: ClassVar[Mapping[str, _Handler]]
    """Client event type -> handler; every GA client event, and nothing else."""

    def __init__(
        self,
        brain: Brain | None = None,
        *,
        ids: Ids | None = None,
        model: str = DEFAULT_MODEL,
        connection_index: int = 0,
        flavor: Flavor = PLAIN,
        session_max_seconds: float = 3600,
        session_overrides: dict[str, Any] | None = None,
        audio_chunk_ms: int = 100,
        duplicate_call_ids: bool = False,
        auto_response_after_output: bool = False,
        clock: Callable[[], float] = time.time,
        media: MediaOut | None = None,
    ) -> None:
        self.brain: Brain = brain if brain is not None else RuleBrain()
        self.ids = ids or Ids()
        self.connection_index = connection_index
        self.flavor = flavor
        self.close_requested = False
        """A ``session.close`` arrived: the connection closes once what is queued is sent."""
        self._transcription_turn = False
        self._auto_response_after_output = auto_response_after_output
        expires_at = int(clock() + session_max_seconds)
        self._config = SessionConfig(self.ids, model, expires_at, session_overrides)
        self._store = ConversationStore(self.ids)
        self._input = InputAudio(self.ids, self._config, self._store)
        self.hosted = HostedServers(self.ids, self._store)
        """Hosted MCP servers; the I/O layer runs ``hosted.take_jobs()`` (listings, calls)."""
        self._responses = Responses(
            self.ids,
            self._config,
            self._store,
            self.brain,
            flavor=flavor,
            connection_index=connection_index,
            audio_chunk_ms=max(1, audio_chunk_ms),
            duplicate_call_ids=duplicate_call_ids,
            on_idle=self._create_deferred_items,
            hosted=self.hosted,
            media=media,
        )
        self._deferred: list[dict[str, Any]] = []

    # ---- public API ------------------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        """The effective session config."""
        return self._config.session

    @property
    def items(self) -> list[dict[str, Any]]:
        """The items of the default conversation, in order."""
        return self._store.items

    @property
    def conversation_id(self) -> str:
        """Id of the default conversation (``response.conversation_id``)."""
        return self._store.id

    @property
    def has_active_response(self) -> bool:
        """True while a response writes to the default conversation."""
        return self._responses.has_active

    def start(self) -> list[Event]:
        """Events to send right after the handshake: ``session.created`` (none for a sideband)."""
        return [] if self.flavor.sideband else [self._config.created()]

    def caller_audio(self, pcm: bytes, meaning: str | None = None) -> list[Event]:
        """The caller's audio from a call's media (PCM16, 24 kHz): VAD, commit, a response.

        Like ``input_audio_buffer.append``, but the audio comes over SIP/WebRTC;
        ``meaning`` is what the speech says (the model hears it once committed).
        """
        out = self._responses.drain_ended()
        return out + self._on_input_audio_buffer_append({}, self._input.append_media(pcm, meaning))

    def handle_text(self, text: str | bytes) -> list[Event]:
        """Handle one raw client frame; malformed JSON becomes an ``error`` event.

        A binary frame (``bytes``) is refused: events travel as JSON text frames.
        """
        if isinstance(text, bytes):
            error = self.error(
                "invalid_event",
                "Binary frames are not supported: send each event as a JSON text frame.",
            )
            return [*self._responses.drain_ended(), error]
        try:
            event = parse_json(text)
        except (ValueError, UnicodeDecodeError) as exc:
            error = self.error("invalid_json", f"Invalid JSON in client event: {exc}.")
            return [*self._responses.drain_ended(), error]
        if not isinstance(event, dict):
            error = self.error("invalid_json", "Client events must be JSON objects.")
            return [*self._responses.drain_ended(), error]
        return self.handle(event)

    def handle(self, event: dict[str, Any]) -> list[Event]:
        """Handle one parsed client event; return the events to send now.

        A broken rule is answered with an ``error`` event naming the client event's
        ``event_id``; the connection goes on. What an ended response still had to send
        (``rate_limits.updated``, items created while it ran) comes first.
        """
        out = self._responses.drain_ended()
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        if not isinstance(kind, str):
            msg = (
                "Missing required parameter: 'type'."
                if kind is None
                else "Invalid type for 'type'."
            )
            code = "missing_required_parameter" if kind is None else "invalid_type"
            return [*out, self.error(code, msg, param="type", event_id=eid)]
        if kind == "session.close":
            # Not a GA client event, but accepted: the session ends and the socket closes.
            self.close_requested = True
            return out
        handler = self.HANDLERS.get(kind)
        if handler is None:
            supported = ", ".join(f"'{t}'" for t in CLIENT_EVENT_TYPES)
            return [
                *out,
                self.error(
                    "invalid_value",
                    f"Invalid value: '{kind}'. Supported values are: {supported}.",
                    param="type",
                    event_id=eid,
                )
            ]
        try:
            spec = EVENT_SPECS[kind]
            if kind in ("session.update", "response.create"):
                event = without_unset_nulls(spec, event)  # null means "not set" here
            check(spec, event)
            return out + handler(self, event)
        except Invalid as exc:
            return [*out, ApiError.from_invalid(exc).event(self.ids, eid)]

    def next_event(self) -> Event | None:
        """The next streamed event, or None.

        Responses stream round-robin; input transcriptions take turns with them, so
        their deltas interleave with a reply as the real service's do.
        """
        self._transcription_turn = not self._transcription_turn
        sources = (self._input.next_event, self._responses.next_event)
        for source in sources if self._transcription_turn else sources[::-1]:
            event = source()
            if event is not None:
                return event
        return None

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
        return ApiError(code, message, param, type).event(self.ids, event_id)

    def error_from_body(self, body: dict[str, Any]) -> Event:
        """An ``error`` event from a fault's error body, completed with defaults."""
        return server_event(self.ids, "error", error=injected_error_body(body))

    def session_expired(self) -> Event:
        """The error the real server sends when the 60-minute limit is reached."""
        return SESSION_EXPIRED.event(self.ids)

    # ---- handlers: one per GA client event (see HANDLERS) ----------------------------------

    def _on_session_update(self, event: dict[str, Any]) -> list[Event]:
        update = self.hosted.absorb(event["session"])
        updated = self._config.update(update, spoke=self._responses.spoke)
        self._input.reset_vad()
        return [updated, *self.hosted.configure(self.session.get("tools") or [])]

    def _on_input_audio_buffer_append(
        self, event: dict[str, Any], changes: list[VadEvent] | None = None
    ) -> list[Event]:
        """Audio in (``changes``: the VAD transitions of a call's media, already fed)."""
        if changes is None:
            changes = self._input.append(event["audio"])
        td = self._config.turn_detection() or {}
        out: list[Event] = []
        for change in changes:
            if change.kind == "started":
                # input_audio_buffer.speech_started: the barge-in signal.
                out.append(self._input.speech_started(change.ms))
                if td.get("interrupt_response", True):
                    out += self._responses.interrupt()
            else:
                out += self._input.speech_stopped(change.ms)
                if td.get("create_response", True) and not self._responses.has_active:
                    out += self._responses.start({})
        return out

    def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> list[Event]:
        return self._input.commit()

    def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> list[Event]:
        return [self._input.clear()]

    def _on_output_audio_buffer_clear(self, event: dict[str, Any]) -> list[Event]:
        if self.flavor.sideband:
            # WebRTC/SIP: the server plays the audio, and stops when asked.
            return self._responses.clear_output()
        raise Invalid(
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            "type",
        )

    def _on_conversation_item_create(self, event: dict[str, Any]) -> list[Event]:
        if self._responses.has_active:
            # Recorded: an item created while a response writes to the conversation enters
            # it (conversation.item.added/done) only after that response.done.
            self._deferred.append(event)
            return []
        item, out = self._store.create(event["item"], event.get("previous_item_id"))
        if (
            item["type"] == "function_call_output"
            and self._auto_response_after_output
            and not self._responses.has_active
        ):
            out += self._responses.start({})
        return out

    def _create_deferred_items(self) -> list[Event]:
        """The items created while the last response ran enter the conversation now."""
        out: list[Event] = []
        while self._deferred and not self._responses.has_active:
            event = self._deferred.pop(0)
            eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            try:
                out += self._on_conversation_item_create(event)
            except Invalid as exc:
                out.append(ApiError.from_invalid(exc).event(self.ids, eid))
        return out

    def _on_conversation_item_retrieve(self, event: dict[str, Any]) -> list[Event]:
        return [self._store.retrieve(event["item_id"])]

    def _on_conversation_item_delete(self, event: dict[str, Any]) -> list[Event]:
        return [self._store.delete(event["item_id"])]

    def _on_conversation_item_truncate(self, event: dict[str, Any]) -> list[Event]:
        truncated = self._store.truncate(
            event["item_id"], event["content_index"], event["audio_end_ms"]
        )
        return [truncated]

    def _on_response_create(self, event: dict[str, Any]) -> list[Event]:
        return self._responses.create(event.get("response") or {})

    def _on_response_cancel(self, event: dict[str, Any]) -> list[Event]:
        return self._responses.cancel(event.get("response_id"))

    HANDLERS = MappingProxyType(
        {
            "session.update": _on_session_update,
            "input_audio_buffer.append": _on_input_audio_buffer_append,
            "input_audio_buffer.commit": _on_input_audio_buffer_commit,
            "input_audio_buffer.clear": _on_input_audio_buffer_clear,
            "output_audio_buffer.clear": _on_output_audio_buffer_clear,
            "conversation.item.create": _on_conversation_item_create,
            "conversation.item.retrieve": _on_conversation_item_retrieve,
            "conversation.item.delete": _on_conversation_item_delete,
            "conversation.item.truncate": _on_conversation_item_truncate,
            "response.create": _on_response_create,
            "response.cancel": _on_response_cancel,
        }
    )
