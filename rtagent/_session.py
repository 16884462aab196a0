"""The conversation state machine, without I/O.

Feed it server events (:meth:`Session.receive`) and results of tools
(:meth:`Session.tool_finished`); read back the client events to send
(:meth:`Session.data_to_send`), the tool calls to start (:meth:`Session.calls_to_run`)
and the running calls to cancel (:meth:`Session.calls_to_cancel`). It never awaits.

Three jobs live here because they share one clock, the order of events:

* **The response gate.** Only one response may write to the default conversation at
  a time (``conversation_already_has_active_response``). Every wish for a response
  (a user turn, a finished tool round, a manual request) goes through one queue that
  sends ``response.create`` only when no response is active and none is in flight,
  merges plain requests that pile up, counts a response the server starts on its own
  as answering every request whose items it already saw, and re-queues a request the
  server rejected because it raced such a response.
* **Tool rounds.** A ``function_call`` runs as soon as its item is complete
  (``response.output_item.done`` with status ``completed``); a ``call_id`` runs once
  however often it is seen. When the response that made the calls is done and every
  output is posted, one ``response.create`` is requested, never one per call.
* **The conversation mirror.** Every item that entered the conversation is kept, in
  order, so a new connection can be given the same conversation (:meth:`Session.resume`).
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _events as ev
from ._tools import OnInterrupt

__all__ = ["ResumeReport", "Session", "ToolCall"]

logger = logging.getLogger(__name__)

# Bytes of PCM16 24 kHz mono per millisecond (PROTOCOL.md §6).
_PCM16_BYTES_PER_MS = 48


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made, ready to run."""

    call_id: str
    name: str
    arguments: str
    item_id: str | None = None
    response_id: str | None = None
    ready_at: float = 0.0
    """``time.perf_counter()`` when the call's arguments were complete."""


@dataclass(slots=True)
class _Request:
    """A wish for a response; ``options`` are per-response overrides (None = plain)."""

    options: dict[str, Any] | None
    needs_seq: int
    """How many client-created items must be in the conversation before it is answered."""
    event_id: str | None = None
    turns: set[int] = field(default_factory=set)
    """The application turns (e.g. ``ask()`` calls) waiting on this request."""


@dataclass(slots=True)
class _Round:
    """The tool calls of one response and what became of them."""

    response_id: str
    turns: set[int] = field(default_factory=set)
    """Turns that end only when this round's follow-up response does."""
    pending: dict[str, ToolCall] = field(default_factory=dict)
    policies: dict[str, OnInterrupt] = field(default_factory=dict)
    response_done: bool = False
    interrupted: bool = False
    reply_after_interrupt: bool = False


@dataclass(frozen=True, slots=True)
class ResumeReport:
    """What a new connection was given back, and what could not be restored."""

    items_restored: int
    outputs_restored: int
    requests_pending: int
    lost: tuple[str, ...]


