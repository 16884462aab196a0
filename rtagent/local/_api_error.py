"""One builder for every OpenAI-shaped error the local server sends.

An :class:`ApiError` is the four fields the real API reports (``type``, ``code``,
``message``, ``param``). It renders as the ``error`` server event (PROTOCOL.md §3: the
socket stays open, ``event_id`` names the client event that caused it, or, for a refused
session, the socket closes after it) and as the JSON body of an HTTP error (an unknown
path, ``POST /v1/realtime/client_secrets``).

Errors that break one client event's rule are raised where the rule lives (as
:class:`~rtagent.local._validate.Invalid`) and converted here; the errors that belong to
no single client event (auth, routing, session expiry, the beta shutdown) are named
below so their texts live in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._validate import Invalid
from ._wire import Event, Ids, server_event

__all__ = [
    "BETA_API_SHAPE_DISABLED",
    "INVALID_JSON_BODY",
    "MISSING_API_KEY",
    "MISSING_CREDENTIALS",
    "MISSING_MODEL",
    "SESSION_EXPIRED",
    "ApiError",
    "incorrect_api_key",
    "injected_error_body",
    "invalid_model",
    "invalid_url",
]


@dataclass(frozen=True, slots=True)
class ApiError:
    """An OpenAI-shaped error, before it is rendered for a socket or an HTTP answer."""

    code: str | None
    message: str
    param: str | None = None
    type: str = "invalid_request_error"

    @classmethod
    def from_invalid(cls, exc: Invalid) -> ApiError:
        """The error a failed spec or protocol rule reports."""
        return cls(exc.code, exc.message, exc.param)

    def body(self, event_id: str | None = None) -> dict[str, Any]:
        """The ``error`` object of an ``error`` event; ``event_id`` names the client event."""
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": event_id,
        }

    def event(self, ids: Ids, event_id: str | None = None) -> Event:
        """The ``error`` server event."""
        return server_event(ids, "error", error=self.body(event_id))

    def http_body(self) -> bytes:
        """The JSON body of an HTTP error, fields in the order api.openai.com sends them."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": error}).encode()

    def transport_body(self) -> bytes:
        """The JSON body of an error raised below the API (malformed HTTP, no route, a crash).

        Same fields as :meth:`http_body`, in the order the HTTP layer has always sent.
        """
        error = {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
        return json.dumps({"error": error}).encode()


def injected_error_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``error`` object of a fault-injected error event: ``fields`` over server_error defaults."""
    body: dict[str, Any] = {
        "type": "server_error",
        "code": None,
        "message": "Injected error.",
        "param": None,
        "event_id": None,
    }
    body.update(fields)
    return body


# The real server ends a session at its maximum duration with this error, then closes.
SESSION_EXPIRED = ApiError(
    "session_expired", "Your session hit the maximum duration of 60 minutes."
)
# Sent to ``OpenAI-Beta: realtime=v1`` sessions before closing with 4000.
BETA_API_SHAPE_DISABLED = ApiError(
    "beta_api_shape_disabled",
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
)
MISSING_API_KEY = ApiError(
    "invalid_api_key",
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
)
# A WebSocket session opened without credentials: the real service reports no code.
MISSING_CREDENTIALS = ApiError(
    None,
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
)
MISSING_MODEL = ApiError("missing_model", "Missing required parameter: 'model'.", "model")
INVALID_JSON_BODY = ApiError("invalid_json", "We could not parse the JSON body of your request.")


def incorrect_api_key(key: str) -> ApiError:
    """A key that is not the server's (shown masked, as the real API does).

    A WebSocket session closes with 3000 after it; the REST endpoint answers HTTP 401.
    """
    masked = key[:5] + "*" * 4 + key[-4:] if len(key) > 12 else key[:3] + "****"
    return ApiError(
        "invalid_api_key",
        f"Incorrect API key provided: {masked}. "
        "You can find your API key at https://platform.openai.com/account/api-keys.",
    )


def invalid_model(model: str) -> ApiError:
    """The refusal of a ``?model=`` the realtime service does not serve."""
    return ApiError(
        "invalid_model", f"Model '{model}' is not supported in realtime mode.", "model"
    )


def invalid_url(method: str, path: str) -> ApiError:
    """404 for a path the server does not serve."""
    return ApiError(None, f"Invalid URL ({method} {path})")
