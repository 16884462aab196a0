"""Incoming-call webhooks: verify the Standard Webhooks signature, parse the event.

OpenAI signs its webhooks with Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature`` headers, HMAC-SHA256 with the ``whsec_...`` secret). The check uses
the ``standardwebhooks`` library (the ``phone`` extra) rather than code of our own, and
refuses a bad signature or a timestamp more than five minutes away with
:class:`WebhookError`. A valid ``realtime.call.incoming`` event becomes an
:class:`IncomingCall`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError, RTAgentError

__all__ = ["IncomingCall", "WebhookError", "WebhookEvent", "verify_webhook"]

logger = logging.getLogger("rtagent.calls")


class WebhookError(RTAgentError):
    """A webhook was refused: a bad or missing signature, a stale timestamp, a bad body."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook event of a type rtagent does not model further."""

    id: str
    """The webhook's id (``webhook-id``): the same for every redelivery of one event."""
    type: str
    created_at: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A SIP call is ringing (``realtime.call.incoming``): accept or reject it by ``call_id``."""

    id: str
    """The webhook's id (``webhook-id``): a redelivery of the same call has the same id."""
    call_id: str
    sip_headers: tuple[tuple[str, str], ...] = ()
    """The SIP INVITE's headers, in order (untrusted caller metadata)."""
    created_at: int = 0

    def header(self, name: str) -> str | None:
        """The first SIP header called ``name`` (case-insensitive), e.g. ``"From"``."""
        wanted = name.lower()
        return next((v for k, v in self.sip_headers if k.lower() == wanted), None)


def verify_webhook(
    body: bytes | str, headers: Mapping[str, str], secret: str
) -> IncomingCall | WebhookEvent:
    """Check a webhook's signature and timestamp, and parse it.

    Args:
        body: the request body, exactly as received.
        headers: the request headers (``webhook-id``, ``webhook-timestamp``,
            ``webhook-signature``; any case).
        secret: the webhook signing secret (``whsec_...``).

    Raises:
        WebhookError: the signature does not match, a header is missing, the timestamp is
            too old or too new, or the body is not a webhook event.
        ConfigurationError: the ``standardwebhooks`` library is missing (``rtagent[phone]``),
            or the secret is empty.
    """
    try:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ConfigurationError("verifying webhooks needs: pip install 'rtagent[phone]'") from exc
    if not secret:
        raise ConfigurationError("no webhook secret: pass secret=... (whsec_...)")
    try:
        hook = Webhook(secret)
    except Exception as exc:
        raise ConfigurationError("the webhook secret is not a valid whsec_ secret") from exc
    plain = {str(k).lower(): str(v) for k, v in headers.items()}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        hook.verify(text, plain, json_parse=False)
    except WebhookVerificationError as exc:
        logger.warning("webhook %s refused: %s", plain.get("webhook-id", "?"), exc)
        raise WebhookError(f"webhook refused: {exc}") from None
    try:
        event = json.loads(text)
        kind, data = str(event["type"]), event.get("data") or {}
        created = int(event.get("created_at") or 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookError("webhook refused: the body is not a webhook event") from exc
    webhook_id = plain["webhook-id"]
    if kind == "realtime.call.incoming":
        call_id = data.get("call_id") if isinstance(data, dict) else None
        if not isinstance(call_id, str) or not call_id:
            raise WebhookError("webhook refused: realtime.call.incoming without a call_id")
        raw = data.get("sip_headers") or []
        sip = tuple(
            (str(h.get("name")), str(h.get("value")))
            for h in raw if isinstance(h, dict)
        )
        return IncomingCall(webhook_id, call_id, sip, created)
    return WebhookEvent(webhook_id, kind, created, data if isinstance(data, dict) else {})
