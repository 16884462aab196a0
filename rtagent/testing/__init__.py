"""Test your agents: run one against the local server and assert on what it did.

::

    from rtagent.testing import run_agent

    async def test_weather() -> None:
        async with run_agent(Weather()) as run:
            result = await run.ask("weather in Tortuga?")
        result.expect.tool_call("get_weather", port="Tortuga")
        result.expect.output(contains="Tortuga")

The model is the local server's rule-based one unless you pass scripted turns
(``run_agent(agent, [Turn(calls=[Call("get_weather", {"port": "Tortuga"})]), Turn(text="Sunny")])``)
or any brain. ``run_agent_sync`` does the same from synchronous code, and the pytest
plugin ``rtagent.testing.pytest_plugin`` adds an ``agent_runner`` fixture.
"""

from ..local import Call, Turn
from ._expect import Expect, ExpectationFailed
from ._result import ToolCallRecord, TurnResult
from ._run import AgentRun, Script, run_agent
from ._sync import SyncAgentRun, run_agent_sync

__all__ = [
    "AgentRun",
    "Call",
    "Expect",
    "ExpectationFailed",
    "Script",
    "SyncAgentRun",
    "ToolCallRecord",
    "Turn",
    "TurnResult",
    "run_agent",
    "run_agent_sync",
]
