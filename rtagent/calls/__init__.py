"""Phone (SIP) and browser (WebRTC) calls whose tools run on your server.

* The Calls REST API: :func:`accept`, :func:`reject`, :func:`refer`, :func:`hangup` (and
  their ``*_sync`` twins), through the same endpoint and credentials as ``connect()``.
* Webhooks: :func:`verify_webhook` checks the Standard Webhooks signature of an incoming
  ``realtime.call.incoming`` event and returns an :class:`IncomingCall`.
* :func:`phone_app`: an ASGI app that answers every call with an agent and runs it until
  hang-up (``rtagent phone AGENT`` serves it with uvicorn).

Attach to a call's session with ``rtagent.connect(agent, call_id=...)``. Webhooks and the
app need the ``phone`` extra: ``pip install 'rtagent[phone]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._rest import (
    CallError,
    accept,
    accept_sync,
    hangup,
    hangup_sync,
    refer,
    refer_sync,
    reject,
    reject_sync,
)
from ._webhooks import IncomingCall, WebhookError, WebhookEvent, verify_webhook

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "CallError",
    "IncomingCall",
    "WebhookError",
    "WebhookEvent",
    "accept",
    "accept_sync",
    "hangup",
    "hangup_sync",
    "phone_app",
    "refer",
    "refer_sync",
    "reject",
    "reject_sync",
    "verify_webhook",
]


def phone_app(*args: Any, **kwargs: Any) -> Starlette:
    """An ASGI app answering incoming calls with an agent; see :func:`rtagent.calls._app.phone_app`.

    Raises:
        ConfigurationError: Starlette is missing (``pip install 'rtagent[phone]'``), or no
            webhook secret.
    """
    try:
        from ._app import phone_app as build
    except ImportError as exc:
        from .._errors import ConfigurationError

        raise ConfigurationError("the phone app needs: pip install 'rtagent[phone]'") from exc
    return build(*args, **kwargs)
