"""The inspector's web server: a static page on 127.0.0.1 fed over a WebSocket.

``GET /`` serves the page (HTML, JS and CSS shipped in the package); the page opens a
WebSocket at ``/feed`` and receives every record so far, then each new one as it
happens. ``GET /records.json`` returns the records so far, for scripts.

The records come from :meth:`Inspector.follow` (a chat's session: its own ``async for
event in session`` in its own task, so a slow or failing page never slows or breaks the
chat) or :meth:`Inspector.watch_server` (the local server's connection records, read and
never modified). Records are kept in a bounded history; a page that falls too far
behind is disconnected and reloads the history when it reconnects.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import RTAgentError, TransportError
from .._transport import WebSocket

# The local server's small HTTP/WebSocket server (anyio, already in the package) serves the
# page too: rtagent.local's only private module used outside it, on purpose (no new dependency).
from ..local._http import HttpRequest, HttpResponse, serve
from .feed import Tracker

if TYPE_CHECKING:
    from .._runtime import RealtimeSession
    from ..local import ConnectionRecord, LocalRealtimeServer

__all__ = ["Inspector", "open_inspector"]

logger = logging.getLogger("rtagent.inspect")

HISTORY = 20_000
"""Records kept for pages that connect later."""
_PAGE_BUFFER = 2_000
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/inspector.js": ("inspector.js", "text/javascript; charset=utf-8"),
    "/inspector.css": ("inspector.css", "text/css; charset=utf-8"),
}


class Inspector:
    """Collects records and serves them to pages. Create it with :func:`open_inspector`.

    Attributes:
        title: Shown in the page's header.
        url: The page's address, once serving.
    """

    def __init__(self, title: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.title = title
        self.url = ""
        self.records: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._clock = clock
        self._start = clock()
        self._seq = 0
        self._pages: list[MemoryObjectSendStream[dict[str, Any]]] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._session_tracker = Tracker("session")

    # -- records -------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the inspector started."""
        return self._clock() - self._start

    def publish(self, record: dict[str, Any]) -> None:
        """Number a record, keep it, and send it to every page (never blocks)."""
        self._seq += 1
        record["seq"] = self._seq
        self.records.append(record)
        for page in tuple(self._pages):
            try:
                page.send_nowait(record)
            except anyio.WouldBlock:
                page.close()  # too far behind: the page reconnects and reloads the history
                self._pages.remove(page)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._pages.remove(page)

    def connecting(self, where: str) -> None:
        """Record that the chat is connecting (before the session exists)."""
        self.publish(self._session_tracker.connection(self.now(), "connecting", where))

    # -- sources -------------------------------------------------------------------------

    async def follow(self, session: RealtimeSession) -> None:
        """Start showing ``session``'s events, in a task of the inspector's own."""
        assert self._tg is not None, "use the inspector inside open_inspector()"
        self.publish(self._session_tracker.connection(self.now(), "open", "session ready"))
        # Subscribe now, in this task, so no event between here and the task's start is lost.
        events = session.__aiter__()
        self._tg.start_soon(self._follow, events, name="rtagent inspector follow")

    async def _follow(self, events: AsyncIterator[Any]) -> None:
        tracker = self._session_tracker
        try:
            async for event in events:
                t = self.now()
                try:
                    for record in _records_for(tracker, t, event):
                        self.publish(record)
                except Exception:  # a page's view must never break the chat
                    logger.exception("inspector: could not show a %s event", getattr(event, "type", "?"))
        except RTAgentError as exc:
            self.publish(tracker.connection(self.now(), "closed", str(exc)))
            return
        self.publish(tracker.connection(self.now(), "closed", "session ended"))

    async def watch_server(self, server: LocalRealtimeServer) -> None:
        """Show every connection of ``server`` as it happens; runs until cancelled."""
        seen: dict[int, tuple[int, int, bool]] = {}
        trackers: dict[int, Tracker] = {}

        def changed(record: ConnectionRecord) -> bool:
            state = (len(record.received), len(record.sent), record.closed.is_set())
            return seen.get(record.index) != state

        while True:
            try:
                await server.wait_for(changed, timeout=3600)
            except TimeoutError:
                continue
            for record in list(server.connections):
                self._catch_up(record, seen, trackers)

    def _catch_up(
        self, record: ConnectionRecord, seen: dict[int, tuple[int, int, bool]], trackers: dict[int, Tracker]
    ) -> None:
        t = self.now()
        received, sent, closed = seen.get(record.index, (0, 0, False))
        tracker = trackers.get(record.index)
        if tracker is None:
            tracker = trackers[record.index] = Tracker(f"connection {record.index}", derive_tools=True)
            # The path and query only: the headers carry the client's key.
            self.publish(tracker.connection(t, "open", urlsplit(record.path).path + _query(record)))
        # Both logs only grow (their oldest entries may be dropped); interleave what is new by order of arrival as well as we can:
        # the client's events first (they caused the server's).
        for event in record.received.since(received):
            for item in tracker.client_event(t, event):
                self.publish(item)
        for event in record.sent.since(sent):
            for item in tracker.server_event(t, event):
                self.publish(item)
        if record.closed.is_set() and not closed:
            self.publish(tracker.connection(t, "closed", "connection ended"))
        seen[record.index] = (record.received.total, record.sent.total, record.closed.is_set())

    # -- pages ---------------------------------------------------------------------------

    async def _http(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.path).path
        if request.method != "GET":
            return HttpResponse(405, b"only GET", (("Content-Type", "text/plain"),))
        if path == "/records.json":
            body = json.dumps({"title": self.title, "records": list(self.records)}).encode()
            return HttpResponse(200, body, (("Content-Type", "application/json"), ("Cache-Control", "no-store")))
        static = _STATIC.get(path)
        if static is None:
            return HttpResponse(404, b"not found", (("Content-Type", "text/plain"),))
        name, content_type = static
        body = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        return HttpResponse(200, body, (("Content-Type", content_type), ("Cache-Control", "no-store")))

    def _upgrade(self, request: HttpRequest) -> HttpResponse | None:
        if urlsplit(request.path).path != "/feed":
            return HttpResponse(404, b"not found", (("Content-Type", "text/plain"),))
        return None

    async def _page(self, ws: WebSocket) -> None:
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](_PAGE_BUFFER)
        history = list(self.records)
        self._pages.append(send)
        try:
            await ws.send(json.dumps({"kind": "hello", "title": self.title, "records": history}))
            async with receive:
                async for record in receive:
                    batch = [record]
                    while len(batch) < 500:
                        try:
                            batch.append(receive.receive_nowait())
                        except anyio.WouldBlock:
                            break
                    await ws.send(json.dumps({"kind": "records", "records": batch}))
        except TransportError:
            return  # the page went away
        finally:
            if send in self._pages:
                self._pages.remove(send)
            send.close()

    async def _serve(self, port: int, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        await serve(self._page, "127.0.0.1", port, process_request=self._upgrade,
                    http_handler=self._http, task_status=task_status)


@asynccontextmanager
async def open_inspector(*, port: int = 0, title: str = "rtagent") -> AsyncIterator[Inspector]:
    """Serve the inspector page on 127.0.0.1 while the block runs.

    Args:
        port: The TCP port (0 picks a free one).
        title: Shown in the page's header.

    Raises:
        TransportError: The port cannot be bound.
    """
    inspector = Inspector(title)
    async with anyio.create_task_group() as tg:
        bound = await tg.start(inspector._serve, port)
        inspector.url = f"http://127.0.0.1:{bound}/"
        inspector._tg = tg
        try:
            yield inspector
        finally:
            inspector._tg = None
            tg.cancel_scope.cancel()


def _records_for(tracker: Tracker, t: float, event: Any) -> list[dict[str, Any]]:
    kind = str(getattr(event, "type", ""))
    if kind.startswith("rtagent."):
        return tracker.notice(t, event)
    data = getattr(event, "data", None) if type(event).__name__ == "UnknownServerEvent" else None
    payload = data if isinstance(data, dict) else event.model_dump(mode="json", exclude_none=True)
    return tracker.server_event(t, payload)


def _query(record: ConnectionRecord) -> str:
    model = record.query.get("model")
    return f" (model {model})" if model else ""
