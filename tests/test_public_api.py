"""The public API is deliberate: these lists change only on purpose, and layers import downward."""

from __future__ import annotations

import ast
import importlib
import pathlib

import rtagent
import rtagent.events
import rtagent.local
import rtagent.testing

ROOT = pathlib.Path(rtagent.__file__).parent


def test_all_is_pinned() -> None:
    """rtagent.__all__ is exactly the documented public names, sorted."""
    assert rtagent.__all__ == [
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
        "InputError",
        "KeepaliveTimeout",
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


def test_local_all_is_pinned() -> None:
    """rtagent.local exports the local server, its brains and faults."""
    assert sorted(rtagent.local.__all__) == [
        "Brain", "Call", "ConnectionRecord", "Conversation", "Engine", "Faults",
        "LocalRealtimeServer", "RuleBrain", "ScriptedBrain", "Turn", "run_server",
        "silence_pcm16", "sine_pcm16",
    ]


def test_testing_all_is_pinned() -> None:
    """rtagent.testing exports the test run, its results and expectations, and the script types."""
    assert rtagent.testing.__all__ == [
        "AgentRun", "Call", "Expect", "ExpectationFailed", "Script", "SyncAgentRun",
        "ToolCallRecord", "Turn", "TurnResult", "run_agent", "run_agent_sync",
    ]


def test_public_namespaces_export_what_their_implementations_define() -> None:
    """Every public name resolves, and rtagent.events re-exports _events' objects unchanged."""
    from rtagent import _events

    for module in (rtagent, rtagent.events, rtagent.local, rtagent.testing):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    for name in rtagent.events.__all__:
        assert getattr(rtagent.events, name) is getattr(_events, name), name
    assert set(rtagent.events.__all__) <= set(_events.__all__)


def test_implementation_modules_are_private() -> None:
    """Only rtagent, rtagent.events, rtagent.local, rtagent.testing (and its pytest plugin) are public."""
    public = {"__init__.py", "events.py", "__main__.py"}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts == ("testing", "pytest_plugin.py"):
            continue
        if parts[0] in ("local", "testing"):
            parts = parts[1:]
        assert parts[-1] in public or any(p.startswith("_") for p in parts), path


def test_rtagent_never_imports_asyncio_or_openai() -> None:
    """The package runs on any anyio backend and never needs the openai package."""
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        for banned in ("import asyncio", "from asyncio", "import openai", "from openai"):
            assert banned not in text, f"{path.relative_to(ROOT)} has {banned!r}"


# Layers, lowest first: a module may import only from its own layer or below.
LAYERS: list[set[str]] = [
    {"_errors", "_redact"},
    {"_usage", "_events", "_notices"},
    {"_threads", "_schema", "_invoke", "_tools", "_agent", "_plugins", "_loading", "_wav", "_resample"},
    {"_session"},
    {"_proxy", "_tcp", "_transport", "_endpoint", "_rest", "_retry", "_secrets", "_otel"},
    {"_runtime"},
    {"_chat", "_cli", "_terminal", "_console_input", "_demo", "_inspect", "local", "testing"},
    {"__init__", "__main__", "events"},
]


def _layer(module: str) -> int:
    for rank, names in enumerate(LAYERS):
        if module in names:
            return rank
    raise AssertionError(f"rtagent.{module} is in no layer of this test")


def _imports(path: pathlib.Path) -> set[str]:
    """First components of the rtagent modules a file imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package)[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not target:
                    found.update(alias.name for alias in node.names)
                else:
                    found.add(target[0])
            elif node.module and node.module.startswith("rtagent."):
                found.add(node.module.split(".")[1])
    return found


def test_imports_only_go_downward() -> None:
    """errors -> events -> declarations -> session -> wire -> runtime; local/ and the CLI at the edge."""
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        own = parts[0].removesuffix(".py")
        for target in _imports(path) - {own}:
            assert _layer(target) <= _layer(own), f"{path.relative_to(ROOT)} imports rtagent.{target}"


def test_the_local_server_is_independent_of_the_client() -> None:
    """The local server is the oracle the client is judged by: it shares only errors and the socket."""
    for path in (ROOT / "local").rglob("*.py"):
        assert _imports(path) - {"local"} <= {"_errors", "_redact", "_transport"}, path


def test_every_module_imports() -> None:
    """Each module imports on its own (no hidden import cycles)."""
    for path in ROOT.rglob("*.py"):
        name = ".".join(("rtagent", *path.relative_to(ROOT).with_suffix("").parts))
        importlib.import_module(name.removesuffix(".__init__"))
