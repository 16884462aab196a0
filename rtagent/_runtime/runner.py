"""The tool runner: runs each call in a task group it owns, and reports its output.

Calls outlive connections: a tool that finishes while the link is down has its output
posted on the next connection (the session keeps it for the replay). Turning a tool's
exception, timeout or unserialisable result into an output happens in exactly one
place, :func:`rtagent._invoke.invoke_tool`; the runner adds what surrounds a call:
its cancel scope (``on_interrupt="cancel"``), the cancelled output, the notices and
the hand-off of the output to the session.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .._invoke import ToolContext, ToolResult, invoke_tool, unknown_tool
from .._notices import ApprovalRequested, Notice, ToolFinished, ToolStarted
from .._session import ToolCall
from .._tools import ToolRegistry
from .approvals import Approvals, Decision, needs_approval
from .journal import ToolJournal

__all__ = ["ToolRunner"]

logger = logging.getLogger("rtagent.tools")

Finished = Callable[[ToolCall, ToolResult, float, bool], Awaitable[None]]
Decided = Callable[[ToolCall, Decision], Awaitable[None]]


class ToolRunner:
    """Owns the task group that every tool call of one session runs in.

    Args:
        tools: the current tool registry (it may change with handoffs and updates).
        context: builds the :class:`ToolContext` of a call.
        finished: receives each call's result and duration, to post the output.
        notify: publishes ``ToolStarted``/``ToolFinished``.
        approvals: a person's decision on calls that need one.
        decided: answers a hosted MCP tool's approval request.
        journal: records each call before its tool runs (for a process taking over).
    """

    def __init__(
        self,
        tools: Callable[[], ToolRegistry],
        context: Callable[[ToolCall], ToolContext],
        finished: Finished,
        notify: Callable[[Notice], None],
        approvals: Approvals,
        decided: Decided,
        journal: ToolJournal | None = None,
    ) -> None:
        self._tools = tools
        self._context = context
        self._finished = finished
        self._notify = notify
        self.approvals = approvals
        self._decided = decided
        self._journal = journal
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._names: dict[str, str] = {}
        self._approving: set[str] = set()
        self._settled = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> ToolRunner:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()  # the session is over: running calls end with it
        return await tg.__aexit__(exc_type, exc, tb)

    @property
    def running(self) -> int:
        return len(self._scopes)

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run a short task for a call (a progress report) in the runner's task group."""
        if self._tg is not None:
            self._tg.start_soon(fn, *args)

    def start(self, call: ToolCall) -> None:
        """Run ``call`` in the runner's task group."""
        if self._tg is None:
            logger.warning("call %s arrived after the session ended; not run", call.call_id)
            return
        scope = self._scopes[call.call_id] = anyio.CancelScope()
        self._names[call.call_id] = call.name
        self._settled = anyio.Event()
        self._tg.start_soon(self._run, call, scope, name=f"rtagent tool {call.name}")

    def cancel(self, call_id: str) -> None:
        """Cancel a running call; it posts the "cancelled" output."""
        scope = self._scopes.get(call_id)
        if scope is not None:
            scope.cancel()

    async def wind_down(self) -> None:
        """The conversation was cut off for good (a call hung up): apply each policy, wait.

        Like a barge-in, the end of a call interrupts the calls still running, and each
        follows its tool's ``on_interrupt``: ``"cancel"`` ones are cancelled, the others
        finish (their side effects happen; the output has nowhere to go). A call still
        waiting for approval is cancelled: nobody can approve it for a caller who left.
        Returns when no call runs.
        """
        registry = self._tools()
        for call_id, scope in list(self._scopes.items()):
            tool = registry.get(self._names.get(call_id, ""))
            if call_id in self._approving or tool is None or tool.on_interrupt == "cancel":
                scope.cancel()
        while self._scopes:
            await self._settled.wait()

    async def _run(self, call: ToolCall, scope: anyio.CancelScope) -> None:
        if call.kind == "mcp_approval":
            await self._approve_hosted(call, scope)
            return
        self._notify(ToolStarted(call.call_id, call.name, call.arguments))
        started = time.perf_counter()
        result: ToolResult | None = None
        try:
            with scope:
                registry = self._tools()
                tool = registry.get(call.name)
                context = self._context(call)
                if tool is None:
                    result = unknown_tool(call.name, registry.names(), context)
                elif needs_approval(tool, call.arguments):
                    result = await self._refusal(call)
                if tool is not None and result is None and self._journal is not None:
                    result = await self._record(call)
                if tool is not None and result is None:
                    if tool.background and not call.interim_posted:
                        # Long-running work: the model hears at once that it started, and
                        # keeps talking; the result joins the conversation when ready.
                        interim = ToolResult(
                            f"{call.name} started in the background; its result will follow "
                            "when it is ready.", ok=True,
                        )
                        await self._finished(call, interim, 0.0, True)
                    result = await invoke_tool(tool, call.arguments, context)
        except anyio.get_cancelled_exc_class():
            if scope.cancel_called or anyio.current_effective_deadline() == -math.inf:
                raise  # an interruption or the session's end: a real cancellation
            # The tool raised a cancellation of its own (it awaited something another task
            # cancelled): that is the tool failing, not the application being cancelled.
            logger.error("tool %s (call %s) was cancelled from inside", call.name, call.call_id)
            result = ToolResult(
                f"error: {call.name} failed unexpectedly (cancelled)", ok=False, error="exception"
            )
        finally:
            self._forget(call.call_id)
        if result is None:  # cancelled by interruption (on_interrupt="cancel")
            result = ToolResult.cancelled(call.name)
        duration = time.perf_counter() - started
        await self._finished(call, result, duration, False)
        self._notify(ToolFinished(
            call.call_id, call.name, call.arguments, result.output, result.ok, result.error, duration
        ))

    async def _record(self, call: ToolCall) -> ToolResult | None:
        """Journal the call before it runs: None when recorded, else the output that says
        it did not run (a call nobody recorded could be lost if this process died)."""
        assert self._journal is not None
        try:
            await self._journal.started(call)
        except Exception as exc:
            logger.error("call %s of %s not recorded, so not run: %r", call.call_id, call.name, exc)
            return ToolResult(
                f"error: {call.name} did not run: the call could not be recorded ({exc})",
                ok=False, error="exception",
            )
        return None

    async def _refusal(self, call: ToolCall) -> ToolResult | None:
        """Wait for a person's decision on a local tool call: None when approved, else
        the output that tells the model (so it can tell the user)."""
        self._approving.add(call.call_id)
        try:
            decision = await self.approvals.request(
                ApprovalRequested(call.call_id, call.name, call.arguments)
            )
        finally:
            self._approving.discard(call.call_id)
        if decision.approved:
            return None
        why = f": {decision.reason}" if decision.reason else ""
        return ToolResult(
            f"error: {call.name} was not approved, so it did not run{why}",
            ok=False,
            error="not_approved",
        )

    async def _approve_hosted(self, call: ToolCall, scope: anyio.CancelScope) -> None:
        """A hosted MCP tool asks for approval: decide, then answer the request."""
        decision = Decision(False, "the call was interrupted")
        try:
            with scope:
                decision = await self.approvals.request(
                    ApprovalRequested(call.call_id, call.name, call.arguments, call.server_label)
                )
        finally:
            self._forget(call.call_id)
        await self._decided(call, decision)

    def _forget(self, call_id: str) -> None:
        self._scopes.pop(call_id, None)
        self._names.pop(call_id, None)
        if not self._scopes:
            self._settled.set()
