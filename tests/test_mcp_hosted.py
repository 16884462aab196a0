"""Hosted MCP tools: declared on the agent, emulated by the local server with a real MCP server.

The MCP server (``tests/mcp_server.py``) serves streamable HTTP from a thread with its own
event loop, so every test runs on asyncio and trio.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import websockets.frames
from conformance import assert_server_event
from live import check_client_events
from mcp_server import HttpServer, serve_http

from rtagent import (
    Agent,
    ApprovalRequested,
    ConfigurationError,
    HostedMcp,
    RealtimeSession,
    connect,
    tool,
)
from rtagent import events as ev
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn
from rtagent.local._brains import Brain

TOKEN = "oauth-7f3c9a1b5e2d4c6f8a0b"
"""A marked token: no log record may hold any piece of it."""


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[HttpServer]:
    """The test MCP server over streamable HTTP on 127.0.0.1."""
    with serve_http() as server:
        yield server


class Dice(Agent):
    instructions = "You roll dice."


def dice(url: str, **options: Any) -> Dice:
    return Dice(hosted_mcp=[HostedMcp("dice", url=url, authorization=TOKEN, **options)])


@asynccontextmanager
async def hosted(
    agent: Agent, brain: Brain | None = None, **options: Any
) -> AsyncIterator[tuple[LocalRealtimeServer, RealtimeSession]]:
    """A session whose hosted MCP tools are listed before the block starts."""
    async with LocalRealtimeServer(brain) as server:
        async with connect(agent, url=server.url, api_key="sk-test", **options) as session:
            async for event in session:
                if isinstance(event, ev.McpListToolsCompleted | ev.McpListToolsFailed):
                    break
            yield server, session
        check_client_events(server)
        for record in server.connections:
            for event in record.sent:
                assert_server_event(event)


def item_types(server: LocalRealtimeServer, kind: str) -> list[dict[str, Any]]:
    """Items of this type the server put into the conversation."""
    engine = server.connections[-1].engine
    assert engine is not None
    return [item for item in engine.items if item["type"] == kind]


# -- the declaration ------------------------------------------------------------------


def test_hosted_mcp_goes_into_the_session_tools_before_the_function_tools() -> None:
    """session_config() sends each HostedMcp as a GA mcp tool, ahead of the function tools."""

    class Both(Agent):
        hosted_mcp = [
            HostedMcp("dice", url="https://mcp.example/dice", require_approval="never",
                      allowed_tools=["roll_dice"], description="Dice."),
            HostedMcp("mail", connector="connector_gmail", authorization=TOKEN),
        ]

        @tool
        def echo(self, text: str) -> str:
            """Echo."""
            return text

    tools = Both().session_config()["tools"]
    assert [t["type"] for t in tools] == ["mcp", "mcp", "function"]
    assert tools[0] == {
        "server_url": "https://mcp.example/dice", "allowed_tools": ["roll_dice"],
        "require_approval": "never", "server_description": "Dice.",
        "server_label": "dice", "type": "mcp",
    }
    assert tools[1]["connector_id"] == "connector_gmail" and tools[1]["authorization"] == TOKEN
    # A session.update that ends with the entry ends with its label and type, never a token.
    assert json.dumps(tools[1], separators=(",", ":")).endswith('"server_label":"mail","type":"mcp"}')


def test_credentials_never_show_in_a_repr() -> None:
    """repr() of a HostedMcp (and of an agent holding one) names the secrets, never shows them."""
    server = HostedMcp("dice", url="https://mcp.example", authorization=TOKEN,
                       headers={"X-Key": "hdr-secret-value"})
    shown = repr(server) + repr(Dice(hosted_mcp=[server])) + repr([server])
    assert TOKEN not in shown and "hdr-secret-value" not in shown
    assert "authorization=<redacted>" in repr(server) and "headers=<1 redacted>" in repr(server)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, "exactly one of url= and connector="),
        ({"url": "https://a", "connector": "connector_gmail"}, "exactly one"),
        ({"url": "https://a", "require_approval": "sometimes"}, "require_approval"),
        ({"url": "https://a", "headers": {"a": 1}}, "headers"),
    ],
)
def test_a_bad_declaration_is_refused(kwargs: dict[str, Any], problem: str) -> None:
    """A HostedMcp the service could not take fails when it is declared."""
    with pytest.raises(ConfigurationError, match=problem):
        HostedMcp("dice", **kwargs)


def test_labels_are_unique_per_agent() -> None:
    """Two hosted servers with one label are a configuration error."""
    with pytest.raises(ConfigurationError, match="declared twice"):
        Dice(hosted_mcp=[HostedMcp("d", url="https://a"), HostedMcp("d", url="https://b")])


# -- listing, events, calls ------------------------------------------------------------


async def test_the_listing_and_a_call_reach_the_application_as_typed_events(
    mcp_http: HttpServer,
) -> None:
    """mcp_list_tools.* and response.mcp_call* arrive as rtagent.events models, in order."""
    agent = dice(mcp_http.url, require_approval="never")
    seen: list[Any] = []
    listed = anyio.Event()

    async def watch(session: RealtimeSession) -> None:
        async for event in session:
            seen.append(event)
            if isinstance(event, ev.McpListToolsCompleted):
                listed.set()
            if isinstance(event, ev.ResponseDone) and event.response.output:
                return

    with anyio.fail_after(20):
        async with LocalRealtimeServer() as server:
            async with connect(agent, url=server.url, api_key="sk-test") as session:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch, session)
                    await listed.wait()
                    answer = await session.ask("Roll dice with 20 sides")
    assert answer == "Here is what I found: roll dice returned rolled 20."
    kinds = [type(e) for e in seen]
    for expected in (ev.McpListToolsInProgress, ev.McpListToolsCompleted,
                     ev.ResponseMcpCallArgumentsDelta, ev.ResponseMcpCallArgumentsDone,
                     ev.ResponseMcpCallInProgress, ev.ResponseMcpCallCompleted):
        assert expected in kinds, expected
    assert kinds.index(ev.McpListToolsInProgress) < kinds.index(ev.McpListToolsCompleted)
    assert kinds.index(ev.ResponseMcpCallInProgress) < kinds.index(ev.ResponseMcpCallCompleted)
    done = next(e for e in seen if isinstance(e, ev.ResponseMcpCallArgumentsDone))
    assert json.loads(done.arguments) == {"sides": 20}
    [listed] = [e.item for e in seen if isinstance(e, ev.ConversationItemDone)
                and e.item.type == "mcp_list_tools"]
    assert listed.server_label == "dice"
    [call] = [e.item for e in seen if isinstance(e, ev.ResponseOutputItemDone)
              and e.item.type == "mcp_call"]
    assert call.server_label == "dice" and call.output == "rolled 20"


async def test_the_local_server_lists_and_calls_with_the_credentials(mcp_http: HttpServer) -> None:
    """The real MCP server gets the authorization as a bearer token; the session echo omits it."""
    mcp_http.authorizations.clear()
    brain = ScriptedBrain([Turn(calls=[Call("add_numbers", {"a": 2, "b": 40}, server_label="dice")])])
    with anyio.fail_after(20):
        async with hosted(dice(mcp_http.url, require_approval="never"), brain) as (server, session):
            assert await session.ask("add") == "Here is what I found: add numbers returned 42."
            [listing] = item_types(server, "mcp_list_tools")
            [call] = item_types(server, "mcp_call")
    assert {t["name"] for t in listing["tools"]} >= {"roll_dice", "add_numbers", "explode"}
    assert call["output"] == "42" and call["error"] is None and "status" not in call
    assert set(mcp_http.authorizations) == {f"Bearer {TOKEN}"}
    assert TOKEN not in json.dumps(session.server_config)
    assert TOKEN in json.dumps(session.config)  # kept to configure the next connection


async def test_allowed_tools_limit_the_listing(mcp_http: HttpServer) -> None:
    """allowed_tools: the mcp_list_tools item holds only the allowed tools."""
    with anyio.fail_after(20):
        async with hosted(dice(mcp_http.url, allowed_tools=["roll_dice"])) as (server, _session):
            [listing] = item_types(server, "mcp_list_tools")
    assert [t["name"] for t in listing["tools"]] == ["roll_dice"]


async def test_a_failing_tool_is_a_failed_mcp_call(mcp_http: HttpServer) -> None:
    """The MCP server's error result: response.mcp_call.failed and the item's error."""
    brain = ScriptedBrain([Turn(calls=[Call("explode", {"reason": "test"}, server_label="dice")])])
    with anyio.fail_after(20):
        async with hosted(dice(mcp_http.url, require_approval="never"), brain) as (server, session):
            answer = await session.ask("explode")
            [call] = item_types(server, "mcp_call")
            sent = server.connections[-1].sent_types()
    assert "response.mcp_call.failed" in sent and "response.mcp_call.completed" not in sent
    assert call["error"]["type"] == "tool_execution_error" and call["output"] is None
    assert answer.startswith("Here is what I found: explode failed:")


async def test_an_unreachable_server_fails_its_listing() -> None:
    """Nothing listens at the URL: mcp_list_tools.failed, and the session carries on."""
    agent = dice(f"http://127.0.0.1:{closed_port()}/mcp")
    with anyio.fail_after(30):
        async with hosted(agent) as (server, session):
            assert "mcp_list_tools.failed" in server.connections[-1].sent_types()
            assert item_types(server, "mcp_list_tools") == []
            assert "Hello" in await session.ask("hello")


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- approval ----------------------------------------------------------------------------


async def decide(session: RealtimeSession, verdict: str, seen: list[ApprovalRequested]) -> None:
    """Answer the first approval request with session.approve or session.reject."""
    async for event in session:
        if isinstance(event, ApprovalRequested):
            seen.append(event)
            if verdict == "approve":
                assert session.approve(event.call_id)
            else:
                assert session.reject(event.call_id, "not today")
            return


@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_an_approval_request_is_answered_through_the_approval_api(
    mcp_http: HttpServer, verdict: str
) -> None:
    """require_approval: the call waits for ApprovalRequested; approved it runs, rejected not."""
    agent = dice(mcp_http.url, require_approval="always")
    seen: list[ApprovalRequested] = []
    with anyio.fail_after(20):
        async with hosted(agent, event_buffer=128) as (server, session):
            async with anyio.create_task_group() as tg:
                tg.start_soon(decide, session, verdict, seen)
                answer = await session.ask("Roll dice with 6 sides")
            [request] = item_types(server, "mcp_approval_request")
            [response] = item_types(server, "mcp_approval_response")
            calls = item_types(server, "mcp_call")
            received = [e for r in server.connections for e in r.received]
    assert seen[0].server_label == "dice" and seen[0].name == "roll_dice"
    assert seen[0].call_id == request["id"] and json.loads(seen[0].arguments) == {"sides": 6}
    assert response["approval_request_id"] == request["id"]
    assert response["approve"] is (verdict == "approve")
    if verdict == "approve":
        [call] = calls
        assert call["approval_request_id"] == request["id"] and call["output"] == "rolled 6"
        assert answer == "Here is what I found: roll dice returned rolled 6."
    else:
        assert calls == []
        assert response["reason"] == "not today"
        assert answer == "I did not run roll_dice: it was not approved (not today)."
    # One response.create for the turn, one for the round the decision closed.
    assert [e["type"] for e in received].count("response.create") == 2


async def test_an_approve_handler_decides_hosted_calls(mcp_http: HttpServer) -> None:
    """connect(approve=...) answers mcp_approval_request like a local tool's request."""
    asked: list[ApprovalRequested] = []

    async def approve(request: ApprovalRequested) -> bool:
        asked.append(request)
        return request.server_label == "dice"

    with anyio.fail_after(20):
        async with hosted(dice(mcp_http.url), approve=approve) as (_server, session):
            answer = await session.ask("add numbers 1 and 2")
    assert [r.name for r in asked] == ["add_numbers"]
    assert answer == "Here is what I found: add numbers returned 3."


