"""The terminal chat behind ``rtagent chat``: stream replies, show tool calls, handle Ctrl-C.

One task prints every session event as it arrives; the main task feeds user turns (lines
typed or piped, or a WAV file) and waits for each turn's full answer, tool rounds
included. A turn is over at a ``response.done`` that asks for no tool call (or was
cancelled/failed). Lines are read by :mod:`rtagent._console_input` (prompt_toolkit on a
terminal), and printed by :mod:`rtagent._terminal`.

Exit status: 0 when every turn was answered, 1 when one failed, 130 when the user quit
with Ctrl-C. Ctrl-C during a reply cancels it; a second one, or one at an empty prompt,
quits. Connection attempts that fail are reported one line each (from the
``rtagent.retry`` log), and a tool's unexpected exception is shown briefly under its line
(type, message and last frame, from the ``rtagent.tools`` log).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc
import anyio.lowlevel

from . import _events as ev
from ._agent import DEFAULT_MODEL, Agent
from ._console_input import INTERRUPTED, LineReader, open_line_reader
from ._endpoint import Endpoint
from ._errors import ConfigurationError, SessionClosed, first_error
from ._notices import ConnectionLost, FrameSkipped, Reconnected, ToolFinished, ToolStarted
from ._runtime import RealtimeSession, connect
from ._runtime.audio import decode_audio
from ._terminal import ToolFailure, Transcript, format_duration
from ._wav import read_wav, write_wav

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["INTERRUPTED_STATUS", "ChatOptions", "Transcript", "prepare_agent", "run_chat"]

logger = logging.getLogger("rtagent.chat")

_LOCAL_KEY = "sk-local"

INTERRUPTED_STATUS = 130
"""Exit status when the user quit with Ctrl-C (128 + SIGINT, as shells report it)."""


@dataclass
class ChatOptions:
    """What ``rtagent chat`` was asked to do.

    Attributes:
        connect: Keyword arguments for :func:`rtagent.connect` besides the endpoint (retry...).
        endpoint: Where to connect; None starts the embedded local server and talks to it.
        model: The model for the embedded local server (default: the agent's).
        local_reason: Why the local server is used, for the one line that says so.
        audio_in: A WAV file sent as the user's one turn (then the chat ends).
        audio_out: A WAV file that receives every spoken reply.
        mic: Live microphone and speaker (needs the ``voice`` extra).
        inspect: Serve the live inspector page while the chat runs.
        inspect_port: Its port on 127.0.0.1 (0 picks a free one).
        rich_input: Read with prompt_toolkit (None: on a terminal, when installed).
        show_logs: Logs reach the logging setup (``--debug``, ``RTAGENT_LOG``) besides
            the chat's own lines about attempts and tool failures.
    """

    connect: dict[str, Any] = field(default_factory=dict)
    endpoint: Endpoint | None = None
    model: str | None = None
    local_reason: str = "--local given"
    audio_in: Path | None = None
    audio_out: Path | None = None
    mic: bool = False
    inspect: bool = False
    inspect_port: int = 0
    rich_input: bool | None = None
    show_logs: bool = False


def prepare_agent(agent: Agent, *, audio: bool, manual_turns: bool) -> None:
    """Adjust ``agent`` for the terminal: text replies unless audio is wanted.

    A WAV question is one committed buffer, so server VAD is turned off for it
    (``turn_detection: null``: the chat commits and asks for the response itself).
    """
    agent.output_modalities = ["audio"] if audio else ["text"]
    if audio:
        agent.output_audio_format = "pcm16"
    if manual_turns:
        agent.input_audio_format = "pcm16"
        agent.turn_detection = None


async def run_chat(
    agent: Agent,
    options: ChatOptions,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run a chat with ``agent``; return the exit status (0 ok, 1 a turn failed, 130 Ctrl-C).

    Raises:
        ConfigurationError: An unreadable WAV file, or a missing optional dependency.
        HandshakeError, ReconnectFailed: The connection could not be opened or restored.
    """
    stdin = stdin or sys.stdin
    out, err = stdout or sys.stdout, stderr or sys.stderr
    live = _isatty(out)
    question = read_wav(options.audio_in) if options.audio_in is not None else None
    if options.audio_out is not None and not options.audio_out.parent.is_dir():
        raise ConfigurationError(f"{options.audio_out}: folder {options.audio_out.parent} does not exist")
    prepare_agent(
        agent, audio=options.audio_out is not None or options.mic, manual_turns=question is not None
    )
    async with AsyncExitStack() as stack:
        reader: LineReader | None = None
        if question is None:
            reader = await stack.enter_async_context(
                open_line_reader(stdin, out, err, rich=options.rich_input)
            )
            out, err = reader.out, reader.err
        transcript = Transcript(out, err, live=live)
        failures = stack.enter_context(_bridge_logs(transcript, quiet=not options.show_logs))
        inspector = None
        if options.inspect:
            from ._inspect import open_inspector  # the page's server is loaded only when asked

            inspector = await stack.enter_async_context(
                open_inspector(port=options.inspect_port, title=type(agent).__name__)
            )
            transcript.note(f"inspector: {inspector.url}")
        endpoint = options.endpoint
        if endpoint is None:
            from .local import LocalRealtimeServer  # the server is optional weight

            server = await stack.enter_async_context(LocalRealtimeServer())
            model = agent.model if isinstance(agent.model, str) else DEFAULT_MODEL
            endpoint = Endpoint.resolve(
                url=server.url, api_key=_LOCAL_KEY, model=options.model, default_model=model
            )
            transcript.note(
                f"{options.local_reason}: using the embedded local server at {server.url} "
                "(rule-based replies, not a model)"
            )
        else:
            transcript.note(f"connecting to {describe_endpoint(endpoint)}")
        if inspector is not None:
            inspector.connecting(describe_endpoint(endpoint))
        session = await stack.enter_async_context(
            connect(agent, endpoint=endpoint, **options.connect)
        )
        if inspector is not None:
            await inspector.follow(session)
        chat = _Chat(session, transcript, failures, collect_audio=options.audio_out is not None)
        try:
            if question is not None:
                return await chat.run(lambda: chat.audio_turn(question))
            assert reader is not None
            if options.mic:
                return await chat.run(lambda: chat.mic_loop(reader))
            return await chat.run(lambda: chat.text_loop(reader))
        finally:
            if options.audio_out is not None:
                write_wav(options.audio_out, bytes(chat.audio))
                transcript.note(
                    f"wrote {len(chat.audio) / 48000:.1f} s of reply audio to {options.audio_out}"
                )
    raise AssertionError("unreachable")  # pragma: no cover


def describe_endpoint(endpoint: Endpoint) -> str:
    """The WebSocket URL without credentials or query, and the model: safe to print."""
    parts = urlsplit(endpoint.websocket_url())
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{urlunsplit((parts.scheme, host, parts.path, '', ''))} (model {endpoint.model})"


class _Turn:
    __slots__ = ("cancel_requested", "done", "failed")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.cancel_requested = False
        self.failed = False


class _Chat:
    def __init__(
        self,
        session: RealtimeSession,
        transcript: Transcript,
        failures: dict[str, ToolFailure],
        *,
        collect_audio: bool,
    ) -> None:
        self.session = session
        self.t = transcript
        self.tool_failures = failures
        self.collect_audio = collect_audio
        self.audio = bytearray()
        self.turn: _Turn | None = None
        self.active = 0
        self.failures = 0
        self.interrupted = False
        self.playback: _Playback | None = None
        self._scope: anyio.CancelScope | None = None

    async def run(self, main: Callable[[], Awaitable[None]]) -> int:
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                tg.start_soon(self._consume)
                tg.start_soon(self._watch_sigint)
                if self.t.live:
                    tg.start_soon(self._tick)
                # Let the consumer subscribe before the first user turn can produce events.
                await anyio.lowlevel.checkpoint()
                await main()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        self.t.end_line()
        if self.interrupted:
            return INTERRUPTED_STATUS
        return 1 if self.failures else 0

    def _quit(self) -> None:
        """Ctrl-C with nothing left to cancel: end the chat with status 130."""
        self.interrupted = True
        self.t.end_line()
        if self._scope is not None:
            self._scope.cancel()

    # -- user turns ----------------------------------------------------------------------

    async def _turn(self, start: Callable[[], Awaitable[None]]) -> None:
        turn = _Turn()
        self.turn = turn
        try:
            await start()
            await turn.done.wait()
        finally:
            self.turn = None
        if turn.failed:
            self.failures += 1

    async def text_loop(self, reader: LineReader) -> None:
        plain_prompt = reader.interactive and not reader.rich
        while True:
            if plain_prompt:
                self.t.prompt()
            line = await reader.read()
            self.t.answered()
            if line is INTERRUPTED:  # Ctrl-C at an empty prompt
                self._quit()
                return
            if line is None:  # EOF (Ctrl-D)
                if plain_prompt:
                    self.t.end_line()
                    self.t.out.write("\n")
                return
            assert isinstance(line, str)
            text = line.strip()
            if not text:
                continue
            if not reader.interactive:
                self.t.user(text)
            await self._turn(partial(self.session.send_text, text))

    async def audio_turn(self, pcm16: bytes) -> None:
        async def start() -> None:
            # No VAD (see prepare_agent): append, commit, then one response.create.
            await self.session.audio.send(pcm16)
            await self.session.audio.commit()
            await self.session.create_response()

        self.t.user(f"[{len(pcm16) / 48000:.1f} s of audio]")
        await self._turn(start)

    async def mic_loop(self, reader: LineReader) -> None:
        async with _Playback.open(self.session) as playback:
            self.playback = playback
            self.t.note("listening on the microphone; Ctrl-C twice or Ctrl-D to stop")
            await self.text_loop(reader)

    # -- events --------------------------------------------------------------------------

    async def _consume(self) -> None:
        try:
            async for event in self.session:
                self._show(event)
        except SessionClosed:
            return

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(0.1)
            if self.t.tools_running:
                self.t.tick()

    def _show(self, event: Any) -> None:
        kind = event.type
        if kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
            self.t.delta(event.delta)
        elif kind == "response.output_audio.delta":
            chunk = decode_audio(event.delta)
            if chunk is None:
                logger.warning("skipped an audio delta that is not valid base64")
                return
            if self.collect_audio:
                self.audio += chunk
            if self.playback is not None:
                self.playback.play(event.item_id, chunk)
        elif kind == "input_audio_buffer.speech_started":
            if self.playback is not None:
                self.playback.stop()  # barge-in: drop what has not been heard
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.t.user(event.transcript)
        elif kind == "response.created":
            self.active += 1
        elif kind == "response.done":
            assert isinstance(event, ev.ResponseDone)
            self.active = max(0, self.active - 1)
            self._response_done(event.response)
        elif kind == "error":
            assert isinstance(event, ev.Error)
            code = f" [{event.error.code}]" if event.error.code else ""
            self.t.note(f"server error{code}: {event.error.message}")
            if self.turn is not None and self.active == 0:
                # The request this turn made was refused: no response will come.
                self._finish(failed=True)
        elif isinstance(event, ToolStarted):
            self.t.tool_started(event)
        elif isinstance(event, ToolFinished):
            failure = self.tool_failures.pop(event.call_id, None)
            self.t.tool(event, failure if event.error == "exception" else None)
        elif isinstance(event, ConnectionLost):
            self.t.note(f"connection lost ({event.reason}); reconnecting")
        elif isinstance(event, Reconnected):
            what = "rolled over to a new connection" if event.planned else "reconnected"
            self.t.note(
                f"{what} (attempt {event.attempt}; {event.items_restored} items, "
                f"{event.outputs_restored} tool outputs restored)"
            )
        elif isinstance(event, FrameSkipped):
            self.t.note(f"skipped a frame: {event.reason}")

    def _response_done(self, response: ev.Response) -> None:
        self.t.end_line()
        if response.status == "failed":
            detail = (response.status_details or {}).get("error") or {}
            self.t.note(f"response failed: {detail.get('message') or 'no reason given'}")
            self._finish(failed=True)
        elif (
            response.status != "completed"
            or (self.turn is not None and self.turn.cancel_requested)
            or not any(item.type == "function_call" for item in response.output)
        ):
            self._finish()
        # else: the runtime posts the tool outputs and asks for the next response.

    def _finish(self, *, failed: bool = False) -> None:
        turn = self.turn
        if turn is not None:
            turn.failed = turn.failed or failed
            turn.done.set()

    async def _watch_sigint(self) -> None:
        """First Ctrl-C cancels the response in progress; another (or one when idle) quits."""
        try:
            receiver = anyio.open_signal_receiver(signal.SIGINT)
            with receiver as signals:
                async for _ in signals:
                    turn = self.turn
                    if turn is None or turn.cancel_requested:
                        self._quit()
                        return
                    turn.cancel_requested = True
                    self.t.note("cancelled (Ctrl-C again to quit)")
                    await self.session.cancel()
                    if self.active == 0:
                        self._finish()
        except (NotImplementedError, RuntimeError, ValueError):
            # No signal support here (e.g. asyncio on Windows, or not the main thread):
            # Ctrl-C raises KeyboardInterrupt instead, which ends the chat (status 130).
            return


# -- logs the chat shows as lines ------------------------------------------------------------


@contextmanager
def _bridge_logs(transcript: Transcript, *, quiet: bool) -> Iterator[dict[str, ToolFailure]]:
    """Show failed connection attempts as notes and keep tools' exceptions by call id.

    With ``quiet`` the two loggers stop propagating meanwhile: the chat's lines replace
    their log records (``--debug`` and ``RTAGENT_LOG`` keep the records as well).
    """
    failures: dict[str, ToolFailure] = {}
    bridge = _LogBridge(transcript, failures)
    saved = []
    for name, level in (("rtagent.retry", logging.WARNING), ("rtagent.tools", logging.ERROR)):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(bridge)
        if quiet:
            logger.setLevel(level)
            logger.propagate = False
    try:
        yield failures
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(bridge)
            logger.setLevel(level)
            logger.propagate = propagate


class _LogBridge(logging.Handler):
    def __init__(self, transcript: Transcript, failures: dict[str, ToolFailure]) -> None:
        super().__init__()
        self.transcript = transcript
        self.failures = failures
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            args = record.args if isinstance(record.args, tuple) else ()
            if record.name == "rtagent.retry" and len(args) == 3:
                attempt, error, delay = args
                if threading.get_ident() == self._thread:
                    self.transcript.note(
                        f"connection attempt {attempt} failed: {_one_line(error)}; "
                        f"retrying in {format_duration(float(delay))}"  # type: ignore[arg-type]
                    )
            elif record.name == "rtagent.tools" and record.exc_info and len(args) >= 2:
                error = record.exc_info[1]
                if error is not None:
                    self.failures[str(args[1])] = _tool_failure(error)
        except Exception:
            self.handleError(record)


def _tool_failure(error: BaseException) -> ToolFailure:
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    where = f"{_short_path(last.filename)}:{last.lineno} in {last.name}" if last else "?"
    code = (last.line or "").strip() if last else ""
    return ToolFailure(f"{type(error).__name__}: {_one_line(error)}", where, code)


def _short_path(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def _one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# -- microphone and speaker (optional `voice` extra) ----------------------------------------


class _Playback:
    """Speaker output through sounddevice, with barge-in (drop the queue, report what was heard)."""

    def __init__(self, session: RealtimeSession, sd: Any) -> None:
        self.session = session
        self.buffer = bytearray()
        self.lock = threading.Lock()
        self.item_id: str | None = None
        self.played = 0
        self.stream = sd.RawOutputStream(
            samplerate=24000, channels=1, dtype="int16", blocksize=2400, callback=self._callback
        )

    @classmethod
    @asynccontextmanager
    async def open(cls, session: RealtimeSession) -> AsyncIterator[_Playback]:
        try:
            import sounddevice as sd  # type: ignore[import-not-found,unused-ignore]
        except (ImportError, OSError) as exc:
            raise ConfigurationError(
                f"--mic needs the voice extra: pip install 'rtagent[voice]' ({exc})"
            ) from None
        playback = cls(session, sd)
        chunks: list[bytes] = []
        chunks_lock = threading.Lock()

        def record(indata: Any, frames: int, time: Any, status: Any) -> None:
            with chunks_lock:
                chunks.append(bytes(indata))

        mic = sd.RawInputStream(
            samplerate=24000, channels=1, dtype="int16", blocksize=2400, callback=record
        )

        async def forward() -> None:
            while True:  # server VAD finds the turns in the stream
                with chunks_lock:
                    pending = b"".join(chunks)
                    chunks.clear()
                if pending:
                    await session.audio.send(pending)
                await anyio.sleep(0.05)

        with mic, playback.stream:
            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                try:
                    yield playback
                finally:
                    tg.cancel_scope.cancel()

    def play(self, item_id: str, chunk: bytes) -> None:
        with self.lock:
            if item_id != self.item_id:
                self.item_id, self.played = item_id, 0
            self.buffer += chunk

    def stop(self) -> None:
        with self.lock:
            self.buffer.clear()

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        wanted = len(outdata)
        with self.lock:
            data = bytes(self.buffer[:wanted])
            del self.buffer[:wanted]
            if data and self.item_id is not None:
                self.played += len(data)
                self.session.audio.played(self.item_id, self.played // 48)
        outdata[:] = data + bytes(wanted - len(data))
