"""One emulated SIP or WebRTC call: its state, its shared session, and the caller's side.

A call owns one :class:`~._engine.Engine` (its Realtime session) from the moment it is
accepted (SIP) or created (WebRTC) until it ends. Everyone who listens to the call gets
every event of that session: each sideband WebSocket (``?call_id=``) and a WebRTC call's
``oai-events`` data channel. A listener that drops loses what was sent meanwhile; the
conversation lives on here, so a sideband that re-attaches finds it as it is, and
nothing is sent twice (PROTOCOL.md §1).

The caller's side is the test's: :meth:`LocalCall.say` speaks (synthetic audio through
the server VAD, with the words the model should hear), :meth:`LocalCall.press` sends
DTMF (``input_audio_buffer.dtmf_event_received``, SIP only, no ``event_id``), and
:meth:`LocalCall.hang_up` ends the call: every sideband is closed normally (1000), as
when the application hangs up through ``POST /v1/realtime/calls/{id}/hangup``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ._audio import silence_pcm16, sine_pcm16
from ._engine import Engine
from ._records import ConnectionRecord
from ._responses import MediaOut
from ._webhook_sender import deliver
from ._wire import Event

if TYPE_CHECKING:
    from ._webrtc import Peer

__all__ = ["CallKind", "CallState", "Listener", "LocalCall"]

logger = logging.getLogger("rtagent.local")

CallKind = Literal["sip", "webrtc"]
CallState = Literal["ringing", "active", "rejected", "ended"]

DTMF_KEYS = frozenset("0123456789*#ABCD")
"""The keypad of ``input_audio_buffer.dtmf_event_received`` (RFC 4733 events 0-15)."""


class Listener(Protocol):
    """Something that receives a call's events: a sideband connection, a data channel."""

    def push(self, events: list[Event]) -> None:
        """Queue server events, in order."""

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued (a sideband: close frame ``code``)."""


class LocalCall:
    """A call on the local server, seen from the service: drive the caller's side from a test.

    Made by :meth:`~._call_center.CallCenter.ring` (an incoming SIP call) or
    :meth:`~._call_center.CallCenter.create` and ``POST /v1/realtime/calls`` (WebRTC).

    Attributes:
        id: the call id (``rtc_...``): the webhook's ``call_id``, the ``Location`` header's.
        kind: ``"sip"`` or ``"webrtc"``.
        state: ``"ringing"`` (SIP, until accepted or rejected), ``"active"``, ``"rejected"``
            or ``"ended"``.
        sip_headers: the SIP INVITE's headers, in order (SIP calls).
        events: every event of the call's session, in order, whether or not anyone listened.
        sidebands: the sideband connections that attached, in order.
        referred_to: where ``refer`` transferred the call.
        rejected_with: the SIP status of ``reject``.
        ended_by: why it ended: ``"caller"``, ``"hangup"``, ``"refer"``, ``"expired"``,
            ``"server"``.
        webhook: the ``realtime.call.incoming`` event of a SIP call.
        webhook_id: its ``webhook-id``, the same for every delivery.
        deliveries: the HTTP status of each delivery of its webhook.
        requests: each Calls API action on the call and its HTTP status, in order
            (``("accept", 200)``, ``("refer", 400)``...).
    """

    def __init__(
        self,
        call_id: str,
        kind: CallKind,
        *,
        sip_headers: Sequence[tuple[str, str]] = (),
        spawn: Callable[..., None],
        notify: Callable[[], None],
    ) -> None:
        self.id = call_id
        self.kind: CallKind = kind
        self.state: CallState = "ringing" if kind == "sip" else "active"
        self.sip_headers = tuple(sip_headers)
        self.events: list[Event] = []
        self.sidebands: list[ConnectionRecord] = []
        self.referred_to: str | None = None
        self.rejected_with: int | None = None
        self.ended_by: str | None = None
        self.webhook: dict[str, Any] | None = None
        self.webhook_id: str | None = None
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.deliveries: list[int] = []
        self.requests: list[tuple[str, int]] = []
        self.engine: Engine | None = None
        self.peer: Peer | None = None
        """The WebRTC peer that carries real media (the ``webrtc`` extra), if any."""
        self._spawn = spawn
        self._notify_server = notify
        self._listeners: list[Listener] = []
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        self._pump_scope = anyio.CancelScope()

    def __repr__(self) -> str:
        return f"LocalCall(id={self.id!r}, kind={self.kind!r}, state={self.state!r})"

    @property
    def session(self) -> dict[str, Any] | None:
        """The call's effective session config (None while it rings)."""
        return self.engine.session if self.engine is not None else None

    @property
    def is_live(self) -> bool:
        """Ringing or active: not rejected, not ended."""
        return self.state in ("ringing", "active")

    # ---- the caller's side (what a test drives) --------------------------------------------

    def say(self, text: str | None = None, *, audio: bytes | None = None) -> None:
        """The caller speaks: audio through the server VAD, as over the call's media.

        Args:
            text: what the caller says; the model hears these words once the VAD commits
                the speech. Alone, it is spoken as a tone whose length follows the text.
            audio: the caller's audio instead (PCM16, 24 kHz mono); silence is appended so
                the VAD hears the end of the turn.

        Raises:
            RuntimeError: the call is not active.
        """
        engine = self._active_engine("speak")
        speech = audio if audio is not None else sine_pcm16(min(3000, 300 + 30 * len(text or "")))
        td = engine.session["audio"]["input"].get("turn_detection") or {}
        pause = int(td.get("silence_duration_ms", 800)) + 100
        self._broadcast(engine.caller_audio(speech + silence_pcm16(pause), text))

    def press(self, keys: str) -> None:
        """The caller presses keypad keys: one ``input_audio_buffer.dtmf_event_received`` each.

        Raises:
            RuntimeError: the call is not an active SIP call (DTMF is SIP only).
            ValueError: a key is not one of ``0-9 * # A-D``.
        """
        self._active_engine("press keys")
        if self.kind != "sip":
            raise RuntimeError(
                f"call {self.id} is a WebRTC call: DTMF events come from SIP calls only"
            )
        bad = [k for k in keys if k not in DTMF_KEYS]
        if bad or not keys:
            raise ValueError(f"DTMF keys are 0-9, *, #, A-D, not {keys!r}")
        now = int(time.time())
        # The type carries no event_id (openai's InputAudioBufferDtmfEventReceivedEvent).
        self._broadcast(
            [
                {"type": "input_audio_buffer.dtmf_event_received", "event": k, "received_at": now}
                for k in keys
            ]
        )

    def hang_up(self) -> None:
        """The caller hangs up: the call ends and every sideband is closed normally (1000)."""
        self.end("caller")

    async def deliver(
        self, *, url: str | None = None, secret: str | None = None, timestamp: int | None = None
    ) -> int:
        """Send the call's webhook (again): the same ``webhook-id`` and body, signed now.

        A redelivery is what OpenAI does when a delivery fails; the receiver must start
        nothing twice. ``secret`` and ``timestamp`` override the signature's (a wrong
        secret, a stale time), ``url`` the receiver.

        Returns:
            The HTTP status the receiver answered.

        Raises:
            RuntimeError: the call has no webhook (a WebRTC call), or no URL or secret.
            OSError: the receiver could not be reached.
        """
        url = url or self.webhook_url
        secret = secret or self.webhook_secret
        if self.webhook is None or self.webhook_id is None or not url or not secret:
            raise RuntimeError(f"call {self.id} has no webhook URL and secret to deliver to")
        status = await deliver(
            url,
            self.webhook,
            secret=secret,
            webhook_id=self.webhook_id,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        self.deliveries.append(status)
        self._changed_now()
        return status

    async def wait_until(self, predicate: Callable[[LocalCall], bool]) -> None:
        """Wait until ``predicate(call)`` holds (wrap in ``anyio.fail_after``)."""
        while not predicate(self):
            await self._changed.wait()

    async def wait_state(self, *states: CallState) -> None:
        """Wait until the call is in one of ``states``."""
        await self.wait_until(lambda call: call.state in states)

    # ---- the service's side ----------------------------------------------------------------

    def activate(self, engine: Engine, lifetime: float) -> None:
        """The call's session starts (accepted, or created over WebRTC): stream it.

        Args:
            engine: the call's session.
            lifetime: seconds until the session expires (the real limit is 60 minutes).
        """
        self.engine = engine
        self.state = "active"
        self._spawn(self._pump, lifetime, name=f"rtagent.local call {self.id}")
        self._changed_now()

    def reject(self, status_code: int) -> None:
        """Decline the ringing call with a SIP status."""
        self.state = "rejected"
        self.rejected_with = status_code
        self._changed_now()

    def end(self, by: str) -> None:
        """End the call now: listeners are closed normally, the session stops."""
        if not self.is_live:
            return
        logger.info("call %s ended (%s)", self.id, by)
        self.state = "ended"
        self.ended_by = by
        for listener in self._listeners:
            # A normal close is how a sideband learns that the call is over.
            listener.close(1000, "")
        self._listeners.clear()
        self._pump_scope.cancel()
        if self.peer is not None:
            self._spawn(self.peer.aclose, name=f"rtagent.local call {self.id} media")
        self._changed_now()

    def attach(self, listener: Listener, record: ConnectionRecord | None = None) -> None:
        """A sideband (or the data channel) starts listening to the call's events."""
        self._listeners.append(listener)
        if record is not None:
            self.sidebands.append(record)
        self._changed_now()

    def detach(self, listener: Listener) -> None:
        """A listener went away (its events are not kept for it)."""
        if listener in self._listeners:
            self._listeners.remove(listener)
        self._changed_now()

    def handled(self, sender: Listener, events: list[Event]) -> None:
        """Route the answer to a listener's client event: errors to it, the rest to all."""
        for event in events:
            if event.get("type") == "error":
                sender.push([event])  # the error names the sender's event_id
            else:
                self._broadcast([event])
        self._wake.set()

    def play(self, pcm: bytes) -> None:
        """:class:`MediaOut`: the session's spoken output goes to the caller's media."""
        if self.peer is not None:
            self.peer.play(pcm)

    def clear(self) -> None:
        """:class:`MediaOut`: drop what the caller has not heard yet."""
        if self.peer is not None:
            self.peer.clear()

    def media_in(self, pcm: bytes) -> None:
        """Audio from the caller's media (the WebRTC peer): through the VAD, as speech."""
        if self.engine is not None and self.state == "active":
            self._broadcast(self.engine.caller_audio(pcm))

    # ---- internals -------------------------------------------------------------------------

    def _active_engine(self, what: str) -> Engine:
        if self.state != "active" or self.engine is None:
            raise RuntimeError(f"call {self.id} is {self.state}: it cannot {what}")
        return self.engine

    def _broadcast(self, events: list[Event]) -> None:
        if not events:
            return
        self.events.extend(events)
        for listener in self._listeners:
            listener.push(events)
        self._wake.set()
        self._changed_now()

    async def _pump(self, lifetime: float) -> None:
        """Stream the session's events (responses, transcriptions) to every listener."""
        engine = self.engine
        assert engine is not None
        with self._pump_scope, anyio.move_on_after(lifetime):
            while True:
                event = engine.next_event()
                if event is None:
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                self._broadcast([event])
                await anyio.lowlevel.checkpoint()  # a cancel or barge-in can land in between
        if self.is_live:
            # The session hit its maximum duration: the real error, then the call is over.
            self._broadcast([engine.session_expired()])
            self.end("expired")

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        self._notify_server()


_MEDIA_OUT: type[MediaOut] = LocalCall  # a call is where its session's audio is played
