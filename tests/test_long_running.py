"""Long-running tools without dead air: progress, background work (asyncio and trio)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from live import live, outputs, received

from rtagent import Agent, ToolContext, ToolProgress, tool
from rtagent.local import Call, Turn
from rtagent.local._brains import Conversation


class Planner(Agent):
    instructions = "You plan trips."

    def __init__(self, delay: float = 0.3) -> None:
        super().__init__()
        self.delay = delay
        self.finished = anyio.Event()

    @tool(background=True, on_interrupt="cancel")
    async def build_report(self, city: str, ctx: ToolContext) -> str:
        """Build a long travel report.

        Args:
            city: Where to.
        """
        ctx.progress("gathering the weather")
        await anyio.sleep(self.delay)
        self.finished.set()
        return f"report for {city}: all clear"

    @tool
    def slow_lookup(self, ctx: ToolContext) -> str:
        """A plain def tool that reports progress from its worker thread."""
        ctx.progress("still looking")
        time.sleep(0.05)
        return "found it"


def reply(convo: Conversation) -> str:
    """Answer like a model: acknowledge the interim output, then the late result."""
    last = convo.last_item or {}
    if last.get("role") == "system":
        return "Your report is ready: all clear."
    if convo.trailing_outputs:
        return "I am building it, ask me anything meanwhile."
    return "Happy to chat."


async def test_background_tool_answers_at_once_and_delivers_later() -> None:
    """The model hears "started" at once and keeps talking; the result arrives later, then a reply."""
    agent = Planner(delay=0.5)
    turns = [Turn(calls=[Call("build_report", {"city": "Lima"})])] + [Turn(text=reply)] * 4
    seen: list[Any] = []
    with anyio.fail_after(15):
        async with live(agent, turns, event_buffer=512) as (server, session):
            answer = await session.ask("build me a report on Lima")
            assert answer == "I am building it, ask me anything meanwhile."
            assert not agent.finished.is_set()  # the turn did not wait for the work
            assert await session.ask("how are you?") == "Happy to chat."
            await agent.finished.wait()
            record = await server.wait_for(lambda rec: sum(
                e["type"] == "response.done" for e in rec.sent) >= 4)
            async for event in session:
                seen.append(event)
                if event.type == "response.done" and seen.count(event) and any(
                        getattr(i, "text", lambda: "")() == "Your report is ready: all clear."
                        for i in event.response.output):
                    break
            sent = received(server)
    [interim] = outputs(sent)
    assert interim["output"].startswith("build_report started in the background")
    late = [e["item"] for e in sent if e["type"] == "conversation.item.create"
            and e["item"].get("role") == "system"]
    assert "report for Lima: all clear" in late[0]["content"][0]["text"]
    errors = [e for e in record.sent if e["type"] == "error"]
    assert errors == []  # never a conversation_already_has_active_response
    assert any(isinstance(e, ToolProgress) and e.text == "gathering the weather" for e in seen)


async def test_progress_from_a_sync_tool_speaks_out_of_band() -> None:
    """context.progress() in a def tool: a ToolProgress notice and an out-of-band response."""
    def answer(convo: Conversation) -> str:
        # Out-of-band progress responses see no conversation (input: []).
        return "still looking for you" if not convo.items else "found it"

    turns = [Turn(calls=[Call("slow_lookup")]), Turn(text=answer), Turn(text=answer)]
    seen: list[Any] = []
    with anyio.fail_after(10):
        async with live(Planner(), turns, event_buffer=256) as (server, session):
            assert await session.ask("look it up") == "found it"
            async for event in session:
                seen.append(event)
                if isinstance(event, ToolProgress):
                    break
            sent = received(server)
    creates = [e["response"] for e in sent if e["type"] == "response.create"]
    oob = [c for c in creates if c.get("conversation") == "none"]
    assert oob and "still looking" in oob[0]["instructions"]
    assert [o["output"] for o in outputs(sent)] == ["found it"]


async def test_an_interrupt_cancels_background_work_with_a_cancel_policy() -> None:
    """on_interrupt="cancel" applies after the interim output too: no late result comes."""
    agent = Planner(delay=5)
    turns = [Turn(calls=[Call("build_report", {"city": "Oslo"})])] + [Turn(text=reply)] * 2
    with anyio.fail_after(10):
        async with live(agent, turns) as (server, session):
            assert await session.ask("report on Oslo") == "I am building it, ask me anything meanwhile."
            await session.cancel()
            record = await server.wait_for(lambda rec: any(
                e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
                for e in rec.received))
            late = [e["item"] for e in record.received if e["type"] == "conversation.item.create"
                    and e["item"].get("role") == "system"]
    assert "cancelled" in late[0]["content"][0]["text"]
    assert not agent.finished.is_set()
