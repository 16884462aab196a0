"""MCP servers as a tool source (Agent.mcp_servers): stdio and streamable HTTP, on asyncio and trio.

The test MCP server is ``tests/mcp_server.py``: a subprocess over stdio, or streamable
HTTP from a thread with its own event loop.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from live import check_client_events, outputs
from mcp_server import HttpServer, serve_http

from rtagent import (
    Agent,
    ApprovalRequested,
    ConfigurationError,
    HostedMcp,
    McpHttp,
    McpServer,
    McpServerFailed,
    McpStdio,
    McpToolsChanged,
    RealtimeSession,
    connect,
    tool,
)
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn

SERVER = str(Path(__file__).with_name("mcp_server.py"))


def stdio(name: str = "dice", *flags: str, **options: Any) -> McpStdio:
    return McpStdio(name, command=sys.executable, args=[SERVER, *flags], **options)


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[HttpServer]:
    """The test MCP server over streamable HTTP on 127.0.0.1."""
    with serve_http() as server:
        yield server


class Croupier(Agent):
    instructions = "You run the dice table."

    @tool
    def house_rules(self) -> str:
        """The house rules."""
        return "no cheating"


@asynccontextmanager
async def live(
    agent: Agent, turns: list[Turn] | None = None, **options: Any
) -> AsyncIterator[tuple[LocalRealtimeServer, RealtimeSession]]:
    brain = ScriptedBrain(turns) if turns is not None else None
    async with LocalRealtimeServer(brain) as server:
        async with connect(agent, url=server.url, api_key="sk-test", **options) as session:
            yield server, session
        check_client_events(server)


def declared(server: LocalRealtimeServer) -> list[dict[str, Any]]:
    """The tools of the first session.update the server received."""
    update = next(e for e in server.connections[0].received if e["type"] == "session.update")
    tools: list[dict[str, Any]] = update["session"]["tools"]
    return tools


# -- tool turns -------------------------------------------------------------------------------


async def test_a_stdio_server_s_tools_join_the_session_and_run() -> None:
    """Over stdio: the tools are declared with their inputSchema and a call reaches the server."""
    agent = Croupier(mcp_servers=[stdio()])
    with anyio.fail_after(30):
        async with live(agent) as (server, session):
            assert session.tools.names()[0] == "house_rules"
            assert {"roll_dice", "add_numbers", "explode", "learn_shouting"} <= set(session.tools.names())
            answer = await session.ask("Please add numbers 2 and 40")
            [out] = outputs(server.connections[0].received)
            tools = {t["name"]: t for t in declared(server)}
    assert answer == "Here is what I found: add numbers returned 42."
    assert out["output"] == "42"
    schema = tools["add_numbers"]["parameters"]
    assert schema["required"] == ["a", "b"] and schema["properties"]["a"]["type"] == "integer"
    assert tools["add_numbers"]["description"] == "Add two numbers."


async def test_an_http_server_s_tools_run_with_its_headers(mcp_http: HttpServer) -> None:
    """Over streamable HTTP: the call reaches the server with the declared headers."""
    mcp_http.authorizations.clear()
    server_decl = McpHttp("dice", url=mcp_http.url, headers={"Authorization": "Bearer dice-key-123"})
    turns = [Turn(calls=[Call("roll_dice", {"sides": 12})]), Turn(text="twelve")]
    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[server_decl]), turns) as (server, session):
            assert await session.ask("roll") == "twelve"
            [out] = outputs(server.connections[0].received)
    assert out["output"] == "rolled 12"
    assert set(mcp_http.authorizations) == {"Bearer dice-key-123"}
    assert "dice-key-123" not in repr(server_decl)


async def test_an_error_result_is_a_tool_error_output() -> None:
    """The server's error result (or an unknown-tool error) reaches the model as a tool error."""
    turns = [Turn(calls=[Call("explode", {"reason": "x"}), Call("roll_dice", {"sides": "many"})]),
             Turn(text="noted")]
    finished: list[Any] = []
    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[stdio()]), turns) as (server, session):
            assert await session.ask("go") == "noted"
            out = [o["output"] for o in outputs(server.connections[0].received)]
    assert out[0] == "error from the MCP server dice: Error executing tool explode"
    assert out[1].startswith("error from the MCP server dice:") and "sides" in out[1]
    del finished


