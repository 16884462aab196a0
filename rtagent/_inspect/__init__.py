"""The live inspector page of ``rtagent chat --inspect`` and ``rtagent serve --ui``.

A static page shipped in the package (``static/``), served on 127.0.0.1 and fed over a
WebSocket with the records of :mod:`.feed`: the event timeline, tool calls with their
arguments, results and durations, per-turn latency, usage and cost, and reconnects.
"""

from __future__ import annotations

from .feed import Tracker
from .server import Inspector, open_inspector

__all__ = ["Inspector", "Tracker", "open_inspector"]
