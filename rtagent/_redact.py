"""Keep credentials out of logs and reprs.

websockets' protocol objects log every handshake header at DEBUG (``> Authorization:
Bearer sk-...`` on the client, ``< Authorization: ...`` on a server). rtagent hands them
:class:`RedactingLogger`, which blanks the values of credential headers and any bearer
token or API-key-shaped word before a record is made, so no handler ever sees a secret.

Some secrets have no recognisable shape: the ``authorization`` token and ``headers`` of a
hosted MCP tool travel inside a ``session.update`` frame, which websockets logs at DEBUG
(its start and end, or all of it with a large ``WEBSOCKETS_MAX_LOG_SIZE``). Whoever holds
such a secret registers it with :func:`register_secret`; :func:`redact` then blanks every
occurrence, and :class:`RedactingLogger` renders frame arguments to text first so that it
can.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["SECRET_HEADERS", "RedactingLogger", "redact", "redact_headers", "redact_url", "register_secret"]

SECRET_HEADERS = frozenset({
    "authorization", "api-key", "proxy-authorization", "openai-api-key", "x-api-key", "cookie",
    "set-cookie", "webhook-signature",
})
"""Header names (lower case) whose values are credentials."""

_SECRET = re.compile(r"(?i)\b(bearer|basic)\s+\S+|\b(sk|ek|rk|whsec)[-_][A-Za-z0-9_\-]{6,}")


_MIN_SECRET = 6
"""Shorter values are not registered: blanking them everywhere would garble logs."""
_MAX_SECRETS = 256
_registered: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first


def register_secret(value: str) -> None:
    """Blank ``value`` wherever :func:`redact` (and so :class:`RedactingLogger`) sees it.

    For credentials of no fixed shape (an OAuth access token, a custom header's value).
    Values shorter than six characters are ignored; at most 256 are kept, the oldest
    forgotten first.
    """
    if not isinstance(value, str) or len(value) < _MIN_SECRET or value in _registered:
        return
    _registered[value] = None
    while len(_registered) > _MAX_SECRETS:
        del _registered[next(iter(_registered))]


def redact(text: str) -> str:
    """``text`` with bearer/basic credentials, key-shaped words and registered secrets replaced."""
    for secret in list(_registered):
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return _SECRET.sub(lambda m: (m.group(1) + " <redacted>") if m.group(1) else "<redacted>", text)


def redact_url(url: str) -> str:
    """``url`` without the credentials of its user-info part (``nats://user:pass@host``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{scheme}://<redacted>@{authority.rpartition('@')[2]}{slash}{path}"


def _loggable(arg: object) -> object:
    if isinstance(arg, str):
        return redact(arg)
    if _registered and not isinstance(arg, (int, float)):
        # A websockets Frame (or anything else) renders its payload when formatted:
        # render it here, so that a registered secret in it can be blanked.
        return redact(str(arg))
    return arg


def redact_headers(headers: Any) -> list[tuple[str, str]]:
    """Header pairs with the values of credential headers replaced (for reprs and logs)."""
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), "<redacted>" if str(k).lower() in SECRET_HEADERS else str(v)) for k, v in items]


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter that redacts secrets from a record's arguments before logging."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in SECRET_HEADERS:
            args = (args[0], "<redacted>")  # websockets: "> %s: %s" with (name, value)
        else:
            args = tuple(_loggable(a) for a in args)
        if isinstance(msg, str):
            msg = redact(msg)
        self.logger.log(level, msg, *args, **kwargs)
