"""The sans-I/O session: the protocol brain of a Realtime client (no I/O, no awaits)."""

from .actions import (
    Action,
    CancelCall,
    EndConnection,
    Notify,
    Ready,
    RunCall,
    Send,
    ToolCall,
    TurnDone,
)
from .machine import HANDLED_TYPES, Session

__all__ = [
    "HANDLED_TYPES",
    "Action",
    "CancelCall",
    "EndConnection",
    "Notify",
    "Ready",
    "RunCall",
    "Send",
    "Session",
    "ToolCall",
    "TurnDone",
]
