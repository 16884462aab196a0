"""The driver: connections, the reader, and the execution of the session's actions.

Shape (every task has an owner)::

    connect()'s task group
    └── Driver.run                      one per session: owns the ToolRunner's task group
        └── episode: async for attempt in retry.attempts(): with attempt:
            └── one connection: async with websocket, task group
                ├── the reader          feeds frames to the session, executes its actions
                ├── handshake watch     no session.updated within open_timeout: retry
                └── rollover watch      tells the session when its deadline passes

Actions are executed by whichever task fed the session (the reader for server events,
a tool's task for its output, the application's task for its calls): the session
decided everything, so executing is writing its events in one ``send_many`` (the order
the session chose is the order on the wire), starting or cancelling calls, and
answering turns. Nothing else happens here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, Union

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import tenacity

from .. import _events as ev
from .._endpoint import Endpoint
from .._errors import (
    ConnectionClosed,
    HandshakeError,
    ResponseTimeout,
    RTAgentError,
    SessionClosed,
    SessionRefused,
    TransportError,
    first_error,
)
from .._invoke import ToolContext
from .._notices import FrameSkipped, Notice
from .._retry import FATAL_CLOSE_CODES, RetryPolicy, gave_up
from .._session import (
    HANDLED_TYPES,
    Action,
    CancelCall,
    EndConnection,
    Notify,
    Ready,
    RunCall,
    Send,
    Session,
    ToolCall,
    TurnDone,
)
from .._tools import ToolRegistry
from .._transport import WebSocket, WebSocketConfig
from .._transport import connect as ws_connect
from .approvals import Approvals
from .audio import AudioHub
from .broadcaster import Broadcaster
from .desk import ToolDesk
from .journal import ToolJournal
from .runner import ToolRunner
from .turns import Turns

__all__ = ["Driver", "KeptFrame", "SessionEvent", "State"]

logger = logging.getLogger("rtagent.session")

SessionEvent = ev.ServerEvent | Notice
State = Literal["connecting", "open", "reconnecting", "closed"]

# Event types worth skipping before parsing while nobody iterates: known event names the
# session does not react to. (A frame's first "type" may be a nested item's; those are
# never in this set, so they are parsed.)
_SKIPPABLE = ev.KNOWN_TYPES - HANDLED_TYPES
_DELTAS = (ev.ResponseOutputTextDelta, ev.ResponseOutputAudioTranscriptDelta)


KeptFrame = Union[str, bytes]
"""A server event kept for the application's first iterator as its frame, not parsed.