async def test_prefix_allowed_tools_and_approval_apply_to_server_tools() -> None:
    """prefix renames, allowed_tools filters, needs_approval asks through the approval API."""
    asked: list[ApprovalRequested] = []

    def approve(request: ApprovalRequested) -> bool:
        asked.append(request)
        return True

    declared_server = stdio(prefix="casino_", allowed_tools=["roll_dice"], needs_approval=True)
    turns = [Turn(calls=[Call("casino_roll_dice", {"sides": 3})]), Turn(text="three")]
    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[declared_server]), turns, approve=approve) as (
            server, session
        ):
            assert session.tools.names() == ["house_rules", "casino_roll_dice"]
            assert await session.ask("roll") == "three"
            [out] = outputs(server.connections[0].received)
    assert [r.name for r in asked] == ["casino_roll_dice"] and out["output"] == "rolled 3"


async def test_an_agent_tool_keeps_its_name() -> None:
    """A server tool named like one of the agent's is skipped; the agent's own runs."""

    class Clash(Croupier):
        @tool
        def roll_dice(self, sides: int) -> str:
            """The agent's own dice."""
            return "agent dice"

    turns = [Turn(calls=[Call("roll_dice", {"sides": 6})]), Turn(text="ok")]
    with anyio.fail_after(30):
        async with live(Clash(mcp_servers=[stdio()]), turns) as (server, session):
            await session.ask("roll")
            [out] = outputs(server.connections[0].received)
            assert session.tools.names().count("roll_dice") == 1
    assert out["output"] == "agent dice"


async def test_hosted_and_client_side_mcp_together(mcp_http: HttpServer) -> None:
    """A hosted server's entry stays in the session when the client-side tools are set."""
    agent = Croupier(
        hosted_mcp=[HostedMcp("remote", url=mcp_http.url, require_approval="never")],
        mcp_servers=[stdio()],
    )
    with anyio.fail_after(30):
        async with live(agent) as (server, session):
            await session.update_tools(session.tools)
            updates = [e for e in server.connections[0].received if e["type"] == "session.update"]
    for update in updates:
        assert update["session"]["tools"][0] == {
            "server_url": mcp_http.url, "require_approval": "never",
            "server_label": "remote", "type": "mcp",
        }
        assert "roll_dice" in [t.get("name") for t in update["session"]["tools"]]


# -- list changes ------------------------------------------------------------------------------


@pytest.fixture
def fresh_http() -> Iterator[HttpServer]:
    """A test MCP server of its own (a list change lasts as long as the server runs)."""
    with serve_http() as server:
        yield server


async def test_a_list_change_over_stdio_is_applied_to_the_live_session() -> None:
    """notifications/tools/list_changed (stdio): relisted, session.update sent, the new tool runs."""
    await _list_change(stdio())


async def test_a_list_change_over_http_is_applied_to_the_live_session(fresh_http: HttpServer) -> None:
    """notifications/tools/list_changed (HTTP): relisted, session.update sent, the new tool runs."""
    await _list_change(McpHttp("dice", url=fresh_http.url))


