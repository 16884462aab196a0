"""Events the runtime itself reports, next to the server's events.

They come out of ``async for event in session`` like server events, so one loop
sees tool activity, reconnects and skipped frames in order with the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._usage import Usage

__all__ = [
    "ApprovalRequested",
    "ConnectionLost",
    "EventsDropped",
    "FrameSkipped",
    "McpServerFailed",
    "McpToolsChanged",
    "Notice",
    "Reconnected",
    "ToolFinished",
    "ToolProgress",
    "ToolStarted",
    "ToolTurnLatency",
    "UsageReported",
]


@dataclass(frozen=True, slots=True)
class ToolStarted:
    type = "rtagent.tool.started"
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolFinished:
    """A tool call ended; ``output`` is what the model is sent."""

    type = "rtagent.tool.finished"
    call_id: str
    name: str
    arguments: str
    output: str
    ok: bool
    error: str | None
    duration: float
    """Seconds the handler ran."""


@dataclass(frozen=True, slots=True)
class ToolProgress:
    """A running tool said how it is going (``context.progress(text)``)."""

    type = "rtagent.tool.progress"
    call_id: str
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class ToolTurnLatency:
    """How long the caller waited on one tool call, measured on the client.

    ``to_output`` runs from the call's arguments being complete to its output being
    written; ``to_next_delta`` to the first delta of the response that followed.
    """

    type = "rtagent.tool.latency"
    call_id: str
    to_output: float
    to_next_delta: float


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    type = "rtagent.connection.lost"
    reason: str
    cut_short: tuple[str, ...]
    """What was in progress and is lost or will be redone, in words."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection carries on the session; says honestly what was restored."""

    type = "rtagent.reconnected"
    attempt: int
    planned: bool
    """True for a rollover before the session's maximum duration."""
    items_restored: int
    outputs_restored: int
    requests_pending: int
    not_restored: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FrameSkipped:
    """A frame that could not be interpreted was logged and skipped."""

    type = "rtagent.frame.skipped"
    reason: str


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A call waits for a person's decision: ``session.approve(call_id)`` or
    ``session.reject(call_id, reason)``; also what an approval handler receives.

    ``server_label`` is set for a hosted MCP tool (its ``mcp_approval_request`` id is the
    ``call_id``).
    """

    type = "rtagent.approval.requested"
    call_id: str
    name: str
    arguments: str
    server_label: str | None = None


@dataclass(frozen=True, slots=True)
class UsageReported:
    """A response finished: its tokens, and their cost when prices were given."""

    type = "rtagent.usage"
    response_id: str
    usage: Usage
    cost: float | None


@dataclass(frozen=True, slots=True)
class EventsDropped:
    """This iterator fell a whole buffer behind and missed ``count`` events."""

    type = "rtagent.events.dropped"
    count: int


@dataclass(frozen=True, slots=True)
class McpServerFailed:
    """An MCP server of ``Agent.mcp_servers`` could not start in time, or stopped working:
    the session goes on without its tools (the log says more, under ``rtagent.mcp``)."""

    type = "rtagent.mcp.failed"
    server: str
    """The server's ``name``."""
    reason: str


@dataclass(frozen=True, slots=True)
class McpToolsChanged:
    """The tools of an MCP server changed (it started, said its list changed, or failed),
    and the session's tools were updated to match."""

    type = "rtagent.mcp.tools_changed"
    server: str
    tools: tuple[str, ...]
    """The server's tools as the model now sees them."""


Notice = (
    ToolStarted
    | ToolFinished
    | ToolTurnLatency
    | ConnectionLost
    | Reconnected
    | FrameSkipped
    | EventsDropped
    | UsageReported
    | ApprovalRequested
    | ToolProgress
    | McpServerFailed
    | McpToolsChanged
)
