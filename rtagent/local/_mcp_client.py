"""The network side of the hosted MCP emulation: real MCP calls over streamable HTTP.

:func:`perform` runs one :class:`~._hosted_mcp.McpJob` (a ``tools/list`` or a
``tools/call``) against the server's ``server_url`` with the ``mcp`` package's client,
sending the server's ``headers`` and its ``authorization`` as a bearer token, and turns
the answer, or the failure, into a :class:`~._hosted_mcp.McpResult`. Needs the ``mcp``
package; imported only when a session declares a hosted MCP server. Credentials are
never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx2
import mcp
import mcp.types as mcp_types
from mcp.client.streamable_http import streamable_http_client

from ._hosted_mcp import McpJob, McpResult

__all__ = ["perform"]

logger = logging.getLogger("rtagent.local.mcp")

LIST_TIMEOUT = 15.0
"""Seconds for connecting to a server and listing its tools."""
CALL_TIMEOUT = 60.0
"""Seconds for one call."""


async def perform(job: McpJob) -> McpResult:
    """Run ``job`` against its server; every failure becomes the result's ``error``."""
    label = job.server.get("server_label")
    timeout = LIST_TIMEOUT if job.kind == "list" else CALL_TIMEOUT
    try:
        with anyio.fail_after(timeout):
            return await _run(job)
    except TimeoutError:
        logger.warning("hosted MCP server %s: no answer within %gs", label, timeout)
        return McpResult(error={"type": "http_error", "code": 504,
                                "message": f"The MCP server did not answer within {timeout:g}s"})
    except httpx2.HTTPStatusError as exc:
        code = exc.response.status_code
        logger.warning("hosted MCP server %s: HTTP %d", label, code)
        return McpResult(error={"type": "http_error", "code": code,
                                "message": f"The MCP server answered HTTP {code}"})
    except mcp.MCPError as exc:
        return McpResult(error={"type": "protocol_error", "code": exc.code, "message": exc.message})
    except Exception as exc:
        logger.warning("hosted MCP server %s: %s", label, type(exc).__name__)
        return McpResult(error={"type": "http_error", "code": 502,
                                "message": f"The MCP server could not be reached ({type(exc).__name__})"})


async def _run(job: McpJob) -> McpResult:
    server = job.server
    headers = dict(server.get("headers") or {})
    if server.get("authorization"):
        headers["Authorization"] = f"Bearer {server['authorization']}"
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http:
        transport = streamable_http_client(str(server["server_url"]), http_client=http)
        async with mcp.Client(transport, cache=None) as client:
            if job.kind == "list":
                return McpResult(tools=await _list(client))
            result = await client.call_tool(job.tool, job.arguments)
    text = _text(result)
    if result.is_error:
        return McpResult(error={"type": "tool_execution_error", "message": text or "The tool failed"})
    return McpResult(output=text)


async def _list(client: mcp.Client) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            listed: dict[str, Any] = {"name": tool.name, "input_schema": tool.input_schema}
            if tool.description:
                listed["description"] = tool.description
            if tool.annotations is not None:
                listed["annotations"] = tool.annotations.model_dump(by_alias=True, exclude_none=True)
            tools.append(listed)
        cursor = page.next_cursor
        if cursor is None:
            return tools


def _text(result: mcp_types.CallToolResult) -> str:
    parts = [block.text for block in result.content if isinstance(block, mcp_types.TextContent)]
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content)
    return "\n".join(parts)
