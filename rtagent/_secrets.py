"""Ephemeral client secrets: short-lived tokens for browsers and other untrusted clients.

Your server keeps the real API key and mints a secret bound to an agent's session config
(GA: ``POST /v1/realtime/client_secrets``, PROTOCOL §1); the client connects with the
secret as its bearer token. The request goes through the same :class:`Endpoint` rules as
``connect()`` (OpenAI, Azure, a local server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from ._agent import DEFAULT_MODEL
from ._endpoint import Endpoint, EndpointOptions
from ._errors import ClientSecretError, ConfigurationError, ServerError
from ._rest import apost_json, post_json

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["ClientSecret", "acreate_client_secret", "create_client_secret"]

_PATH = "/realtime/client_secrets"


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
    expires_after_seconds: int = 600,
    endpoint: Endpoint | None = None,
    **options: Unpack[EndpointOptions],
) -> ClientSecret:
    """Mint an ephemeral client secret carrying ``agent``'s session config (blocking).

    Args:
        agent: Its session config (instructions, tools with its plugins', voice...) is bound
            to the secret.
        expires_after_seconds: Lifetime of the secret, 10 to 7200 seconds.
        endpoint: Where to mint it; else built from ``options`` as ``connect()`` does
            (``api_key``, ``base_url`` such as a local server's ``http_url``, ``model``,
            ``azure_endpoint``, ``azure_api_key``, ``headers``...).
        **options: See :class:`rtagent.Endpoint`.

    Raises:
        ConfigurationError: No key for OpenAI's endpoint, or a lifetime out of range.
        ClientSecretError: The server answered with an HTTP error (status, code, message).
        TransportError: The server could not be reached.
    """
    endpoint, body = _request(agent, expires_after_seconds, endpoint, options)
    return _secret(post_json(endpoint, _PATH, body, error=ClientSecretError))


async def acreate_client_secret(
    agent: Agent,
    *,
    expires_after_seconds: int = 600,
    endpoint: Endpoint | None = None,
    **options: Unpack[EndpointOptions],
) -> ClientSecret:
    """Async :func:`create_client_secret` (the HTTP call runs in a worker thread)."""
    endpoint, body = _request(agent, expires_after_seconds, endpoint, options)
    return _secret(await apost_json(endpoint, _PATH, body, error=ClientSecretError))


def _request(
    agent: Agent, seconds: int, endpoint: Endpoint | None, options: EndpointOptions
) -> tuple[Endpoint, dict[str, Any]]:
    if not 10 <= seconds <= 7200:
        raise ConfigurationError(f"expires_after_seconds must be 10 to 7200, not {seconds}")
    if endpoint is None:
        model = agent.model if isinstance(agent.model, str) else DEFAULT_MODEL
        endpoint = Endpoint.resolve(default_model=model, **options)
    session = agent.session_config(agent.load_tools())
    session["model"] = endpoint.model
    return endpoint, {"expires_after": {"anchor": "created_at", "seconds": seconds}, "session": session}


def _secret(data: Any) -> ClientSecret:
    try:
        return ClientSecret(
            value=str(data["value"]),
            expires_at=int(data["expires_at"]),
            session=dict(data.get("session") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError("unexpected client secret response") from exc
