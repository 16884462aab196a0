"""rtagent: function-calling agents on the OpenAI Realtime API."""

from .agent import UNSET, Agent
from .errors import (
    ClientSecretError,
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
from .secrets import ClientSecret, acreate_client_secret, create_client_secret
from .sync import SyncSession, connect_sync
from .tools import Tool, ToolContext, ToolRegistry, ToolResult, get_tool_spec, is_tool, tool
from .transport import WebSocketConfig
from .wav import read_wav, write_wav

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "Agent",
    "ClientSecret",
    "ClientSecretError",
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
    "acreate_client_secret",
    "connect",
    "connect_sync",
    "create_client_secret",
    "get_tool_spec",
    "is_retryable",
    "is_tool",
    "load_entry_point_plugins",
    "load_plugins",
    "read_wav",
    "tool",
    "write_wav",
]
