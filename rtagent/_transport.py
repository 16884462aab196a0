"""WebSocket transport over anyio, driven by websockets' sans-I/O protocol objects.

websockets parses and serialises frames (``ClientProtocol`` / ``ServerProtocol``);
this module moves the bytes over an anyio byte stream (TCP, optionally TLS) so it
runs on asyncio and trio alike.

Design notes:

* ``recv()`` drives the protocol inline: with no parsed message pending, the task
  that calls it reads the socket, feeds the protocol, flushes automatic replies
  (pongs, close echoes) and returns the next message. There is no background
  reader task and no per-message task hop.
* Whoever needs data reads: ``recv()`` or ``aclose()`` waiting for the close echo.
  If a read is already in progress, the other waits for it to finish its chunk
  instead of reading concurrently.
* Writes go through one lock, so a frame is encoded and written atomically and
  ``send_many()`` puts several frames in a single write.
* Keepalive never reads: it sends a ping and waits for the reader to see the pong
  (an event set while frames are handled). A connection is kept alive by its owner
  reading it, as websockets' own connections are.
* ``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` are honoured as websockets and the
  ``openai`` package do, through an HTTP ``CONNECT`` tunnel (see ``_proxy.py``).
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.tls import TLSStream
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.exceptions import ProtocolError as WSProtocolError
from websockets.frames import OK_CLOSE_CODES, Close, CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from ._errors import (
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    KeepaliveTimeout,
    TransportError,
)
from ._proxy import describe, open_tunnel, proxy_for
from ._redact import RedactingLogger

__all__ = ["RECV_SIZE", "STREAM_ERRORS", "WebSocket", "WebSocketConfig", "connect"]

logger = logging.getLogger("rtagent.transport")
# websockets logs every handshake header at DEBUG: hand it a logger that redacts credentials.
_PROTOCOL_LOGGER = RedactingLogger(logging.getLogger("rtagent.transport.protocol"))

USER_AGENT = "rtagent/0.1"
"""Sent as ``User-Agent`` on the upgrade request unless the caller sets one."""

# asyncio's transports read up to 256 KiB per recv(); asking anyio for the same
# amount avoids slicing (copying) its buffered chunks for large audio events.
RECV_SIZE = 2**18

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONT = Opcode.CONT
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE
_OPEN = State.OPEN
_CLOSED = State.CLOSED

# Seconds to wait for the peer to end the TCP stream once both close frames are exchanged.
_EOF_GRACE = 0.25

# Stream failures that mean "the peer is gone" rather than a bug.
STREAM_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """Protocol knobs shared by client and server connections."""

    max_size: int = 32 * 2**20
    """Largest incoming message in bytes (audio events may be 15 MiB); bigger ones close with 1009."""
    ping_interval: float | None = 20.0
    """Seconds between keepalive pings; None disables keepalive."""
    ping_timeout: float | None = 20.0
    """Seconds to wait for the pong before giving up with KeepaliveTimeout."""
    open_timeout: float = 10.0
    """Deadline for TCP connect + TLS + HTTP upgrade (and, server side, for the request head)."""
    close_timeout: float = 5.0
    """Deadline for the close handshake."""
    proxy: str | bool = True
    """Client side: True follows ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``; a URL
    (``http://user:pass@host:3128``) forces that proxy; False connects directly."""

    def __repr__(self) -> str:
        proxy = describe(self.proxy) if isinstance(self.proxy, str) else self.proxy
        return (
            f"WebSocketConfig(max_size={self.max_size}, ping_interval={self.ping_interval}, "
            f"ping_timeout={self.ping_timeout}, open_timeout={self.open_timeout}, "
            f"close_timeout={self.close_timeout}, proxy={proxy!r})"
        )


class WebSocket:
    """One open WebSocket connection (client or server side) over an anyio byte stream.

    Driven by websockets' sans-I/O ``ClientProtocol`` / ``ServerProtocol``. Create
    it with :func:`connect` or receive it in a :func:`serve` handler.

    Attributes:
        request: Server side: the upgrade request (path incl. query, headers).
        response: Client side: the ``101 Switching Protocols`` response.
        close_code: Close code once the connection closed (None: no close frame).
        close_reason: Close reason once the connection closed.
        message_at: Event-loop time (``anyio.current_time()``) at which the last data
            message arrived; control frames (pongs) do not count.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        protocol: ClientProtocol | ServerProtocol,
        config: WebSocketConfig,
        *,
        request: Request | None = None,
        response: Response | None = None,
    ) -> None:
        self.request: Request | None = request
        self.response: Response | None = response
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.message_at = 0.0
        self._stream = stream
        self._protocol = protocol
        self._config = config
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._messages: deque[str | bytes] = deque()
        # Reassembly of fragmented messages (websockets hands us raw frames).
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._fragments_text = False
        # Set once: what recv() raises after the pending messages are drained.
        self._error: TransportError | None = None
        self._reading = False
        self._read_done: anyio.Event | None = None
        self._stream_closed = False
        self._close_started = False
        self._ping_count = 0
        self._ping_payload: bytes | None = None
        self._pong: anyio.Event | None = None

    # Receiving

    async def recv(self) -> str | bytes:
        """Return the next data message (text as str, binary as bytes).

        Raises:
            ConnectionClosed: The connection closed; ``code`` is None when the peer
                vanished without a close frame.
            KeepaliveTimeout: Keepalive pings went unanswered.
        """
        messages = self._messages
        while True:
            if messages:
                return messages.popleft()
            if self._error is not None:
                raise self._error.with_traceback(None)
            await self._receive_some()

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """Next message; stops at a clean close (1000, 1001, 1005), raises otherwise."""
        try:
            return await self.recv()
        except ConnectionClosed as exc:
            if exc.code in OK_CLOSE_CODES:
                raise StopAsyncIteration from None
            raise

    async def _receive_some(self) -> None:
        """Read and process one chunk, or wait for the task already reading to do so."""
        if self._reading:
            if self._read_done is None:
                self._read_done = anyio.Event()
            await self._read_done.wait()
            return
        self._reading = True
        try:
            protocol = self._protocol
            try:
                data = await self._stream.receive(RECV_SIZE)
            except anyio.EndOfStream:
                self._receive_eof(None)
            except STREAM_ERRORS as exc:
                self._receive_eof(exc)
            else:
                pending = len(self._messages)
                protocol.receive_data(data)
                self._handle_events(protocol.events_received())
                if len(self._messages) > pending:
                    self.message_at = anyio.current_time()  # once per read, not per frame
            # Automatic replies (pong, close echo, EOF). If a send holds the lock,
            # it flushes them when its write completes: waiting for it here could
            # deadlock when both peers are blocked writing and nobody reads.
            if protocol.writes and not self._send_lock.locked():
                try:
                    async with self._send_lock:
                        await self._flush()
                except TransportError:
                    pass  # the error is recorded; recv() reports it
        finally:
            self._reading = False
            done = self._read_done
            if done is not None:
                self._read_done = None
                done.set()

    def _handle_events(self, events: list[Event]) -> None:
        """Turn frames into messages and bookkeeping; no I/O."""
        messages = self._messages
        for frame in events:
            assert isinstance(frame, Frame)
            opcode = frame.opcode
            if opcode is _TEXT:
                if frame.fin:
                    try:
                        messages.append(str(frame.data, "utf-8"))
                    except UnicodeDecodeError:
                        self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in text frame")
                        return
                else:
                    self._fragments = [frame.data]
                    self._fragments_text = True
            elif opcode is _CONT:
                self._fragments.append(frame.data)
                if frame.fin:
                    data = b"".join(self._fragments)
                    self._fragments = []
                    if self._fragments_text:
                        try:
                            messages.append(data.decode())
                        except UnicodeDecodeError:
                            self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in text message")
                            return
                    else:
                        messages.append(data)
            elif opcode is _BINARY:
                if frame.fin:
                    messages.append(bytes(frame.data))
                else:
                    self._fragments = [frame.data]
                    self._fragments_text = False
            elif opcode is _PONG:
                if self._pong is not None and frame.data == self._ping_payload:
                    self._pong.set()
            elif opcode is _CLOSE:
                self._set_closed_error(None)
            # Pings are answered by the protocol itself (see data_to_send()).
        if self._error is None and self._protocol.parser_exc is not None:
            # The protocol failed the connection (1009 too big, 1002 protocol error...).
            self._set_closed_error(None)

    def _receive_eof(self, cause: BaseException | None) -> None:
        """Record the end of the byte stream (EOF, reset, or our own stream close)."""
        self._protocol.receive_eof()
        self._protocol.events_received()  # nothing useful after the handshake
        self._set_closed_error(cause)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection from our side (sends a close frame when still open)."""
        self._protocol.fail(code, reason)
        if self._error is None:
            self.close_code, self.close_reason = code, reason
            self._error = ConnectionClosed(code, reason)

    def _set_closed_error(self, cause: BaseException | None) -> None:
        """Derive ConnectionClosed from the protocol state, once."""
        if self._error is not None:
            return
        protocol = self._protocol
        code: int | None = None
        reason = ""
        if protocol.close_rcvd is not None:
            code, reason = protocol.close_rcvd.code, protocol.close_rcvd.reason
        elif protocol.close_sent is not None and (
            self._close_started
            or (protocol.parser_exc is not None and not isinstance(protocol.parser_exc, EOFError))
        ):
            # We closed or failed the connection (e.g. 1009) and got no echo.
            code, reason = protocol.close_sent.code, protocol.close_sent.reason
        error = ConnectionClosed(code, reason)
        error.__cause__ = cause if cause is not None else protocol.parser_exc
        self.close_code, self.close_reason = code, reason
        self._error = error

    # Sending

    async def send(self, message: str) -> None:
        """Send one text frame.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            KeepaliveTimeout: The connection was declared dead by keepalive.
        """
        await self.send_many((message,))

    async def send_many(self, messages: Sequence[str]) -> None:
        """Send several text frames in one write (batching saves syscalls)."""
        if not messages:
            return
        waited = self._send_lock.locked()
        async with self._send_lock:
            protocol = self._protocol
            if protocol.state is not _OPEN or self._error is not None:
                raise self._send_error()
            if waited:
                # A cancellation that arrives during the write drops the connection (see
                # _write); one already pending must not. Taking a free lock checked for one
                # already; after waiting for the lock, check again.
                await anyio.lowlevel.checkpoint_if_cancelled()
            for message in messages:
                protocol.send_text(message.encode())
            await self._flush()

    def _send_error(self) -> TransportError:
        if self._error is None:
            # We started the close handshake: the error is known only once it ends.
            close = self._protocol.close_sent
            return ConnectionClosed(close.code if close else None, close.reason if close else "")
        return self._error.with_traceback(None)

    async def _flush(self) -> None:
        """Write all queued protocol output; the caller holds the send lock.

        Loops because the reader may queue replies while a write is in progress.

        Raises:
            TransportError: The stream failed; the connection is then dead.
        """
        protocol = self._protocol
        while protocol.writes:
            await self._write(protocol.data_to_send())

    async def _write(self, chunks: list[bytes]) -> None:
        """Write chunks in one stream.send(); the caller holds the send lock."""
        eof = chunks[-1] == b""  # SEND_EOF can only come last
        if eof:
            chunks = chunks[:-1]
        if chunks:
            if self._stream_closed:
                raise self._send_error()
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            try:
                await self._stream.send(data)
            except STREAM_ERRORS as exc:
                self._protocol.receive_eof()
                self._set_closed_error(exc)
                raise self._send_error() from exc
            except BaseException:
                # Cancelled mid-write: part of a frame may be on the wire, so the
                # byte stream can no longer be trusted.
                self._protocol.receive_eof()
                self._set_closed_error(None)
                await self._close_stream(force=True)
                raise
        if eof and not self._stream_closed:
            try:
                await self._stream.send_eof()
            except (NotImplementedError, *STREAM_ERRORS):
                await self._close_stream()  # TLS cannot half-close

    # Keepalive

    async def _keepalive(self) -> None:
        """Ping every ping_interval; fail the connection when a pong is late.

        The pong is noticed by whoever reads the connection; this task never reads.
        """
        interval = self._config.ping_interval
        timeout = self._config.ping_timeout
        if interval is None:
            return
        protocol = self._protocol
        while True:
            await anyio.sleep(interval)
            if self._error is not None or protocol.state is not _OPEN:
                return
            self._ping_count += 1
            self._ping_payload = b"rtk%d" % self._ping_count
            pong = self._pong = anyio.Event()
            try:
                async with self._send_lock:
                    if protocol.state is not _OPEN:
                        return
                    protocol.send_ping(self._ping_payload)
                    await self._flush()
            except TransportError:
                return
            if timeout is None:
                continue
            with anyio.move_on_after(timeout):
                await pong.wait()
            if not pong.is_set():
                if self._is_failed():
                    return  # closed meanwhile; recv() reports why
                logger.warning("no pong within %.3gs; dropping the connection", timeout)
                self._error = KeepaliveTimeout(f"no pong received within {timeout}s")
                await self._close_stream(force=True)
                return

    def _is_failed(self) -> bool:
        # A method, so mypy does not keep a narrowing of _error across awaits.
        return self._error is not None

    # Closing

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake, bounded by close_timeout; shielded and idempotent.

        Raises:
            ValueError: ``code`` is not a valid close code to send.
        """
        try:
            Close(code, reason).check()
        except WSProtocolError as exc:
            raise ValueError(f"invalid close code {code}") from exc
        if len(reason.encode()) > 123:  # a control frame carries at most 125 bytes
            raise ValueError("close reason longer than 123 bytes")
        if self._close_started:
            return
        self._close_started = True
        protocol = self._protocol
        with anyio.CancelScope(shield=True):
            try:
                with anyio.move_on_after(self._config.close_timeout):
                    if self._error is None and protocol.state is _OPEN:
                        async with self._send_lock:
                            if protocol.state is _OPEN:
                                protocol.send_close(code, reason)
                                await self._flush()
                    # Wait for the peer's close frame, then briefly for its EOF: a peer
                    # that sends its close frame but keeps the TCP stream open must not
                    # hold a reconnect for the whole close timeout (RFC 6455 §7.1.1 lets
                    # the client close the stream itself).
                    while (
                        protocol.close_rcvd is None
                        and protocol.state is not _CLOSED
                        and not self._stream_closed
                    ):
                        await self._receive_some()
                    with anyio.move_on_after(_EOF_GRACE):
                        while protocol.state is not _CLOSED and not self._stream_closed:
                            await self._receive_some()
            except TransportError:
                pass
            except Exception:
                logger.debug("error during close handshake", exc_info=True)
            finally:
                self._set_closed_error(None)
                await self._close_stream()

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (fault injection)."""
        self._close_started = True
        self._protocol.receive_eof()
        self._set_closed_error(None)
        await self._close_stream(force=True)

    async def _close_stream(self, *, force: bool = False) -> None:
        if self._stream_closed:
            return
        self._stream_closed = True
        if force:
            await anyio.aclose_forcefully(self._stream)
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._stream.aclose()
            except Exception:
                logger.debug("error closing stream", exc_info=True)


# Client


@asynccontextmanager
async def connect(
    url: str,
    *,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    config: WebSocketConfig = WebSocketConfig(),
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[WebSocket]:
    """Open a ws:// or wss:// connection; close it cleanly on exit.

    Owns a task group for the keepalive ping task. On exit the close handshake
    runs shielded and bounded by ``config.close_timeout``.

    Args:
        url: ``ws://`` or ``wss://`` URL, including the query string.
        headers: Extra handshake headers (e.g. ``Authorization``).
        config: Protocol knobs.
        ssl_context: TLS settings for wss://; the default context when None.

    Raises:
        HandshakeError: The server answered the upgrade with a non-101 status.
        TransportError: DNS, refused connection, TLS failure, or open_timeout.
        ConfigurationError: ``url`` is not a WebSocket URL.
    """
    ws = await _open_connection(url, headers, config, ssl_context)
    body_exc: Exception | None = None
    async with anyio.create_task_group() as tg:
        if config.ping_interval is not None:
            tg.start_soon(ws._keepalive, name="rtagent keepalive")
        try:
            yield ws
        except Exception as exc:
            # Re-raised below so it escapes unwrapped by the task group.
            body_exc = exc
        finally:
            await ws.aclose()
            tg.cancel_scope.cancel()
    if body_exc is not None:
        raise body_exc


async def _open_connection(
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    config: WebSocketConfig,
    ssl_context: ssl.SSLContext | None,
) -> WebSocket:
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise ConfigurationError(f"not a WebSocket URL: {url!r}") from exc
    protocol = ClientProtocol(uri, max_size=config.max_size, logger=_PROTOCOL_LOGGER)
    request = protocol.connect()
    items = headers.items() if isinstance(headers, Mapping) else headers
    user_agent = False
    for name, value in items:
        if any(c in name or c in value for c in "\r\n\0"):
            # Typically an API key read with its trailing newline; never echo the value.
            raise ConfigurationError(f"header {name!r} contains a line break or NUL")
        request.headers[name] = value
        user_agent = user_agent or name.lower() == "user-agent"
    if not user_agent:
        request.headers["User-Agent"] = USER_AGENT
    protocol.send_request(request)

    where = f"{uri.host}:{uri.port}"
    stream: anyio.abc.ByteStream | None = None
    try:
        with anyio.fail_after(config.open_timeout):
            stream = await _open_stream(uri.host, uri.port, uri.secure, config, ssl_context)
            await stream.send(b"".join(protocol.data_to_send()))
            response, leftovers = await _receive_response(stream, protocol, where)
        if response.status_code != 101:
            raise HandshakeError(
                response.status_code, bytes(response.body), dict(response.headers.raw_items())
            )
        if protocol.handshake_exc is not None:
            raise TransportError(
                f"invalid handshake response from {where}: {protocol.handshake_exc}"
            ) from protocol.handshake_exc
        ws = WebSocket(stream, protocol, config, response=response)
        ws._handle_events(leftovers)
        if protocol.writes:
            async with ws._send_lock:
                await ws._flush()
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        await _discard(stream)
        raise TransportError(
            f"timed out after {config.open_timeout}s connecting to {where}"
        ) from exc
    except (*STREAM_ERRORS, anyio.EndOfStream) as exc:
        await _discard(stream)
        raise TransportError(f"cannot connect to {where}: {exc}") from exc
    except BaseException:
        await _discard(stream)
        raise
    logger.debug("connected to %s", where)
    return ws


async def _open_stream(
    host: str,
    port: int,
    secure: bool,
    config: WebSocketConfig,
    ssl_context: ssl.SSLContext | None,
) -> anyio.abc.ByteStream:
    """TCP (directly or through a proxy's tunnel), then TLS for wss://."""
    proxy = config.proxy if isinstance(config.proxy, str) else None
    if config.proxy is True:
        proxy = proxy_for(host, secure)
    if proxy is None:
        if secure:
            return await anyio.connect_tcp(
                host, port, tls=True, ssl_context=ssl_context, tls_standard_compatible=False
            )
        return await anyio.connect_tcp(host, port)
    stream = await open_tunnel(proxy, host, port)
    if not secure:
        return stream
    try:
        return await TLSStream.wrap(
            stream,
            hostname=host,
            ssl_context=ssl_context or ssl.create_default_context(),
            standard_compatible=False,
        )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _receive_response(
    stream: anyio.abc.ByteStream, protocol: ClientProtocol, where: str
) -> tuple[Response, list[Event]]:
    """Read until the protocol parsed the handshake response; return it and any frames after it."""
    while True:
        try:
            data = await stream.receive(RECV_SIZE)
        except anyio.EndOfStream:
            protocol.receive_eof()
        else:
            protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            response = events[0]
            assert isinstance(response, Response)
            return response, events[1:]
        if protocol.handshake_exc is not None:
            raise TransportError(
                f"invalid handshake response from {where}: {protocol.handshake_exc}"
            ) from protocol.handshake_exc
        if protocol.reader.eof:
            raise TransportError(f"{where} closed the connection during the handshake")


async def _discard(stream: anyio.abc.ByteStream | None) -> None:
    if stream is not None:
        await anyio.aclose_forcefully(stream)
