"""One live WebSocket of the local server: a reader, a single writer, and its faults.

One task reads client frames and feeds the engine; one writer task owns the send
side and streams response events one by one (with a checkpoint between them, so
``response.cancel`` and barge-in land mid-response). A sideband of a call shares the
call's engine with the call's other listeners: the call (a :class:`Hub`) streams its
events to every one of them, and the connection only sends what it is given. Network work
the engine asks for (hosted MCP listings and calls) runs in tasks of the connection's task
group. Faults are applied here, and
everything sent and received is recorded in a :class:`ConnectionRecord`, and logged at
INFO on ``rtagent.local`` (event types and ids only: never a payload, a header or a key).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from .._errors import TransportError
from .._transport import WebSocket
from ._engine import Engine
from ._faults import Faults
from ._hosted_mcp import McpJob, McpResult
from ._records import ConnectionRecord
from ._wire import parse_json

__all__ = ["Connection", "ConnectionRecord", "Hub"]

logger = logging.getLogger("rtagent.local")


class Hub(Protocol):
    """The owner of an engine shared by several connections (a call and its sidebands)."""

    def handled(self, sender: Connection, events: list[dict[str, Any]]) -> None:
        """Route what the engine answered to ``sender``'s client event."""


@dataclass(frozen=True)
class _Close:
    """Writer instruction: close the socket with this code and reason."""

    code: int
    reason: str


