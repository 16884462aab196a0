"""The runtime: the only layer that combines the session, the transport and running tools."""

from .connect import connect
from .driver import SessionEvent
from .session import RealtimeSession, SessionStats

__all__ = ["RealtimeSession", "SessionEvent", "SessionStats", "connect"]
