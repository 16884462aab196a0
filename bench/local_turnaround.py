"""Tool-call turnaround of rtagent against its own local Realtime server.

    python -m bench.local_turnaround [--turns 500] [--backend asyncio|trio]

Reports, from the runtime's own ``ToolTurnLatency`` notices, the time from a call's
arguments being complete to its output (and ``response.create``) being written, and the
whole ``ask()`` round trip of a tool turn (two responses). The local server validates
every event strictly, so this is slower than ``python -m bench`` and measures the
runtime plus that server on one machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

from rtagent import Agent, ToolTurnLatency, connect, tool
from rtagent.local import Call, LocalRealtimeServer, Turn
from rtagent.local._brains import Conversation


class _EchoBrain:
    """Calls echo for each user message, then answers with its output."""

    def reply(self, convo: Conversation) -> Turn:
        if convo.items and convo.items[-1].get("type") == "function_call_output":
            return Turn(text="done")
        return Turn(calls=[Call("echo", {"text": "hi"})])


class _Echo(Agent):
    output_modalities = ["text"]
    turn_detection = None

    @tool
    async def echo(self, text: str) -> str:
        """Echo the text."""
        return text


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _main(turns: int) -> None:
    latencies: list[float] = []
    round_trips: list[float] = []
    async with LocalRealtimeServer(brain=_EchoBrain()) as server, connect(
        _Echo(), url=server.url, api_key="sk-local"
    ) as session, anyio.create_task_group() as tg:

        async def watch() -> None:
            async for event in session:
                if isinstance(event, ToolTurnLatency):
                    latencies.append(event.to_output)

        tg.start_soon(watch)
        for i in range(turns + 20):
            started = time.perf_counter()
            await session.ask("echo hi")
            if i >= 20:  # warm-up
                round_trips.append(time.perf_counter() - started)
        tg.cancel_scope.cancel()
    lat = latencies[20:]
    print(f"{turns} tool turns against the local server")
    print(f"arguments complete -> output + response.create written: median {statistics.median(lat) * 1e6:.0f} us, "
          f"p99 {_pct(lat, 0.99) * 1e6:.0f} us")
    print(f"ask() round trip (user message -> call -> output -> answer): median "
          f"{statistics.median(round_trips) * 1e3:.2f} ms, p99 {_pct(round_trips, 0.99) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(_main, args.turns, backend=args.backend)


if __name__ == "__main__":
    main()
