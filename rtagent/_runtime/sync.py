"""A blocking facade over :func:`rtagent.connect` for synchronous code.

The async session runs on an event loop in a background thread (an anyio blocking
portal); every method here is a blocking call into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._errors import first_error
from .connect import connect
from .driver import SessionEvent
from .session import RealtimeSession

if TYPE_CHECKING:
    from .._agent import Agent
    from .._tools import ToolRegistry

__all__ = ["SyncSession", "connect_sync"]


class SyncSession:
    """The blocking twin of :class:`~rtagent.RealtimeSession`."""

    def __init__(self, session: RealtimeSession, portal: BlockingPortal) -> None:
        self._session = session
        self._portal = portal
        self.audio = SyncAudio(session, portal)

    @property
    def history(self) -> list[dict[str, Any]]:
        return self._session.history

    @property
    def state(self) -> str:
        return self._session.state

    def ask(self, text: str) -> str:
        """Send a user message, run every tool round, return the text that answers it."""
        return self._portal.call(self._session.ask, text)

    def send_text(self, text: str) -> None:
        self._portal.call(self._session.send_text, text)

    def add_item(self, item: Mapping[str, Any]) -> str:
        item_id: str = self._portal.call(self._session.add_item, item)
        return item_id

    def create_response(self, **overrides: Any) -> None:
        self._portal.call(lambda: self._session.create_response(**overrides))

    def cancel(self) -> None:
        self._portal.call(self._session.cancel)

    def update(self, **session_fields: Any) -> None:
        self._portal.call(lambda: self._session.update(**session_fields))

    def update_tools(self, tools: ToolRegistry | Iterable[Any]) -> None:
        self._portal.call(self._session.update_tools, tools)

    def handoff(self, agent: Agent) -> None:
        self._portal.call(self._session.handoff, agent)

    def __iter__(self) -> Iterator[SessionEvent]:
        """Every server event and runtime notice, blocking for each."""
        events = self._session.__aiter__()
        try:
            while True:
                try:
                    yield self._portal.call(events.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(events.aclose)


class SyncAudio:
    """The blocking twin of ``session.audio``."""

    def __init__(self, session: RealtimeSession, portal: BlockingPortal) -> None:
        self._audio = session.audio
        self._portal = portal

    def send(self, pcm16: bytes) -> None:
        self._portal.call(self._audio.send, pcm16)

    def commit(self) -> None:
        self._portal.call(self._audio.commit)

    def clear(self) -> None:
        self._portal.call(self._audio.clear)

    def played(self, item_id: str, played_ms: int) -> None:
        self._audio.played(item_id, played_ms)


@contextmanager
def connect_sync(agent: Agent, **options: Any) -> Iterator[SyncSession]:
    """Open a session for ``agent`` from synchronous code; options as for ``connect``."""
    try:
        with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            connect(agent, **options)
        ) as session:
            yield SyncSession(session, portal)
    except BaseException as exc:
        error = first_error(exc)
        if error is exc:
            raise
        raise error from None
