"""Ephemeral client secrets: short-lived tokens for browsers and other untrusted clients.

Your server keeps the real API key and mints a secret bound to an agent's session config
(GA: ``POST /v1/realtime/client_secrets``, PROTOCOL §1); the client connects with the
secret as its bearer token. Uses ``urllib.request`` so there is no extra dependency; the
async variant runs it in a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio.to_thread

from ._errors import ClientSecretError, ConfigurationError, ServerError, TransportError

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = [
    "DEFAULT_BASE_URL",
    "ClientSecret",
    "ClientSecretError",
    "acreate_client_secret",
    "create_client_secret",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_PATH = "/realtime/client_secrets"
_HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class ClientSecret:
    """A minted client secret.

    Attributes:
        value: The token (``ek_...``); the client sends it as ``Authorization: Bearer``.
        expires_at: Unix time after which no new session can be opened with it.
        session: The effective session config the server bound to the secret.
    """

    value: str
    expires_at: int
    session: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Keep the token out of logs and tracebacks.
        return f"ClientSecret(value='{self.value[:6]}…', expires_at={self.expires_at})"


def create_client_secret(
    agent: Agent,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    expires_after_seconds: int = 600,
    model: str | None = None,
    azure_endpoint: str | None = None,
    azure_api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ClientSecret:
    """Mint an ephemeral client secret carrying ``agent``'s session config (blocking).

    Args:
        agent: Its session config (instructions, tools with its plugins', voice...) is bound
            to the secret.
        api_key: The real key (default ``OPENAI_API_KEY``); required for OpenAI's endpoint.
        base_url: The REST base, e.g. ``https://api.openai.com/v1`` (default
            ``OPENAI_BASE_URL`` or OpenAI's), or a local server's ``http_url``.
        expires_after_seconds: Lifetime of the secret, 10 to 7200 seconds.
        model: Override the agent's model.
        azure_endpoint: ``https://<resource>.openai.azure.com`` for Azure OpenAI (GA path).
        azure_api_key: The Azure key, sent as the ``api-key`` header.
        headers: Extra request headers (e.g. ``OpenAI-Project``).

    Raises:
        ConfigurationError: No key for OpenAI's endpoint, or a lifetime out of range.
        ClientSecretError: The server answered with an HTTP error (status, code, message).
        TransportError: The server could not be reached.
    """
    url, request_headers, body = _request(
        agent,
        api_key=api_key,
        base_url=base_url,
        expires_after_seconds=expires_after_seconds,
        model=model,
        azure_endpoint=azure_endpoint,
        azure_api_key=azure_api_key,
        headers=headers,
    )
    return _post(url, request_headers, body)


async def acreate_client_secret(
    agent: Agent,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    expires_after_seconds: int = 600,
    model: str | None = None,
    azure_endpoint: str | None = None,
    azure_api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ClientSecret:
    """Async :func:`create_client_secret` (the HTTP call runs in a worker thread)."""
    url, request_headers, body = _request(
        agent,
        api_key=api_key,
        base_url=base_url,
        expires_after_seconds=expires_after_seconds,
        model=model,
        azure_endpoint=azure_endpoint,
        azure_api_key=azure_api_key,
        headers=headers,
    )
    return await anyio.to_thread.run_sync(partial(_post, url, request_headers, body))


# -- helpers ---------------------------------------------------------------------------------


def _request(
    agent: Agent,
    *,
    api_key: str | None,
    base_url: str | None,
    expires_after_seconds: int,
    model: str | None,
    azure_endpoint: str | None,
    azure_api_key: str | None,
    headers: Mapping[str, str] | None,
) -> tuple[str, dict[str, str], bytes]:
    if not 10 <= expires_after_seconds <= 7200:
        raise ConfigurationError(
            f"expires_after_seconds must be 10 to 7200, not {expires_after_seconds}"
        )
    request_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if azure_endpoint:
        parts = urlsplit(azure_endpoint)
        base = urlunsplit((parts.scheme or "https", parts.netloc, "/openai/v1", "", ""))
        key = azure_api_key or os.environ.get("AZURE_OPENAI_API_KEY")
        if not key:
            raise ConfigurationError("no Azure key: pass azure_api_key=... or set AZURE_OPENAI_API_KEY")
        request_headers["api-key"] = key
    else:
        base = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if key:
            request_headers["Authorization"] = f"Bearer {key}"
        elif base.rstrip("/") == DEFAULT_BASE_URL:
            raise ConfigurationError("no API key: pass api_key=... or set OPENAI_API_KEY")
    request_headers.update(headers or {})
    session = agent.session_config(agent.load_tools())
    if model:
        session["model"] = model
    payload = {
        "expires_after": {"anchor": "created_at", "seconds": expires_after_seconds},
        "session": session,
    }
    return base.rstrip("/") + _PATH, request_headers, json.dumps(payload).encode()


def _post(url: str, headers: dict[str, str], body: bytes) -> ClientSecret:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    logger.debug("POST %s", url)  # never the headers: they carry the key
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(exc.code, exc.read()) from None
    except urllib.error.URLError as exc:
        raise TransportError(f"cannot reach {url}: {exc.reason}") from exc
    except (OSError, TimeoutError) as exc:
        raise TransportError(f"cannot reach {url}: {exc}") from exc
    try:
        data = json.loads(raw)
        return ClientSecret(
            value=str(data["value"]),
            expires_at=int(data["expires_at"]),
            session=dict(data.get("session") or {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"unexpected client secret response from {url}") from exc


def _http_error(status: int, raw: bytes) -> ClientSecretError:
    try:
        error = json.loads(raw)["error"]
        return ClientSecretError(
            status,
            str(error.get("message") or "request failed"),
            type=str(error.get("type") or ("server_error" if status >= 500 else "invalid_request_error")),
            code=error.get("code"),
            param=error.get("param"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()[:200]
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return ClientSecretError(status, text or "request failed", type=kind)
