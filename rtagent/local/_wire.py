"""What every part of the local engine stamps on what it sends: ids and the event envelope.

Ids are deterministic (one counter per prefix, shared by a server's connections), so a
test can predict ``item_000003`` or ``call_1``. Every server event starts with its own
``event_id`` and ``type`` (PROTOCOL.md §3).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Event", "Ids", "server_event"]

Event = dict[str, Any]
"""One server event as the JSON object sent on the wire."""


class Ids:
    """Deterministic id factory shared by every connection of one server."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        """Next id for ``prefix``: ``call_1`` style for calls, zero-padded otherwise."""
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}_{n}" if prefix == "call" else f"{prefix}_{n:06d}"


def server_event(ids: Ids, type: str, **fields: Any) -> Event:
    """A server event: a fresh ``event_id``, the ``type``, then ``fields`` in order."""
    return {"event_id": ids.new("event"), "type": type, **fields}