async def test_per_tool_approval_filters(mcp_http: HttpServer) -> None:
    """require_approval {"never": {"tool_names": [...]}}: those tools run without asking."""
    agent = dice(mcp_http.url, require_approval={"never": {"tool_names": ["roll_dice"]}})
    with anyio.fail_after(20):
        async with hosted(agent, approve=lambda _r: False) as (server, session):
            assert await session.ask("roll dice 4") == "Here is what I found: roll dice returned rolled 4."
            await session.ask("add numbers 1 and 1")
            assert len(item_types(server, "mcp_approval_request")) == 1


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("log_size", ["default", "whole frames"])
async def test_credentials_are_never_logged(
    mcp_http: HttpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    log_size: str,
) -> None:
    """DEBUG on every logger through a whole session: no record holds any piece of the token."""
    if log_size == "whole frames":
        monkeypatch.setattr(websockets.frames.Frame, "MAX_LOG_SIZE", 100_000)
    caplog.set_level(logging.DEBUG)
    headers = {"X-Api-Key": "hdr-7f3c9a1b5e2d4c6f8a0b"}
    agent = Dice(hosted_mcp=[HostedMcp("dice", url=mcp_http.url, authorization=TOKEN,
                                      headers=headers, require_approval="always")])
    with anyio.fail_after(20):
        async with hosted(agent, approve=lambda _r: True) as (_server, session):
            await session.ask("Roll dice with 8 sides")
    texts = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    frames = [t for t in texts if "session.update" in t]
    assert frames, "the session.update frame was not logged at all"
    pieces = {TOKEN[i : i + 6] for i in range(len(TOKEN) - 5)}
    pieces |= {headers["X-Api-Key"][i : i + 6] for i in range(len(headers["X-Api-Key"]) - 5)}
    leaks = [t for t in texts if any(p in t for p in pieces)]
    assert not leaks, leaks[:3]
