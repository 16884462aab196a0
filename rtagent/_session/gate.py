"""The response gate: the only place that sends ``response.create``.

Only one response may write to the default conversation at a time
(``conversation_already_has_active_response``, PROTOCOL.md §7). Every wish for a
response (a user turn, a finished tool round, a manual request) is a :class:`Request`
in one queue. The gate sends the next one only when no response is active and none is
in flight, and merges plain requests that pile up.

Responses are attributed by what they answer, not by timing: every ``response.create``
carries ``metadata: {"rtagent_request": <key>}``, which the server echoes on the
response (PROTOCOL.md §2). A ``response.created`` without a key of ours was started by
the server (VAD, or its own follow-up); it answers the queued plain requests whose items
it had already seen. A request the server refused because such a response was active
is queued again, unless that response had seen its items.

A server that does not echo metadata (some proxies and test servers) still works: until
a key has come back once, an unmarked response that starts while a request is in flight
is taken as that request's, and re-attributed to the server if the request is then
refused with ``conversation_already_has_active_response``.

Out-of-band requests (``conversation: "none"``) do not write to the conversation and
may run beside others, so they skip the one-at-a-time rule.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _events as ev
from .actions import Action, Send, TurnDone

__all__ = ["MARKER", "Request", "ResponseGate", "Running"]

logger = logging.getLogger("rtagent.session")

MARKER = "rtagent_request"
"""The ``metadata`` key that ties a response to the request that asked for it."""

_RACE = "conversation_already_has_active_response"


@dataclass(slots=True, eq=False)
class Request:
    """A wish for a response.

    Attributes:
        key: echoed back in the response's metadata.
        options: per-response overrides (None: a plain request, merged with others).
        needs: how many of our items must be acknowledged before a server-started
            response can answer this request.
        turns: the application turns waiting on this request's answer.
        out_of_band: ``conversation: "none"``, outside the one-at-a-time rule.
        after_repeats: asked by a tool round whose calls were all answered before.
    """

    key: str
    options: dict[str, Any] | None
    needs: int
    turns: set[int] = field(default_factory=set)
    out_of_band: bool = False
    after_repeats: bool = False
    event_id: str | None = None
    cancel_on_start: bool = False


@dataclass(slots=True, eq=False)
class Running:
    """A response that the server has started and not yet finished."""

    id: str
    request: Request | None
    """The request it answers; None when the server started it on its own."""
    turns: set[int]
    acked_at_start: int
    tentative: bool = False
    """Taken as ``request``'s by timing, because the server has not echoed a key yet."""


