"""Shared helpers for wire-level tests: a live session against the local server, and
checks of what the client sent (every event valid GA, none refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from conformance import assert_client_event

from rtagent import Agent, RealtimeSession, RetryPolicy, connect, tool
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn
from rtagent.local._brains import Brain, Conversation

FAST_RETRY = RetryPolicy(max_attempts=5, delays=[0.01])


class Echo(Agent):
    instructions = "You echo."

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[str] = []

    @tool
    def echo(self, text: str) -> str:
        """Echo the text back.

        Args:
            text: The text to echo.
        """
        self.runs.append(text)
        return f"echo:{text}"


class AnswersAfterLookup:
    """Calls lookup until its output is in the conversation, then answers (like a model would)."""

    def reply(self, convo: Conversation) -> Turn:
        if any(item.get("type") == "function_call_output" for item in convo.items):
            return Turn(text="answer")
        return Turn(calls=[Call("lookup", {"key": "k"})])


@asynccontextmanager
async def live(
    agent: Agent, turns: list[Turn] | Brain, faults: Any = None, *, race: bool = False, **options: Any
) -> AsyncIterator[tuple[LocalRealtimeServer, RealtimeSession]]:
    brain = ScriptedBrain(turns) if isinstance(turns, list) else turns
    async with LocalRealtimeServer(brain=brain, faults=faults) as server:
        options.setdefault("retry", FAST_RETRY)
        async with connect(agent, url=server.url, api_key="sk-test", **options) as session:
            yield server, session
        check_client_events(server, race=race)


def check_client_events(server: LocalRealtimeServer, *, race: bool = False) -> None:
    """Every event the runtime sent is valid GA, and the server never refused one.

    Only a test that provokes the server-started-response race (``race=True``) may
    see ``conversation_already_has_active_response``. ``response_cancel_not_active``
    is the harmless answer to a cancel that crossed the response's end on the wire.
    No other error caused by a client event is allowed.
    """
    for record in server.connections:
        for event in record.received:
            assert_client_event(event)
        for event in record.sent:
            if event["type"] == "error" and event["error"].get("event_id"):
                if event["error"]["code"] == "response_cancel_not_active":
                    continue
                assert race and event["error"]["code"] == "conversation_already_has_active_response", event


def received(server: LocalRealtimeServer, index: int = -1) -> list[dict[str, Any]]:
    return server.connections[index].received


def kinds(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        item = e.get("item") or {}
        out.append(f"{e['type']}:{item.get('type')}" if e["type"] == "conversation.item.create" else e["type"])
    return out


def outputs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events
            if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]
