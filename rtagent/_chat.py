"""The terminal chat behind ``rtagent chat``: stream replies, show tool calls, handle Ctrl-C.

One task prints every session event as it arrives; the main task feeds user turns (lines of
standard input, or a WAV file) and waits for each turn's full answer, tool rounds included.
A turn is over at a ``response.done`` that asks for no tool call (or was cancelled/failed).

Standard input is read by a daemon thread, so a blocked ``readline()`` never keeps the
process alive once the chat is over.
"""

from __future__ import annotations

import base64
import json
import math
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectSendStream

from . import _events as ev
from ._agent import DEFAULT_MODEL, Agent
from ._endpoint import Endpoint
from ._errors import ConfigurationError, SessionClosed, first_error
from ._notices import ConnectionLost, FrameSkipped, Reconnected, ToolFinished
from ._runtime import RealtimeSession, connect
from ._wav import read_wav, write_wav

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["ChatOptions", "Transcript", "prepare_agent", "run_chat"]

_PROG = "rtagent"
_LOCAL_KEY = "sk-local"


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
    """

    connect: dict[str, Any] = field(default_factory=dict)
    endpoint: Endpoint | None = None
    model: str | None = None
    local_reason: str = "--local given"
    audio_in: Path | None = None
    audio_out: Path | None = None
    mic: bool = False


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
    """Run a chat with ``agent``; return the exit status (0 ok, 1 a turn failed).

    Raises:
        ConfigurationError: An unreadable WAV file, or a missing optional dependency.
        HandshakeError, ReconnectFailed: The connection could not be opened or restored.
    """
    stdin = stdin or sys.stdin
    transcript = Transcript(stdout or sys.stdout, stderr or sys.stderr)
    question = read_wav(options.audio_in) if options.audio_in is not None else None
    if options.audio_out is not None and not options.audio_out.parent.is_dir():
        raise ConfigurationError(f"{options.audio_out}: folder {options.audio_out.parent} does not exist")
    prepare_agent(
        agent, audio=options.audio_out is not None or options.mic, manual_turns=question is not None
    )
    async with AsyncExitStack() as stack:
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
        session = await stack.enter_async_context(
            connect(agent, endpoint=endpoint, **options.connect)
        )
        chat = _Chat(session, transcript, collect_audio=options.audio_out is not None)
        try:
            if question is not None:
                return await chat.run(lambda: chat.audio_turn(question))
            if options.mic:
                return await chat.run(lambda: chat.mic_loop(stdin))
            return await chat.run(lambda: chat.text_loop(stdin))
        finally:
            if options.audio_out is not None:
                write_wav(options.audio_out, bytes(chat.audio))
                transcript.note(
                    f"wrote {len(chat.audio) / 48000:.1f} s of reply audio to {options.audio_out}"
                )
    raise AssertionError("unreachable")  # pragma: no cover


class Transcript:
    """Writes the conversation: streamed text and tool lines on stdout, notes on stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._mid_line = False
        self._at_prompt = False
        encoding = getattr(out, "encoding", None) or "ascii"
        try:
            "⚙→✗…".encode(encoding)
            self._gear, self._arrow, self._cross, self._more = "⚙", "→", "✗", "…"
        except (UnicodeEncodeError, LookupError):
            self._gear, self._arrow, self._cross, self._more = "*", "->", "x", "..."

    def prompt(self) -> None:
        self.end_line()
        self.out.write("you> ")
        self.out.flush()
        self._at_prompt = True

    def answered(self) -> None:
        """The user ended the prompt's line (the terminal echoed the newline)."""
        self._at_prompt = False

    def user(self, text: str) -> None:
        self.end_line()
        self.out.write(f"you> {text}\n")
        self.out.flush()

    def delta(self, text: str) -> None:
        if not self._mid_line:
            self.out.write("assistant> ")
            self._mid_line = True
        self.out.write(text)
        self.out.flush()

    def end_line(self) -> None:
        if self._at_prompt:  # late output (a cancelled tool) while the user is typing
            self.out.write("\n")
            self._at_prompt = False
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
            self._mid_line = False

    def tool(self, done: ToolFinished) -> None:
        """One line per call: name, arguments, result or error, duration."""
        self.end_line()
        result = _clip(_render_output(done.output), 80, self._more)
        outcome = f"{self._arrow} {result}" if done.ok else f"{self._cross} {result}"
        line = f"  {self._gear} {done.name}({_render_args(done.arguments, self._more)}) {outcome}"
        self.out.write(f"{line}  ({_duration(done.duration)})\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """One line on stderr (reconnects, errors, the local-server notice)."""
        self.end_line()
        self.err.write(f"{_PROG}: {text}\n")
        self.err.flush()


class _Turn:
    __slots__ = ("cancel_requested", "done", "failed")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.cancel_requested = False
        self.failed = False


class _Chat:
    def __init__(self, session: RealtimeSession, transcript: Transcript, *, collect_audio: bool) -> None:
        self.session = session
        self.t = transcript
        self.collect_audio = collect_audio
        self.audio = bytearray()
        self.turn: _Turn | None = None
        self.active = 0
        self.failures = 0
        self.playback: _Playback | None = None

    async def run(self, main: Callable[[], Awaitable[None]]) -> int:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._consume)
                tg.start_soon(self._watch_sigint, tg.cancel_scope)
                # Let the consumer subscribe before the first user turn can produce events.
                await anyio.lowlevel.checkpoint()
                await main()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        self.t.end_line()
        return 1 if self.failures else 0

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

    async def text_loop(self, stdin: TextIO) -> None:
        interactive = _isatty(stdin)
        async with _read_lines(stdin) as lines:
            while True:
                if interactive:
                    self.t.prompt()
                line = await lines.receive()
                self.t.answered()
                if line is None:  # EOF (Ctrl-D)
                    if interactive:
                        self.t.end_line()
                        self.t.out.write("\n")
                    return
                text = line.strip()
                if not text:
                    continue
                if not interactive:
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

    async def mic_loop(self, stdin: TextIO) -> None:
        async with _Playback.open(self.session) as playback:
            self.playback = playback
            self.t.note("listening on the microphone; Ctrl-C twice or Ctrl-D to stop")
            await self.text_loop(stdin)

    # -- events --------------------------------------------------------------------------

    async def _consume(self) -> None:
        try:
            async for event in self.session:
                self._show(event)
        except SessionClosed:
            return

    def _show(self, event: Any) -> None:
        kind = event.type
        if kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
            self.t.delta(event.delta)
        elif kind == "response.output_audio.delta":
            chunk = base64.b64decode(event.delta)
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
        elif isinstance(event, ToolFinished):
            self.t.tool(event)
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

    async def _watch_sigint(self, scope: anyio.CancelScope) -> None:
        """First Ctrl-C cancels the response in progress; another (or one when idle) quits."""
        try:
            receiver = anyio.open_signal_receiver(signal.SIGINT)
            with receiver as signals:
                async for _ in signals:
                    turn = self.turn
                    if turn is None or turn.cancel_requested:
                        self.t.end_line()
                        scope.cancel()
                        return
                    turn.cancel_requested = True
                    self.t.note("cancelled (Ctrl-C again to quit)")
                    await self.session.cancel()
                    if self.active == 0:
                        self._finish()
        except (NotImplementedError, RuntimeError, ValueError):
            # No signal support here (e.g. asyncio on Windows): Ctrl-C raises
            # KeyboardInterrupt instead, which ends the chat.
            return


# -- standard input ------------------------------------------------------------------------


@asynccontextmanager
async def _read_lines(stdin: TextIO) -> AsyncIterator[Any]:
    """Lines of ``stdin`` (None at EOF) from a daemon thread, as a memory stream."""
    send, receive = anyio.create_memory_object_stream[str | None](16)
    async with BlockingPortal() as portal:
        thread = threading.Thread(
            target=_reader, args=(stdin, portal, send), name="rtagent-stdin", daemon=True
        )
        thread.start()
        try:
            async with receive:
                yield receive
        finally:
            await portal.stop(cancel_remaining=True)


def _reader(stdin: TextIO, portal: BlockingPortal, send: MemoryObjectSendStream[str | None]) -> None:
    try:
        while True:
            line = stdin.readline()
            portal.call(send.send, line or None)
            if not line:
                return
    except Exception:  # the chat ended (portal stopped, stream closed) or stdin broke
        return


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
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


# -- rendering helpers -----------------------------------------------------------------------


def _render_args(arguments: str, more: str) -> str:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return _clip(arguments, 60, more)
    if not isinstance(value, Mapping):
        return _clip(json.dumps(value, ensure_ascii=False), 60, more)
    parts = [f"{k}={_clip(json.dumps(v, ensure_ascii=False), 40, more)}" for k, v in value.items()]
    return _clip(", ".join(parts), 80, more)


def _render_output(output: str) -> str:
    try:
        value = json.loads(output)
    except ValueError:
        return output
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _clip(text: str, limit: int, more: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - len(more)] + more


def _duration(seconds: float) -> str:
    if math.isnan(seconds) or seconds < 1:
        return f"{max(0.0, seconds) * 1000:.0f} ms"
    return f"{seconds:.1f} s"