Until the application iterates, a session keeps up to a buffer of events (see
:class:`Broadcaster`). Kept as parsed models, each is a graph of a dozen objects that the
garbage collector walks on every full collection: with 500 sessions that was a third of
the client's CPU time, in full collections of 165 ms. A frame is one string, which the
collector does not track; it is parsed again when delivered (it parsed once already).
"""


class Driver:
    """Runs one session's connections and executes what its sans-I/O core decides.

    Args:
        core: the session state machine.
        endpoint: where to connect.
        retry: backoff and limits for connecting and reconnecting.
        reconnect: reconnect when a connection drops (else the session ends).
        ws_config: WebSocket limits, keepalive and proxy.
        tools: the current tool registry.
        context: builds a tool call's ``ToolContext``.
        events: the session's event broadcaster.
        audio: where decoded assistant audio goes.
        call_id: attach to this SIP/WebRTC call (a sideband).
        approvals: decisions on calls that need a person's approval.
        response_timeout: end a connection silent this long while a response is due.
        clock: wall-clock seconds (the rollover deadline).
        journal: durable records of the tool calls, for a process taking over.
    """

    def __init__(
        self,
        core: Session,
        endpoint: Endpoint,
        *,
        retry: RetryPolicy,
        reconnect: bool,
        ws_config: WebSocketConfig,
        tools: Callable[[], ToolRegistry],
        context: Callable[[ToolCall], ToolContext],
        events: Broadcaster[SessionEvent | KeptFrame],
        audio: AudioHub,
        call_id: str | None = None,
        approvals: Approvals | None = None,
        response_timeout: float | None = None,
        clock: Callable[[], float] = time.time,
        journal: ToolJournal | None = None,
    ) -> None:
        self.core = core
        self.endpoint = endpoint
        self._retry = retry
        self._reconnect = reconnect
        self._ws_config = ws_config
        self._tools = tools
        self._context = context
        self.events = events
        self.audio = audio
        self.call_id = call_id
        self.ended: str | None = None
        """Why the session ended cleanly on the server's side (e.g. "the call ended")."""
        self.approvals = approvals or Approvals(None, None, self.notify)
        self._response_timeout = response_timeout
        self._clock = clock
        self.state: State = "connecting"
        self.error: BaseException | None = None
        """Why the session ended, unless the application closed it."""
        self.user_closed = False
        self.reconnects = 0
        self.skipped_frames = 0
        self.turns = Turns()
        self.desk = ToolDesk(core, self.execute, self.notify, journal)
        self._ws: WebSocket | None = None
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._end: EndConnection | None = None
        self._last_failure: BaseException | None = None
        self._responses = 0
        self._started: anyio.abc.TaskStatus[None] | None = None
        self._attached = False

    # -- the session's life --------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve and reconnect until closed or the retry policy gives up.

        Failures before the first connection is ready are raised (to ``connect()``'s
        caller); later ones end the session with :attr:`error` and never escape.
        """
        self._started = task_status
        failure: Exception | None = None
        try:
            async with ToolRunner(
                self._tools, self._context, self.desk.finished, self.notify,
                self.approvals, self.desk.decided, self.desk.journal,
            ) as runner:
                self.desk.runner = runner
                try:
                    await self._connect_until_closed()
                except Exception as exc:
                    # Raised below, outside every task group, so it is never wrapped.
                    failure = exc
                if failure is None and self.ended is not None:
                    # The call ended: running tools follow their on_interrupt policy.
                    await runner.wind_down()
        finally:
            self.desk.runner = None
            if failure is not None:
                self._fail(failure)
            self._finish()
        if self._started is not None and self.error is not None:
            raise self.error  # before the first connection was ready: connect() raises it

    async def _connect_until_closed(self) -> None:
        while not self._stop.is_set():
            try:
                async for attempt in self._retry.attempts(sleep=self._backoff):
                    with attempt:
                        await self._connection()
            except tenacity.RetryError as exc:
                raise gave_up(exc) from None
            if self._end is not None and self._end.kind == "fatal":
                assert self._end.error is not None
                raise self._end.error

    async def _connection(self) -> None:
        """One connection, from opening to its end. Raises when it was not healthy."""
        if self._stop.is_set():
            return
        self._end = None
        self._last_failure = None
        self._responses = 0
        url = self.endpoint.websocket_url(call_id=self.call_id)
        try:
            async with ws_connect(
                url, headers=self.endpoint.all_headers(), config=self._ws_config
            ) as ws:
                if self._stop.is_set():
                    return  # closed while this connection was opening
                lasted = await self._serve(ws)
        except HandshakeError as exc:
            if self.call_id is not None and exc.status_code == 404 and self._attached:
                # Re-attaching to a call that is gone: the call has ended, nothing to retry.
                self._call_ended("the call is gone (re-attaching was refused with 404)")
                return
            raise
        await self._judge(ws, lasted)

    async def _serve(self, ws: WebSocket) -> float:
        """Run the connection's tasks until it ends; returns how long it lasted."""
        opened = anyio.current_time()
        self._ws = ws
        self._ready = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_handshake, ws)
                tg.start_soon(self._watch_rollover)
                tg.start_soon(self._watch_silence, ws)
                await self.execute(self.core.connection_opened())
                await self._read(ws)
                tg.cancel_scope.cancel()
        finally:
            self._ws = None
        return anyio.current_time() - opened

    async def _judge(self, ws: WebSocket, lasted: float) -> None:
        """What the end of a connection means: carry on, retry (raise), or stop."""
        # Set by other tasks while the connection ran (a copy, so mypy keeps no narrowing).
        failure, end = self._last_failure, self._end
        if self.call_id is not None and end is None and not self._stop.is_set() and (
            self._ready.is_set() and ws.close_code == 1000
        ):
            # A sideband the server closed normally: the call has ended (a hang-up).
            await self.execute(self.core.connection_lost("the call ended", final=True))
            self._call_ended("the call ended")
            return
        reason = str(failure) if failure is not None else "the server closed the connection"
        if end is not None:
            reason = end.reason
        await self.execute(self.core.connection_lost(reason, final=self._stop.is_set()))
        if self._stop.is_set() or (end is not None and end.kind == "fatal"):
            return
        if self.state == "open":
            self.state = "reconnecting"
        if not self._reconnect:
            self._stop.set()
            raise _NoReconnect(failure or ConnectionClosed(None, reason))
        if end is not None:
            return  # a rollover or an expired session: carry on at once
        healthy = (
            self._ready.is_set()
            and not isinstance(failure, ResponseTimeout)
            and (lasted >= self._retry.stable_after or self._responses > 0)
        )
        if healthy:
            return
        if not self._ready.is_set() and ws.close_code in FATAL_CLOSE_CODES:
            raise self._refused(ws)
        raise failure or ConnectionClosed(ws.close_code, ws.close_reason or reason)

    def _refused(self, ws: WebSocket) -> SessionRefused:
        """The session was refused after the upgrade: the error event says why."""
        error = self.core.last_error
        if error is not None:
            message, kind, code = error.message, error.type, error.code
        else:
            message, kind, code = f"closed with {ws.close_code}", "invalid_request_error", None
        return SessionRefused(
            message, type=kind, code=code, close_code=ws.close_code, close_reason=ws.close_reason
        )

    async def _read(self, ws: WebSocket) -> None:
        core = self.core
        events = self.events
        while True:
            try:
                frame = await ws.recv()
            except TransportError as exc:
                if self._end is None and not self._stop.is_set() and self._last_failure is None:
                    self._last_failure = exc
                return
            if not events.observed and ev.peek_type(frame) in _SKIPPABLE:
                continue
            try:
                event = ev.parse_server_event(frame)
            except RTAgentError as exc:
                self._skip(str(exc))
                continue
            try:
                actions = core.receive(event)
                if actions:
                    await self.execute(actions)
                self._after(event, frame)
            except Exception as exc:
                # One event we cannot handle must not end the session: skip it, say so.
                logger.exception("failed to handle a %s event; skipped", event.type)
                self._skip(f"failed to handle {event.type}: {exc!r}")

    def _after(self, event: ev.ServerEvent, frame: str | bytes) -> None:
        """What the runtime does besides the session: audio, latency, the event stream."""
        kind = type(event)
        if kind is ev.ResponseOutputAudioDelta:
            assert isinstance(event, ev.ResponseOutputAudioDelta)
            if self.audio.wanted and not self.audio.deliver(event.delta):
                self._skip("an audio delta that is not valid base64")
            self.desk.first_delta(event.response_id)
        elif kind in _DELTAS:
            assert isinstance(event, _DELTAS)
            self.desk.first_delta(event.response_id)
        elif kind is ev.ResponseDone:
            self._responses += 1
        elif kind is ev.ConversationItemAdded:
            assert isinstance(event, ev.ConversationItemAdded)
            self.desk.delivered(event.item)
        if self.events.observed:
            self.events.publish(event, early=frame)

    async def _watch_handshake(self, ws: WebSocket) -> None:
        with anyio.move_on_after(self._ws_config.open_timeout):
            await self._ready.wait()
            return
        self._last_failure = TransportError(
            f"no session.updated within {self._ws_config.open_timeout}s of connecting"
        )
        await ws.abort()

    async def _watch_rollover(self) -> None:
        await self._ready.wait()
        deadline = self.core.life.deadline
        if deadline is None:
            return
        await anyio.sleep(max(0.0, deadline - self._clock()))
        await self.execute(self.core.deadline_reached())

    async def _watch_silence(self, ws: WebSocket) -> None:
        """End a connection whose server goes silent while a response is due.

        A server can keep answering pings and still never finish a response; without this
        an ``ask()`` would wait forever. The next connection asks again.
        """
        timeout = self._response_timeout
        if timeout is None:
            return
        started = anyio.current_time()
        while True:
            await anyio.sleep(timeout / 4)
            silent = anyio.current_time() - max(started, ws.message_at)
            if self.core.gate.busy and silent >= timeout:
                logger.warning("no server event for %.3gs while a response was due", silent)
                self._last_failure = ResponseTimeout(
                    f"the server sent nothing for {silent:.3g}s while a response was due"
                )
                await ws.abort()
                return

    async def _backoff(self, seconds: float) -> None:
        """Sleep between attempts, but wake at once when the session is closed."""
        with anyio.move_on_after(seconds):
            await self._stop.wait()

    # -- executing actions ---------------------------------------------------------------

    async def execute(self, actions: list[Action]) -> None:
        """Carry out the session's actions in order; sends go out in one write."""
        frames: list[str] = []
        end: EndConnection | None = None
        for action in actions:
            match action:
                case Send(event=event):
                    frames.append(ev.encode_client_event(event))
                case RunCall(call=call):
                    self.desk.start(call)
                case CancelCall(call_id=call_id):
                    self.desk.cancel(call_id)
                case TurnDone():
                    self.turns.done(action)
                case Notify(notice=notice):
                    self.notify(notice)
                case Ready():
                    self._on_ready()
                case EndConnection():
                    end = action
        if frames:
            await self._write(frames)
        if end is not None:
            self._end = end
            ws = self._ws
            if ws is not None:
                await ws.aclose()

    async def _write(self, frames: list[str]) -> None:
        ws = self._ws
        if ws is None:
            return  # the session keeps the conversation; the next connection replays it
        try:
            await ws.send_many(frames)
        except TransportError as exc:
            # The reader sees the same failure and reconnects.
            logger.info("send failed (%s); restored on the next connection", exc)

    def _on_ready(self) -> None:
        self._ready.set()
        runner = self.desk.runner
        if not self._attached and self.desk.journal is not None and runner is not None:
            runner.spawn(self.desk.take_over, self._tools())
        self._attached = True
        if self.state == "reconnecting":
            self.reconnects += 1
        self.state = "open"
        started, self._started = self._started, None
        if started is not None:
            started.started()

    def notify(self, notice: Notice) -> None:
        if self.events.observed:
            self.events.publish(notice)

    def _skip(self, reason: str) -> None:
        self.skipped_frames += 1
        logger.warning("skipped a frame: %s", reason)
        self.notify(FrameSkipped(reason))

    # -- ending --------------------------------------------------------------------------

    def check_open(self) -> None:
        """Raise :class:`SessionClosed` once the session has ended."""
        if self.state == "closed" or self._stop.is_set():
            if self.error is not None and not self.user_closed:
                raise SessionClosed(f"session ended: {self.error}") from self.error
            raise SessionClosed("session closed")

    async def aclose(self) -> None:
        """End the session: close the connection (close handshake); tools are cancelled."""
        if self._stop.is_set():
            return
        self.user_closed = True
        self._stop.set()
        self.events.discard_early()
        ws = self._ws
        if ws is not None:
            await ws.aclose()

    def _call_ended(self, why: str) -> None:
        logger.info("session of call %s ended: %s", self.call_id, why)
        self.ended = why
        self._stop.set()

    def _fail(self, exc: BaseException) -> None:
        exc = first_error(exc)
        if isinstance(exc, _NoReconnect):
            exc = exc.error
        self.error = exc
        logger.error("session ended: %s", exc)

    def _finish(self) -> None:
        self.state = "closed"
        self._stop.set()
        error = self.error if not self.user_closed else None
        self.turns.close(error or SessionClosed(self.ended or "session closed"))
        self.events.close()
        self.audio.close()


class _NoReconnect(Exception):
    """The connection dropped and reconnecting is switched off (not retryable)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
