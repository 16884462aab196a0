"""A small MCP server for the MCP tests: stdio when run as a script, HTTP from a thread.

``python tests/mcp_server.py`` serves over stdin/stdout; ``serve_http()`` serves streamable
HTTP on 127.0.0.1 (port 0) in a thread with its own event loop, so a test on any anyio
backend can use it. ``--slow`` never answers (a server that hangs at start-up).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mcp.server.mcpserver import Context, MCPServer


def build() -> MCPServer:
    """The server: dice and arithmetic tools, one that fails, and one that adds a tool.

    MCPServer() configures the root logger (logging.basicConfig): put it back as it was.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = MCPServer("dice")
    root.handlers[:], root.level = handlers, level

    @server.tool()
    def roll_dice(sides: int) -> str:
        """Roll a die with this many sides (always the highest face, for the tests)."""
        return f"rolled {sides}"

    @server.tool()
    def add_numbers(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def explode(reason: str) -> str:
        """Fail on purpose."""
        raise ValueError(f"exploded: {reason}")

    @server.tool()
    async def learn_shouting(ctx: Context) -> str:
        """Add the shout tool (and say the tool list changed)."""

        def shout(text: str) -> str:
            """Shout the text."""
            return text.upper()

        server.add_tool(shout)
        await ctx.notify_tools_changed()
        return "I can shout now"

    return server


@dataclass
class HttpServer:
    url: str
    authorizations: list[str | None] = field(default_factory=list)
    """The Authorization header of every request, in order."""


@contextmanager
def serve_http() -> Iterator[HttpServer]:
    """Serve ``build()`` over streamable HTTP on 127.0.0.1 in a daemon thread."""
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

    app = build().streamable_http_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    running = HttpServer(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")

    def spy(inner: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                value = headers.get(b"authorization")
                running.authorizations.append(value.decode() if value else None)
            await inner(scope, receive, send)

        return wrapped

    server = uvicorn.Server(uvicorn.Config(spy(app), log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the MCP HTTP server did not start"
        yield running
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


if __name__ == "__main__":
    if "--slow" in sys.argv:
        time.sleep(3600)
    build().run()
