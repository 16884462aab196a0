"""The sans-I/O Realtime session: server events and application inputs in, actions out.

:class:`Session` owns every protocol decision of a client session, across connections:

* the handshake (``session.created`` -> ``session.update`` -> ``session.updated``; a
  sideband connection to a SIP/WebRTC call starts without ``session.created``), and the
  replay of the conversation on every new connection;
* which response answers which application turn, and the text that answers it;
* tool rounds: a call runs once its item is complete, a ``call_id`` runs once, one
  ``response.create`` follows the last output of a round;
* barge-in on ``input_audio_buffer.speech_started`` (whether the server cancels on its
  own, which running calls to cancel, where to truncate the audio the user heard);
* the end of a connection: ``session_expired``, a refused config, and a planned rollover
  before the session's maximum duration (from ``expires_at``, on an injected clock).

Each input returns one ordered list of :mod:`~rtagent._session.actions` for the driver to
execute. Nothing here awaits, sleeps or reads a socket. Its state lives in parts, each
with one owner: :class:`~rtagent._session.gate.ResponseGate` (requests and responses),
:class:`~rtagent._session.rounds.ToolRounds` (calls in flight, driven by
:class:`~rtagent._session.calls.Calls`), :class:`~rtagent._session.mirror.ConversationMirror`
(the conversation) and :class:`~rtagent._session.lifecycle.Lifecycle` (the link).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from .. import _events as ev
from .._errors import ServerError
from .._notices import ConnectionLost, Reconnected, UsageReported
from .._tools import OnInterrupt
from .._usage import Prices, Usage, UsageLedger
from .actions import Action, EndKind, Notify, Ready, Send, TurnDone
from .calls import Calls
from .config import merge_config, output_bytes_per_ms, server_cancels_on_speech
from .gate import ResponseGate
from .lifecycle import DEFAULT_MAX_DURATION, Lifecycle
from .mirror import DEFAULT_MAX_ITEMS, ConversationMirror
from .rounds import ToolRounds

__all__ = ["DEFAULT_MAX_DURATION", "HANDLED_TYPES", "Ids", "Session", "answer_text"]

logger = logging.getLogger("rtagent.session")

HANDLED_TYPES = frozenset({
    "session.created",
    "session.updated",
    "response.created",
    "response.done",
    "response.output_item.done",
    "response.output_audio.delta",
    "response.output_text.delta",
    "response.output_audio_transcript.delta",
    "conversation.item.added",
    "conversation.item.created",
    "conversation.item.done",
    "conversation.item.deleted",
    "conversation.item.truncated",
    "conversation.item.input_audio_transcription.completed",
    "input_audio_buffer.speech_started",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "error",
})
"""Server event types the session reacts to; a driver may skip parsing the others."""


class Ids:
    """The ``event_id`` and item ids this client makes (client-chosen item ids let the
    session match acknowledgements and replay without duplicates)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._next = itertools.count(1)

    def event(self) -> str:
        return f"evt_{self._prefix}_{next(self._next)}"

    def item(self) -> str:
        return f"item_{self._prefix}_{next(self._next)}"


