"""What ``rtagent chat`` prints: the transcript, tool lines, notes and the live tool line.

Everything printed that came from elsewhere (model text, tool arguments and output,
server messages, exception messages) goes through :func:`printable` first: a terminal
escape sequence in a reply must never reach the terminal as one.

Streamed text and tool lines go to stdout; notes (the local-server notice, connection
attempts, reconnects, errors) to stderr. On a terminal, a running tool shows a live
line with its elapsed time, replaced by the tool's result line when it finishes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import TextIO

from ._notices import ToolFinished, ToolStarted

__all__ = ["ToolFailure", "Transcript", "format_duration", "printable"]

_PROG = "rtagent"

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates (they reorder what a terminal shows: "Trojan source").
_UNPRINTABLE = {
    **{cp: None for cp in range(0x20) if cp not in (0x09, 0x0A)},
    0x7F: None,
    **{cp: None for cp in range(0x80, 0xA0)},
    **{cp: None for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
}


def printable(text: str) -> str:
    """``text`` without control characters (tab and newline are kept)."""
    return text.translate(_UNPRINTABLE)


class ToolFailure:
    """The short account of a tool's unexpected exception: its type, message and last frame."""

    __slots__ = ("code", "exception", "where")

    def __init__(self, exception: str, where: str, code: str) -> None:
        self.exception = exception
        self.where = where
        self.code = code


class Transcript:
    """Writes the conversation: streamed text and tool lines on stdout, notes on stderr.

    Args:
        out: Where the conversation goes.
        err: Where notes go.
        live: Show a live line while tools run (only sensible on a terminal).
    """

    def __init__(self, out: TextIO, err: TextIO, *, live: bool = False) -> None:
        self.out = out
        self.err = err
        self.live = live
        self._mid_line = False
        self._at_prompt = False
        self._prompt_lost = False  # late output pushed the plain prompt up: show it again
        self._prompt_text = ""
        self._status_shown = False
        self._running: dict[str, tuple[ToolStarted, float]] = {}
        encoding = getattr(out, "encoding", None) or "ascii"
        try:
            "⚙→✗…↳".encode(encoding)
            self._gear, self._arrow, self._cross, self._more, self._hook = "⚙", "→", "✗", "…", "↳"
        except (UnicodeEncodeError, LookupError):
            self._gear, self._arrow, self._cross, self._more, self._hook = "*", "->", "x", "...", "|"

    # -- the prompt ----------------------------------------------------------------------

    def prompt(self, text: str = "you> ") -> None:
        """Show a plain prompt (the prompt_toolkit one draws itself)."""
        self._prompt_lost = False
        self._break()
        self.out.write(text)
        self.out.flush()
        self._at_prompt = True
        self._prompt_text = text

    def answered(self) -> None:
        """The user ended the prompt's line (the terminal echoed the newline)."""
        self._at_prompt = self._prompt_lost = False

    def user(self, text: str) -> None:
        self._break()
        self.out.write(f"you> {printable(text)}\n")
        self.out.flush()

    # -- the conversation ----------------------------------------------------------------

    def delta(self, text: str) -> None:
        """A piece of the assistant's streamed reply."""
        text = printable(text)
        if not text:
            return
        self._hide_status()
        self._leave_prompt()
        if not self._mid_line:
            self.out.write("assistant> ")
            self._mid_line = True
        self.out.write(text)
        self.out.flush()

    def end_line(self) -> None:
        """Finish a streamed line, if one is open."""
        self._break()
        self._restore_prompt()

    def _break(self) -> None:
        """Start output on a fresh line: no live line, no prompt, no open streamed line."""
        self._hide_status()
        self._leave_prompt()
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
            self._mid_line = False

    def tool_started(self, started: ToolStarted) -> None:
        self._running[started.call_id] = (started, time.monotonic())
        self.tick()

    def tool(self, done: ToolFinished, failure: ToolFailure | None = None) -> None:
        """One line per call: name, arguments, result or error, duration."""
        self._running.pop(done.call_id, None)
        self._break()
        result = _clip(printable(_render_output(done.output)), 80, self._more)
        outcome = f"{self._arrow} {result}" if done.ok else f"{self._cross} {result}"
        args = printable(_render_args(done.arguments, self._more))
        line = f"  {self._gear} {printable(done.name)}({args}) {outcome}"
        self.out.write(f"{line}  ({format_duration(done.duration)})\n")
        if failure is not None:
            exc = _clip(printable(failure.exception), 100, self._more)
            where = _clip(printable(f"{failure.where}: {failure.code}"), 100, self._more)
            self.out.write(f"      {self._hook} {exc}\n        at {where}\n")
        self.out.flush()
        self._restore_prompt()
        self.tick()

    def note(self, text: str) -> None:
        """One line on stderr (reconnects, errors, the local-server notice)."""
        self._break()
        self.err.write(f"{_PROG}: {printable(text)}\n")
        self.err.flush()
        self._restore_prompt()
        self.tick()

    # -- the live line -------------------------------------------------------------------

    @property
    def tools_running(self) -> bool:
        return bool(self._running)

    def tick(self) -> None:
        """Redraw the live line of running tools (call it a few times a second)."""
        if not self.live or not self._running or self._mid_line or self._at_prompt:
            return
        now = time.monotonic()
        started, since = next(iter(self._running.values()))
        others = len(self._running) - 1
        name = printable(started.name)
        args = printable(_render_args(started.arguments, self._more))
        extra = f" (+{others} more)" if others else ""
        text = f"{self._gear} {name}({args}){extra} {self._more} {format_duration(now - since)}"
        self.out.write("\r\x1b[2K  " + _clip(text, 98, self._more))
        self.out.flush()
        self._status_shown = True

    def _hide_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[2K")
            self._status_shown = False

    def _leave_prompt(self) -> None:
        if self._at_prompt:  # late output while the user is typing: below the prompt
            self.out.write("\n")
            self._at_prompt = False
            self._prompt_lost = True

    def _restore_prompt(self) -> None:
        if self._prompt_lost and not self._mid_line:
            self._prompt_lost = False
            self.out.write(self._prompt_text)
            self.out.flush()
            self._at_prompt = True


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


def format_duration(seconds: float) -> str:
    """``850 ms`` below a second, else ``1.2 s``."""
    if math.isnan(seconds) or seconds < 1:
        return f"{max(0.0, seconds) * 1000:.0f} ms"
    return f"{seconds:.1f} s"
