"""MCP tools two ways: a server this process runs (stdio), and a hosted one the service calls.

Run it:         python examples/mcp_tools.py            (pip install 'rtagent[mcp]')
The harbour:    python examples/mcp_tools.py --serve    (this file is also an MCP server)

The harbourmaster's tide tables come from an MCP server started as a subprocess
(``Agent.mcp_servers``): rtagent lists its tools and runs them like its own. The sea
forecast comes from a hosted MCP server (``Agent.hosted_mcp``): the Realtime service calls
it, after asking for approval, which this script grants in ``approve``. Without
OPENAI_API_KEY the embedded local server plays the service, calling a coastguard MCP server
that this script serves over HTTP on 127.0.0.1. With a key, set MCP_URL to a public MCP
server for the hosted part (the service cannot reach your localhost).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from mcp.server.mcpserver import MCPServer

from rtagent import (
    Agent,
    ApprovalRequested,
    HostedMcp,
    McpStdio,
    RealtimeSession,
    ToolFinished,
    connect,
)
from rtagent.events import McpListToolsCompleted, McpListToolsFailed

TIDES = {"nassau": "06:12 and 18:40", "tortuga": "05:55 and 18:21"}


def harbour() -> MCPServer:
    """The harbour's MCP server: tide tables."""
    server = MCPServer("harbour", log_level="WARNING")

    @server.tool()
    def tide_times(port: str) -> str:
        """High tide times in a port today."""
        return TIDES.get(port.lower(), "no tide table for that port")

    return server


def coastguard() -> MCPServer:
    """The coastguard's MCP server: sea forecasts (served over HTTP, called by the service)."""
    server = MCPServer("coastguard", log_level="WARNING")

    @server.tool()
    def sea_forecast(area: str) -> str:
        """The sea forecast for a sea area."""
        return f"{area}: west 4 or 5, moderate, good"

    return server


class Harbourmaster(Agent):
    instructions = "You are the harbourmaster. Answer in one sentence, using your tools."
    output_modalities = ["text"]
    # This interpreter runs this file as the server, with the same import path.
    mcp_servers = [
        McpStdio("harbour", command=sys.executable, args=[__file__, "--serve"],
                 env={"PYTHONPATH": os.pathsep.join(sys.path)})
    ]


async def approve(request: ApprovalRequested) -> bool:
    """Hosted MCP calls ask first: a real application would ask a person."""
    print(f"  ? approve {request.name} on {request.server_label}({request.arguments}): yes")
    return True


async def main() -> None:
    questions = ["When is high tide in Nassau?", "What is the sea forecast for Biscay?"]
    if os.environ.get("OPENAI_API_KEY"):
        url = os.environ.get("MCP_URL")
        agent = Harbourmaster(hosted_mcp=[HostedMcp("coastguard", url=url)] if url else [])
        async with connect(agent, approve=approve) as session:
            await converse(session, questions)
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    with serve_http(coastguard()) as url:
        agent = Harbourmaster(hosted_mcp=[HostedMcp("coastguard", url=url, require_approval="always")])
        async with (
            LocalRealtimeServer() as server,
            connect(agent, url=server.url, approve=approve) as session,
        ):
            await converse(session, questions)


async def converse(session: RealtimeSession, questions: list[str]) -> None:
    listed = anyio.Event()
    if not session.agent.hosted_mcp:
        listed.set()

    async def show() -> None:
        async for event in session:
            if isinstance(event, ToolFinished):
                print(f"  ⚙ {event.name}({event.arguments}) → {event.output}")
            elif isinstance(event, (McpListToolsCompleted, McpListToolsFailed)):
                listed.set()  # the hosted server's tools are listed: the model can use them

    async with anyio.create_task_group() as tg:
        tg.start_soon(show)
        with anyio.fail_after(30):
            await listed.wait()
        for question in questions:
            print(f"you> {question}")
            print(f"harbourmaster> {await session.ask(question)}")
        tg.cancel_scope.cancel()


@contextmanager
def serve_http(server: MCPServer) -> Iterator[str]:
    """Serve an MCP server over streamable HTTP on 127.0.0.1, in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = server.streamable_http_app()
    web = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not web.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        web.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        harbour().run()
    else:
        anyio.run(main)
