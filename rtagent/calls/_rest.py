"""The Calls REST API: accept, reject, transfer (refer) and hang up SIP/WebRTC calls.

``POST /realtime/calls/{call_id}/accept|reject|refer|hangup`` under the endpoint's REST
base (``https://api.openai.com/v1``, Azure's ``.../openai/v1``, a local server's
``http_url``), with the same credentials and defaults as ``connect()``
(``OPENAI_BASE_URL``, ``OPENAI_API_KEY``). Each coroutine has a blocking twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from typing_extensions import Unpack

from .._agent import DEFAULT_MODEL
from .._endpoint import Endpoint, EndpointOptions
from .._errors import ConfigurationError, RequestError
from .._rest import apost_json, post_json

if TYPE_CHECKING:
    from .._agent import Agent

__all__ = [
    "CallError",
    "accept",
    "accept_sync",
    "hangup",
    "hangup_sync",
    "refer",
    "refer_sync",
    "reject",
    "reject_sync",
]


class CallError(RequestError):
    """The Calls API refused a request (``status_code`` 404: no such call, or it ended)."""


def _endpoint(endpoint: Endpoint | None, options: EndpointOptions, model: str | None = None) -> Endpoint:
    if endpoint is not None:
        return endpoint
    return Endpoint.resolve(default_model=model or DEFAULT_MODEL, **options)


def _path(call_id: str, action: str) -> str:
    if not isinstance(call_id, str) or not call_id:
        raise ConfigurationError(f"call_id must be a non-empty string, not {call_id!r}")
    return f"/realtime/calls/{quote(call_id, safe='')}/{action}"


def _accept_body(agent: Agent, endpoint: Endpoint) -> dict[str, Any]:
    session = agent.session_config(agent.load_tools())
    session["model"] = endpoint.model
    return session


def _model_of(agent: Agent) -> str:
    return agent.model if isinstance(agent.model, str) else DEFAULT_MODEL


async def accept(
    call_id: str, agent: Agent, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """Answer a ringing call with ``agent``'s full session config (instructions, voice, tools).

    Then attach to it with ``rtagent.connect(agent, call_id=call_id)`` to run its tools.

    Raises:
        CallError: the call is unknown, no longer ringing, or the config was refused.
        TransportError: the service could not be reached.
    """
    ep = _endpoint(endpoint, options, _model_of(agent))
    await apost_json(ep, _path(call_id, "accept"), _accept_body(agent, ep), error=CallError)


async def reject(
    call_id: str,
    *,
    status_code: int = 603,
    endpoint: Endpoint | None = None,
    **options: Unpack[EndpointOptions],
) -> None:
    """Decline a ringing call with a SIP status (default 603 Decline; 486 Busy Here...)."""
    body = {"status_code": status_code}
    await apost_json(_endpoint(endpoint, options), _path(call_id, "reject"), body, error=CallError)


async def refer(
    call_id: str, target_uri: str, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """Transfer a live call (SIP REFER) to ``target_uri``, e.g. ``"tel:+14155550123"``."""
    body = {"target_uri": target_uri}
    await apost_json(_endpoint(endpoint, options), _path(call_id, "refer"), body, error=CallError)


async def hangup(
    call_id: str, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """End a call (SIP or WebRTC); its sideband session then ends too."""
    await apost_json(_endpoint(endpoint, options), _path(call_id, "hangup"), None, error=CallError)


def accept_sync(
    call_id: str, agent: Agent, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """Blocking :func:`accept`."""
    ep = _endpoint(endpoint, options, _model_of(agent))
    post_json(ep, _path(call_id, "accept"), _accept_body(agent, ep), error=CallError)


def reject_sync(
    call_id: str,
    *,
    status_code: int = 603,
    endpoint: Endpoint | None = None,
    **options: Unpack[EndpointOptions],
) -> None:
    """Blocking :func:`reject`."""
    body = {"status_code": status_code}
    post_json(_endpoint(endpoint, options), _path(call_id, "reject"), body, error=CallError)


def refer_sync(
    call_id: str, target_uri: str, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """Blocking :func:`refer`."""
    body = {"target_uri": target_uri}
    post_json(_endpoint(endpoint, options), _path(call_id, "refer"), body, error=CallError)


def hangup_sync(
    call_id: str, *, endpoint: Endpoint | None = None, **options: Unpack[EndpointOptions]
) -> None:
    """Blocking :func:`hangup`."""
    post_json(_endpoint(endpoint, options), _path(call_id, "hangup"), None, error=CallError)
