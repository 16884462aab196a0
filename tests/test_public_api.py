"""The public API is deliberate: this list changes only on purpose."""

import rtagent


def test_all_is_pinned() -> None:
    """rtagent.__all__ is exactly the documented public names, sorted."""
    assert rtagent.__all__ == [
        "UNSET",
        "Agent",
        "AgentSettings",
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
    for name in rtagent.__all__:
        assert hasattr(rtagent, name), name


def test_rtagent_never_imports_asyncio_or_openai() -> None:
    """The package runs on any anyio backend and never needs the openai package."""
    import pathlib

    root = pathlib.Path(rtagent.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        for banned in ("import asyncio", "from asyncio", "import openai", "from openai"):
            assert banned not in text, f"{path.relative_to(root)} has {banned!r}"