class ResponseGate:
    """Queue, in-flight request, active response and item acknowledgements.

    Args:
        out: the session's action list; sends and refused turns are appended to it.
        event_id: makes a fresh client ``event_id``.
    """

    def __init__(self, out: list[Action], event_id: Callable[[], str]) -> None:
        self._out = out
        self._event_id = event_id
        self._keys = itertools.count(1)
        self.queue: list[Request] = []
        self.inflight: Request | None = None
        self.active: Running | None = None
        self._oob_waiting: dict[str, Request] = {}
        self._oob_running: dict[str, Running] = {}
        self.sent_items = 0
        self.acked_items = 0
        self.echoes_keys = False
        """Whether the server has echoed a request key (then timing is never used)."""
        self.open = False
        """Requests are sent only while open: connection ready and no rollover due."""

    # -- state ---------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing active, in flight, queued or out of band."""
        return (
            self.active is None
            and self.inflight is None
            and not self.queue
            and not self._oob_waiting
            and not self._oob_running
        )

    @property
    def busy(self) -> bool:
        """A response is running or about to (a connection must not be closed now)."""
        return (
            self.active is not None
            or self.inflight is not None
            or bool(self._oob_waiting)
            or bool(self._oob_running)
        )

    def is_out_of_band(self, response_id: str) -> bool:
        return response_id in self._oob_running

    # -- requests ------------------------------------------------------------------------

    def request(
        self,
        options: dict[str, Any] | None = None,
        turns: set[int] | frozenset[int] = frozenset(),
        *,
        after_repeats: bool = False,
    ) -> None:
        """Queue a wish for a response that sees the conversation as it is now."""
        out_of_band = bool(options) and options.get("conversation") == "none"  # type: ignore[union-attr]
        if options is None and not after_repeats:
            for queued in self.queue:
                if queued.options is None and not queued.after_repeats:
                    queued.needs = self.sent_items
                    queued.turns |= turns
                    return
        key = f"r{next(self._keys)}"
        self.queue.append(
            Request(key, options, self.sent_items, set(turns), out_of_band, after_repeats)
        )

    def cancel(self) -> None:
        """Cancel the active response, or the one about to start."""
        if self.active is not None:
            self._send(ev.ResponseCancel(event_id=self._event_id(), response_id=self.active.id))
        elif self.inflight is not None:
            self.inflight.cancel_on_start = True

    def pump(self) -> None:
        """Send what may be sent now: out-of-band requests, then the next one in line."""
        if not self.open or not self.queue:
            return
        if any(r.out_of_band for r in self.queue):
            for request in [r for r in self.queue if r.out_of_band]:
                self.queue.remove(request)
                self._oob_waiting[request.key] = request
                self._send_request(request)
        if self.active is not None or self.inflight is not None:
            return
        for request in self.queue:
            self.queue.remove(request)
            self.inflight = request
            self._send_request(request)
            return

    def _send_request(self, request: Request) -> None:
        request.event_id = self._event_id()
        response = dict(request.options or {})
        metadata = dict(response.get("metadata") or {})
        metadata[MARKER] = request.key
        response["metadata"] = metadata
        self._send(ev.ResponseCreate(event_id=request.event_id, response=response))

    # -- the server's side ---------------------------------------------------------------

    def item_sent(self) -> None:
        self.sent_items += 1

    def item_acked(self) -> None:
        self.acked_items += 1

    def on_created(self, response: ev.Response) -> Running | None:
        """A response started; returns it unless it is out of band."""
        rid = response.id or ""
        key = _key_of(response)
        if key is not None and key in self._oob_waiting:
            request = self._oob_waiting.pop(key)
            self._oob_running[rid] = Running(rid, request, request.turns, self.acked_items)
            return None
        if self.active is not None:
            logger.warning("response %s started while %s was active", rid, self.active.id)
        if key is not None:
            self.echoes_keys = True
        inflight = self.inflight
        if inflight is not None and (key == inflight.key or (key is None and not self.echoes_keys)):
            self.inflight = None
            self.active = Running(
                rid, inflight, set(inflight.turns), self.acked_items, tentative=key is None
            )
            if inflight.cancel_on_start:
                self._send(ev.ResponseCancel(event_id=self._event_id(), response_id=rid))
            return self.active
        # Started by the server: it sees every item acknowledged so far, so it answers
        # every queued plain request that needed no more than that.
        turns: set[int] = set()
        kept: list[Request] = []
        for request in self.queue:
            if self._covers(request, self.acked_items):
                turns |= request.turns
            else:
                kept.append(request)
        self.queue = kept
        self.active = Running(rid, None, turns, self.acked_items)
        return self.active

    def on_done(self, response: ev.Response) -> Running | None:
        """A response ended; returns what it was (active or out of band), if known."""
        rid = response.id or ""
        oob = self._oob_running.pop(rid, None)
        if oob is not None:
            return oob
        if self.active is not None and self.active.id == rid:
            done, self.active = self.active, None
            return done
        return None

    def on_error(self, error: ev.ErrorDetail) -> bool:
        """Handle an ``error`` naming one of our requests; False when it names none."""
        event_id = error.event_id
        if event_id is None:
            return False
        active = self.active
        if (
            active is not None
            and active.tentative
            and active.request is not None
            and active.request.event_id == event_id
            and error.code == _RACE
        ):
            # The response we took for ours was the server's: ours was refused.
            request, active.request, active.tentative = active.request, None, False
            active.turns -= request.turns
            if self._covers(request, active.acked_at_start):
                active.turns |= request.turns
            else:
                self.queue.insert(0, request)
            return True
        inflight = self.inflight
        if inflight is not None and inflight.event_id == event_id:
            self.inflight = None
            if error.code == _RACE:
                active = self.active
                if active is not None and active.request is None and self._covers(
                    inflight, active.acked_at_start
                ):
                    active.turns |= inflight.turns  # the server's response saw our items
                else:
                    self.queue.insert(0, inflight)
                    if inflight.cancel_on_start and active is not None:
                        # The cancel meant "stop talking": that is the active response now.
                        self._send(
                            ev.ResponseCancel(event_id=self._event_id(), response_id=active.id)
                        )
                return True
            self._refused(inflight, error)
            return True
        for key, request in self._oob_waiting.items():
            if request.event_id == event_id:
                del self._oob_waiting[key]
                self._refused(request, error)
                return True
        return False

    def _refused(self, request: Request, error: ev.ErrorDetail) -> None:
        logger.warning("response.create refused: %s (%s)", error.message, error.code)
        if request.turns:
            self._out.append(TurnDone(frozenset(request.turns), "", error))

    # -- connections ---------------------------------------------------------------------

    def connection_lost(self, *, carried_on: bool) -> str | None:
        """Forget this connection's responses; re-queue what still needs an answer.

        Args:
            carried_on: the active response made tool calls whose round asks for the
                reply itself, so its request is not repeated.

        Returns:
            What happened to the response that was cut, in words (None if none was).
        """
        cut, self.active = self.active, None
        requeue: list[Request] = []
        description = None
        if cut is not None:
            if carried_on:
                description = "its tool calls carry on"
            elif cut.request is not None or cut.turns:
                options = cut.request.options if cut.request is not None else None
                key = cut.request.key if cut.request is not None else f"r{next(self._keys)}"
                requeue.append(Request(key, options, 0, set(cut.turns)))
                description = "re-requested"
            else:
                description = "started by the server; not repeated"
        if self.inflight is not None:
            self.inflight.cancel_on_start = False
            requeue.append(self.inflight)
            self.inflight = None
        self.queue[:0] = requeue
        for request in (*self._oob_waiting.values(), *(r.request for r in self._oob_running.values())):
            if request is not None and request.turns:
                self._out.append(
                    TurnDone(frozenset(request.turns), "", ev.ErrorDetail(
                        type="connection_lost", message="the connection was lost"))
                )
        self._oob_waiting.clear()
        self._oob_running.clear()
        self.sent_items = self.acked_items = 0
        self.open = False
        return description

    def rebase(self) -> None:
        """After a replay: queued requests need every item sent so far."""
        for request in self.queue:
            request.needs = self.sent_items

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _covers(request: Request, acked: int) -> bool:
        return request.options is None and not request.out_of_band and request.needs <= acked

    def _send(self, event: ev.ClientEvent) -> None:
        self._out.append(Send(event))


def _key_of(response: ev.Response) -> str | None:
    metadata = response.metadata
    if not isinstance(metadata, dict):
        return None
    key = metadata.get(MARKER)
    return key if isinstance(key, str) else None
