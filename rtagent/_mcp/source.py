"""MCP servers as a tool source: their tools become rtagent tools for one session.

Needs the ``mcp`` package; imported only when an agent declares ``mcp_servers``.

Shape (every task has an owner, ``connect()``'s task group)::

    McpTools.start(tg)            starts one task per server, waits for each at most its
    │                             start_timeout; a server that is not ready by then is
    │                             cancelled and the session goes on without it
    └── McpServerTools.run        one per server: the mcp Client (stdio or streamable
        ├── changes               HTTP), its tool listing, then its list changes
        └── listen                (2026-07-28 servers: a subscriptions/listen stream)

A call runs in the tool runner's task, on the server's client (``tools/call``); text
content is joined into the output, and an error result or a JSON-RPC error becomes a
tool-error output naming the server. A list change (``notifications/tools/list_changed``)
relists the tools and the session is updated (``session.update`` through
``RealtimeSession.update_tools``). Failures are logged under ``rtagent.mcp`` with the
server's name and reported as :class:`~rtagent.McpServerFailed` notices.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx2
import mcp
import mcp.types as mcp_types
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict

from .._errors import ToolError, first_error
from .._notices import McpServerFailed, McpToolsChanged, Notice
from .._schema import FunctionSchema, is_valid_tool_name
from .._tools import Tool, ToolRegistry
from .servers import McpHttp, McpServer, McpStdio

__all__ = ["McpServerTools", "McpTools"]

logger = logging.getLogger("rtagent.mcp")

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_DESCRIPTION = 1024
_LIST_TIMEOUT = 30.0
"""Seconds a relisting after a change may take before it is given up."""
_CLOSE_TIMEOUT = 5.0
"""Seconds the servers get to close cleanly when the session ends."""


class _Arguments(BaseModel):
    """A call's arguments as the model sent them: any JSON object, passed on unchanged.

    The MCP server validates them against its own ``inputSchema`` and answers an invalid
    call with an error result, which the model sees.
    """

    model_config = ConfigDict(extra="allow")

    def model_post_init(self, context: Any, /) -> None:
        # invoke_tool passes the model's __dict__ as keyword arguments.
        self.__dict__.update(self.__pydantic_extra__ or {})


class McpServerTools:
    """One MCP server's connection and tools, for one session.

    Args:
        server: The declaration.
        changed: Awaited after the tools changed (a relisting, or the server failing).
        notify: Publishes notices.
    """

    def __init__(
        self,
        server: McpServer,
        changed: Callable[[McpServerTools], Awaitable[None]],
        notify: Callable[[Notice], None],
    ) -> None:
        self.server = server
        self.tools: tuple[Tool, ...] = ()
        self.failure: str | None = None
        self.ready = anyio.Event()
        """Set once the tools are listed, or the server has failed."""
        self.done = anyio.Event()
        """Set once the server's task has ended."""
        self._changed = changed
        self._notify = notify
        self._client: mcp.Client | None = None
        self._modern = False
        self._stop = anyio.Event()
        self._scope = anyio.CancelScope()
        send, receive = anyio.create_memory_object_stream[None](1)
        self._changes_in, self._changes = send, receive

    @property
    def name(self) -> str:
        return self.server.name

    # -- life ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, list the tools, then keep them current until stopped; never raises.

        A server that fails after its tools were listed takes them out of the session.
        """
        try:
            await self._run()
        finally:
            self.done.set()

    async def _run(self) -> None:
        with self._scope:
            try:
                async with self._connect() as client:
                    self._client = client
                    self._modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
                    self.tools = self._convert(await self._list(client))
                    logger.info(
                        "MCP server %s: %d tool(s): %s",
                        self.name, len(self.tools), ", ".join(t.name for t in self.tools),
                    )
                    self.ready.set()
                    await self._serve(client)
            except Exception as exc:
                self._client = None
                if self.failure is None:
                    self._fail(_describe(exc), exc)
                if self.ready.is_set() and self.tools:
                    self.tools = ()
                    await self._changed(self)
            finally:
                self._client = None
                self.ready.set()
                self._changes_in.close()
                self._changes.close()

    async def wait_ready(self) -> None:
        """Wait until the tools are listed, at most ``start_timeout`` seconds; past that
        the server is given up (its task ends on its own, in its owner's task group)."""
        with anyio.move_on_after(self.server.start_timeout):
            await self.ready.wait()
            return
        self._fail(f"its tools were not listed within {self.server.start_timeout:g}s", None)
        self._scope.cancel()
        self.ready.set()

    def stop(self) -> None:
        """Ask the server's task to close the connection and end."""
        self._stop.set()

    def _connect(self) -> AbstractAsyncContextManager[mcp.Client]:
        server = self.server
        handler = self._on_message
        if isinstance(server, McpStdio):
            params = StdioServerParameters(
                command=server.command,
                args=list(server.args),
                env=dict(server.env) if server.env is not None else None,
                cwd=os.fspath(server.cwd) if server.cwd is not None else None,
            )
            return mcp.Client(stdio_client(params), message_handler=handler, cache=None)
        assert isinstance(server, McpHttp)
        return _http_client(server, handler)

    async def _serve(self, client: mcp.Client) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._follow_changes, client)
            capabilities = client.server_capabilities.tools
            if self._modern and capabilities is not None and capabilities.list_changed:
                tg.start_soon(self._listen, client)
            await self._stop.wait()
            tg.cancel_scope.cancel()

    async def _listen(self, client: mcp.Client) -> None:
        # 2026-07-28 servers deliver notifications/tools/list_changed only on a
        # subscriptions/listen stream the client opened.
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    self._signal_change()
        except Exception as exc:
            logger.warning(
                "MCP server %s: not following its tool list changes: %s", self.name, _describe(exc)
            )

    async def _on_message(self, message: Any) -> None:
        # Handshake-era servers send notifications/tools/list_changed on their own.
        if isinstance(message, mcp_types.ToolListChangedNotification) and not self._modern:
            self._signal_change()
        elif isinstance(message, Exception):
            logger.warning("MCP server %s: %s", self.name, _describe(message))
        await anyio.lowlevel.checkpoint()

    def _signal_change(self) -> None:
        # A relisting already due will see this change too.
        with contextlib.suppress(anyio.WouldBlock):
            self._changes_in.send_nowait(None)

    async def _follow_changes(self, client: mcp.Client) -> None:
        async for _ in self._changes:
            try:
                with anyio.fail_after(_LIST_TIMEOUT):
                    listed = await self._list(client)
            except Exception as exc:
                logger.error("MCP server %s: relisting its tools failed: %s", self.name, _describe(exc))
                continue
            tools = self._convert(listed)
            if [t.schema for t in tools] == [t.schema for t in self.tools]:
                continue
            self.tools = tools
            logger.info("MCP server %s: tools changed: %s", self.name, ", ".join(t.name for t in tools))
            await self._changed(self)

    def _fail(self, reason: str, exc: BaseException | None) -> None:
        self.failure = reason
        logger.error("MCP server %s failed: %s", self.name, reason)
        if exc is not None:
            logger.debug("MCP server %s: the failure in full", self.name, exc_info=exc)
        self._notify(McpServerFailed(self.name, reason))

    # -- tools -----------------------------------------------------------------------

    async def _list(self, client: mcp.Client) -> list[mcp_types.Tool]:
        listed: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed += page.tools
            cursor = page.next_cursor
            if cursor is None:
                return listed

    def _convert(self, listed: Iterable[mcp_types.Tool]) -> tuple[Tool, ...]:
        allowed = self.server.allowed_tools
        tools: dict[str, Tool] = {}
        for item in listed:
            if allowed is not None and item.name not in allowed:
                continue
            name = _INVALID_NAME_CHARS.sub("_", self.server.prefix + item.name)[:64]
            if not is_valid_tool_name(name) or name in tools:
                logger.warning(
                    "MCP server %s: tool %r skipped (its name %r is invalid or taken)",
                    self.name, item.name, name,
                )
                continue
            tools[name] = self._tool(name, item)
        return tuple(tools.values())

    def _tool(self, name: str, item: mcp_types.Tool) -> Tool:
        description = (item.description or item.title or "")[:_MAX_DESCRIPTION]
        parameters = dict(item.input_schema) if item.input_schema else {}
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})
        original = item.name

        async def call(**arguments: Any) -> str:
            return await self.call(original, arguments)

        signature = FunctionSchema(
            name=name, description=description, parameters=parameters, args_model=_Arguments,
            context_param=None, bound_param=None, is_async=True, strict=False,
        )
        return Tool(
            name=name, description=description, parameters=parameters, handler=call,
            timeout=self.server.call_timeout, on_interrupt=self.server.on_interrupt,
            needs_approval=self.server.needs_approval, signature=signature,
        )

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call one of the server's tools (``tools/call``) and return its text output.

        Raises:
            ToolError: The server answered with an error, or is not running; the message
                names the server.
        """
        client = self._client
        if client is None:
            raise ToolError(f"error: the MCP server {self.name} is not running")
        try:
            result = await client.call_tool(tool, arguments)
        except mcp.MCPError as exc:
            logger.warning("MCP server %s: %s refused: %s", self.name, tool, exc.message)
            raise ToolError(f"error from the MCP server {self.name}: {exc.message}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.HTTPError, OSError) as exc:
            logger.error("MCP server %s: calling %s failed: %s", self.name, tool, _describe(exc))
            raise ToolError(
                f"error: the MCP server {self.name} is not available ({type(exc).__name__})"
            ) from None
        text = _output(result)
        if result.is_error:
            raise ToolError(f"error from the MCP server {self.name}: {text or 'the tool failed'}")
        return text


class McpTools:
    """The MCP servers of one session: started together, their tools merged into the agent's.

    Args:
        servers: The agent's ``mcp_servers``.
    """

    def __init__(self, servers: Sequence[McpServer]) -> None:
        self.servers = [McpServerTools(s, self._changed, self._notice) for s in servers]
        self._pending: list[Notice] = []
        self._notify: Callable[[Notice], None] | None = None
        self._current: Callable[[], ToolRegistry] | None = None
        self._update: Callable[[ToolRegistry], Awaitable[None]] | None = None
        self._owned: dict[str, tuple[str, ...]] = {}
        """Server name -> the tool names it put into the session."""

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start every server in ``tg`` and wait until each is ready, failed or out of time."""
        for server in self.servers:
            tg.start_soon(server.run, name=f"rtagent MCP server {server.name}")
        async with anyio.create_task_group() as waiting:
            for server in self.servers:
                waiting.start_soon(server.wait_ready)

    def merge_into(self, registry: ToolRegistry) -> ToolRegistry:
        """``registry`` plus the tools of every server that started (its own names win)."""
        merged = registry.copy()
        for server in self.servers:
            self._owned[server.name] = _add(merged, server)
        return merged

    def attach(
        self,
        current: Callable[[], ToolRegistry],
        update: Callable[[ToolRegistry], Awaitable[None]],
        notify: Callable[[Notice], None],
    ) -> None:
        """Follow list changes into a live session; notices so far are published now."""
        self._current, self._update, self._notify = current, update, notify
        pending, self._pending = self._pending, []
        for notice in pending:
            notify(notice)

    async def aclose(self) -> None:
        """Close every connection, waiting a few seconds at most (call shielded)."""
        for server in self.servers:
            server.stop()
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            for server in self.servers:
                await server.done.wait()

    def _notice(self, notice: Notice) -> None:
        if self._notify is None:
            self._pending.append(notice)
        else:
            self._notify(notice)

    async def _changed(self, server: McpServerTools) -> None:
        if self._current is None or self._update is None:
            return
        registry = self._current().copy()
        for name in self._owned.get(server.name, ()):
            if name in registry:
                registry.remove(name)
        names = _add(registry, server)
        self._owned[server.name] = names
        try:
            await self._update(registry)
        except Exception as exc:  # the session has ended: nothing to update
            logger.debug("MCP server %s: tools not applied: %s", server.name, exc)
            return
        self._notice(McpToolsChanged(server.name, names))


def _add(registry: ToolRegistry, server: McpServerTools) -> tuple[str, ...]:
    added = []
    for tool in server.tools:
        if tool.name in registry:
            logger.warning(
                "MCP server %s: tool %s skipped: the agent already has a tool by that name",
                server.name, tool.name,
            )
            continue
        registry.add(tool)
        added.append(tool.name)
    return tuple(added)


def _http_client(server: McpHttp, handler: MessageHandlerFnT) -> AbstractAsyncContextManager[mcp.Client]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[mcp.Client]:
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with httpx2.AsyncClient(headers=dict(server.headers), timeout=timeout) as http:
            transport = streamable_http_client(server.url, http_client=http)
            async with mcp.Client(transport, message_handler=handler, cache=None) as client:
                yield client

    return connect()


def _output(result: mcp_types.CallToolResult) -> str:
    """A call result as text: text content joined by newlines, other content named."""
    parts = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            parts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{block.type} {getattr(block, 'mime_type', '')}]".replace(" ]", "]"))
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    """One line for a failure, from inside exception groups, always naming its type."""
    exc = first_error(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
