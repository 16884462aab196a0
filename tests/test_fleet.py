"""A fleet of worker processes on a real NATS server: many sessions, a worker killed
mid-call, a worker drained by SIGTERM (opt-in: ``pytest -m fleet``; asyncio only)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc
import pytest
from fleet import FleetBrain, following, nats_server, read_log, tools_running

from rtagent.local import LocalRealtimeServer
from rtagent.worker import FleetClient

pytestmark = pytest.mark.fleet

HERE = Path(__file__).parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Fleet:
    """Worker processes (``rtagent worker``) against one NATS and one local server."""

    def __init__(self, nats_url: str, realtime: LocalRealtimeServer, tmp: Path, delay: float) -> None:
        self.nats_url = nats_url
        self.realtime = realtime
        self.tmp = tmp
        self.log = tmp / "tools.jsonl"
        self.delay = delay
        self.processes: dict[str, anyio.abc.Process] = {}

    async def start(self, worker_id: str, *, capacity: int = 2, drain: float = 30.0) -> None:
        env = {
            **os.environ, "OPENAI_API_KEY": "sk-test", "FLEET_LOG": str(self.log),
            "FLEET_TOOL_DELAY": str(self.delay), "RTAGENT_LOG": "info",
        }
        stderr = _append(self.tmp / f"{worker_id}.log")
        self.processes[worker_id] = await anyio.open_process(
            [sys.executable, "-m", "rtagent", "worker", str(HERE / "fleet.py") + ":FleetAgent",
             "--nats", self.nats_url, "--base-url", self.realtime.http_url,
             "--capacity", str(capacity), "--worker-id", worker_id, "--drain-timeout", str(drain)],
            env=env, stdout=stderr, stderr=stderr,
        )

    def stderr(self, worker_id: str) -> str:
        return (self.tmp / f"{worker_id}.log").read_text(errors="replace")

    async def stop_all(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()


def _append(path: Path) -> BinaryIO:
    return path.open("ab")  # the worker process writes its log here


@asynccontextmanager
async def fleet_of(tmp: Path, *workers: str, delay: float = 0.0) -> AsyncIterator[tuple[Fleet, FleetClient]]:
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(nats_server())
        realtime = await stack.enter_async_context(LocalRealtimeServer(brain=FleetBrain()))
        fleet = Fleet(url, realtime, tmp, delay)
        stack.push_async_callback(fleet.stop_all)
        client = await stack.enter_async_context(FleetClient(url))
        for worker_id in workers:
            await fleet.start(worker_id)
        yield fleet, client


def outputs_by_call(realtime: LocalRealtimeServer) -> dict[str, list[str]]:
    """Every function_call_output the server received, by call_id, across connections."""
    found: dict[str, list[str]] = {}
    for record in realtime.connections:
        for event in record.received:
            item = event.get("item") or {}
            if event["type"] == "conversation.item.create" and item.get("type") == "function_call_output":
                found.setdefault(item["call_id"], []).append(item["output"])
    return found


async def test_many_sessions_over_three_workers_each_runs_once_within_capacity(tmp_path: Path) -> None:
    async with fleet_of(tmp_path, "w1", "w2", "w3") as (fleet, client), following(client) as log:
        names = [f"many{n}" for n in range(12)]

        async def converse(n: int, name: str) -> None:
            await log.wait("call.started", name, timeout=60)
            await client.send_text(name, f"lookup sku{n}")
            done = await log.wait_for(lambda e: e["call_id"] == name and e["type"] == "transcript"
                                      and e["text"].startswith("done"))
            assert done["text"] == f"done: sku{n} is in stock"
            await client.hangup(name)
            await log.wait("call.ended", name)

        with anyio.fail_after(90):
            for name in names:
                await client.start_session(name)
            async with anyio.create_task_group() as tg:
                for n, name in enumerate(names):
                    tg.start_soon(converse, n, name)
        # Each ran once, on some worker, and no worker ever ran more than its capacity.
        assert sorted(e["call_id"] for e in log.all("call.started")) == sorted(names)
        assert len({e["worker"] for e in log.all("call.started")}) >= 2
        timeline = sorted((e["time"], +1 if e["type"] == "call.started" else -1, e["worker"])
                          for e in log.events if e["type"] in ("call.started", "call.ended"))
        running: dict[str, int] = {}
        for _, step, worker in timeline:
            running[worker] = running.get(worker, 0) + step
            assert running[worker] <= 2, (worker, timeline)
        runs = [r for r in read_log(fleet.log) if r["event"] == "start"]
        assert sorted(r["sku"] for r in runs) == sorted(f"sku{n}" for n in range(12))
        assert all(len(v) == 1 for v in outputs_by_call(fleet.realtime).values())


async def test_a_worker_killed_mid_call_the_call_goes_on_elsewhere(tmp_path: Path) -> None:
    """SIGKILL a worker while two tools of a call run: another worker takes the call over
    within 30 s (default settings), re-runs the idempotent lookup, tells the model the
    charge could not finish (it never runs twice), and the conversation goes on."""
    async with fleet_of(tmp_path, "w1", "w2", delay=3.0) as (fleet, client), following(client, "k1") as log:
        with anyio.fail_after(90):
            await client.start_session("k1")
            owner = (await log.wait("call.started"))["worker"]
            await client.send_text("k1", "buy x1")
            await log.wait("tool.started", count=2)
            _, handles = await client._open()
            while True:  # both calls journalled and the history saved (at response.done)
                entry = await handles.journal.get("k1")
                assert entry.value is not None
                if ('"function_call"' in entry.value.decode() and entry.value.decode().count('"started"') == 2
                        and tools_running(fleet.log) == 2):
                    break
                await anyio.sleep(0.05)
            victim = fleet.processes[owner]
            victim.send_signal(signal.SIGKILL)
            killed = time.time()
            await victim.wait()
            again = await log.wait("call.started", count=2, timeout=45)
            failover = again["time"] - killed
            assert again["worker"] != owner and again["delivery"] >= 2
            assert failover < 30, failover
            done = await log.wait_for(lambda e: e["type"] == "transcript" and e["text"].startswith("done"))
            assert "x1 is in stock" in done["text"]
            assert "error: charge could not finish" in done["text"]
            await client.send_text("k1", "thanks")
            thanks = await log.wait_for(lambda e: e["type"] == "transcript" and "thanks" in e["text"])
            assert thanks["text"] == "you said: thanks (2 user messages)"
            await client.hangup("k1")
            await log.wait("call.ended")
        runs = read_log(fleet.log)
        charges = [r for r in runs if r["tool"] == "charge"]
        lookups = [r for r in runs if r["tool"] == "lookup"]
        assert [r["event"] for r in charges] == ["start"]  # killed mid-run, never run again
        assert [r["event"] for r in lookups] == ["start", "start", "end"]  # re-run elsewhere
        assert lookups[0]["pid"] != lookups[1]["pid"]
        outputs = outputs_by_call(fleet.realtime)
        assert all(len(v) == 1 for v in outputs.values()), outputs  # none lost, none twice
        assert len(outputs) == 2
        print(f"\nfailover: {failover:.2f}s from SIGKILL to the call running on {again['worker']}")


async def test_sigterm_drains_a_worker_its_call_finishes_new_ones_go_elsewhere(tmp_path: Path) -> None:
    async with fleet_of(tmp_path, "w1") as (fleet, client), following(client) as log:
        with anyio.fail_after(60):
            await client.start_session("t1")
            await log.wait("call.started", "t1")
            fleet.processes["w1"].send_signal(signal.SIGTERM)
            await anyio.sleep(1.0)
            await client.start_session("t2")
            await fleet.start("w2")
            started = await log.wait("call.started", "t2")
            assert started["worker"] == "w2"
            await client.send_text("t1", "still here?")
            reply = await log.wait("transcript", "t1")
            assert reply["text"].startswith("you said: still here?")
            assert fleet.processes["w1"].returncode is None  # draining, not gone
            await client.hangup("t1")
            await log.wait("call.ended", "t1")
            assert await fleet.processes["w1"].wait() == 0
            await client.hangup("t2")
            await log.wait("call.ended", "t2")
        assert "draining" in fleet.stderr("w1")



async def test_a_worker_killed_mid_call_another_re_attaches_to_the_same_sip_call(tmp_path: Path) -> None:
    """A ringing SIP call, accepted by one worker, which is killed while two tools run:
    another worker re-attaches to the same call_id (no second accept; the conversation is
    on the service, nothing is replayed), takes the two calls over from the journal, and the
    caller goes on talking to the agent."""
    async with fleet_of(tmp_path, "w1", "w2", delay=3.0) as (fleet, client), following(client) as log:
        with anyio.fail_after(90):
            call = await fleet.realtime.calls.ring()
            await client.submit(call.id)
            owner = (await log.wait("call.started", call.id))["worker"]
            await call.wait_state("active")
            call.say("buy x1")
            await log.wait("tool.started", call.id, count=2)
            _, handles = await client._open()
            while True:  # both calls journalled before the worker dies
                entry = await handles.journal.get(call.id)
                if (entry.value is not None and entry.value.decode().count('"started"') == 2
                        and tools_running(fleet.log) == 2):
                    break
                await anyio.sleep(0.05)
            victim = fleet.processes[owner]
            victim.send_signal(signal.SIGKILL)
            killed = time.time()
            await victim.wait()
            again = await log.wait("call.started", call.id, count=2, timeout=45)
            assert again["worker"] != owner and again["time"] - killed < 30
            done = await log.wait_for(lambda e: e["type"] == "transcript" and e["text"].startswith("done"))
            assert "x1 is in stock" in done["text"] and "error: charge could not finish" in done["text"]
            call.say("thanks")
            thanks = await log.wait_for(lambda e: e["type"] == "transcript" and "thanks" in e["text"])
            assert thanks["text"] == "you said: thanks (2 user messages)"  # the call's own history
            call.hang_up()
            ended = await log.wait("call.ended", call.id)
            assert ended["reason"] == "the call ended"
        assert [action for action, _ in call.requests].count("accept") == 1
        runs = read_log(fleet.log)
        assert [r["event"] for r in runs if r["tool"] == "charge"] == ["start"]
        assert [r["event"] for r in runs if r["tool"] == "lookup"] == ["start", "start", "end"]
        outputs = outputs_by_call(fleet.realtime)
        assert len(outputs) == 2 and all(len(v) == 1 for v in outputs.values()), outputs
        print(f"\nSIP call failover: {again['time'] - killed:.2f}s from SIGKILL to re-attached on {again['worker']}")