class Connection:
    """Reader + single writer for one WebSocket, applying the connection's faults.

    Args:
        ws: the accepted WebSocket.
        engine: the connection's engine (its ``start()`` events are sent first).
        record: where received and sent events are recorded.
        faults: the failures to inject on this connection.
        lifetime: seconds until the session expires.
        notify: called whenever ``record`` changes (wakes ``wait_for``).
        hub: the call whose engine this connection shares (a sideband); it streams the
            engine's events, so this connection only sends what it is given.
    """

    def __init__(
        self,
        ws: WebSocket,
        engine: Engine,
        record: ConnectionRecord,
        faults: Faults,
        lifetime: float,
        notify: Callable[[], None],
        hub: Hub | None = None,
    ) -> None:
        self.notify = notify
        self.hub = hub
        self.ws = ws
        self.engine = engine
        self.record = record
        self.faults = faults
        self.lifetime = lifetime
        self.outbox: deque[dict[str, Any] | _Close] = deque(engine.start())
        self.wake = anyio.Event()
        self.sent_counts: Counter[str] = Counter()
        self.received_counts: Counter[str] = Counter()
        self.scope = anyio.CancelScope()
        self._tg: anyio.abc.TaskGroup | None = None
        self._leaving = False
        """A ``session.close`` arrived: the writer sends what is queued, then closes."""

    async def run(self) -> None:
        """Serve the connection until the client leaves, a fault drops it or it expires."""
        logger.info(
            "connection %d: opened (model %s%s)",
            self.record.index,
            self.record.query.get("model", "-"),
            ", sideband" if self.engine.flavor.sideband else "",
        )
        with self.scope:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                tg.start_soon(self._expire)
                await self._reader()
                if not self._leaving:  # else the writer closes, then cancels
                    tg.cancel_scope.cancel()

    def push(self, events: list[dict[str, Any]]) -> None:
        """Queue server events to send, in order."""
        self.outbox.extend(events)
        self.wake.set()

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        """What the engine answered: sent here, or routed by the call sharing the engine."""
        if self.hub is None:
            self.push(events)
        else:
            self.hub.handled(self, events)

    def close(self, code: int, reason: str) -> None:
        """Close the socket (close frame ``code``) once what is queued has been sent."""
        self.outbox.append(_Close(code, reason))
        self.wake.set()

    async def _abort(self) -> None:
        """Drop the TCP connection without a close frame (fault injection)."""
        logger.info("fault: aborting connection %d", self.record.index)
        await self.ws.abort()
        self.scope.cancel()

    async def _reader(self) -> None:
        try:
            async for message in self.ws:
                size = len(message)
                self.record.raw_received.add(message, size)
                try:
                    parsed = parse_json(message)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    self.record.received.add(parsed, size)
                self.notify()
                if isinstance(parsed, dict) and logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "connection %d: <- %s%s",
                        self.record.index,
                        parsed.get("type"),
                        f" ({parsed['event_id']})" if isinstance(parsed.get("event_id"), str) else "",
                    )
                if self._drop_on_receive(parsed):
                    await self._abort()
                    return
                self._deliver(self.engine.handle_text(message))
                self._start_jobs()
                if self.engine.close_requested:
                    if self.hub is not None:
                        # A shared engine: only this sideband leaves; the call goes on.
                        self.engine.close_requested = False
                    # session.close: what is queued goes out, then a normal close.
                    self._leaving = True
                    self.close(1000, "")
                    return
        except TransportError as exc:
            logger.debug("connection %d ended: %r", self.record.index, exc)
        finally:
            logger.info("connection %d: closed", self.record.index)

    def _start_jobs(self) -> None:
        for job in self.engine.hosted.take_jobs():
            if self._tg is not None:
                self._tg.start_soon(self._run_job, job)

    async def _run_job(self, job: McpJob) -> None:
        try:
            from ._mcp_client import perform  # needs the mcp package: only when it is used
        except ImportError:
            logger.warning("hosted MCP tools need the mcp package: pip install 'rtagent[mcp]'")
            job.result = McpResult(error={
                "type": "http_error", "code": 501,
                "message": "The local server cannot reach MCP servers without the mcp package",
            })
        else:
            job.result = await perform(job)
        self._deliver(job.finished(job))

    def _drop_on_receive(self, event: Any) -> bool:
        wanted = self.faults.drop_after_received
        if wanted is None or not isinstance(event, dict):
            return False
        kinds = {str(event.get("type"))}
        item = event.get("item")
        if (
            event.get("type") == "conversation.item.create"
            and isinstance(item, dict)
            and item.get("type") == "function_call_output"
        ):
            kinds.add("function_call_output")
        if wanted not in kinds:
            return False
        self.received_counts[wanted] += 1
        return self.received_counts[wanted] == self.faults.drop_nth

    async def _expire(self) -> None:
        await anyio.sleep(self.lifetime)
        # The real server ends a session at its maximum duration with this error, then closes.
        self.push([self.engine.session_expired()])
        self.close(1000, "session expired")

    async def _writer(self) -> None:
        try:
            while True:
                if self.outbox:
                    item = self.outbox.popleft()
                else:
                    event = self.engine.next_event() if self.hub is None else None
                    self._start_jobs()
                    if event is None:
                        await self.wake.wait()
                        self.wake = anyio.Event()
                        continue
                    item = event
                if isinstance(item, _Close):
                    await self.ws.aclose(item.code, item.reason)
                    self.scope.cancel()
                    return
                await self._send(item)
                await (
                    anyio.lowlevel.checkpoint()
                )  # let a response.cancel / barge-in land between events
        except TransportError as exc:
            logger.debug("connection %d lost while sending: %r", self.record.index, exc)
            self.scope.cancel()

    async def _send(self, event: dict[str, Any]) -> None:
        kind = str(event["type"])
        pause = self.faults.delay.get(kind)
        if pause:
            await anyio.sleep(pause)
        text = json.dumps(event)
        await self.ws.send(text)
        self.record.sent.add(event, len(text))
        self.notify()
        logger.info("connection %d: -> %s", self.record.index, kind)
        self.sent_counts[kind] += 1
        if self.faults.drop_after_sent == kind and self.sent_counts[kind] == self.faults.drop_nth:
            await self._abort()
            return
        for after, raw in self.faults.inject_after:
            if after == kind:
                await self.ws.send(raw)
        for after, body in self.faults.error_after:
            if after == kind:
                error = self.engine.error_from_body(body)
                text = json.dumps(error)
                await self.ws.send(text)
                self.record.sent.add(error, len(text))
                self.notify()
