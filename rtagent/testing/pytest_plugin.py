"""pytest fixtures for testing rtagent agents; enable with ``-p rtagent.testing.pytest_plugin``.

Or, in your ``conftest.py``::

    pytest_plugins = ["rtagent.testing.pytest_plugin"]

``agent_runner`` starts runs from synchronous tests and ends them when the test ends::

    def test_weather(agent_runner):
        run = agent_runner(Weather())
        run.ask("weather in Tortuga?").expect.tool_call("get_weather", port="Tortuga")

Async tests use :func:`rtagent.testing.run_agent` directly (``async with``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from ._run import Script
from ._sync import SyncAgentRun, run_agent_sync

if TYPE_CHECKING:
    from .._agent import Agent

__all__ = ["AgentRunner", "agent_runner"]


class AgentRunner(Protocol):
    """Starts a :class:`~rtagent.testing.SyncAgentRun` that ends with the test."""

    def __call__(self, agent: Agent, script: Script = None, **options: Any) -> SyncAgentRun:
        """Run ``agent`` against a local server; arguments as for ``run_agent_sync``."""
        ...


@pytest.fixture
def agent_runner() -> Iterator[AgentRunner]:
    """A function that starts agent runs (``run_agent_sync``); they end with the test."""
    with ExitStack() as stack:

        def start(agent: Agent, script: Script = None, **options: Any) -> SyncAgentRun:
            return stack.enter_context(run_agent_sync(agent, script, **options))

        yield start
