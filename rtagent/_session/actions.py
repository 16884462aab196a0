"""What the sans-I/O session asks its driver to do, as typed values.

Every input of :class:`~rtagent._session.machine.Session` returns one ordered list of
these. The driver executes them in order: it writes consecutive :class:`Send` events in
one write, starts and cancels tool calls, answers the application's turns, and opens or
ends connections. The session never does I/O itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from .._errors import RTAgentError
from .._events import ClientEvent, ErrorDetail
from .._notices import Notice

__all__ = [
    "Action",
    "CancelCall",
    "EndConnection",
    "Notify",
    "Ready",
    "RunCall",
    "Send",
    "ToolCall",
    "TurnDone",
]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made whose arguments are complete.

    ``kind`` ``"mcp_approval"`` is a hosted MCP tool asking for approval: nothing runs on
    the client; the decision is reported with ``Session.calls.approval_decided``.
    """

    call_id: str
    name: str
    arguments: str
    item_id: str | None = None
    response_id: str | None = None
    kind: Literal["function", "mcp_approval"] = "function"
    server_label: str | None = None
    interim_posted: bool = False
    """A background call whose interim output was posted (by a process that died): it
    runs again without posting another, and its result comes as a late message."""


@dataclass(frozen=True, slots=True)
class Send:
    """Write this client event (consecutive sends go out in one write)."""

    event: ClientEvent


@dataclass(frozen=True, slots=True)
class RunCall:
    """Start this tool call; report its output with ``Session.calls.finished``."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class CancelCall:
    """Cancel the running call (its ``on_interrupt`` policy is ``"cancel"``)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class TurnDone:
    """The application turns waiting on one answer are complete.

    ``text`` is the assistant text that answers them (empty when the model said nothing);
    ``error`` is set when the response failed or the server refused to start it.
    """

    turns: frozenset[int]
    text: str
    error: ErrorDetail | None = None


@dataclass(frozen=True, slots=True)
class Ready:
    """The connection is configured (``session.updated`` seen): the session is usable."""


EndKind = Literal["rollover", "expired", "fatal"]


@dataclass(frozen=True, slots=True)
class EndConnection:
    """Close this connection.

    ``kind`` says what comes next: ``"rollover"`` (planned, before the session's maximum
    duration) and ``"expired"`` (the server ended the session) open a new connection that
    carries the conversation on; ``"fatal"`` ends the session with ``error``.
    """

    reason: str
    kind: EndKind
    error: RTAgentError | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the application (a runtime notice in the event stream)."""

    notice: Notice


Action = Union[Send, RunCall, CancelCall, TurnDone, Ready, EndConnection, Notify]
