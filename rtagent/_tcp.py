"""TCP connections for the transport: anyio's, or on an asyncio loop a leaner stream.

anyio's asyncio ``SocketStream`` pays on every call for guarantees a WebSocket does not
need: each ``send`` waits for the bytes to reach the kernel and then yields to the event
loop (a full loop pass: the task queues behind every ready one), and each ``receive``
resumes and pauses the transport's reading (two ``epoll_ctl`` system calls). With
hundreds of sessions, or an audio chunk every 20 ms per session, that was a large part of
the client's CPU time, and one more loop pass in every tool turn.

:class:`LoopTCPStream` is the same byte stream over the event loop's own transport and a
protocol object, as websockets' asyncio connections do it: the transport keeps reading
(it pauses only while a megabyte waits unread), ``receive`` returns a waiting chunk at
once, and ``send`` hands the bytes to the transport and waits only while its buffer is
over the high-water mark. It is used when the backend's native event loop offers
asyncio's ``create_connection`` with happy eyeballs (as ``anyio.connect_tcp`` connects);
otherwise (trio, uvloop) :func:`connect_tcp` is ``anyio.connect_tcp``. The loop is reached through anyio's token, so nothing here depends
on one backend: the code paths are chosen by what the running loop can do.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["LoopTCPStream", "connect_tcp", "loop_clock"]

# Reading pauses while this much waits unread (a 15 MiB audio event still arrives whole,
# in several receives), and resumes below a quarter of it.
_READ_HIGH = 2**20
_READ_LOW = _READ_HIGH // 4
_HAPPY_EYEBALLS_DELAY = 0.25  # seconds, as anyio.connect_tcp


class _Transport(Protocol):
    """What this module uses of an event loop's stream transport."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...


async def connect_tcp(host: str, port: int) -> anyio.abc.ByteStream:
    """Open a TCP connection (``OSError`` when it cannot be made)."""
    loop = anyio.lowlevel.current_token().native_token
    create_connection = getattr(loop, "create_connection", None)
    if create_connection is None or not _has_happy_eyeballs(create_connection):
        return await anyio.connect_tcp(host, port)  # trio, uvloop: anyio's own stream
    transport, protocol = await create_connection(
        lambda: _StreamProtocol(loop), host, port, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY
    )
    return LoopTCPStream(transport, protocol)


def loop_clock() -> Callable[[], float]:
    """The event loop's clock, as ``anyio.current_time()`` reads it, for frequent reads.

    ``anyio.current_time()`` looks the backend up on every call (about a microsecond); an
    asyncio loop's ``time()`` is the same clock, read directly. Call on the event loop.
    """
    clock = getattr(anyio.lowlevel.current_token().native_token, "time", None)
    return clock if callable(clock) else anyio.current_time


def _has_happy_eyeballs(create_connection: Any) -> bool:
    try:
        return "happy_eyeballs_delay" in inspect.signature(create_connection).parameters
    except (TypeError, ValueError):  # a compiled loop's method may not say
        return False


class _StreamProtocol:
    """The transport's protocol: buffers what arrives, wakes the one reader and one writer."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self.transport: _Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.eof = False
        self.lost = False
        self.exception: Exception | None = None
        self.writing_paused = False
        """The transport's write buffer is over its high-water mark."""
        self.reader: Any = None
        self.writer: Any = None
        """The futures of the reader and the writer, while they wait."""

    def connection_made(self, transport: _Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_HIGH and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self.wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self.wake_reader()
        return True  # keep the transport open: we may still be writing (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exception = exc
        self.wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self.writer)
        self.writer = None

    def wait_for_data(self) -> Any:
        self.reader = self._loop.create_future()
        return self.reader

    def wait_for_drain(self) -> Any:
        self.writer = self._loop.create_future()
        return self.writer

    def wake_reader(self) -> None:
        _wake(self.reader)
        self.reader = None


def _wake(future: Any) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class LoopTCPStream(anyio.abc.ByteStream):
    """A TCP byte stream over an event loop's transport, for one reader and one writer at a time.

    Unlike anyio's streams, ``receive`` and ``send`` are not checkpoints when they need not
    wait: the WebSocket above reaches the event loop through its own reads.
    """

    def __init__(self, transport: _Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        while not protocol.chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.exception is not None:
                raise anyio.BrokenResourceError from protocol.exception
            if protocol.eof or protocol.lost:
                raise anyio.EndOfStream
            await protocol.wait_for_data()
        chunk = protocol.chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            protocol.chunks.appendleft(rest)
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered < _READ_LOW:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.exception
        self._transport.write(item)
        # While the peer reads slower than we write, wait for the buffer to drain. The
        # bytes are the transport's already, so a cancellation here loses none of them.
        while protocol.writing_paused and not protocol.lost:
            await protocol.wait_for_drain()
        if protocol.lost:
            raise anyio.BrokenResourceError from protocol.exception

    async def send_eof(self) -> None:
        if not self._transport.is_closing():
            self._transport.write_eof()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._transport.get_write_buffer_size():
            self._transport.abort()  # the peer stopped reading: do not wait for it
        else:
            self._transport.close()
        self._protocol.wake_reader()
        await anyio.lowlevel.checkpoint()
