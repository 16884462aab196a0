"""Lines typed by the user of ``rtagent chat``: prompt_toolkit on a terminal, else plain input.

A :class:`LineReader` reads one line each time the chat asks, in a daemon thread (a
blocked read never keeps the process alive once the chat is over). On a terminal with
prompt_toolkit installed (``pip install 'rtagent[console]'``) the line is read with
editing and a history kept across runs; anything printed meanwhile (a late tool result,
a reconnect) appears above the prompt, which is redrawn. Otherwise lines are read from
standard input as they come: a pipe keeps working exactly, one message a line.

A read returns the line, ``None`` at the end of input (Ctrl-D), or :data:`INTERRUPTED`
when the user pressed Ctrl-C at a prompt_toolkit prompt (a plain terminal delivers
Ctrl-C as SIGINT instead).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TextIO

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectSendStream

__all__ = ["INTERRUPTED", "LineReader", "Read", "history_path", "open_line_reader", "prompt_toolkit_usable"]


class _Interrupted:
    def __repr__(self) -> str:
        return "INTERRUPTED"


INTERRUPTED: Final = _Interrupted()
"""Ctrl-C at the prompt."""

Read = str | None | _Interrupted


def history_path() -> Path:
    """Where the chat's line history is kept (``$XDG_STATE_HOME/rtagent/chat_history``)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "rtagent" / "chat_history"


def prompt_toolkit_usable(stdin: TextIO, stdout: TextIO) -> bool:
    """Whether to read with prompt_toolkit: both ends are terminals and it is installed."""
    if not (_isatty(stdin) and _isatty(stdout)):
        return False
    try:
        import prompt_toolkit  # noqa: F401
    except ImportError:
        return False
    return os.environ.get("TERM") != "dumb"


class LineReader:
    """Reads a line when asked; see the module docstring.

    Attributes:
        rich: True when prompt_toolkit draws the prompt (the caller must not).
        interactive: True when a person types (a terminal), False for a pipe or a file.
        out: Where to print while reading (prompt_toolkit's proxy on a terminal).
        err: Where to print notes while reading.
    """

    def __init__(
        self,
        requests: queue.SimpleQueue[str | None],
        results: Any,
        *,
        rich: bool,
        interactive: bool,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self._requests = requests
        self._results = results
        self.rich = rich
        self.interactive = interactive
        self.out = out
        self.err = err

    async def read(self, prompt: str = "you> ") -> Read:
        """The next line (without its newline), None at the end of input, or INTERRUPTED."""
        self._requests.put(prompt)
        result: Read = await self._results.receive()
        return result


@asynccontextmanager
async def open_line_reader(
    stdin: TextIO, stdout: TextIO, stderr: TextIO, *, rich: bool | None = None
) -> AsyncIterator[LineReader]:
    """A :class:`LineReader` over ``stdin``; with prompt_toolkit when ``rich`` (default: when usable)."""
    if rich is None:
        rich = prompt_toolkit_usable(stdin, stdout)
    requests: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    send, receive = anyio.create_memory_object_stream[Read](4)
    out, err = stdout, stderr
    read_line: Callable[[str], Read]
    if rich:
        read_line, out, err, proxies = _prompt_toolkit_reader(stdout, stderr)
    else:
        proxies = []
        read_line = _plain_reader(stdin)
    async with BlockingPortal() as portal:
        thread = threading.Thread(
            target=_serve_reads,
            args=(read_line, requests, portal, send),
            name="rtagent-stdin",
            daemon=True,
        )
        thread.start()
        try:
            async with receive:
                yield LineReader(
                    requests, receive, rich=rich, interactive=rich or _isatty(stdin), out=out, err=err
                )
        finally:
            requests.put(None)
            for proxy in proxies:
                proxy.close()
            await portal.stop(cancel_remaining=True)


def _plain_reader(stdin: TextIO) -> Callable[[str], Read]:
    """Plain reads: one line of ``stdin`` per request (the prompt is printed by the caller)."""

    def read(_prompt: str) -> Read:
        line = stdin.readline()
        if not line:
            return None
        return line.rstrip("\r\n")

    return read


def _prompt_toolkit_reader(stdout: TextIO, stderr: TextIO) -> tuple[Callable[[str], Read], TextIO, TextIO, list[Any]]:
    # An optional extra (rtagent[console]): typed when installed, Any when not.
    from prompt_toolkit import PromptSession  # type: ignore[import-not-found,unused-ignore]
    from prompt_toolkit.history import (  # type: ignore[import-not-found,unused-ignore]
        FileHistory,
        History,
        InMemoryHistory,
    )
    from prompt_toolkit.key_binding import KeyBindings  # type: ignore[import-not-found,unused-ignore]
    from prompt_toolkit.patch_stdout import StdoutProxy  # type: ignore[import-not-found,unused-ignore]

    history: History
    try:
        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(path))
    except OSError:
        history = InMemoryHistory()
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _interrupt(event: Any) -> None:
        # Ctrl-C clears what was typed; on an empty line it interrupts (the chat quits).
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    session: PromptSession[str] = PromptSession(history=history, key_bindings=bindings)
    # Printing through the proxy puts late output above a live prompt and redraws it.
    out: Any = StdoutProxy(raw=True, sleep_between_writes=0.02)
    proxies: list[Any] = [out]
    # Notes share the proxy when both go to the terminal, so nothing is printed out of order.
    err: Any = out if _isatty(stderr) else stderr

    def read(prompt: str) -> Read:
        try:
            return session.prompt(prompt)
        except KeyboardInterrupt:
            return INTERRUPTED
        except EOFError:
            return None

    return read, out, err, proxies


def _serve_reads(
    read_line: Callable[[str], Read],
    requests: queue.SimpleQueue[str | None],
    portal: BlockingPortal,
    send: MemoryObjectSendStream[Read],
) -> None:
    try:
        while True:
            prompt = requests.get()
            if prompt is None:
                return
            line = read_line(prompt)
            portal.call(send.send, line)
            if line is None:
                return
    except Exception:  # the chat ended (portal stopped, stream closed) or stdin broke
        return


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
