"""The live session: connection, event loop, tool execution, reconnects.

This is the only module that combines the sans-I/O :class:`~rtagent._session.Session`
with the WebSocket transport and running tools. Shape::

    connect()  ── task group ──┬── _run: connect (retry) → read loop → reconnect (retry) ...
                               └── one task per tool call (outlives connections, so a
                                   result finished while the link is down is posted after)

Sends do not go through a writer task: whoever has events to send (the reader, or a
tool that just finished) drains the state machine and writes under one lock, so the
order the state machine chose is the order on the wire and a tool output plus its
``response.create`` leave in a single write.
"""

from __future__ import annotations

import base64
import itertools
import logging
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from . import _events as ev
from ._errors import (
    ConfigurationError,
    ConnectionClosed,
    RTAgentError,
    ServerError,
    SessionClosed,
    TransportError,
)
from ._invoke import ToolContext, ToolResult
from ._notices import (
    ConnectionLost,
    FrameSkipped,
    Notice,
    Reconnected,
    ToolFinished,
    ToolStarted,
    ToolTurnLatency,
)
from ._retry import RetryPolicy, retry_call
from ._session import ResumeReport, Session, ToolCall
from ._tools import OnInterrupt, ToolRegistry
from ._transport import WebSocket, WebSocketConfig
from ._transport import connect as ws_connect

if TYPE_CHECKING:
    from ._agent import Agent
    from ._plugins import PluginFolder

