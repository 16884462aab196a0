"""The sending side of OpenAI's webhooks: Standard Webhooks signatures, and the delivery.

OpenAI signs each webhook with Standard Webhooks: ``webhook-id`` (the same for every
delivery of one event), ``webhook-timestamp`` (Unix seconds of this delivery) and
``webhook-signature`` = ``v1,`` + base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}``,
keyed with the base64 bytes of the ``whsec_...`` secret. Signing is these few lines of
the standard library, so the local server needs no extra; receivers verify with the
``standardwebhooks`` library (``rtagent.calls.verify_webhook``), which makes the tests
an independent check of this code.

The delivery is one ``POST`` over a plain HTTP/1.1 connection (``https`` with TLS), read
until the status line: the receiver's answer (2xx or not) is all a sender learns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc

from .._errors import ConfigurationError

__all__ = ["deliver", "sign"]

logger = logging.getLogger("rtagent.local")

_USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
_MAX_HEAD = 2**16


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError("a webhook secret is 'whsec_' plus base64 bytes") from exc


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header of one delivery.

    Raises:
        ConfigurationError: the secret is not ``whsec_`` plus base64.
    """
    mac = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


async def deliver(
    url: str, event: Mapping[str, Any], *, secret: str, webhook_id: str, timestamp: int
) -> int:
    """POST one signed webhook to ``url``; return the HTTP status the receiver answered.

    Raises:
        ConfigurationError: a URL that is not http(s), or a bad secret.
        OSError: the receiver could not be reached.
    """
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ConfigurationError(f"a webhook URL must be http(s)://host/..., not {url!r}")
    body = json.dumps(event, separators=(",", ":"))
    headers = {
        "Host": split.netloc,
        "User-Agent": _USER_AGENT,
        "Content-Type": "application/json",
        "Content-Length": str(len(body.encode())),
        "Connection": "close",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
    target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    head = f"POST {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    tls = split.scheme == "https"
    port = split.port or (443 if tls else 80)
    stream: anyio.abc.ByteStream
    if tls:
        stream = await anyio.connect_tcp(
            split.hostname, port, ssl_context=ssl.create_default_context()
        )
    else:
        stream = await anyio.connect_tcp(split.hostname, port)
    async with stream:
        await stream.send((head + "\r\n").encode("latin-1") + body.encode())
        answer = bytearray()
        while b"\r\n" not in answer and len(answer) < _MAX_HEAD:
            try:
                answer += await stream.receive()
            except anyio.EndOfStream:
                break
    status_line = bytes(answer).split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    # The id and the answer only: never the secret or the signature.
    logger.info("webhook %s (%s) -> %d", webhook_id, event.get("type"), status)
    return status
