"""Fan-out of session events to every iterator, each through its own bounded stream.

Each subscriber owns a memory object stream; the broadcaster holds the send ends and
closes them when the session ends. A subscriber that falls behind by a whole buffer
loses events (counted, never blocking the reader) and is told how many with an
:class:`~rtagent.EventsDropped` notice once it catches up.

The first subscription starts at connect (``early``): events that arrive before the
application's first ``async for`` wait for it, up to the buffer size. If that buffer
fills up with nobody reading, the early subscription is released, so a session only
used through ``ask()`` does not keep its events. Because it may hold a whole buffer for
a long time, a publisher can give it a compact form of an item (``publish(item,
early=...)``), which its subscriber expands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["Broadcaster"]

logger = logging.getLogger("rtagent.session")

T = TypeVar("T")


class _Subscription(Generic[T]):
    __slots__ = ("dropped", "receive", "send")

    def __init__(self, size: int) -> None:
        self.send: MemoryObjectSendStream[T]
        self.receive: MemoryObjectReceiveStream[T]
        self.send, self.receive = anyio.create_memory_object_stream[T](size)
        self.dropped = 0


class Broadcaster(Generic[T]):
    """Delivers each published item to every subscription.

    Args:
        size: buffer of each subscription, in items.
        early: keep a subscription from the start for the first subscriber.
        dropped_notice: makes the item that tells a subscriber how many it lost.
    """

    def __init__(
        self, size: int, *, early: bool = False, dropped_notice: Callable[[int], T] | None = None
    ) -> None:
        self._size = max(1, size)
        self._notice = dropped_notice
        self._subs: list[_Subscription[T]] = []
        self._early: _Subscription[T] | None = None
        if early and size > 0:
            self._early = _Subscription(self._size)
            self._subs.append(self._early)
        self.closed = False

    @property
    def observed(self) -> bool:
        """Whether anybody (or the early subscription) receives what is published."""
        return bool(self._subs)

    def subscribe(self, *, claim_early: bool = True) -> MemoryObjectReceiveStream[T]:
        """A new subscription; the first one gets what arrived since the start.

        ``claim_early=False`` (an observer such as the telemetry) starts from now and
        leaves the events kept since the start to the application's first iterator.
        """
        if claim_early and self._early is not None:
            sub, self._early = self._early, None
            return sub.receive
        sub = _Subscription[T](self._size)
        if self.closed:
            sub.send.close()
        else:
            self._subs.append(sub)
        return sub.receive

    def unsubscribe(self, receive: MemoryObjectReceiveStream[T]) -> None:
        for sub in self._subs:
            if sub.receive is receive:
                self._subs.remove(sub)
                sub.send.close()
                return

    def publish(self, item: T, *, early: T | None = None) -> None:
        """Offer ``item`` to every subscription; the early one keeps ``early`` when given."""
        for sub in tuple(self._subs):
            if sub.dropped and self._notice is not None and self._offer(sub, self._notice(sub.dropped)):
                sub.dropped = 0
            if not self._offer(sub, early if early is not None and sub is self._early else item):
                sub.dropped += 1
                if sub is self._early:
                    # Nobody claimed the first events: stop keeping them.
                    logger.debug("no iterator claimed the session's first %d events", self._size)
                    self._early = None
                    self._subs.remove(sub)
                    sub.send.close()
                    sub.receive.close()
                elif sub.dropped == 1:
                    logger.warning("a subscriber is %d events behind; dropping events for it", self._size)

    def _offer(self, sub: _Subscription[T], item: T) -> bool:
        try:
            sub.send.send_nowait(item)
        except anyio.WouldBlock:
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._subs.remove(sub)
            return True
        return True

    def discard_early(self) -> None:
        """Drop the events kept for a first subscriber that has not come."""
        early, self._early = self._early, None
        if early is not None:
            self._subs.remove(early)
            early.send.close()
            early.receive.close()

    def close(self) -> None:
        """End every subscription (iterators finish after the items already queued)."""
        self.closed = True
        self.discard_early()  # the session ended before anybody listened
        for sub in self._subs:
            sub.send.close()
        self._subs.clear()
