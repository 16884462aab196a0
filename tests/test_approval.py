"""Tool approval: granted, rejected, timed out, by a handler, across a reconnect (asyncio and trio)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from live import live, outputs, received

from rtagent import Agent, ApprovalRequested, ToolDefinitionError, tool
from rtagent.local import Call, Faults, Turn


class Bank(Agent):
    instructions = "You move money."

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []

    @tool(needs_approval=lambda args: args.get("amount", 0) > 100, on_interrupt="cancel")
    def transfer(self, amount: float) -> str:
        """Transfer money.

        Args:
            amount: How much.
        """
        self.sent.append(amount)
        return f"sent {amount}"


async def decide(session: Any, verdict: str, seen: list[ApprovalRequested], reason: str = "") -> None:
    """Answer the first approval request that comes, with approve or reject."""
    async for event in session:
        if isinstance(event, ApprovalRequested):
            seen.append(event)
            if verdict == "approve":
                assert session.approve(event.call_id)
            elif verdict == "reject":
                assert session.reject(event.call_id, reason)
            return


@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_a_call_waits_for_the_decision(verdict: str) -> None:
    """Over the limit the call waits; approved it runs, rejected the model is told why."""
    agent = Bank()
    turns = [Turn(calls=[Call("transfer", {"amount": 500})]), Turn(text="handled")]
    seen: list[ApprovalRequested] = []
    with anyio.fail_after(10):
        async with live(agent, turns, event_buffer=64) as (server, session):
            async with anyio.create_task_group() as tg:
                tg.start_soon(decide, session, verdict, seen, "too much")
                assert await session.ask("send 500") == "handled"
            [out] = outputs(received(server))
    assert seen[0].name == "transfer" and '"amount":500' in seen[0].arguments.replace(" ", "")
    if verdict == "approve":
        assert agent.sent == [500.0] and out["output"] == "sent 500.0"
    else:
        assert agent.sent == []
        assert out["output"] == "error: transfer was not approved, so it did not run: too much"


async def test_a_call_under_the_predicate_runs_without_asking() -> None:
    """The predicate sees the arguments: a small transfer runs at once."""
    agent = Bank()
    turns = [Turn(calls=[Call("transfer", {"amount": 5})]), Turn(text="done")]
    with anyio.fail_after(10):
        async with live(agent, turns) as (_server, session):
            assert await session.ask("send 5") == "done"
    assert agent.sent == [5.0]


async def test_no_decision_in_time_is_a_refusal() -> None:
    """Nobody answers within approval_timeout: the model gets an output saying so."""
    agent = Bank()
    turns = [Turn(calls=[Call("transfer", {"amount": 500})]), Turn(text="told the user")]
    with anyio.fail_after(10):
        async with live(agent, turns, approval_timeout=0.2) as (server, session):
            assert await session.ask("send 500") == "told the user"
            [out] = outputs(received(server))
    assert agent.sent == []
    assert out["output"] == "error: transfer was not approved, so it did not run: no decision came in time"


async def test_an_approve_method_on_the_agent_decides() -> None:
    """An agent with `async def approve(request)` decides; a string rejects with that reason."""

    class Careful(Bank):
        async def approve(self, request: ApprovalRequested) -> bool | str:
            return "the account is frozen" if request.name == "transfer" else True

    agent = Careful()
    turns = [Turn(calls=[Call("transfer", {"amount": 999})]), Turn(text="ok")]
    with anyio.fail_after(10):
        async with live(agent, turns) as (server, session):
            assert await session.ask("send 999") == "ok"
            [out] = outputs(received(server))
    assert out["output"].endswith(": the account is frozen")


async def test_a_pending_approval_survives_a_reconnect() -> None:
    """The link drops while a call waits: approved later, it runs once, its output lands."""
    agent = Bank()
    turns = [Turn(calls=[Call("transfer", {"amount": 500})]), Turn(text="after the drop")]
    faults = [Faults(drop_after_sent="response.done"), None]
    seen: list[ApprovalRequested] = []
    with anyio.fail_after(15):
        async with live(agent, turns, faults, event_buffer=64) as (server, session):
            async with anyio.create_task_group() as tg:
                async def approve_after_the_drop() -> None:
                    await server.wait_for(lambda rec: rec.index == 1 and bool(rec.received))
                    await decide(session, "approve", seen)

                tg.start_soon(approve_after_the_drop)
                assert await session.ask("send 500") == "after the drop"
            assert len(server.connections) == 2
            assert [o["output"] for o in outputs(received(server, 1))] == ["sent 500.0"]
    assert agent.sent == [500.0]


async def test_interrupting_a_waiting_call_follows_its_policy() -> None:
    """on_interrupt="cancel": a barge-in while the call waits cancels it; no decision is needed."""
    agent = Bank()
    turns = [Turn(calls=[Call("transfer", {"amount": 500})]), Turn(text="never")]
    answers: list[str] = []
    with anyio.fail_after(10):
        async with live(agent, turns, event_buffer=64) as (server, session):
            async with anyio.create_task_group() as tg:
                async def asker() -> None:
                    answers.append(await session.ask("send 500"))

                tg.start_soon(asker)
                async for event in session:
                    if isinstance(event, ApprovalRequested):
                        break
                await session.cancel()
            record = await server.wait_for(lambda rec: len(outputs(rec.received)) == 1)
            [out] = outputs(record.received)
            assert not session.approve(out["call_id"])  # nothing waits any more
    assert agent.sent == [] and "cancelled" in out["output"] and answers == [""]


def test_needs_approval_must_be_a_bool_or_a_predicate() -> None:
    """A wrong needs_approval is a definition error, reported at decoration."""
    with pytest.raises(ToolDefinitionError, match="needs_approval"):

        @tool(needs_approval="yes")  # type: ignore[call-overload]
        def f() -> str:
            """F."""
            return ""