async def _list_change(server_decl: McpStdio | McpHttp) -> None:
    turns = [Turn(calls=[Call("learn_shouting")]), Turn(text="learnt"),
             Turn(calls=[Call("shout", {"text": "ahoy"})]), Turn(text="shouted")]
    changes: list[McpToolsChanged] = []

    async def watch(session: RealtimeSession, changed: anyio.Event) -> None:
        async for event in session:
            if isinstance(event, McpToolsChanged):
                changes.append(event)
                changed.set()
                return

    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[server_decl]), turns, event_buffer=256) as (
            server, session
        ):
            assert "shout" not in session.tools
            changed = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, session, changed)
                assert await session.ask("learn") == "learnt"
                await changed.wait()
            assert "shout" in session.tools
            assert await session.ask("shout") == "shouted"
            received = server.connections[0].received
    [change] = changes
    assert change.server == "dice" and "shout" in change.tools
    updates = [e for e in received if e["type"] == "session.update"]
    assert "shout" in [t["name"] for t in updates[-1]["session"]["tools"]]
    assert outputs(received)[-1]["output"] == "AHOY"


# -- failures --------------------------------------------------------------------------------


async def test_a_server_that_cannot_start_is_reported_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bad command: logged with the server's name, an McpServerFailed notice, the session works."""
    broken = McpStdio("broken", command="rtagent-no-such-mcp-server")
    failures: list[McpServerFailed] = []
    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[broken, stdio()])) as (_server, session):
            async for event in session:
                if isinstance(event, McpServerFailed):
                    failures.append(event)
                    break
            assert "roll_dice" in session.tools and "house_rules" in session.tools
            assert await session.ask("add numbers 1 and 2") == "Here is what I found: add numbers returned 3."
    [failure] = failures
    assert failure.server == "broken" and "rtagent-no-such-mcp-server" in failure.reason
    assert any(r.name == "rtagent.mcp" and r.levelno == logging.ERROR and "broken" in r.getMessage()
               for r in caplog.records)


async def test_a_slow_server_is_given_up_after_its_start_timeout() -> None:
    """A server that never answers: the session starts without it once start_timeout passes."""
    slow = stdio("slow", "--slow", start_timeout=0.5)
    with anyio.fail_after(30):
        async with live(Croupier(mcp_servers=[slow])) as (server, session):
            async for event in session:
                if isinstance(event, McpServerFailed):
                    assert event.server == "slow" and "0.5s" in event.reason
                    break
            assert session.tools.names() == ["house_rules"]
            assert [t["name"] for t in declared(server)] == ["house_rules"]
            assert "Hello" in await session.ask("hello")


async def test_the_servers_end_with_the_session() -> None:
    """Leaving connect() closes the MCP connections: no task or process is left behind."""
    agent = Croupier(mcp_servers=[stdio()])
    with anyio.fail_after(30):
        async with live(agent) as (_server, session):
            [source] = [t for t in session.tools if t.name == "roll_dice"]
        with pytest.raises(Exception, match="not running"):
            await source.handler(sides=2)


# -- declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: McpStdio("x"), "command"),
        (lambda: McpStdio("x", command="c", args="a b"), "args"),
        (lambda: McpHttp("x", url="ftp://host"), "url"),
        (lambda: McpStdio("bad name", command="c"), "name"),
        (lambda: McpStdio("x", command="c", start_timeout=0), "start_timeout"),
        (lambda: McpServer("x"), "McpStdio or a McpHttp"),
    ],
)
def test_bad_declarations_are_refused(make: Any, problem: str) -> None:
    """A server declaration that cannot work fails when it is made, naming the problem."""
    with pytest.raises(ConfigurationError, match=problem):
        make()


def test_mcp_servers_must_be_declarations() -> None:
    """Agent(mcp_servers=...) takes McpStdio/McpHttp objects with distinct names."""
    with pytest.raises(ConfigurationError, match="is not a McpServer"):
        Croupier(mcp_servers=["npx server"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="declared twice"):
        Croupier(mcp_servers=[stdio(), stdio()])


def test_env_and_headers_stay_out_of_reprs() -> None:
    """Credentials given to a server declaration never show in its repr."""
    server = McpStdio("s", command="c", env={"TOKEN": "env-secret-123"})
    assert "env-secret-123" not in repr(server) and json.dumps(repr(server))
