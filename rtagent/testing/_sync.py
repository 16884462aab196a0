"""``run_agent_sync()``: the test run for synchronous tests (no event loop in the test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._errors import first_error
from ._result import TurnResult
from ._run import AgentRun, Script, run_agent

if TYPE_CHECKING:
    from .._agent import Agent
    from .._runtime import SessionEvent
    from ..local import LocalRealtimeServer

__all__ = ["SyncAgentRun", "run_agent_sync"]


class SyncAgentRun:
    """The blocking twin of :class:`AgentRun`: the run lives on an event loop in a thread."""

    def __init__(self, run: AgentRun, portal: BlockingPortal) -> None:
        self._run = run
        self._portal = portal

    @property
    def agent(self) -> Agent:
        """The agent under test."""
        return self._run.agent

    @property
    def server(self) -> LocalRealtimeServer:
        """The local server playing the model."""
        return self._run.server

    @property
    def results(self) -> list[TurnResult]:
        """Every turn of :meth:`ask`, in order."""
        return self._run.results

    @property
    def events(self) -> list[SessionEvent]:
        """Every server event and runtime notice since connecting, in order."""
        return self._portal.call(lambda: self._run.events)

    def ask(self, text: str) -> TurnResult:
        """Send a user message, run every tool round, and return what the turn did."""
        return self._portal.call(self._run.ask, text)


@contextmanager
def run_agent_sync(
    agent: Agent, script: Script = None, *, backend: str = "asyncio", **options: Any
) -> Iterator[SyncAgentRun]:
    """Run ``agent`` against a local server from synchronous code; see :func:`run_agent`.

    ::

        with run_agent_sync(Weather()) as run:
            run.ask("weather in Tortuga?").expect.tool_call("get_weather", port="Tortuga")

    Args:
        agent: the agent under test.
        script: None (rule-based model), a list of turns, or a brain.
        backend: the event loop the run uses in its thread (``"asyncio"`` or ``"trio"``).
        **options: as for :func:`run_agent`.
    """
    try:
        with start_blocking_portal(backend) as portal, portal.wrap_async_context_manager(
            run_agent(agent, script, **options)
        ) as run:
            yield SyncAgentRun(run, portal)
    except BaseException as exc:
        error = first_error(exc)
        if error is exc:
            raise
        raise error from None
