"""The tool journal: what a session records about its calls so another process can
take them over.

A sideband attached again to a SIP/WebRTC call replays nothing: a process that takes
over a call (a worker whose peer died) cannot learn from the server which calls were in
flight. So a session given a :class:`ToolJournal` records each function call before its
tool runs, its output before it is posted, and forgets it once the server has the
output. When its first connection is ready it reads what a previous process left and
takes those calls over (:func:`resume_plan`):

* an output that was recorded but maybe never posted is posted now (the tool does not
  run again);
* a call that was running is run again if its tool is ``idempotent``; otherwise the
  model gets an error output saying it could not finish. No tool runs twice unless it
  is marked safe to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .._session import ToolCall
from .._tools import ToolRegistry

__all__ = ["JournalEntry", "ToolJournal", "resume_plan"]

EntryState = Literal["started", "background", "finished"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A call a session recorded and had not yet seen delivered.

    ``state``: ``"started"`` (the tool was running), ``"background"`` (a background
    tool's interim output was posted and it was still running) or ``"finished"``
    (``output`` was recorded and maybe not posted).
    """

    call: ToolCall
    state: EntryState
    output: str | None = None


class ToolJournal(Protocol):
    """Durable records of a session's tool calls (the worker keeps them in NATS)."""

    async def recover(self) -> Sequence[JournalEntry]:
        """What a previous process left for this session (read once, when ready)."""
        ...

    async def started(self, call: ToolCall) -> None:
        """The call is about to run. Raising means it does not run (nothing records it)."""
        ...

    async def finished(self, call: ToolCall, output: str, *, interim: bool) -> None:
        """The call's output, about to be posted (``interim``: a background tool's first
        output; the tool goes on running)."""
        ...

    async def delivered(self, call_id: str) -> None:
        """The server has the call's final output: forget the call."""
        ...


def resume_plan(
    entries: Sequence[JournalEntry], tools: ToolRegistry
) -> list[tuple[ToolCall, str | None]]:
    """For :meth:`rtagent._session.calls.Calls.resume`: each call with its output, or
    None to run it again (idempotent tools only)."""
    plan: list[tuple[ToolCall, str | None]] = []
    for entry in entries:
        call = entry.call
        if entry.state == "finished" and entry.output is not None:
            plan.append((call, entry.output))
            continue
        tool = tools.get(call.name)
        if entry.state == "background":
            call = ToolCall(
                call.call_id, call.name, call.arguments, call.item_id, call.response_id,
                interim_posted=True,
            )
        if tool is not None and tool.idempotent:
            plan.append((call, None))
        else:
            plan.append((call, (
                f"error: {call.name} could not finish: the process running it stopped, and "
                "it is not safe to run twice. Tell the user it may or may not have happened."
            )))
    return plan
