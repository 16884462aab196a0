"""One connection's lifecycle: handshake, rollover deadline, and how it ends.

States: ``down`` (no socket) -> ``opening`` (socket open; a normal session waits for
``session.created``) -> ``configuring`` (our ``session.update`` sent, waiting for
``session.updated``) -> ``ready`` -> ``closing`` (we decided to end it) -> ``down``.
Client events go out only while ``configuring`` or ``ready``; anything else the
application adds meanwhile waits in the conversation mirror for the next replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from .._errors import RTAgentError
from .actions import EndConnection, EndKind

__all__ = ["DEFAULT_MAX_DURATION", "Lifecycle", "Link"]

logger = logging.getLogger("rtagent.session")

Link = Literal["down", "opening", "configuring", "ready", "closing"]

# Sessions end at 60 minutes (PROTOCOL.md §1): roll over well before the server cuts in.
DEFAULT_MAX_DURATION = 55 * 60.0
_ROLLOVER_MARGIN = 60.0


class Lifecycle:
    """The state of the current connection, and what the next one needs to know.

    Args:
        clock: wall-clock seconds.
        max_duration: a connection rolls over after this many seconds (None: never).
    """

    def __init__(self, clock: Callable[[], float], max_duration: float | None) -> None:
        self.clock = clock
        self.max_duration = max_duration
        self.link: Link = "down"
        self.connections = 0
        self.deadline: float | None = None
        """Wall-clock time after which this connection rolls over (None: never)."""
        self.config_event: str | None = None
        """The ``event_id`` of the ``session.update`` that configures this connection."""
        self.ending: EndKind | None = None
        self.planned = False
        """The last connection ended in a planned rollover."""
        self.roll_due = False
        self.resumed: tuple[int, int, tuple[str, ...]] = (0, 0, ())
        """What the replay restored: items, tool outputs, what could not be restored."""

    @property
    def sending(self) -> bool:
        """Whether client events may go out now."""
        return self.link in ("configuring", "ready")

    def opened(self) -> None:
        self.connections += 1
        self.link = "opening"
        self.ending = None
        self.roll_due = False

    def lost(self) -> None:
        self.link = "down"
        self.planned = self.ending == "rollover"

    def set_deadline(self, expires_at: Any) -> None:
        """Roll over ``max_duration`` from now, or before the server's ``expires_at``."""
        if self.max_duration is None:
            self.deadline = None
            return
        now = self.clock()
        limit = self.max_duration
        if isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool):
            if expires_at > now:
                limit = min(limit, expires_at - now)
            else:
                # A deadline already past would roll over at once, again and again.
                logger.warning("the server's expires_at (%s) is already past; ignored", expires_at)
        margin = min(_ROLLOVER_MARGIN, 0.1 * max(limit, 0.0))
        self.deadline = now + max(0.0, limit - margin)

    def deadline_passed(self) -> bool:
        """Mark the rollover due if the deadline has passed on a ready connection."""
        if self.link == "ready" and self.deadline is not None and self.clock() >= self.deadline:
            self.roll_due = True
        return self.roll_due

    def end(self, reason: str, kind: EndKind, error: RTAgentError | None = None) -> EndConnection:
        self.link = "closing"
        self.ending = kind
        return EndConnection(reason, kind, error)
