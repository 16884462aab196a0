"""Declarations of MCP servers whose tools an agent calls itself (``Agent.mcp_servers``).

``McpStdio`` launches a command and speaks MCP over its stdin/stdout; ``McpHttp`` connects
to a streamable HTTP endpoint. Each session of the agent starts its own connection to
every server (``rtagent.connect``), lists its tools and keeps them current; the server's
tools then run like the agent's own: approvals, timeouts and ``on_interrupt`` apply.
Pure declarations: nothing here starts anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from .._errors import ConfigurationError
from .._redact import register_secret
from .._tools import OnInterrupt

__all__ = ["McpHttp", "McpServer", "McpStdio"]

_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


@dataclass(frozen=True, eq=False)
class McpServer:
    """What every MCP server declaration has; use :class:`McpStdio` or :class:`McpHttp`.

    Args:
        name: Names the server in logs, notices and errors.
        start_timeout: Seconds to connect and list the tools; past it the session runs
            without this server's tools (an ``McpServerFailed`` notice says so).
        call_timeout: Seconds before a call is abandoned with a "timed out" output (None:
            no limit).
        prefix: Put before each tool name (``"github_"``), to keep servers' names apart.
        allowed_tools: Only these of the server's tools are offered (None: all).
        needs_approval: True, or a predicate over a call's arguments, when a person must
            approve each call first (as ``@tool(needs_approval=...)``).
        on_interrupt: What a barge-in does to a running call (as ``@tool``).
    """

    name: str
    start_timeout: float = field(default=10.0, kw_only=True)
    call_timeout: float | None = field(default=60.0, kw_only=True)
    prefix: str = field(default="", kw_only=True)
    allowed_tools: Sequence[str] | None = field(default=None, kw_only=True)
    needs_approval: bool | Callable[[dict[str, Any]], bool] = field(
        default=False, kw_only=True, repr=False
    )
    on_interrupt: OnInterrupt = field(default="finish", kw_only=True)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ConfigurationError(
                f"{type(self).__name__}({self.name!r}): " + "; ".join(problems)
            )

    def _problems(self) -> list[str]:
        problems = []
        if type(self) is McpServer:
            problems.append("declare a McpStdio or a McpHttp")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            problems.append(f"name must match {_NAME.pattern}, not {self.name!r}")
        if not _positive(self.start_timeout):
            problems.append(f"start_timeout must be a positive number, not {self.start_timeout!r}")
        if self.call_timeout is not None and not _positive(self.call_timeout):
            problems.append(f"call_timeout must be positive or None, not {self.call_timeout!r}")
        prefix: object = self.prefix
        if not isinstance(prefix, str):
            problems.append("prefix must be a string")
        if isinstance(self.allowed_tools, str):
            problems.append("allowed_tools must be a list of tool names")
        approval: object = self.needs_approval
        if not isinstance(approval, bool) and not callable(approval):
            problems.append("needs_approval must be a bool or a predicate")
        if self.on_interrupt not in get_args(OnInterrupt):
            problems.append(f"on_interrupt must be one of {get_args(OnInterrupt)}")
        return problems


@dataclass(frozen=True, eq=False)
class McpStdio(McpServer):
    """An MCP server started as a subprocess, spoken to over its stdin and stdout.

    Args:
        name: Names the server in logs, notices and errors.
        command: The program to run (``"npx"``, ``sys.executable``...).
        args: Its arguments.
        env: Environment variables for it (added to a minimal safe environment: PATH,
            HOME...); never shown in a ``repr``.
        cwd: Its working directory.
    """

    command: str = field(default="", kw_only=True)
    args: Sequence[str] = field(default=(), kw_only=True)
    env: Mapping[str, str] | None = field(default=None, kw_only=True, repr=False)
    cwd: str | os.PathLike[str] | None = field(default=None, kw_only=True)

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not isinstance(self.command, str) or not self.command:
            problems.append("command must be a program to run")
        if isinstance(self.args, str) or not all(isinstance(a, str) for a in self.args):
            problems.append("args must be a list of strings")
        object.__setattr__(self, "args", tuple(self.args) if not isinstance(self.args, str) else ())
        if self.env is not None:
            for value in self.env.values():
                register_secret(value)
        return problems


@dataclass(frozen=True, eq=False)
class McpHttp(McpServer):
    """An MCP server at a streamable HTTP endpoint (``http://host:port/mcp``).

    Args:
        name: Names the server in logs, notices and errors.
        url: The endpoint.
        headers: Sent with every request (``{"Authorization": "Bearer ..."}``); never
            shown in a ``repr`` or a log.
    """

    url: str = field(default="", kw_only=True)
    headers: Mapping[str, str] = field(default_factory=dict, kw_only=True, repr=False)

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            problems.append(f"url must be an http:// or https:// URL, not {self.url!r}")
        headers: object = self.headers
        if not isinstance(headers, Mapping):
            problems.append("headers must map strings to strings")
        else:
            object.__setattr__(self, "headers", dict(headers))
            for value in headers.values():
                register_secret(str(value))
        return problems


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