class Session:
    """Conversation state for one logical session, across connections.

    Args:
        config: the full GA ``session`` object sent in ``session.update``.
        interrupt_policy: tool name -> what to do with a running call on interruption.
        id_prefix: prefix of the client ``event_id`` and item ids this session makes.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        interrupt_policy: Callable[[str], OnInterrupt] | None = None,
        id_prefix: str = "rt",
    ) -> None:
        self.config = dict(config)
        self._policy = interrupt_policy or (lambda _name: "finish")
        self._prefix = id_prefix
        self._ids = itertools.count(1)

        self._out: list[ev.ClientEvent] = []
        self._to_run: list[ToolCall] = []
        self._to_cancel: list[str] = []

        # Response gate.
        self._queue: list[_Request] = []
        self._inflight: _Request | None = None
        self._tentative: _Request | None = None
        self._tentative_seq = 0
        self.active_response: str | None = None
        self._cancel_when_created = False
        self._oob: set[str] = set()

        # Client-created items on the current connection, and how many were acknowledged.
        self._sent_seq = 0
        self._acked_seq = 0
        self._own_items: set[str] = set()

        # Tool rounds.
        self._seen_calls: set[str] = set()
        self._rounds: dict[str, _Round] = {}
        self._round_of: dict[str, _Round] = {}
        self._posted: set[str] = set()

        # Conversation mirror: item id -> wire item, in the server's conversation order
        # (kept by `previous_item_id`), and the id each item follows.
        self.history: dict[str, dict[str, Any]] = {}
        self._prev_of: dict[str, str | None] = {}
        self._last_id: str | None = None
        self._incomplete: set[str] = set()
        self._transcripts: dict[str, str] = {}
        self._partial_text: dict[str, list[str]] = {}
        self._audio_bytes: dict[str, int] = {}
        self.current_audio_item: str | None = None

        # Responses are requested only once the server has our config and conversation.
        self.connected = False
        self.last_error: ev.ErrorDetail | None = None
        # Turns: the application's waits on a response (ask()). The active response
        # carries the turns it answers; a tool round carries them on to its follow-up.
        self._active_turns: set[int] = set()
        self._finished: list[tuple[set[int], ev.ErrorDetail | None]] = []

    # -- identifiers ---------------------------------------------------------------------------

    def next_event_id(self) -> str:
        return f"evt_{self._prefix}_{next(self._ids)}"

    def _next_item_id(self) -> str:
        # Client-chosen item ids let us match acknowledgements and replay without duplicates.
        return f"item_{self._prefix}_{next(self._ids)}"

    # -- outputs of the machine ----------------------------------------------------------------

    def data_to_send(self) -> list[ev.ClientEvent]:
        """Client events to send now, in order (send them in one write)."""
        out, self._out = self._out, []
        return out

    def calls_to_run(self) -> list[ToolCall]:
        out, self._to_run = self._to_run, []
        return out

    def calls_to_cancel(self) -> list[str]:
        out, self._to_cancel = self._to_cancel, []
        return out

    @property
    def idle(self) -> bool:
        """No response active, requested, queued, or owed by a tool round."""
        return (
            self.active_response is None
            and self._inflight is None
            and self._tentative is None
            and not self._queue
            and not self._rounds
        )

    def finished_turns(self) -> list[tuple[set[int], ev.ErrorDetail | None]]:
        """Turns whose answer is complete (or failed, with the server's error)."""
        out, self._finished = self._finished, []
        return out

    @property
    def has_work(self) -> bool:
        """Whether anything is waiting in the outputs of the machine."""
        return bool(self._out or self._to_run or self._to_cancel or self._finished)

    # -- inputs from the application -----------------------------------------------------------

    def configure(self) -> None:
        """Send the full session config (first thing on every connection)."""
        self._send(ev.SessionUpdate(session=self.config))

    def update_config(self, partial: dict[str, Any]) -> None:
        """Merge ``partial`` into the config and send it as ``session.update``."""
        _merge(self.config, partial)
        self._send(ev.SessionUpdate(session={"type": self.config.get("type", "realtime"), **partial}))

    def add_item(self, item: dict[str, Any]) -> str:
        """Add a client item (user message, system note...) to the conversation; returns its id."""
        item = dict(item)
        item.setdefault("id", self._next_item_id())
        self._create_item(item)
        return str(item["id"])

    def user_text(self, text: str) -> str:
        """Add a user text message; returns its item id."""
        return self.add_item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )

    def request_response(
        self, options: dict[str, Any] | None = None, *, turns: set[int] | None = None
    ) -> None:
        """Ask for a response that sees the conversation as it is now.

        Args:
            options: per-response overrides (None: a plain request, merged with others).
            turns: application turns this response (and its tool rounds) answers; they
                come back from :meth:`finished_turns` when the answer is complete.
        """
        if options and options.get("conversation") == "none":
            # Out-of-band responses do not write to the conversation and may run in
            # parallel (PROTOCOL.md §2), so they skip the gate.
            event_id = self.next_event_id()
            self._send(ev.ResponseCreate(event_id=event_id, response=options))
            return
        if options is None:
            for queued in self._queue:
                if queued.options is None:
                    queued.needs_seq = self._sent_seq
                    queued.turns |= turns or set()
                    return
        self._queue.append(_Request(options, self._sent_seq, turns=set(turns or ())))
        self._pump()

    def cancel_response(self) -> None:
        """Cancel the active response (or the one about to start)."""
        if self.active_response is not None:
            self._send(ev.ResponseCancel(event_id=self.next_event_id(), response_id=self.active_response))
        elif self._inflight is not None:
            self._cancel_when_created = True

    def interrupt(self, *, server_cancels: bool) -> None:
        """The user barged in or the app cancelled: stop talking, apply tool policies.

        Args:
            server_cancels: the server already cancels the response itself
                (server VAD with ``interrupt_response``), so no ``response.cancel`` is sent.
        """
        if not server_cancels:
            self.cancel_response()
        for rnd in self._rounds.values():
            rnd.interrupted = True
            for call_id, policy in rnd.policies.items():
                if call_id not in rnd.pending:
                    continue
                if policy == "cancel":
                    self._to_cancel.append(call_id)
                elif policy == "reply":
                    rnd.reply_after_interrupt = True

    def append_audio(self, pcm16: bytes, chunk_bytes: int) -> None:
        for start in range(0, len(pcm16), chunk_bytes):
            chunk = pcm16[start : start + chunk_bytes]
            self._send(ev.InputAudioBufferAppend(audio=base64.b64encode(chunk).decode("ascii")))

    def commit_audio(self) -> None:
        self._send(ev.InputAudioBufferCommit(event_id=self.next_event_id()))

    def clear_audio(self) -> None:
        self._send(ev.InputAudioBufferClear(event_id=self.next_event_id()))

    def truncate_audio(self, item_id: str, played_ms: int) -> bool:
        """Cut assistant audio at what the user heard (``conversation.item.truncate``).

        Returns whether a truncate was sent: not when everything received was heard,
        nor for audio this session does not know (a value beyond the real audio length
        is an error on the server, PROTOCOL.md §6).
        """
        received_ms = self._audio_bytes.get(item_id, 0) // _PCM16_BYTES_PER_MS
        if played_ms >= received_ms:
            return False
        self._send(ev.ConversationItemTruncate(
            event_id=self.next_event_id(), item_id=item_id, audio_end_ms=max(0, played_ms)))
        return True

    def is_oob(self, response_id: str) -> bool:
        """Whether ``response_id`` is an out-of-band response (outside the conversation)."""
        return response_id in self._oob

    def tool_finished(self, call_id: str, output: str) -> None:
        """Post a call's output; request the next response when its round is complete."""
        if call_id in self._posted:
            return
        self._posted.add(call_id)
        self._create_item(
            {"type": "function_call_output", "id": self._next_item_id(), "call_id": call_id, "output": output}
        )
        rnd = self._round_of.pop(call_id, None)
        if rnd is None:
            return
        rnd.pending.pop(call_id, None)
        self._maybe_close_round(rnd)

    # -- inputs from the server ----------------------------------------------------------------

    def receive(self, event: ev.ServerEvent) -> None:
        """Advance the state machine by one server event."""
        handler = self._HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)

    def _on_response_created(self, event: ev.ResponseCreated) -> None:
        response = event.response
        rid = response.id or ""
        if response.metadata and response.metadata.get("rtagent_oob"):
            self._oob.add(rid)
            return
        self.active_response = rid
        self._partial_text.clear()
        # Keep audio lengths only for what a barge-in may still truncate.
        self._audio_bytes = {k: v for k, v in self._audio_bytes.items() if k == self.current_audio_item}
        acked = self._acked_seq
        if self._inflight is not None:
            # Probably ours; if the server started this one itself, an error naming our
            # event id follows (conversation_already_has_active_response).
            self._tentative, self._inflight = self._inflight, None
            self._tentative_seq = acked
            self._active_turns = set(self._tentative.turns)
        else:
            # Started by the server (VAD, ...): it sees every item acknowledged so far,
            # so it answers every queued plain request that needed no more than that.
            self._active_turns = set()
            kept: list[_Request] = []
            for request in self._queue:
                if request.options is None and request.needs_seq <= acked:
                    self._active_turns |= request.turns
                else:
                    kept.append(request)
            self._queue = kept
        if self._cancel_when_created:
            self._cancel_when_created = False
            self._send(ev.ResponseCancel(event_id=self.next_event_id(), response_id=rid))

    def _on_response_done(self, event: ev.ResponseDone) -> None:
        response = event.response
        rid = response.id or ""
        if rid in self._oob:
            self._oob.discard(rid)
            return
        # Calls that reached response.done without an output_item.done (defensive).
        if response.status == "completed":
            for item in response.output:
                if item.type == "function_call" and item.status in (None, "completed"):
                    self._call_ready(item, rid)
        rnd = self._rounds.get(rid)
        if rid == self.active_response:
            if rnd is None and self._active_turns:
                # No tool round follows: this response was the answer.
                error = None
                if response.status == "failed":
                    error = ev.ErrorDetail.model_validate(
                        (response.status_details or {}).get("error") or {"message": "response failed"}
                    )
                self._finished.append((self._active_turns, error))
            self._active_turns = set()
            self.active_response = None
            self._tentative = None
        if rnd is not None:
            rnd.response_done = True
            if response.status == "cancelled":
                rnd.interrupted = True
            self._maybe_close_round(rnd)
        self._pump()

    def _on_output_item_done(self, event: ev.ResponseOutputItemDone) -> None:
        if event.response_id in self._oob:
            return  # out-of-band output never enters the conversation
        item = event.item
        if item.type == "function_call":
            # arguments.done / output_item.done are also sent for cut-off calls: run only
            # completed ones (PROTOCOL.md §7).
            if item.status == "completed":
                self._call_ready(item, event.response_id)
        elif item.type == "message" and item.id:
            self._remember(item)

    def _on_item_added(self, event: ev.ConversationItemAdded | ev.ConversationItemCreated) -> None:
        item = event.item
        item_id = item.id
        if item_id is None:
            return
        if item_id in self._own_items:
            self._own_items.discard(item_id)
            self._acked_seq += 1
        elif item_id not in self.history and item.type in ("message", "function_call"):
            # A server item (model output, committed audio) takes its place now; its
            # content is filled in when done. Until then it is not replayable.
            self._append(item_id, item.to_wire())
            self._incomplete.add(item_id)
        self._place(item_id, event.previous_item_id)

    def _on_item_done(self, event: ev.ConversationItemDone) -> None:
        item = event.item
        if item.type == "function_call" and item.status != "completed":
            if item.id in self._incomplete:
                self._forget(item.id)  # a call cut off before its arguments were complete
            return
        if not item.id or item.type not in ("message", "function_call"):
            return
        if item.id not in self.history or item.id in self._incomplete:
            self._remember(item)  # our own items are final already

    def _on_item_deleted(self, event: ev.ConversationItemDeleted) -> None:
        self._forget(event.item_id)

    def _on_transcription(self, event: ev.ConversationItemInputAudioTranscriptionCompleted) -> None:
        # Transcription is asynchronous: it may come before or after the item is done.
        self._transcripts[event.item_id] = event.transcript
        item = self.history.get(event.item_id)
        if item is not None:
            _apply_transcript(item, event.transcript)

    def _on_audio_delta(self, event: ev.ResponseOutputAudioDelta) -> None:
        if event.response_id in self._oob:
            return
        # Only the length matters here: base64 of n bytes is ceil(n/3)*4 characters.
        data = event.delta
        size = len(data) * 3 // 4 - data.count("=", -2)
        self._audio_bytes[event.item_id] = self._audio_bytes.get(event.item_id, 0) + size
        self.current_audio_item = event.item_id

    def _on_text_delta(
        self, event: ev.ResponseOutputTextDelta | ev.ResponseOutputAudioTranscriptDelta
    ) -> None:
        if event.response_id in self._oob:
            return
        self._partial_text.setdefault(event.item_id, []).append(event.delta)

    def _on_truncated(self, event: ev.ConversationItemTruncated) -> None:
        item = self.history.get(event.item_id)
        total_ms = self._audio_bytes.get(event.item_id, 0) // _PCM16_BYTES_PER_MS
        if item is None or total_ms <= 0:
            return
        # The server drops the transcript past the cut; keep the same share of words.
        share = min(1.0, event.audio_end_ms / total_ms)
        for part in item.get("content", ()):
            for key in ("transcript", "text"):
                if isinstance(part.get(key), str):
                    words = part[key].split()
                    part[key] = " ".join(words[: round(len(words) * share)])

    def _on_error(self, event: ev.Error) -> None:
        err = event.error
        self.last_error = err
        tentative, inflight = self._tentative, self._inflight
        if err.code == "conversation_already_has_active_response":
            if tentative is not None and err.event_id == tentative.event_id:
                # The active response was the server's, not ours. It answers our request
                # only if it started after our items were in (PROTOCOL.md §7).
                self._tentative = None
                if tentative.options is not None or tentative.needs_seq > self._tentative_seq:
                    self._active_turns -= tentative.turns
                    self._queue.insert(0, tentative)
                return
            if inflight is not None and err.event_id == inflight.event_id:
                self._inflight = None
                self._queue.insert(0, inflight)
                if self._cancel_when_created and self.active_response is not None:
                    # The cancel meant "stop talking": that is the server's response now.
                    self._cancel_when_created = False
                    self._send(ev.ResponseCancel(event_id=self.next_event_id(), response_id=self.active_response))
                return
        for request in (tentative, inflight):
            if request is not None and err.event_id == request.event_id:
                # Our response.create was refused for another reason: give up on it
                # (and on a cancel that was waiting for it to start).
                if request is tentative:
                    self._tentative = None
                    self._active_turns -= request.turns
                else:
                    self._inflight = None
                    self._cancel_when_created = False
                self._finished.append((request.turns, err))
                self._pump()
                return

    _HANDLERS: dict[str, Callable[[Session, Any], None]] = {
        "response.created": _on_response_created,
        "response.done": _on_response_done,
        "response.output_item.done": _on_output_item_done,
        "conversation.item.added": _on_item_added,
        "conversation.item.created": _on_item_added,
        "conversation.item.done": _on_item_done,
        "conversation.item.deleted": _on_item_deleted,
        "conversation.item.truncated": _on_truncated,
        "conversation.item.input_audio_transcription.completed": _on_transcription,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_text.delta": _on_text_delta,
        "response.output_audio_transcript.delta": _on_text_delta,
        "error": _on_error,
    }

    # -- connections ---------------------------------------------------------------------------

    def connection_lost(self) -> list[str]:
        """Forget per-connection state; returns what was cut short, in words."""
        lost: list[str] = []
        cut = self.active_response
        ours = self._tentative is not None
        if cut is not None:
            partial = "".join("".join(parts) for parts in self._partial_text.values())
            what = f"assistant reply cut mid-stream after {len(partial)} characters" if partial else "a response in progress was cut"
            if cut in self._rounds:
                # Its completed calls are in the conversation: their round asks for
                # the reply once the outputs are in, so the request is not repeated.
                lost.append(f"{what} (its tool calls carry on)")
                self._tentative = None
            elif ours or self._active_turns:
                lost.append(f"{what} (re-requested)")
                if not ours:
                    # A server-started response that was answering our turns.
                    self._queue.insert(0, _Request(None, 0, turns=set(self._active_turns)))
            else:
                lost.append(f"{what} (started by the server; not repeated)")
        self._active_turns = set()
        for request in (self._tentative, self._inflight):
            if request is not None:
                self._queue.insert(0, request)
        for item_id in list(self._incomplete):
            item = self.history.get(item_id, {})
            lost.append(f"unfinished {item.get('role', item.get('type', 'item'))} item {item_id} dropped")
            self._forget(item_id)
        self._incomplete.clear()
        self._tentative = self._inflight = None
        self.connected = False
        self.active_response = None
        self._cancel_when_created = False
        self._partial_text.clear()
        self.current_audio_item = None
        self._oob.clear()
        self._out.clear()
        # A round whose response was cut never gets its response.done: close it on outputs.
        for rnd in self._rounds.values():
            rnd.response_done = True
        for rid in [rid for rid, rnd in self._rounds.items() if not rnd.pending]:
            self._maybe_close_round(self._rounds[rid])
        return lost

    def resume(self) -> ResumeReport:
        """Queue what a new connection needs: config, the conversation, pending work."""
        self._sent_seq = self._acked_seq = 0
        self._own_items.clear()
        self._out.clear()
        self.configure()
        outputs = 0
        lost: list[str] = []
        restored = 0
        for item in list(self.history.values()):
            wire = _replayable(item)
            if wire is None:
                lost.append(f"{item.get('role', item['type'])} item {item['id']}: no text to replay")
                continue
            if wire["type"] == "function_call_output":
                outputs += 1
            self._send_item(wire)
            restored += 1
        for request in self._queue:
            request.needs_seq = self._sent_seq
        pending = len(self._queue)
        return ResumeReport(restored, outputs, pending, tuple(lost))

    def start_queued(self) -> None:
        """Mark the connection ready (``session.updated`` seen) and send what is queued."""
        self.connected = True
        self._pump()

    # -- internals ----------------------------------------------------------------------------

    def _send(self, event: ev.ClientEvent) -> None:
        self._out.append(event)

    def _create_item(self, item: dict[str, Any]) -> None:
        self._append(item["id"], item)
        self._send_item(item)

    def _send_item(self, item: dict[str, Any]) -> None:
        self._own_items.add(item["id"])
        self._sent_seq += 1
        self._send(ev.ConversationItemCreate(event_id=self.next_event_id(), item=item))

    def _remember(self, item: ev.Item) -> None:
        """Record a finished server item, keeping its place if it already has one."""
        item_id = item.id
        if not item_id:
            return
        wire = item.to_wire()
        transcript = self._transcripts.get(item_id)
        if transcript is not None:
            _apply_transcript(wire, transcript)
        if item_id in self.history:
            self.history[item_id] = wire  # same key: position unchanged
        else:
            self._append(item_id, wire)
        self._incomplete.discard(item_id)

    def _append(self, item_id: str, item: dict[str, Any]) -> None:
        self.history[item_id] = item
        self._prev_of[item_id] = self._last_id
        self._last_id = item_id

    def _forget(self, item_id: str) -> None:
        if self.history.pop(item_id, None) is None:
            return
        self._incomplete.discard(item_id)
        self._transcripts.pop(item_id, None)
        self._reindex()

    def _place(self, item_id: str, previous_item_id: str | None) -> None:
        """Move ``item_id`` right after ``previous_item_id`` if it is elsewhere (rare)."""
        if previous_item_id is None or item_id not in self.history:
            return  # no position given: appended at the end already
        if self._prev_of.get(item_id) == previous_item_id:
            return
        if previous_item_id is not None and previous_item_id not in self.history:
            return  # follows an item we do not mirror: keep our order
        item = self.history.pop(item_id)
        rebuilt: dict[str, dict[str, Any]] = {}
        for key, value in self.history.items():
            rebuilt[key] = value
            if key == previous_item_id:
                rebuilt[item_id] = item
        self.history = rebuilt
        self._reindex()

    def _reindex(self) -> None:
        prev: str | None = None
        self._prev_of = {}
        for key in self.history:
            self._prev_of[key] = prev
            prev = key
        self._last_id = prev

    def _call_ready(self, item: ev.Item, response_id: str) -> None:
        call_id = item.call_id
        if not call_id or call_id in self._seen_calls:
            if call_id:
                logger.debug("call %s seen again; it runs once", call_id)
            return
        self._seen_calls.add(call_id)
        self._remember(item)
        call = ToolCall(
            call_id=call_id,
            name=item.name or "",
            arguments=item.arguments or "",
            item_id=item.id,
            response_id=response_id,
            ready_at=time.perf_counter(),
        )
        rnd = self._rounds.get(response_id)
        if rnd is None:
            turns = set(self._active_turns) if response_id == self.active_response else set()
            rnd = self._rounds[response_id] = _Round(response_id, turns)
            # The round's follow-up response answers these turns now.
            if response_id == self.active_response:
                self._active_turns = set()
        rnd.pending[call_id] = call
        rnd.policies[call_id] = self._policy(call.name)
        self._round_of[call_id] = rnd
        self._to_run.append(call)

    def _maybe_close_round(self, rnd: _Round) -> None:
        if not rnd.response_done or rnd.pending:
            return
        self._rounds.pop(rnd.response_id, None)
        if not rnd.interrupted or rnd.reply_after_interrupt:
            self.request_response(turns=rnd.turns)
        elif rnd.turns:
            # Interrupted without a reply: what was said before the calls is the answer.
            self._finished.append((rnd.turns, None))

    def _pump(self) -> None:
        if not self.connected:
            return
        if self.active_response is not None or self._inflight is not None or self._tentative is not None:
            return
        if not self._queue:
            return
        request = self._queue.pop(0)
        request.event_id = self.next_event_id()
        self._inflight = request
        self._send(ev.ResponseCreate(event_id=request.event_id, response=request.options))


def _merge(target: dict[str, Any], partial: dict[str, Any]) -> None:
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _apply_transcript(item: dict[str, Any], transcript: str) -> None:
    for part in item.get("content") or ():
        if part.get("type") == "input_audio":
            part["transcript"] = transcript


def _replayable(item: dict[str, Any]) -> dict[str, Any] | None:
    """The item as a client may create it, or None when it cannot be recreated."""
    if item.get("type") != "message":
        return item
    role = item.get("role")
    content: list[dict[str, Any]] = []
    for part in item.get("content") or ():
        kind = part.get("type")
        if kind in ("output_audio", "audio", "output_text", "text"):
            # Clients cannot create assistant audio: replay its transcript as text.
            text = part.get("text") or part.get("transcript")
            if text:
                content.append({"type": "output_text", "text": text})
        elif kind == "input_audio":
            transcript = part.get("transcript")
            if transcript:
                content.append({"type": "input_text", "text": transcript})
        else:
            content.append(part)
    if not content:
        return None
    return {"type": "message", "id": item["id"], "role": role, "content": content}
