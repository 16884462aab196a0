"""Approval of risky calls by a person, through one API for local and hosted MCP tools.

A call whose tool needs approval (``@tool(needs_approval=...)``), or a hosted MCP tool's
``mcp_approval_request``, waits here before it runs. The decision comes from a handler
(``connect(approve=...)``, or an ``approve`` method on the agent), or else from the
application reacting to the :class:`~rtagent.ApprovalRequested` notice with
``session.approve(call_id)`` / ``session.reject(call_id, reason)``. No decision within the
approval timeout counts as a rejection. The wait runs in the call's own task, so the
tool's ``on_interrupt`` policy applies to it like to a running tool, and it survives
reconnects.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from .._notices import ApprovalRequested, Notice
from .._tools import Tool

__all__ = ["ApprovalHandler", "Approvals", "Decision", "needs_approval"]

logger = logging.getLogger("rtagent.tools")

ApprovalHandler = Callable[[ApprovalRequested], "Awaitable[bool | str] | bool | str"]
"""Decides a request: True approves, False rejects, a string rejects with that reason."""


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    reason: str | None = None


class _Pending:
    __slots__ = ("decided", "decision")

    def __init__(self) -> None:
        self.decided = anyio.Event()
        self.decision = Decision(False, "no decision")


class Approvals:
    """Requests waiting for a decision, by call id.

    Args:
        handler: decides requests itself; None waits for ``decide()``.
        timeout: seconds to wait for a decision (None: forever).
        notify: publishes :class:`ApprovalRequested`.
    """

    def __init__(
        self,
        handler: ApprovalHandler | None,
        timeout: float | None,
        notify: Callable[[Notice], None],
    ) -> None:
        self._handler = handler
        self._timeout = timeout
        self._notify = notify
        self._pending: dict[str, _Pending] = {}

    @property
    def waiting(self) -> list[str]:
        return list(self._pending)

    async def request(self, request: ApprovalRequested) -> Decision:
        """Ask for a decision and wait for it (cancellable like the call it guards)."""
        pending = self._pending[request.call_id] = _Pending()
        self._notify(request)
        try:
            with anyio.move_on_after(self._timeout if self._timeout is not None else float("inf")):
                if self._handler is not None:
                    return await self._ask_handler(request)
                await pending.decided.wait()
                return pending.decision
            logger.warning("no decision on %s (call %s) in time", request.name, request.call_id)
            return Decision(False, "no decision came in time")
        finally:
            self._pending.pop(request.call_id, None)

    def decide(self, call_id: str, approved: bool, reason: str | None = None) -> bool:
        """Record a person's decision; False when no request with that id is waiting."""
        pending = self._pending.get(call_id)
        if pending is None or pending.decided.is_set():
            return False
        pending.decision = Decision(approved, reason)
        pending.decided.set()
        return True

    async def _ask_handler(self, request: ApprovalRequested) -> Decision:
        assert self._handler is not None
        try:
            answer = self._handler(request)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            logger.exception("approval handler failed for %s (call %s)", request.name, request.call_id)
            return Decision(False, "the approval handler failed")
        if isinstance(answer, str):
            return Decision(False, answer)
        return Decision(bool(answer))


def needs_approval(tool: Tool, arguments: str) -> bool:
    """Whether this call of ``tool`` must be approved first (its predicate sees the arguments)."""
    rule = tool.needs_approval
    if not callable(rule):
        return bool(rule)
    try:
        args: Any = json.loads(arguments or "{}")
        return bool(rule(args if isinstance(args, dict) else {}))
    except Exception:
        # Arguments the predicate cannot read, or a broken predicate: ask, to be safe.
        logger.exception("needs_approval predicate of %s failed; asking for approval", tool.name)
        return True
