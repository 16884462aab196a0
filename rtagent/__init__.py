"""rtagent: function-calling agents on the OpenAI Realtime API."""

from .agent import UNSET, Agent
from .errors import (
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    KeepaliveTimeout,
    PluginLoadError,
    ProtocolError,
    ReconnectFailed,
    RTAgentError,
    ServerError,
    SessionClosed,
    ToolDefinitionError,
    ToolError,
    TransportError,
)
from .notices import (
    ConnectionLost,
    FrameSkipped,
    Reconnected,
    ToolFinished,
    ToolStarted,
    ToolTurnLatency,
)
from .plugins import PluginFolder, ReloadReport, load_entry_point_plugins, load_plugins
from .retry import RetryPolicy, is_retryable
from .runtime import RealtimeSession, connect
from .sync import SyncSession, connect_sync
from .tools import Tool, ToolContext, ToolRegistry, ToolResult, get_tool_spec, is_tool, tool
from .transport import WebSocketConfig

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "Agent",
    "ConfigurationError",
    "ConnectionClosed",
    "ConnectionLost",
    "FrameSkipped",
    "HandshakeError",
    "KeepaliveTimeout",
    "PluginFolder",
    "PluginLoadError",
    "ProtocolError",
    "RTAgentError",
    "RealtimeSession",
    "ReconnectFailed",
    "Reconnected",
    "ReloadReport",
    "RetryPolicy",
    "ServerError",
    "SessionClosed",
    "SyncSession",
    "Tool",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolFinished",
    "ToolRegistry",
    "ToolResult",
    "ToolStarted",
    "ToolTurnLatency",
    "TransportError",
    "WebSocketConfig",
    "__version__",
    "connect",
    "connect_sync",
    "get_tool_spec",
    "is_retryable",
    "is_tool",
    "load_entry_point_plugins",
    "load_plugins",
    "tool",
]