__all__ = ["DEFAULT_URL", "RealtimeSession", "connect"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://api.openai.com/v1/realtime"
_DEFAULT_MODEL = "gpt-realtime"
# Sessions end at 60 minutes (PROTOCOL.md §1); roll over well before the server cuts in.
_DEFAULT_MAX_DURATION = 55 * 60.0
_ROLLOVER_MARGIN = 60.0
_EVENT_BUFFER = 4096

SessionEvent = ev.ServerEvent | Notice

# Server events nothing in the runtime reacts to. While nobody iterates the session,
# frames of these types are dropped before parsing: a tool turn carries about nine.
_UNOBSERVED = frozenset({
    "rate_limits.updated",
    "conversation.created",
    "response.output_item.added",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
})


class _TurnWaiter:
    """One ask(): set when the response chain that answers it is complete."""

    __slots__ = ("done", "error", "text")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.text = ""
        self.error: BaseException | None = None


class _SessionExpired(Exception):
    """The server ended the session at its maximum duration (``session_expired``)."""


class RealtimeSession:
    """A live Realtime session for one agent. Create it with :func:`connect`.

    Tool calls are run and answered on their own; use :meth:`ask` for request/response
    code, or iterate the session for every server event and runtime notice.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        url: str,
        model: str,
        headers: list[tuple[str, str]],
        retry: RetryPolicy,
        reconnect: bool,
        max_duration: float,
        planned_rollover: bool,
        ws_config: WebSocketConfig,
        audio_chunk_ms: int,
    ) -> None:
        self.agent = agent
        self.tools: ToolRegistry = agent.load_tools()
        self._url = url
        self._headers = headers
        self._retry = retry
        self._reconnect = reconnect
        self._max_duration = max_duration
        self._planned_rollover = planned_rollover
        self._ws_config = ws_config
        self._chunk_bytes = max(48, audio_chunk_ms * 48)
        config = agent.session_config(self.tools)
        config["model"] = model  # the one in the URL: a session's model cannot change
        self._core = Session(config, interrupt_policy=self._interrupt_policy)
        self._ws: WebSocket | None = None
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._tg: anyio.abc.TaskGroup | None = None
        self._tool_scopes: dict[str, anyio.CancelScope] = {}
        self._subscribers: list[MemoryObjectSendStream[SessionEvent]] = []
        self._audio_sinks: list[Callable[[bytes], object]] = []
        self._audio_streams: list[MemoryObjectSendStream[bytes]] = []
        self._waiters: dict[int, _TurnWaiter] = {}
        self._turn_ids = itertools.count(1)
        self._last_text = ""
        self._latency_pending: list[tuple[str, float, float]] = []
        self._played: tuple[str, int] | None = None
        self._stop = anyio.Event()
        self._user_closed = False
        self._closed_error: BaseException | None = None
        self._rollover_due = math.inf
        self._rollover = False
        self._resume_report = ResumeReport(0, 0, 0, ())
        self.server_session: dict[str, Any] = {}
        self.reconnects = 0
        self.skipped_frames = 0

    # -- public API --------------------------------------------------------------------------

    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation as this client knows it (what a reconnect replays)."""
        return list(self._core.history.values())

    @property
    def config(self) -> dict[str, Any]:
        """The session config as last sent."""
        return self._core.config

    async def ask(self, text: str) -> str:
        """Send a user message, run every tool round, return the final assistant text.

        Raises:
            ServerError: the response failed or the server refused the request.
            ReconnectFailed: the connection was lost and could not be restored.
        """
        self._check_open()
        turn = next(self._turn_ids)
        waiter = self._waiters[turn] = _TurnWaiter()
        try:
            self._core.user_text(text)
            # The turn follows this request through its tool rounds to the final answer,
            # so concurrent ask()/send_text() calls each get their own answer.
            self._core.request_response(turns={turn})
            await self._flush()
            await waiter.done.wait()
        finally:
            self._waiters.pop(turn, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.text

    async def send_text(self, text: str) -> None:
        """Add a user message and request a response; returns at once."""
        self._check_open()
        self._core.user_text(text)
        self._core.request_response()
        await self._flush()

    async def add_item(self, item: Mapping[str, Any]) -> str:
        """Add any conversation item (e.g. a system message) without requesting a response."""
        self._check_open()
        item_id = self._core.add_item(dict(item))
        await self._flush()
        return item_id

    async def create_response(self, **overrides: Any) -> None:
        """Request a response (with per-response overrides); queued while one is active.

        ``conversation="none"`` makes an out-of-band response that skips the queue.
        """
        self._check_open()
        options = dict(overrides) if overrides else None
        if options and options.get("conversation") == "none":
            metadata = dict(options.get("metadata") or {})
            metadata["rtagent_oob"] = "1"
            options["metadata"] = metadata
        self._core.request_response(options)
        await self._flush()

    async def cancel(self) -> None:
        """Interrupt: cancel the active response and apply each running tool's ``on_interrupt``."""
        self._interrupt(server_cancels=False)
        await self._flush()

    async def send_audio(self, pcm16: bytes) -> None:
        """Stream PCM16 (24 kHz mono) input audio, in chunks, base64-encoded."""
        self._check_open()
        self._core.append_audio(pcm16, self._chunk_bytes)
        await self._flush()

    async def commit_audio(self) -> None:
        self._core.commit_audio()
        await self._flush()

    async def clear_audio(self) -> None:
        self._core.clear_audio()
        await self._flush()

    def report_playback(self, item_id: str, played_ms: int) -> None:
        """Tell the session how much of an assistant audio item the user has heard.

        On barge-in the item is truncated there, so the model's context matches what
        was heard (``conversation.item.truncate``).
        """
        self._played = (item_id, played_ms)

    def add_audio_sink(self, sink: Callable[[bytes], object]) -> Callable[[], None]:
        """Call ``sink(pcm16_chunk)`` for each chunk of assistant audio as it arrives.

        The cheapest way to play or record audio: the sink runs in the reader, once per
        ``response.output_audio.delta``, so it must not block. Returns a function that
        removes the sink.
        """
        self._audio_sinks.append(sink)
        return lambda: self._audio_sinks.remove(sink) if sink in self._audio_sinks else None

    async def audio_output(self) -> AsyncIterator[bytes]:
        """Decoded PCM16 chunks of assistant audio, as they arrive."""
        if self._stop.is_set():
            return
        send, receive = anyio.create_memory_object_stream[bytes](_EVENT_BUFFER)
        remove = self.add_audio_sink(partial(_send_nowait, send))
        self._audio_streams.append(send)  # closed when the session ends
        try:
            async with receive:
                async for chunk in receive:
                    yield chunk
        finally:
            remove()
            self._audio_streams.remove(send)
            send.close()

    async def update(self, **session_fields: Any) -> None:
        """Change session settings live (``session.update`` with just these fields)."""
        self._core.update_config(session_fields)
        await self._flush()

    async def update_tools(self, tools: ToolRegistry | Iterable[Any]) -> None:
        """Replace the session's tools live."""
        registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.tools = registry
        self._core.update_config({"tools": registry.schemas()})
        await self._flush()

    async def follow_plugins(self, folder: PluginFolder, *, interval: float = 1.0) -> None:
        """Keep the session's tools in step with a plugin folder; runs until cancelled.

        Each change found by :meth:`PluginFolder.watch` (files added, edited or removed)
        is applied live with ``session.update``. A broken edit keeps the last good tools
        of that file, as the folder reports.
        """
        if not folder.registry.names():
            folder.load()
        own = [t for t in self.tools if t.name not in folder.registry]
        async for report in folder.watch(interval):
            for path, message in report.failed.items():
                logger.warning("plugin %s failed to reload: %s", path, message)
            await self.update_tools(ToolRegistry(own).merge(report.registry, replace=True))

    async def handoff(self, agent: Agent) -> None:
        """Hand the conversation to another agent: its instructions and tools take over."""
        tools = agent.load_tools()
        config = agent.session_config(tools)
        config.pop("model", None)  # the model of a session cannot change
        self.agent = agent
        self.tools = tools
        self._core.update_config(config)
        await self._flush()

    async def aclose(self) -> None:
        """End the session (close handshake); tools still running are cancelled."""
        if self._stop.is_set():
            return
        self._user_closed = True
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.aclose()

    def __aiter__(self) -> AsyncGenerator[SessionEvent, None]:
        return self._events()

    async def _events(self) -> AsyncGenerator[SessionEvent, None]:
        if self._stop.is_set():
            if self._closed_error is not None and not self._user_closed:
                raise self._closed_error
            return
        send, receive = anyio.create_memory_object_stream[SessionEvent](_EVENT_BUFFER)
        self._subscribers.append(send)
        try:
            async with receive:
                async for event in receive:
                    yield event
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            send.close()
        if self._closed_error is not None and not self._user_closed:
            raise self._closed_error

    # -- connection lifecycle ----------------------------------------------------------------

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, and reconnect until closed or the retry policy gives up."""
        attempt = 0
        planned = False
        try:
            while not self._stop.is_set():
                stack = AsyncExitStack()
                try:
                    ws = await retry_call(self._retry, self._open, stack, sleep=self._backoff)
                except BaseException as exc:
                    await stack.aclose()
                    if self._stop.is_set() and attempt > 0:
                        return  # closed while reconnecting
                    if attempt == 0 or not isinstance(exc, Exception):
                        raise  # the first connect reports straight to connect()'s caller
                    self._fail(exc)
                    return
                if self._stop.is_set():  # closed while the new connection was opening
                    await stack.aclose()
                    return
                async with stack:
                    if attempt == 0:
                        task_status.started()
                    else:
                        self.reconnects += 1
                        r = self._resume_report
                        self._emit(Reconnected(attempt, planned, r.items_restored, r.outputs_restored,
                                               r.requests_pending, r.lost))
                    attempt += 1
                    reason = await self._serve(ws)
                if reason is None:
                    return
                planned = self._rollover
                self._rollover = False
                # Tools keep running across reconnects: their outputs are replayed.
                cut = self._core.connection_lost()
                self._settle()
                if not planned:
                    logger.warning("connection lost: %s", reason)
                    self._emit(ConnectionLost(reason, tuple(cut)))
                if not self._reconnect:
                    self._fail(ConnectionClosed(None, reason))
                    return
        finally:
            self._stop.set()
            for send in self._subscribers:
                send.close()
            for stream in self._audio_streams:
                stream.close()
            for waiter in self._waiters.values():
                if not waiter.done.is_set():
                    waiter.error = waiter.error or self._closed_error or SessionClosed("session closed")
                    waiter.done.set()

    async def _serve(self, ws: WebSocket) -> str | None:
        """Run the read loop on one connection; the reason it ended, or None when closing."""
        try:
            await self._read_loop(ws)
            reason = "planned rollover" if self._rollover else "server closed the connection"
        except (TransportError, _SessionExpired) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:
            # A bug of ours must not kill the caller's task group; end the session clearly.
            logger.exception("session loop failed")
            self._fail(exc)
            return None
        finally:
            self._ws = None
        return None if self._stop.is_set() else reason

    async def _backoff(self, seconds: float) -> None:
        """Sleep between attempts, but wake at once when the session is closed."""
        with anyio.move_on_after(seconds):
            await self._stop.wait()

    async def _open(self, stack: AsyncExitStack) -> WebSocket:
        """Open a connection and bring it to a usable state (config + conversation in)."""
        await stack.aclose()
        if self._stop.is_set():
            raise SessionClosed("session closed while reconnecting")
        ws = await stack.enter_async_context(
            ws_connect(self._url, headers=self._headers, config=self._ws_config)
        )
        with anyio.fail_after(self._ws_config.open_timeout):
            created = await self._expect(ws, "session.created")
        assert isinstance(created, ev.SessionCreated)
        self.server_session = created.session
        expires_at = created.session.get("expires_at")
        limit = self._max_duration
        if isinstance(expires_at, (int, float)) and expires_at > 0:
            limit = min(limit, expires_at - time.time())
        # Leave a margin before the end (a tenth of very short sessions, as in tests).
        margin = min(_ROLLOVER_MARGIN, 0.1 * max(limit, 0.0))
        self._rollover_due = time.monotonic() + max(0.0, limit - margin)
        self._resume_report = self._core.resume()
        self._ws = ws
        await self._flush()
        with anyio.fail_after(self._ws_config.open_timeout):
            updated = await self._expect(ws, "session.updated")
        assert isinstance(updated, ev.SessionUpdated)
        self.server_session = updated.session
        self._core.start_queued()
        await self._flush()
        return ws

    async def _expect(self, ws: WebSocket, kind: str) -> ev.ServerEvent:
        """Read until an event of ``kind``; other events still go through the state machine."""
        while True:
            event = self._parse(await ws.recv())
            if event is None:
                continue
            if event.type == kind:
                self._emit(event)
                return event
            if isinstance(event, ev.Error):
                # Errors here mean our config was refused: a developer mistake, not retryable.
                err = event.error
                raise ServerError(err.message, type=err.type, code=err.code, param=err.param, event_id=err.event_id)
            self._core.receive(event)
            self._emit(event)

    def _fail(self, exc: BaseException) -> None:
        """End the session for good: every waiter and later call gets ``exc``."""
        self._closed_error = exc
        logger.error("session ended: %s", exc)
        for waiter in self._waiters.values():
            waiter.error = exc
            waiter.done.set()

    def _check_open(self) -> None:
        if self._closed_error is not None:
            raise SessionClosed(f"session ended: {self._closed_error}") from self._closed_error
        if self._stop.is_set():
            raise SessionClosed("session closed")

    # -- the read loop -----------------------------------------------------------------------

    async def _read_loop(self, ws: WebSocket) -> None:
        core = self._core
        watch = anyio.CancelScope()
        assert self._tg is not None
        if self._planned_rollover:
            self._tg.start_soon(self._rollover_watch, ws, watch)
        try:
            while True:
                try:
                    frame = await ws.recv()
                except ConnectionClosed:
                    if self._stop.is_set() or self._rollover:
                        return
                    raise
                if not self._subscribers and ev.peek_type(frame) in _UNOBSERVED:
                    continue
                event = self._parse(frame)
                if event is None:
                    continue
                core.receive(event)
                self._after(event)
                if core.has_work:
                    await self._flush()
        finally:
            watch.cancel()

    def _parse(self, frame: str | bytes) -> ev.ServerEvent | None:
        try:
            return ev.parse_server_event(frame)
        except RTAgentError as exc:
            # One bad frame must not end a session: log, count, skip.
            self.skipped_frames += 1
            logger.warning("skipped a frame: %s", exc)
            self._emit(FrameSkipped(str(exc)))
            return None

    def _after(self, event: ev.ServerEvent) -> None:
        """Runtime-level reactions: notices, audio, turn completion, barge-in."""
        kind = event.type
        if kind == "response.output_audio.delta":
            assert isinstance(event, ev.ResponseOutputAudioDelta)
            if self._audio_sinks:
                chunk = base64.b64decode(event.delta)
                for sink in tuple(self._audio_sinks):
                    try:
                        sink(chunk)
                    except Exception:
                        # A broken player must not end the conversation: drop that sink.
                        logger.exception("audio sink %r failed; removed", sink)
                        if sink in self._audio_sinks:
                            self._audio_sinks.remove(sink)
            self._first_delta(event.response_id)
        elif kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
            assert isinstance(event, (ev.ResponseOutputTextDelta, ev.ResponseOutputAudioTranscriptDelta))
            self._first_delta(event.response_id)
        elif kind == "response.done":
            assert isinstance(event, ev.ResponseDone)
            self._response_done(event.response)
        elif kind == "input_audio_buffer.speech_started":
            self._interrupt(server_cancels=self._server_interrupts())
        self._emit(event)
        if kind == "error":
            assert isinstance(event, ev.Error)
            self._server_error(event.error)

    def _response_done(self, response: ev.Response) -> None:
        if response.metadata and response.metadata.get("rtagent_oob"):
            return
        self._last_text = "".join(item.text() for item in response.output if item.type == "message")

    def _settle(self) -> None:
        """Answer the turns the state machine reports complete (or failed).

        A turn completes when the response answering it has no tool round, or when
        its round closes without a reply (the user interrupted), so ask() never waits
        forever, and concurrent turns never get each other's answers.
        """
        for turns, detail in self._core.finished_turns():
            error = None
            if detail is not None:
                error = ServerError(detail.message, type=detail.type, code=detail.code,
                                    param=detail.param, event_id=detail.event_id)
            for turn in turns:
                waiter = self._waiters.get(turn)
                if waiter is not None and not waiter.done.is_set():
                    waiter.text = self._last_text
                    waiter.error = error
                    waiter.done.set()

    def _server_error(self, err: ev.ErrorDetail) -> None:
        logger.warning(
            "server error %s (%s): %s [caused by client event %s]",
            err.code, err.type, err.message, err.event_id,
        )
        if err.code == "session_expired":
            raise _SessionExpired(err.message)

    def _server_interrupts(self) -> bool:
        """Whether server VAD cancels the response itself on speech (``interrupt_response``)."""
        audio = self._core.config.get("audio") or {}
        td = (audio.get("input") or {}).get("turn_detection")
        if not isinstance(td, dict):
            # Server default is server_vad with interrupt_response true when not configured.
            return td is not None or "turn_detection" not in (audio.get("input") or {})
        return bool(td.get("interrupt_response", True))

    def _interrupt(self, *, server_cancels: bool) -> None:
        self._core.interrupt(server_cancels=server_cancels)
        # Audio arrives faster than real time, so the item being heard has often been
        # fully received (response.done) by now: truncate what was reported as played.
        if self._played is not None:
            item_id, played_ms = self._played
            self._played = None
            self._core.truncate_audio(item_id, played_ms)

    def _first_delta(self, response_id: str) -> None:
        if self._latency_pending and not self._core.is_oob(response_id):
            now = time.perf_counter()
            for call_id, ready_at, posted_at in self._latency_pending:
                self._emit(ToolTurnLatency(call_id, posted_at - ready_at, now - ready_at))
            self._latency_pending = []

    def _emit(self, event: SessionEvent) -> None:
        for send in self._subscribers:
            _send_nowait(send, event)

    # -- sending -----------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Send what the state machine wants sent; start and cancel tool calls."""
        core = self._core
        self._settle()
        for call_id in core.calls_to_cancel():
            scope = self._tool_scopes.get(call_id)
            if scope is not None:
                scope.cancel()
        calls = core.calls_to_run()
        if calls:
            assert self._tg is not None
            for call in calls:
                self._tg.start_soon(self._run_tool, call)
        async with self._send_lock:
            batch = core.data_to_send()
            ws = self._ws
            if not batch or ws is None:
                return
            try:
                await ws.send_many([ev.encode_client_event(e) for e in batch])
            except TransportError as exc:
                # The reader sees the same failure and reconnects; the conversation
                # mirror already holds every item in `batch`.
                logger.info("send failed (%s); will be restored on reconnect", exc)

    async def _run_tool(self, call: ToolCall) -> None:
        self._emit(ToolStarted(call.call_id, call.name, call.arguments))
        context = ToolContext(call_id=call.call_id, tool_name=call.name, session=self, agent=self.agent)
        started = time.perf_counter()
        result: ToolResult | None = None
        with anyio.CancelScope() as scope:
            self._tool_scopes[call.call_id] = scope
            try:
                result = await self.tools.invoke(call.name, call.arguments, context)
            except Exception as exc:  # invoke never raises for tool faults; belt and braces
                logger.exception("tool %s (call %s) crashed the invoker", call.name, call.call_id)
                result = ToolResult(output=f"error: {call.name} failed: {exc}", ok=False, error="exception")
        self._tool_scopes.pop(call.call_id, None)
        if result is None:
            # Cancelled by interruption (on_interrupt="cancel") or session shutdown.
            if self._stop.is_set():
                return
            result = ToolResult.cancelled(call.name)
        duration = time.perf_counter() - started
        self._core.tool_finished(call.call_id, result.output)
        await self._flush()
        posted = time.perf_counter()
        self._latency_pending.append((call.call_id, call.ready_at, posted))
        self._emit(
            ToolFinished(call.call_id, call.name, call.arguments, result.output, result.ok, result.error, duration)
        )

    def _interrupt_policy(self, name: str) -> OnInterrupt:
        tool = self.tools.get(name)
        return tool.on_interrupt if tool is not None else "finish"

    async def _rollover_watch(self, ws: WebSocket, scope: anyio.CancelScope) -> None:
        """Close this connection between responses before the session's maximum duration."""
        with scope:
            await anyio.sleep_until(_to_anyio_time(self._rollover_due))
            # Wait for a gap between responses; this runs once an hour, so a short poll
            # costs less than signalling idleness from the hot path.
            while not self._core.idle:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            logger.info("planned rollover before the session's maximum duration")
            self._rollover = True
            await ws.aclose()


def _to_anyio_time(monotonic_deadline: float) -> float:
    if math.isinf(monotonic_deadline):
        return math.inf
    return anyio.current_time() + max(0.0, monotonic_deadline - time.monotonic())


def _send_nowait(send: MemoryObjectSendStream[Any], item: Any) -> None:
    try:
        send.send_nowait(item)
    except anyio.WouldBlock:
        logger.warning("a subscriber is %d events behind; dropping an event for it", _EVENT_BUFFER)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


def build_url(url: str | None, model: str) -> str:
    """The endpoint with ``model`` in its query string (unless it already has one)."""
    base = url or DEFAULT_URL
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query))
    if "model" not in query and "call_id" not in query:
        query["model"] = model
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _auth_headers(
    url: str | None,
    api_key: str | None,
    azure_api_key: str | None,
    azure_ad_token: str | None,
    extra: Mapping[str, str] | None,
) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    if azure_api_key:
        headers.append(("api-key", azure_api_key))
    elif azure_ad_token:
        headers.append(("Authorization", f"Bearer {azure_ad_token}"))
    else:
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if key:
            headers.append(("Authorization", f"Bearer {key}"))
        elif url is None:
            raise ConfigurationError(
                "no API key: pass api_key=... or set OPENAI_API_KEY (or point url= at a local server)"
            )
    headers.extend((extra or {}).items())
    return headers


