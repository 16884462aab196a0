"""rtagent: function-calling agents on the OpenAI Realtime API."""

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

__all__ = [
    "ConfigurationError",
    "ConnectionClosed",
    "HandshakeError",
    "KeepaliveTimeout",
    "PluginLoadError",
    "ProtocolError",
    "RTAgentError",
    "ReconnectFailed",
    "ServerError",
    "SessionClosed",
    "ToolDefinitionError",
    "ToolError",
    "TransportError",
]
