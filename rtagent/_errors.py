"""Exceptions raised by rtagent, named by who is to blame.

The tree::

    RTAgentError
    ├── ToolDefinitionError     a @tool function cannot become a tool (developer's mistake,
    │                           raised at decoration/collection time, lists every problem)
    ├── PluginLoadError         a plugin file failed to import or declares a broken tool
    ├── ConfigurationError      a bad agent/session/connection setting (e.g. no API key)
    ├── InputError              the application passed something that cannot be sent
    │                           (text with lone surrogates, values JSON cannot hold)
    ├── ToolError               raised *by a tool* when its message should reach the model
    ├── ProtocolError           the peer sent something we cannot interpret
    ├── ServerError             the server sent an ``error`` event (code, message, event_id)
    │   ├── SessionRefused      the server accepted the WebSocket, then refused the session
    │   │                       (an ``error`` event, then close 3000 for the key, 4000 for the request)
    │   └── RequestError        a REST request was refused (HTTP status kept)
    │       └── ClientSecretError   minting an ephemeral client secret was refused
    ├── TransportError          the WebSocket could not be opened or was lost
    │   ├── HandshakeError      the HTTP upgrade was refused (status code and body kept)
    │   ├── ConnectionClosed    the connection ended (close code and reason kept)
    │   ├── KeepaliveTimeout    no pong arrived in time; the connection is presumed dead
    │   └── ResponseTimeout     the server went silent in the middle of a response
    ├── ReconnectFailed         the retry policy gave up (attempts and last error kept)
    └── SessionClosed           the session was used after it ended

Model mistakes (unknown tool, malformed arguments) are not exceptions: they become
``function_call_output`` text so the model can correct itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "ClientSecretError",
    "ConfigurationError",
    "ConnectionClosed",
    "HandshakeError",
    "InputError",
    "KeepaliveTimeout",
    "PluginLoadError",
    "ProtocolError",
    "RTAgentError",
    "ReconnectFailed",
    "RequestError",
    "ResponseTimeout",
    "ServerError",
    "SessionClosed",
    "SessionRefused",
    "ToolDefinitionError",
    "ToolError",
    "TransportError",
    "first_error",
]


class RTAgentError(Exception):
    """Base class of every exception rtagent raises on purpose."""


class ToolDefinitionError(RTAgentError):
    """A function cannot be turned into a tool; ``problems`` lists every reason at once."""

    def __init__(self, function: str, problems: list[str]) -> None:
        self.function = function
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"cannot make a tool from {function}:\n{lines}")


class PluginLoadError(RTAgentError):
    """A plugin file could not be loaded; ``path`` names it and ``__cause__`` says why."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class ConfigurationError(RTAgentError):
    """A setting is missing or invalid (for example no API key for the real API)."""


class InputError(RTAgentError, ValueError):
    """The application passed text or values that cannot be sent to the server.

    Raised before anything enters the conversation, so nothing is half-sent.
    """


class ToolError(RTAgentError):
    """Raise inside a tool to send ``message`` to the model verbatim as the tool output."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ProtocolError(RTAgentError):
    """The peer sent a frame or event we cannot interpret."""


class ServerError(RTAgentError):
    """The server reported an ``error`` event."""

    def __init__(
        self,
        message: str,
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.event_id = event_id
        detail = f" [{code}]" if code else ""
        super().__init__(f"{type}{detail}: {message}")


class SessionRefused(ServerError):
    """The server upgraded the connection, sent one ``error`` event and closed it.

    The real service answers a bad or missing key this way (close 3000, code
    ``invalid_api_key``, or ``None`` when no credentials were sent) and a bad request
    (close 4000: ``missing_model``, ``invalid_model``, the retired beta header). Retrying
    cannot help, so it is never retried. ``close_code`` and ``close_reason`` are the
    close frame's (the reason reads ``"<type>.<code>"``).
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        close_code: int | None = None,
        close_reason: str = "",
    ) -> None:
        super().__init__(message, type=type, code=code)
        self.close_code = close_code
        self.close_reason = close_reason


class RequestError(ServerError):
    """A REST request (client secrets, the Calls API) was refused; ``status_code`` is the HTTP status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, type=type, code=code, param=param)
        self.status_code = status_code
        self.args = (f"HTTP {status_code}: {message}",)


class ClientSecretError(RequestError):
    """The server refused to mint a client secret; ``status_code`` is the HTTP status."""


class TransportError(RTAgentError):
    """The WebSocket connection could not be opened or was lost."""


class HandshakeError(TransportError):
    """The server refused the WebSocket upgrade with an HTTP status."""

    def __init__(
        self, status_code: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})
        text = body.decode("utf-8", "replace").strip()
        if len(text) > 300:
            text = text[:300] + "..."
        super().__init__(f"handshake refused with HTTP {status_code}" + (f": {text}" if text else ""))


class ConnectionClosed(TransportError):
    """The connection ended; ``code`` is None when it ended without a close frame."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        if code is None:
            msg = "connection lost without a close frame"
        else:
            msg = f"connection closed with code {code}" + (f" ({reason})" if reason else "")
        super().__init__(msg)


class KeepaliveTimeout(TransportError):
    """No pong arrived within the keepalive timeout."""


class ResponseTimeout(TransportError):
    """The server sent nothing for ``response_timeout`` seconds while a response was due.

    The connection is ended and a new one asks again (the retry policy bounds how often).
    """


class ReconnectFailed(RTAgentError):
    """The retry policy gave up; ``attempts`` were made and ``last_error`` ended them."""

    def __init__(self, attempts: int, last_error: BaseException | None) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"gave up after {attempts} attempt(s): {last_error}")


class SessionClosed(RTAgentError):
    """The session has ended and can no longer be used."""


def first_error(exc: BaseException) -> BaseException:
    """The one error worth reporting from (possibly nested) exception groups.

    The first leaf that is not a cancellation; ``exc`` itself when it is not a group or
    holds nothing else. Public calls use it so that users see the rtagent error, never
    "unhandled errors in a TaskGroup".
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    for inner in exc.exceptions:
        leaf: BaseException = first_error(inner)
        if not isinstance(leaf, BaseExceptionGroup) and not _is_cancellation(leaf):
            return leaf
    group: BaseException = exc
    return group


def _is_cancellation(exc: BaseException) -> bool:
    # anyio's cancellation class depends on the running backend; these are the two.
    name = type(exc).__name__
    return name in ("CancelledError", "Cancelled")