class Session:
    """Conversation state for one logical session, across connections.

    Args:
        config: the full GA ``session`` object sent in ``session.update``.
        interrupt_policy: tool name -> what to do with a running call on interruption.
        id_prefix: prefix of the ``event_id`` and item ids this client makes.
        sideband: connections attach to an existing call (no ``session.created``; the
            conversation lives on the server and is never replayed).
        clock: wall-clock seconds, for ``expires_at`` and the rollover deadline.
        max_duration: roll over to a new connection after this many seconds (the
            server's ``expires_at`` wins when earlier); None disables planned rollovers.
        max_items: conversation items kept for replay (older ones are dropped).
        prices: prices per million tokens, to give the usage a cost.
        history: conversation items (as ``conversation.item.create`` takes them) that
            seed the session; the first connection creates them before anything else.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        interrupt_policy: Callable[[str], OnInterrupt] | None = None,
        id_prefix: str = "rt",
        sideband: bool = False,
        clock: Callable[[], float] = time.time,
        max_duration: float | None = DEFAULT_MAX_DURATION,
        max_items: int = DEFAULT_MAX_ITEMS,
        prices: Prices | None = None,
        history: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.config = dict(config)
        self.server_config: dict[str, Any] = {}
        """The server's effective session, from ``session.created``/``session.updated``."""
        self.sideband = sideband
        self.ids = Ids(id_prefix)
        self._out: list[Action] = []
        self.gate = ResponseGate(self._out, self.ids.event)
        self.rounds = ToolRounds(interrupt_policy or (lambda _name: "finish"))
        self.mirror = ConversationMirror(max_items, clock)
        self.life = Lifecycle(clock, max_duration)
        self.usage = UsageLedger(prices)
        self.calls = Calls(
            self._out, self.ids.item, self.gate, self.rounds, self.mirror,
            create_item=self._create_item, finish=self._finish, take=self._take,
        )
        """Tool calls: running, outputs, approvals, background results, progress."""
        self._unsent: list[dict[str, Any]] = []
        """Sideband: items added while disconnected, sent when the call is re-attached."""
        for item in history:
            item.setdefault("id", self.ids.item())
            self.mirror.record(item)
        self._streamed = 0
        self.last_error: ev.ErrorDetail | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation as this client knows it, in the server's order."""
        return list(self.mirror.items.values())

    @property
    def idle(self) -> bool:
        """No response active, requested, queued, or owed by a tool round."""
        return self.gate.idle and not self.rounds

    # -- connections ---------------------------------------------------------------------

    def connection_opened(self) -> list[Action]:
        """A new socket is open; a sideband is configured at once (no ``session.created``)."""
        self.life.opened()
        if self.sideband:
            self.life.set_deadline(None)
            self._configure(replay=False)
        return self._take()

    def connection_lost(self, reason: str, *, final: bool = False) -> list[Action]:
        """The socket is gone: forget per-connection state, keep what must carry on.

        ``final``: the application is ending the session, so nothing is reported lost.
        """
        cut: list[str] = []
        active = self.gate.active
        carried = active is not None and active.id in self.rounds
        what = self.gate.connection_lost(carried_on=carried)
        if what is not None:
            head = (
                f"assistant reply cut mid-stream after {self._streamed} characters"
                if self._streamed
                else "a response in progress was cut"
            )
            cut.append(f"{head} ({what})")
        cut += self.mirror.connection_lost()
        for rnd in self.rounds.connection_lost():
            self.calls.close_if_done(rnd)
        self.life.lost()
        self._streamed = 0
        if not self.life.planned and not final:
            self._out.append(Notify(ConnectionLost(reason, tuple(cut))))
        return self._take()

    def deadline_reached(self) -> list[Action]:
        """The rollover deadline passed: end the connection as soon as no response runs."""
        if self.life.deadline_passed():
            self.gate.open = False
        return self._take()

    def _configure(self, *, replay: bool) -> None:
        self.life.config_event = self.ids.event()
        self._out.append(Send(ev.SessionUpdate(event_id=self.life.config_event, session=self.config)))
        self.life.link = "configuring"
        if not replay:
            unsent, self._unsent = self._unsent, []
            for item in unsent:
                self._create_item(item, replay=True)
            self.life.resumed = (len(unsent), 0, ())
            return
        items, lost = self.mirror.replay()
        outputs = 0
        for item in items:
            outputs += item["type"] == "function_call_output"
            self._create_item(item, replay=True)
        self.gate.rebase()
        self.life.resumed = (len(items), outputs, tuple(lost))

    # -- inputs from the server ----------------------------------------------------------

    def receive(self, event: ev.ServerEvent) -> list[Action]:
        """Advance the state machine by one server event."""
        match event:
            case ev.ResponseOutputAudioDelta():
                if not self.gate.is_out_of_band(event.response_id):
                    data = event.delta
                    self.mirror.audio(event.item_id, len(data), data.count("=", -2))
                    self._streamed += 1
                return []
            case ev.ResponseOutputTextDelta() | ev.ResponseOutputAudioTranscriptDelta():
                if not self.gate.is_out_of_band(event.response_id):
                    self._streamed += len(event.delta)
                return []
            case ev.ResponseOutputItemDone():
                self._on_output_item_done(event)
            case ev.ConversationItemAdded() | ev.ConversationItemCreated():
                if self.mirror.acknowledged(event):
                    self.gate.item_acked()
            case ev.ConversationItemDone():
                self.mirror.item_done(event.item)
            case ev.ResponseCreated():
                if self.gate.on_created(event.response) is not None:
                    self._streamed = 0
                    self.mirror.response_started()
            case ev.ResponseDone():
                self._on_response_done(event.response)
            case ev.InputAudioBufferSpeechStarted():
                self._interrupt(server_cancels_on_speech(self.server_config, self.config))
            case ev.ConversationItemInputAudioTranscriptionCompleted():
                self.mirror.transcript(event.item_id, event.transcript)
            case ev.ConversationItemTruncated():
                bytes_per_ms = output_bytes_per_ms(self.server_config, self.config)
                self.mirror.truncated(event.item_id, event.audio_end_ms, bytes_per_ms)
            case ev.ConversationItemDeleted():
                self.mirror.forget(event.item_id)
            case ev.OutputAudioBufferStarted():
                self.mirror.playing = event.response_id or "unknown"
            case ev.OutputAudioBufferStopped() | ev.OutputAudioBufferCleared():
                self.mirror.playing = None
            case ev.SessionCreated():
                self._on_session_created(event.session)
            case ev.SessionUpdated():
                self._on_session_updated(event.session)
            case ev.Error():
                self._on_error(event.error)
        return self._take()

    def _on_session_created(self, session: dict[str, Any]) -> None:
        self.server_config = session
        if self.life.link == "opening":
            self.life.set_deadline(session.get("expires_at"))
            self._configure(replay=True)

    def _on_session_updated(self, session: dict[str, Any]) -> None:
        self.server_config = session
        life = self.life
        if life.link != "configuring":
            return
        life.link = "ready"
        self.gate.open = True
        self._out.append(Ready())
        if life.connections > 1:
            items, outputs, lost = life.resumed
            self._out.append(Notify(Reconnected(
                life.connections - 1, life.planned, items, outputs, len(self.gate.queue), lost
            )))

    def _on_error(self, error: ev.ErrorDetail) -> None:
        self.last_error = error
        # An error belongs to a client event only through its event_id; unsolicited ones
        # (rate limits, server hiccups) are the application's to see, never fatal here.
        if error.event_id is not None and error.event_id == self.life.config_event:
            if self.life.link == "configuring":
                self._end(
                    f"the server refused the session config: {error.message}",
                    "fatal",
                    ServerError(error.message, type=error.type, code=error.code,
                                param=error.param, event_id=error.event_id),
                )
            return
        if error.code == "session_expired":
            self._end(error.message or "session expired", "expired")
            return
        if not self.gate.on_error(error):
            logger.warning(
                "server error %s (%s): %s [client event %s]",
                error.code, error.type, error.message, error.event_id,
            )

    def _on_output_item_done(self, event: ev.ResponseOutputItemDone) -> None:
        if self.gate.is_out_of_band(event.response_id):
            return  # out-of-band output never enters the conversation
        item = event.item
        if item.type == "function_call":
            # arguments.done / output_item.done are also sent for cut-off calls: run only
            # completed ones (PROTOCOL.md §7).
            if item.status == "completed":
                self.calls.ready(item, event.response_id)
        elif item.type == "mcp_approval_request":
            self.calls.ready(item, event.response_id)
        elif item.type == "message" and item.id:
            self.mirror.remember(item)

    def _on_response_done(self, response: ev.Response) -> None:
        rid = response.id or ""
        if self.gate.is_out_of_band(rid):
            done = self.gate.on_done(response)
            self._count(response, done.turns if done else set())
            if done is not None and done.turns:
                self._finish(done.turns, answer_text(response), _failure(response))
            return
        if response.status == "completed":
            # Calls that reached response.done without their output_item.done (defensive).
            for item in response.output:
                if item.type == "function_call" and item.status in (None, "completed"):
                    self.calls.ready(item, rid)
        done = self.gate.on_done(response)
        rnd = self.rounds.get(rid)
        self._count(response, (done.turns if done else set()) | (rnd.turns if rnd else set()))
        if rnd is not None:
            rnd.response_done = True
            rnd.text = answer_text(response)
            if response.status == "cancelled":
                rnd.interrupted = True
            self.calls.close_if_done(rnd)
        elif done is not None and done.turns:
            self._finish(done.turns, answer_text(response), _failure(response))

    def _count(self, response: ev.Response, turns: set[int]) -> None:
        usage = Usage.from_wire(response.usage)
        self.usage.record(response.id or "", usage, turns)
        ledger = self.usage
        cost = usage.cost(ledger.prices) if ledger.prices is not None else None
        self._out.append(Notify(UsageReported(response.id or "", usage, cost)))

    def _finish(
        self, turns: Iterable[int], text: str, error: ev.ErrorDetail | None = None
    ) -> None:
        """The turns are answered: close their usage and tell the driver."""
        turns = frozenset(turns)
        for turn in turns:
            self.usage.turn_done(turn)
        self._out.append(TurnDone(turns, text, error))

    # -- inputs from the application -----------------------------------------------------

    def add_item(self, item: dict[str, Any]) -> list[Action]:
        """Add a client item (user message, system note...); it gets an id if it has none."""
        item.setdefault("id", self.ids.item())
        self._create_item(item)
        return self._take()

    def request_response(
        self, options: dict[str, Any] | None = None, turns: Iterable[int] = ()
    ) -> list[Action]:
        """Ask for a response that sees the conversation as it is now.

        Args:
            options: per-response overrides (None: a plain request, merged with others);
                ``conversation: "none"`` makes it out of band.
            turns: application turns this response (and its tool rounds) answers; a
                :class:`~rtagent._session.actions.TurnDone` names them when it is complete.
        """
        self.gate.request(options, set(turns))
        return self._take()

    def cancel(self) -> list[Action]:
        """The application interrupts: cancel the response, apply the tools' policies."""
        self._interrupt(server_cancels=False)
        return self._take()

    def update_config(self, partial: dict[str, Any]) -> list[Action]:
        """Merge ``partial`` into the config and send it as ``session.update``."""
        self.config = merge_config(self.config, partial)
        if self.life.sending:
            session = {"type": self.config.get("type", "realtime"), **partial}
            self._out.append(Send(ev.SessionUpdate(event_id=self.ids.event(), session=session)))
        return self._take()

    def send_now(self, *events: ev.ClientEvent) -> list[Action]:
        """Send events that are not conversation state (audio, commit...) if connected.

        While disconnected they are dropped: input audio and commits belong to the moment.
        """
        if self.life.sending:
            self._out.extend(Send(event) for event in events)
        return self._take()

    # -- internals -----------------------------------------------------------------------

    def _interrupt(self, server_cancels: bool) -> None:
        if not server_cancels:
            self.gate.cancel()
            if self.sideband and self.mirror.playing is not None and self.life.sending:
                # WebRTC/SIP: the server plays the audio; stop it (after response.cancel).
                self._out.append(Send(ev.OutputAudioBufferClear(event_id=self.ids.event())))
        self.calls.interrupt()
        played, self.mirror.played = self.mirror.played, None
        if played is None or self.sideband:
            return  # on a call the server knows what was heard and truncates itself
        # Audio arrives faster than real time, so the item being heard has often been
        # received in full by now: truncate at what was reported as played (PROTOCOL §6).
        item_id, played_ms = played
        bytes_per_ms = output_bytes_per_ms(self.server_config, self.config)
        if played_ms < self.mirror.received_ms(item_id, bytes_per_ms):
            self._out.append(Send(ev.ConversationItemTruncate(
                event_id=self.ids.event(), item_id=item_id, audio_end_ms=played_ms
            )))

    def _end(self, reason: str, kind: EndKind, error: ServerError | None = None) -> None:
        self.gate.open = False
        self._out.append(self.life.end(reason, kind, error))

    def _create_item(self, item: dict[str, Any], *, replay: bool = False) -> None:
        """Record a client item (unless replayed) and send it when connected."""
        if not replay:
            self.mirror.record(item)
        if not self.life.sending:
            if self.sideband:
                self._unsent.append(item)  # a call's conversation is not replayed
            return  # the next connection's replay sends it
        self.mirror.sent(item["id"])
        self.gate.item_sent()
        self._out.append(Send(ev.ConversationItemCreate(event_id=self.ids.event(), item=item)))

    def _take(self) -> list[Action]:
        if self.life.link == "ready":
            if self.life.roll_due and not self.gate.busy:
                self._end("planned rollover", "rollover")
            else:
                if self.gate.active is None:
                    self.calls.deliver_late()
                self.gate.pump()
        if not self._out:
            return []
        out = self._out.copy()
        self._out.clear()
        return out


def answer_text(response: ev.Response) -> str:
    """The text that answers a turn: the response's messages (final answers if tagged)."""
    messages = [item for item in response.output if item.type == "message"]
    finals = [m for m in messages if m.phase == "final_answer"]
    return "".join(m.text() for m in (finals or messages))


def _failure(response: ev.Response) -> ev.ErrorDetail | None:
    if response.status != "failed":
        return None
    details = response.status_details
    error = details.get("error") if isinstance(details, dict) else None
    if isinstance(error, dict):
        try:
            return ev.ErrorDetail.model_validate(error)
        except ValidationError:
            pass
    return ev.ErrorDetail(type="server_error", message="the response failed")
