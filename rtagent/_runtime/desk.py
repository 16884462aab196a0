"""Between the tool runner and the session: calls start and stop here, their outputs,
progress reports and approval decisions go to the session, the journal (if any) hears
of each output and takes over what a previous process left, and the latency of each
tool turn is measured (from a call being complete to the reply's first delta)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio.from_thread
import anyio.lowlevel

from .. import _events as ev
from .._invoke import ToolResult
from .._notices import Notice, ToolProgress, ToolTurnLatency
from .._session import Action, Session, ToolCall
from .._tools import ToolRegistry
from .approvals import Decision
from .journal import ToolJournal, resume_plan
from .runner import ToolRunner

__all__ = ["ToolDesk"]

logger = logging.getLogger("rtagent.tools")


async def _quietly(record: Awaitable[None], what: object) -> None:
    """A journal write whose failure must not stop the output from being posted."""
    try:
        await record
    except Exception:
        logger.exception("journal write failed (%s)", what)


class ToolDesk:
    """The tools' side of one session's runtime.

    Args:
        core: the session state machine.
        execute: carries out the session's actions.
        notify: publishes a notice.
        journal: durable records of the calls (see :mod:`rtagent._runtime.journal`).
    """

    def __init__(
        self,
        core: Session,
        execute: Callable[[list[Action]], Coroutine[Any, Any, None]],
        notify: Callable[[Notice], None],
        journal: ToolJournal | None = None,
    ) -> None:
        self._core = core
        self._execute = execute
        self._notify = notify
        self.journal = journal
        self.runner: ToolRunner | None = None
        """The runner of the session's calls, while the session runs."""
        self._started: dict[str, float] = {}
        self._latency: list[tuple[str, float, float]] = []

    @property
    def running(self) -> int:
        return self.runner.running if self.runner is not None else 0

    def start(self, call: ToolCall) -> None:
        self._started[call.call_id] = time.perf_counter()
        if self.runner is not None:
            self.runner.start(call)

    def cancel(self, call_id: str) -> None:
        if self.runner is not None:
            self.runner.cancel(call_id)

    async def finished(
        self, call: ToolCall, result: ToolResult, duration: float, interim: bool
    ) -> None:
        """A call's output (or a background call's late result) goes to the session."""
        calls = self._core.calls
        journal = self.journal
        if call.call_id in calls.background:
            await self._execute(calls.background_done(call.call_id, call.name, result.output))
            if journal is not None:
                await _quietly(journal.delivered(call.call_id), call)
            return
        if journal is not None:
            await _quietly(journal.finished(call, result.output, interim=interim), call)
        await self._execute(calls.finished(call.call_id, result.output, background=interim))
        ready_at = self._started.pop(call.call_id, None)
        if ready_at is not None:
            self._latency.append((call.call_id, ready_at, time.perf_counter()))

    async def decided(self, call: ToolCall, decision: Decision) -> None:
        await self._execute(
            self._core.calls.approval_decided(call.call_id, decision.approved, decision.reason)
        )

    def reporter(self, call: ToolCall) -> Callable[[str], None]:
        """``ToolContext.progress`` for one call, callable from the loop or a tool's thread."""
        loop_thread = threading.get_ident()
        token = anyio.lowlevel.current_token()

        def report(text: str) -> None:
            if threading.get_ident() == loop_thread:
                self._progress(call, text)
            else:
                anyio.from_thread.run_sync(self._progress, call, text, token=token)

        return report

    def _progress(self, call: ToolCall, text: str) -> None:
        self._notify(ToolProgress(call.call_id, call.name, text))
        actions = self._core.calls.progress(call.call_id, text)
        if actions and self.runner is not None:
            self.runner.spawn(self._execute, actions)

    def delivered(self, item: ev.Item) -> None:
        """The server acknowledged a client item: a call's output is safe now."""
        call_id = item.call_id
        if (
            self.journal is not None and self.runner is not None
            and item.type == "function_call_output" and call_id
            and call_id not in self._core.calls.background  # an interim output: not yet
        ):
            self.runner.spawn(self._forget, call_id)

    async def _forget(self, call_id: str) -> None:
        assert self.journal is not None
        await _quietly(self.journal.delivered(call_id), call_id)

    async def take_over(self, tools: ToolRegistry) -> None:
        """Run or answer the calls a previous process left in the journal (once, when the
        first connection is ready)."""
        if self.journal is None:
            return
        try:
            entries = await self.journal.recover()
        except Exception:
            logger.exception("could not read the tool journal; calls in flight are not taken over")
            return
        if entries:
            logger.info("taking over %d call(s) from the journal", len(entries))
            await self._execute(self._core.calls.resume(resume_plan(entries, tools)))

    def first_delta(self, response_id: str) -> None:
        """A reply started: report the latency of the tool turns it answers."""
        if self._latency and not self._core.gate.is_out_of_band(response_id):
            now = time.perf_counter()
            for call_id, ready_at, posted_at in self._latency:
                self._notify(ToolTurnLatency(call_id, posted_at - ready_at, now - ready_at))
            self._latency = []
