"""Keep credentials out of logs and reprs.

websockets' protocol objects log every handshake header at DEBUG (``> Authorization:
Bearer sk-...`` on the client, ``< Authorization: ...`` on a server). rtagent hands them
:class:`RedactingLogger`, which blanks the values of credential headers and any bearer
token or API-key-shaped word before a record is made, so no handler ever sees a secret.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["SECRET_HEADERS", "RedactingLogger", "redact", "redact_headers"]

SECRET_HEADERS = frozenset({
    "authorization", "api-key", "proxy-authorization", "openai-api-key", "x-api-key", "cookie",
    "set-cookie", "webhook-signature",
})
"""Header names (lower case) whose values are credentials."""

_SECRET = re.compile(r"(?i)\b(bearer|basic)\s+\S+|\b(sk|ek|rk|whsec)[-_][A-Za-z0-9_\-]{6,}")


def redact(text: str) -> str:
    """``text`` with bearer/basic credentials and key-shaped words replaced."""
    return _SECRET.sub(lambda m: (m.group(1) + " <redacted>") if m.group(1) else "<redacted>", text)


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
            args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        if isinstance(msg, str):
            msg = redact(msg)
        self.logger.log(level, msg, *args, **kwargs)
