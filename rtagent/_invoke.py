"""TEMPORARY shim (replaced by the declarations refactor): the tool execution boundary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._tools import ToolContext, ToolResult

__all__ = ["ToolContext", "ToolResult", "invoke_tool", "unknown_tool"]


async def invoke_tool(tool: Any, arguments: str, context: ToolContext) -> ToolResult:
    result: ToolResult = await tool.invoke(arguments, context)
    return result


def unknown_tool(name: str, available: Sequence[str], context: ToolContext) -> ToolResult:
    names = ", ".join(available) or "none"
    return ToolResult(output=f"error: unknown tool {name!r}; available tools: {names}",
                      ok=False, error="unknown_tool")
