"""rtagent: function-calling agents on the OpenAI Realtime API."""

import logging as _logging

from ._agent import UNSET, Agent, AgentSettings
from ._endpoint import Endpoint
from ._errors import (
    ClientSecretError,
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    InputError,
    KeepaliveTimeout,
    PluginLoadError,
    ProtocolError,
    ReconnectFailed,
    ResponseTimeout,
    RTAgentError,
    ServerError,
    SessionClosed,
    SessionRefused,
    ToolDefinitionError,
    ToolError,
    TransportError,
)
from ._invoke import ToolContext, ToolResult, invoke_tool
from ._mcp import HostedMcp, McpHttp, McpServer, McpStdio
from ._notices import (
    ApprovalRequested,
    ConnectionLost,
    EventsDropped,
    FrameSkipped,
    McpServerFailed,
    McpToolsChanged,
    Reconnected,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    ToolTurnLatency,
    UsageReported,
)
from ._plugins import PluginFolder, ReloadReport, load_entry_point_plugins, load_plugins
from ._retry import RetryPolicy, is_retryable
from ._runtime import RealtimeSession, SessionStats, connect
from ._runtime.sync import SyncSession, connect_sync
from ._secrets import ClientSecret, acreate_client_secret, create_client_secret
from ._tools import Tool, ToolRegistry, get_tool, is_tool, tool
from ._transport import WebSocketConfig
from ._usage import Prices, Usage, UsageLedger
from ._wav import read_wav, write_wav

__version__ = "0.2.0"
"""The package version; the wheel's metadata is read from this line (``tool.hatch.version``)."""

# A library never decides where its log records go: without this, warnings would reach
# stderr through logging's last-resort handler even when the application set up nothing.
_logging.getLogger("rtagent").addHandler(_logging.NullHandler())

__all__ = [
    "UNSET",
    "Agent",
    "AgentSettings",
    "ApprovalRequested",
    "ClientSecret",
    "ClientSecretError",
    "ConfigurationError",
    "ConnectionClosed",
    "ConnectionLost",
    "Endpoint",
    "EventsDropped",
    "FrameSkipped",
    "HandshakeError",
    "HostedMcp",
    "InputError",
    "KeepaliveTimeout",
    "McpHttp",
    "McpServer",
    "McpServerFailed",
    "McpStdio",
    "McpToolsChanged",
    "PluginFolder",
    "PluginLoadError",
    "Prices",
    "ProtocolError",
    "RTAgentError",
    "RealtimeSession",
    "ReconnectFailed",
    "Reconnected",
    "ReloadReport",
    "ResponseTimeout",
    "RetryPolicy",
    "ServerError",
    "SessionClosed",
    "SessionRefused",
    "SessionStats",
    "SyncSession",
    "Tool",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolFinished",
    "ToolProgress",
    "ToolRegistry",
    "ToolResult",
    "ToolStarted",
    "ToolTurnLatency",
    "TransportError",
    "Usage",
    "UsageLedger",
    "UsageReported",
    "WebSocketConfig",
    "__version__",
    "acreate_client_secret",
    "connect",
    "connect_sync",
    "create_client_secret",
    "get_tool",
    "invoke_tool",
    "is_retryable",
    "is_tool",
    "load_entry_point_plugins",
    "load_plugins",
    "read_wav",
    "tool",
    "write_wav",
]
