"""MCP: hosted MCP tools (the service calls the server) and MCP servers as a tool source.

``hosted`` and ``servers`` are declarations (pure, no I/O) that an ``Agent`` holds.
``source`` runs client-side MCP servers for a session; it needs the ``mcp`` package
(``pip install 'rtagent[mcp]'``) and is imported only when an agent declares servers.
"""

from .hosted import HostedMcp
from .servers import McpHttp, McpServer, McpStdio

__all__ = ["HostedMcp", "McpHttp", "McpServer", "McpStdio"]
