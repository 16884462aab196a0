"""``HostedMcp``: a remote MCP server that the Realtime service calls for the model.

It becomes one ``{"type": "mcp", ...}`` entry of the session's ``tools``
(``session.update``); the service lists the server's tools (``mcp_list_tools.*``), calls
them during a response (``response.mcp_call*``) and, when ``require_approval`` says so,
asks first with an ``mcp_approval_request`` item, which rtagent answers through the same
approval API as local tools.

``authorization`` and ``headers`` are credentials: they appear in no ``repr`` and are
registered with :func:`rtagent._redact.register_secret`, so no rtagent log shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .._errors import ConfigurationError
from .._redact import register_secret

__all__ = ["ApprovalPolicy", "HostedMcp", "ToolFilter"]

ToolFilter = Union[Sequence[str], Mapping[str, Any]]
"""Tool names, or a filter object (``{"tool_names": [...], "read_only": True}``)."""

ApprovalPolicy = Union[Literal["always", "never"], Mapping[str, Any]]
"""``"always"``, ``"never"``, or ``{"always": filter, "never": filter}`` per tool."""

_LABEL = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True, eq=False)
class HostedMcp:
    """A hosted MCP tool: the Realtime service connects to the server, not this process.

    Args:
        label: The ``server_label`` that names the server in calls and approval requests.
        url: The server's URL (``server_url``); give it or ``connector``.
        connector: A service connector id (``connector_id``, e.g. ``"connector_gmail"``).
        authorization: An OAuth access token the service sends to the server. Secret.
        headers: HTTP headers the service sends to the server. Secret.
        allowed_tools: Only these tools (names, or a filter object) are offered.
        require_approval: ``"always"``, ``"never"``, or per-tool filters; the service's
            default (unset) is to ask.
        description: ``server_description``: what the server is for, for the model.

    Raises:
        ConfigurationError: Listing every problem with the declaration.
    """

    label: str
    url: str | None = field(default=None, kw_only=True)
    connector: str | None = field(default=None, kw_only=True)
    authorization: str | None = field(default=None, kw_only=True, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, kw_only=True, repr=False)
    allowed_tools: ToolFilter | None = field(default=None, kw_only=True)
    require_approval: ApprovalPolicy | None = field(default=None, kw_only=True)
    description: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.label, str) or not _LABEL.match(self.label):
            problems.append(f"label must match {_LABEL.pattern}, not {self.label!r}")
        if (self.url is None) == (self.connector is None):
            problems.append("give exactly one of url= and connector=")
        authorization: object = self.authorization
        if authorization is not None and not isinstance(authorization, str):
            problems.append("authorization must be a string")
        headers: object = self.headers
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            problems.append("headers must map strings to strings")
        policy = self.require_approval
        if not (policy in (None, "always", "never") or (
            isinstance(policy, Mapping) and set(policy) <= {"always", "never"}
        )):
            problems.append(
                f'require_approval must be "always", "never" or {{"always": ..., "never": ...}}, '
                f"not {policy!r}"
            )
        if isinstance(self.allowed_tools, str):
            problems.append("allowed_tools must be a list of names or a filter object")
        if problems:
            raise ConfigurationError(f"HostedMcp({self.label!r}): " + "; ".join(problems))
        object.__setattr__(self, "headers", dict(self.headers))
        if self.authorization:
            register_secret(self.authorization)
        for value in self.headers.values():
            register_secret(value)

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self.url is not None else f"connector={self.connector!r}"
        secrets = []
        if self.authorization:
            secrets.append("authorization=<redacted>")
        if self.headers:
            secrets.append(f"headers=<{len(self.headers)} redacted>")
        return f"HostedMcp({', '.join([repr(self.label), where, *secrets])})"

    def to_wire(self) -> dict[str, Any]:
        """The ``{"type": "mcp", ...}`` entry of ``session.update``'s ``tools``."""
        wire: dict[str, Any] = {}
        if self.url is not None:
            wire["server_url"] = self.url
        if self.connector is not None:
            wire["connector_id"] = self.connector
        if self.authorization is not None:
            wire["authorization"] = self.authorization
        if self.headers:
            wire["headers"] = dict(self.headers)
        if self.allowed_tools is not None:
            wire["allowed_tools"] = _plain(self.allowed_tools)
        if self.require_approval is not None:
            wire["require_approval"] = _plain(self.require_approval)
        if self.description is not None:
            wire["server_description"] = self.description
        # The credentials come first and "type" last, on purpose: websockets logs a frame at
        # DEBUG as its first 48 and last 24 characters, and a session.update may end with
        # this entry. Its end is then '"server_label":"<label>","type":"mcp"}]}}', never
        # part of a token.
        wire["server_label"] = self.label
        wire["type"] = "mcp"
        return wire


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