@asynccontextmanager
async def connect(
    agent: Agent,
    *,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    azure_api_key: str | None = None,
    azure_ad_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    reconnect: bool = True,
    max_duration: float = _DEFAULT_MAX_DURATION,
    planned_rollover: bool = True,
    ws_config: WebSocketConfig | None = None,
    audio_chunk_ms: int = 100,
) -> AsyncIterator[RealtimeSession]:
    """Open a live session for ``agent``.

    Args:
        agent: the agent whose instructions, tools and settings configure the session.
        url: the Realtime endpoint (default: OpenAI's). ``model`` is added to its query.
        api_key: bearer key (default: ``OPENAI_API_KEY``); required for OpenAI's endpoint.
        model: the model (default: the agent's ``model``).
        azure_endpoint: ``https://<resource>.openai.azure.com`` for Azure OpenAI (GA path).
        azure_deployment: the Azure deployment name (sent as ``model``).
        azure_api_key: Azure key, sent as the ``api-key`` header.
        azure_ad_token: an Entra ID token, sent as a bearer token instead.
        headers: extra handshake headers.
        retry: backoff and limits for the first connect and each reconnect.
        reconnect: reconnect and restore the conversation when the connection drops.
        max_duration: roll over to a new connection between responses before this many
            seconds (the server's ``expires_at`` wins when earlier).
        planned_rollover: set False to keep each connection until the server ends it
            (``session_expired``), then reconnect; nothing is lost either way.
        ws_config: WebSocket limits and keepalive.
        audio_chunk_ms: size of ``input_audio_buffer.append`` chunks for :meth:`send_audio`.

    Raises:
        ConfigurationError: no API key for OpenAI's endpoint.
        HandshakeError: the server refused the connection (e.g. 401), not retried.
        ReconnectFailed: the retry policy gave up.
    """
    chosen_model = model or getattr(agent, "model", None) or _DEFAULT_MODEL
    if azure_endpoint:
        parts = urlsplit(azure_endpoint)
        url = urlunsplit(("wss", parts.netloc, "/openai/v1/realtime", "", ""))
        chosen_model = azure_deployment or chosen_model
    auth = _auth_headers(url, api_key, azure_api_key, azure_ad_token, headers)
    session = RealtimeSession(
        agent,
        url=build_url(url, chosen_model),
        model=chosen_model,
        headers=auth,
        retry=retry or RetryPolicy(),
        reconnect=reconnect,
        max_duration=max_duration,
        planned_rollover=planned_rollover,
        ws_config=ws_config or WebSocketConfig(),
        audio_chunk_ms=audio_chunk_ms,
    )
    # Errors from connecting or from the caller's block are re-raised outside the task
    # group, so callers see them as they are rather than wrapped in an ExceptionGroup.
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        session._tg = tg
        try:
            await tg.start(session._run)
        except BaseException as exc:
            error = exc
            tg.cancel_scope.cancel()
        else:
            try:
                yield session
            except BaseException as exc:
                error = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await session.aclose()
                tg.cancel_scope.cancel()
    if error is not None:
        raise error
