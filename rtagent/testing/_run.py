"""``run_agent()``: an agent against the local server, with every event recorded.

The run owns a :class:`~rtagent.local.LocalRealtimeServer` (a rule-based model, or the
scripted turns or brain you give it), a session connected to it, and one task that
records the session's event stream from the moment of connecting. ``run.ask()`` sends a
message like :meth:`RealtimeSession.ask` and returns a :class:`TurnResult` built from
what was recorded between the question and the response that answered it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Union

import anyio
import anyio.abc

from .._runtime import RealtimeSession, SessionEvent, connect
from ..local import Brain, LocalRealtimeServer, RuleBrain, ScriptedBrain, Turn
from ._result import TurnResult, is_final_response

if TYPE_CHECKING:
    from .._agent import Agent
    from ..local._faults import FaultsSpec

__all__ = ["AgentRun", "Script", "run_agent"]

Script = Union[Brain, Sequence[Turn], None]
"""What plays the model: a brain, a list of scripted turns, or None for the rule-based one."""

SETTLE_SECONDS = 2.0
"""Longest wait, after an answer, for the events that close its turn to be recorded."""


class AgentRun:
    """A running agent under test; create one with :func:`run_agent`.

    Attributes:
        agent: the agent under test.
        server: the local server playing the model (``server.connections`` holds the
            exact events each connection sent and received).
        session: the live session (``async for`` on it gets its own subscription that
            starts when iterated; :attr:`events` holds everything since connecting).
        results: every turn of :meth:`ask`, in order.
    """

    def __init__(self, agent: Agent, server: LocalRealtimeServer, session: RealtimeSession) -> None:
        self.agent = agent
        self.server = server
        self.session = session
        self.results: list[TurnResult] = []
        self._events: list[SessionEvent] = []
        self._arrived = anyio.Event()
        self._ended = False

    @property
    def events(self) -> list[SessionEvent]:
        """Every server event and runtime notice since connecting, in order."""
        return list(self._events)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation as the session knows it (messages, calls, outputs)."""
        return self.session.history

    async def ask(self, text: str) -> TurnResult:
        """Send a user message, run every tool round, and return what the turn did.

        Raises:
            ServerError: the response failed or the server refused to start it.
            SessionClosed: the session has ended.
        """
        start = len(self._events)
        answer = await self.session.ask(text)
        await self._settle(start)
        result = TurnResult.from_events(text, answer, self._events[start:])
        self.results.append(result)
        return result

    async def _settle(self, start: int) -> None:
        """Wait until the response that ended the turn has been recorded.

        ``ask()`` returns as soon as the session has the answer; its ``response.done``
        reaches the event stream right after, and every tool notice of the turn before it.
        """
        with anyio.move_on_after(SETTLE_SECONDS):
            seen = start
            while not self._ended:
                if any(is_final_response(e) for e in self._events[seen:]):
                    return
                seen = len(self._events)
                await self._arrived.wait()

    async def _record(self, stream: AsyncGenerator[SessionEvent, None]) -> None:
        try:
            async for event in stream:
                self._append(event)
        finally:
            self._ended = True
            self._arrived.set()

    def _append(self, event: SessionEvent) -> None:
        self._events.append(event)
        self._arrived.set()
        self._arrived = anyio.Event()


@asynccontextmanager
async def run_agent(
    agent: Agent,
    script: Script = None,
    *,
    faults: FaultsSpec = None,
    **options: Any,
) -> AsyncIterator[AgentRun]:
    """Run ``agent`` against a local server and record what it does.

    ::

        async with run_agent(Weather()) as run:
            result = await run.ask("weather in Tortuga?")
        result.expect.tool_call("get_weather", port="Tortuga")

    Args:
        agent: the agent under test.
        script: what plays the model: None for the rule-based model (it calls the tool
            the words name), a list of :class:`~rtagent.local.Turn` played one per
            response, or any :class:`~rtagent.local.Brain`.
        faults: failures for the server to inject (see :class:`~rtagent.local.Faults`).
        **options: passed to :func:`rtagent.connect` (``retry``, ``reconnect``...).

    Raises:
        ValueError: ``event_buffer=0`` (the run records every event).
    """
    options.setdefault("event_buffer", 4096)
    # The local server needs no key: never send OPENAI_API_KEY from the environment to it.
    options.setdefault("api_key", "sk-local-test")
    if options["event_buffer"] < 1:
        raise ValueError("run_agent records every event: event_buffer must be at least 1")
    # Errors of the caller's block (a failed assertion) are re-raised outside every task
    # group, so they reach the test as themselves rather than inside an exception group.
    error: BaseException | None = None
    async with LocalRealtimeServer(_brain(script), faults=faults) as server, connect(
        agent, url=server.url, **options
    ) as session:
        run = AgentRun(agent, server, session)
        stream = session.__aiter__()
        # The first step subscribes here, so no later iterator takes the events kept
        # since connecting (the session has seen session.created, so it does not wait).
        run._append(await stream.__anext__())
        async with anyio.create_task_group() as tg:
            tg.start_soon(run._record, stream)
            try:
                yield run
            except BaseException as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
    if error is not None:
        raise error


def _brain(script: Script) -> Brain:
    if script is None:
        return RuleBrain()
    if isinstance(script, Sequence):
        return ScriptedBrain(script)
    return script
