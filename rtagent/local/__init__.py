"""A protocol-faithful local OpenAI Realtime (GA) server, for offline tests and demos.

``LocalRealtimeServer`` speaks the real WebSocket protocol; a brain decides what
the "model" says (:class:`ScriptedBrain` plays turns, :class:`RuleBrain` picks tools
from the user's words) and :class:`Faults` reproduces real failures.
``server.calls`` (a :class:`CallCenter`) emulates SIP and WebRTC calls: the Calls API,
sidebands by ``call_id``, signed incoming-call webhooks, and the caller's side
(:class:`LocalCall`: ``say``, ``press``, ``hang_up``).
"""

from __future__ import annotations

from ._audio import silence_pcm16, sine_pcm16
from ._brains import Brain, Call, Conversation, RuleBrain, ScriptedBrain, Turn
from ._call_center import CallCenter
from ._calls import LocalCall
from ._engine import Engine
from ._faults import Faults
from ._records import ConnectionRecord
from ._server import LocalRealtimeServer, run_server

__all__ = [
    "Brain",
    "Call",
    "CallCenter",
    "ConnectionRecord",
    "Conversation",
    "Engine",
    "Faults",
    "LocalCall",
    "LocalRealtimeServer",
    "RuleBrain",
    "ScriptedBrain",
    "Turn",
    "run_server",
    "silence_pcm16",
    "sine_pcm16",
]
