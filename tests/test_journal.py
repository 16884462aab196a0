"""The tool journal: calls recorded before they run, taken over by another process.

What the worker fleet relies on for failover, tested on plain sessions against the local
server with a journal kept in memory (the NATS one is tested in test_worker.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from live import live, outputs, received

from rtagent import Agent, tool
from rtagent._runtime.journal import JournalEntry
from rtagent._session import ToolCall
from rtagent.local import Call, Turn


class MemoryJournal:
    """A journal in a dict, recording the order of what it was told."""

    def __init__(self, left: Sequence[JournalEntry] = (), *, fail_start: bool = False) -> None:
        self.entries: dict[str, JournalEntry] = {e.call.call_id: e for e in left}
        self.log: list[tuple[str, str]] = []
        self.fail_start = fail_start
        self.recovered = anyio.Event()
        self._changed = anyio.Event()

    def _note(self, what: str, call_id: str) -> None:
        self.log.append((what, call_id))
        self._changed.set()
        self._changed = anyio.Event()

    async def until_delivered(self, count: int) -> None:
        while sum(what == "delivered" for what, _ in self.log) < count:
            await self._changed.wait()

    async def recover(self) -> Sequence[JournalEntry]:
        self._note("recover", "")
        self.recovered.set()
        return list(self.entries.values())

    async def started(self, call: ToolCall) -> None:
        if self.fail_start:
            raise ConnectionError("journal unreachable")
        self._note("started", call.call_id)
        self.entries[call.call_id] = JournalEntry(call, "started")

    async def finished(self, call: ToolCall, output: str, *, interim: bool) -> None:
        self._note("interim" if interim else "finished", call.call_id)
        if interim:
            self.entries[call.call_id] = JournalEntry(call, "background")
        else:
            self.entries[call.call_id] = JournalEntry(call, "finished", output)

    async def delivered(self, call_id: str) -> None:
        self._note("delivered", call_id)
        self.entries.pop(call_id, None)


class Shop(Agent):
    instructions = "You run a shop."

    def __init__(self, journal: MemoryJournal | None = None) -> None:
        super().__init__()
        self.journal = journal
        self.runs: list[str] = []
        self.seen_state: list[str] = []

    @tool(idempotent=True)
    def lookup(self, sku: str) -> str:
        """Look up a product.

        Args:
            sku: The product.
        """
        if self.journal is not None:
            entry = self.journal.entries.get(f"call_{sku}")
            self.seen_state.append(entry.state if entry else "absent")
        self.runs.append(f"lookup {sku}")
        return f"{sku} is in stock"

    @tool
    def charge(self, amount: int) -> str:
        """Charge the customer.

        Args:
            amount: Cents.
        """
        self.runs.append(f"charge {amount}")
        return "charged"


def _call(call_id: str, name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(call_id, name, json.dumps(args))


def _history(*calls: ToolCall) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"role": "user", "content": "buy one"}]
    for c in calls:
        items.append({"type": "function_call", "call_id": c.call_id, "name": c.name,
                      "arguments": c.arguments})
    return items


async def test_a_call_is_recorded_before_it_runs_and_forgotten_once_delivered() -> None:
    journal = MemoryJournal()
    agent = Shop(journal)
    turns = [Turn(calls=[Call("lookup", {"sku": "a1"}, call_id="call_a1")]), Turn(text="in stock")]
    with anyio.fail_after(10):
        async with live(agent, turns, journal=journal) as (server, session):
            assert await session.ask("is a1 in stock?") == "in stock"
            await server.wait_for(lambda rec: any(
                e["type"] == "conversation.item.added"
                and e["item"]["type"] == "function_call_output" for e in rec.sent))
            await journal.until_delivered(1)
    assert agent.seen_state == ["started"]  # recorded before the tool ran
    assert journal.log == [
        ("recover", ""), ("started", "call_a1"), ("finished", "call_a1"), ("delivered", "call_a1")
    ]
    assert journal.entries == {}


async def test_taking_over_posts_known_outputs_reruns_idempotent_tools_and_fails_the_rest() -> None:
    """A previous process died with three calls in flight: one finished (output known,
    maybe not posted), one idempotent tool running, one charge running. The new session
    posts the known output, runs the lookup again, tells the model the charge could not
    finish (it never runs twice), and asks for exactly one response."""
    known = _call("call_k", "lookup", {"sku": "k"})
    again = _call("call_b2", "lookup", {"sku": "b2"})
    charge = _call("call_c", "charge", {"amount": 500})
    journal = MemoryJournal([
        JournalEntry(known, "finished", "k is in stock"),
        JournalEntry(again, "started"),
        JournalEntry(charge, "started"),
    ])
    agent = Shop(journal)
    with anyio.fail_after(10):
        async with live(agent, [Turn(text="resumed")], journal=journal,
                        history=_history(known, again, charge)) as (server, _session):
            record = await server.wait_for(lambda rec: any(
                e["type"] == "response.done" for e in rec.sent))
            await journal.until_delivered(3)
            sent = received(server)
    assert agent.runs == ["lookup b2"]  # the charge did not run again
    by_call = {o["call_id"]: o["output"] for o in outputs(sent)}
    assert by_call["call_k"] == "k is in stock"
    assert by_call["call_b2"] == "b2 is in stock"
    assert by_call["call_c"].startswith("error: charge could not finish")
    assert [e["type"] for e in sent].count("response.create") == 1
    assert [e for e in record.sent if e["type"] == "error"] == []
    assert journal.entries == {}


async def test_nothing_left_means_nothing_is_asked() -> None:
    journal = MemoryJournal()
    with anyio.fail_after(10):
        async with live(Shop(journal), [], journal=journal) as (server, _session):
            await journal.recovered.wait()
            await anyio.sleep(0.1)
            sent = received(server)
    assert "response.create" not in [e["type"] for e in sent]


async def test_a_call_that_cannot_be_recorded_does_not_run() -> None:
    """Unrecorded, it could be lost if the process died: it does not run, the model hears why."""
    journal = MemoryJournal(fail_start=True)
    agent = Shop(journal)
    turns = [Turn(calls=[Call("charge", {"amount": 5}, call_id="call_x")]), Turn(text="sorry")]
    with anyio.fail_after(10):
        async with live(agent, turns, journal=journal) as (server, session):
            assert await session.ask("charge me") == "sorry"
            sent = received(server)
    assert agent.runs == []
    [output] = outputs(sent)
    assert output["output"].startswith("error: charge did not run: the call could not be recorded")
