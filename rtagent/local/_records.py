"""What the server remembers of its connections, for tests and the inspector, bounded.

A :class:`ConnectionRecord` keeps what one connection received and sent. Each of its logs
keeps its newest 100,000 entries and 32 MiB of frames (the oldest are dropped in blocks,
and counted), and the server keeps whole records only for its 64 most recent connections:
older ones, once closed, keep their index, path and headers (:meth:`ConnectionRecord.prune`).
A server that runs for days, or a client that sends huge frames and leaves, costs a bounded
amount of memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .._redact import redact_headers

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["KEEP_RECORDS", "BoundedLog", "ConnectionRecord", "prune_closed"]

T = TypeVar("T")

MAX_ENTRIES = 100_000
MAX_BYTES = 32 * 1024 * 1024
KEEP_RECORDS = 64
"""Connections whose records stay whole; older closed ones are pruned."""


class BoundedLog(list[T], Generic[T]):
    """A list that keeps only its newest entries: past ``max_entries`` entries or
    ``max_bytes`` of frames, the oldest quarter goes (``dropped`` counts them)."""

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        super().__init__()
        self.max_entries = MAX_ENTRIES if max_entries is None else max_entries
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.dropped = 0
        """Entries dropped from the front so far."""
        self._sizes: list[int] = []
        self._bytes = 0

    def add(self, entry: T, size: int = 0) -> None:
        """Append ``entry`` (``size``: its frame's length, counted against ``max_bytes``)."""
        self.append(entry)
        self._sizes.append(size)
        self._bytes += size
        if len(self) > self.max_entries or self._bytes > self.max_bytes:
            self._trim()

    def since(self, position: int) -> list[T]:
        """Entries from the absolute ``position`` on (entries dropped since are skipped)."""
        return self[max(0, position - self.dropped):]

    @property
    def total(self) -> int:
        """Entries ever added (kept and dropped)."""
        return self.dropped + len(self)

    def clear(self) -> None:
        self.dropped += len(self)
        super().clear()
        self._sizes.clear()
        self._bytes = 0

    def _trim(self) -> None:
        keep_entries, keep_bytes = self.max_entries * 3 // 4, self.max_bytes * 3 // 4
        cut = 0
        while cut < len(self._sizes) and (
            len(self) - cut > keep_entries or self._bytes > keep_bytes
        ):
            self._bytes -= self._sizes[cut]
            cut += 1
        del self[:cut]
        del self._sizes[:cut]
        self.dropped += cut


@dataclass(eq=False)
class ConnectionRecord:
    """What happened on one WebSocket connection, for assertions in tests.

    Attributes:
        index: 0-based connection number on this server.
        path: request path including the query string.
        headers: upgrade request headers (lower-case names).
        query: query parameters of the upgrade request.
        received: client events as parsed JSON objects, in order (invalid ones included
            as parsed; frames that are not JSON objects only appear in ``raw_received``).
        sent: server events sent, in order (injected raw frames excluded).
        raw_received: every data frame received, verbatim.
        closed: set when the connection has ended.
        engine: the connection's engine (session, conversation items) once started.
        pruned: the events and the engine were let go (an old, closed connection).

    Each log keeps its newest entries (see the module): ``received.dropped`` says how
    many went.
    """

    index: int
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    received: BoundedLog[dict[str, Any]] = field(default_factory=BoundedLog)
    sent: BoundedLog[dict[str, Any]] = field(default_factory=BoundedLog)
    raw_received: BoundedLog[str | bytes] = field(default_factory=BoundedLog)
    closed: anyio.Event = field(default_factory=anyio.Event)
    engine: Engine | None = None
    pruned: bool = False

    def __repr__(self) -> str:
        # The headers carry the client's key: never show them.
        return (
            f"ConnectionRecord(index={self.index}, path={self.path!r}, "
            f"headers={redact_headers(self.headers)!r}, received={self.received.total} events, "
            f"sent={self.sent.total} events, closed={self.closed.is_set()})"
        )

    def sent_types(self) -> list[str]:
        """Types of the server events sent so far."""
        return [str(e.get("type")) for e in self.sent]

    def received_types(self) -> list[str]:
        """Types of the parsed client events received so far."""
        return [str(e.get("type")) for e in self.received]

    def prune(self) -> None:
        """Let go of the events and the engine (the record of an old, closed connection)."""
        self.received.clear()
        self.sent.clear()
        self.raw_received.clear()
        self.engine = None
        self.pruned = True


def prune_closed(records: list[ConnectionRecord], start: int, keep: int = KEEP_RECORDS) -> int:
    """Prune closed records older than the ``keep`` newest, from ``start`` on; returns
    where to start next time (the first old record still open stops the walk, so each
    record is looked at about once)."""
    while start < len(records) - keep and records[start].closed.is_set():
        records[start].prune()
        start += 1
    return start
