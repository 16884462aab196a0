"""The HTTP and WebSocket server under the local Realtime server.

A small HTTP/1.1 server on anyio: WebSocket upgrades go to a handler with a
:class:`~rtagent._transport.WebSocket` driven by websockets' ``ServerProtocol``; other
requests (client secrets, calls) go to a plain HTTP handler. Each connection runs in
its own task, and one failing connection never stops the server.
"""

from __future__ import annotations

import email.utils
import http
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from .._errors import TransportError
from .._redact import RedactingLogger
from .._transport import RECV_SIZE, STREAM_ERRORS, WebSocket, WebSocketConfig
from ._api_error import ApiError

__all__ = ["HttpRequest", "HttpResponse", "serve"]

logger = logging.getLogger("rtagent.local.http")
# websockets logs every request header at DEBUG, a client's key included: redact it.
_PROTOCOL_LOGGER = RedactingLogger(logging.getLogger("rtagent.local.protocol"))

# Bound on the HTTP request head the server buffers before giving up (431).
_MAX_HEAD_SIZE = 2**16


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A plain HTTP request, or the HTTP view of a WebSocket upgrade request."""

    method: str
    path: str
    """Path including the query string, as sent."""
    headers: Mapping[str, str]
    """Case-insensitive header lookups."""
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What ``process_request`` / ``http_handler`` answer with."""

    status: int
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def serve(
    handler: Callable[[WebSocket], Awaitable[None]],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: WebSocketConfig | None = None,
    process_request: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse | None] | None]
    | None = None,
    http_handler: Callable[[HttpRequest], Awaitable[HttpResponse]] | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket (and plain HTTP) connections on ``host`` until cancelled.

    Calls ``task_status.started(port)`` once listening, so port 0 works with
    ``tg.start``. Upgrade requests go through ``process_request`` (an HttpResponse
    rejects the upgrade with that status and body), then ``handler(ws)``; the
    connection is closed cleanly when the handler returns, with 1011 when it
    raises. Other requests go to ``http_handler`` (404 when None). Each connection
    runs in its own task; its failure never stops the server.

    Raises:
        TransportError: The address cannot be bound.
    """
    config = config or WebSocketConfig()
    try:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port}: {exc}") from exc
    async with listener, anyio.create_task_group() as tg:
        bound_port = listener.extra(SocketAttribute.local_port)
        for sub in listener.listeners:
            assert isinstance(sub, anyio.abc.SocketListener)
            tg.start_soon(_accept_loop, sub, tg, handler, config, process_request, http_handler)
        logger.info("serving on %s:%d", host, bound_port)
        task_status.started(bound_port)


async def _accept_loop(
    listener: anyio.abc.SocketListener,
    tg: anyio.abc.TaskGroup,
    handler: Callable[[WebSocket], Awaitable[None]],
    config: WebSocketConfig,
    process_request: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse | None] | None]
    | None,
    http_handler: Callable[[HttpRequest], Awaitable[HttpResponse]] | None,
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:  # e.g. too many open files: back off, keep serving
            logger.warning("accept failed: %s", exc)
            await anyio.sleep(0.1)
            continue
        tg.start_soon(_serve_connection, stream, handler, config, process_request, http_handler)


async def _serve_connection(
    stream: anyio.abc.SocketStream,
    handler: Callable[[WebSocket], Awaitable[None]],
    config: WebSocketConfig,
    process_request: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse | None] | None]
    | None,
    http_handler: Callable[[HttpRequest], Awaitable[HttpResponse]] | None,
) -> None:
    try:
        try:
            with anyio.fail_after(config.open_timeout):
                buffer, head_end = await _read_head(stream)
                method, path, headers = _parse_head(buffer[:head_end])
        except _BadRequest as exc:
            await _send_http(stream, _error_response(exc.status, str(exc)), config)
            return
        upgrade = method == "GET" and any(
            token.strip().lower() == "websocket" for token in headers.get("Upgrade", "").split(",")
        )
        if upgrade:
            await _serve_websocket(stream, buffer, handler, config, process_request)
        else:
            with anyio.fail_after(config.open_timeout):
                body = await _read_body(stream, buffer, head_end, headers, config.max_size)
            request = HttpRequest(method, path, headers, body)
            if http_handler is None:
                response = _error_response(404, f"no route for {method} {path}", "not_found")
            else:
                try:
                    response = await http_handler(request)
                except Exception:
                    logger.exception("http_handler failed for %s %s", method, path)
                    response = _error_response(500, "internal server error", "server_error")
            await _send_http(stream, response, config)
    except (TimeoutError, EOFError, anyio.EndOfStream, *STREAM_ERRORS) as exc:
        logger.debug("connection dropped before it was served: %r", exc)
    except _BadRequest as exc:
        await _send_http(stream, _error_response(exc.status, str(exc)), config)
    except Exception:
        logger.exception("unexpected error serving a connection")
    finally:
        await anyio.aclose_forcefully(stream)


async def _read_head(stream: anyio.abc.ByteStream) -> tuple[bytearray, int]:
    """Buffer bytes until the end of the HTTP head; return the buffer and the head's length."""
    buffer = bytearray()
    start = 0
    while True:
        end = buffer.find(b"\r\n\r\n", start)
        if end >= 0:
            return buffer, end + 4
        if len(buffer) > _MAX_HEAD_SIZE:
            raise _BadRequest(431, "request head too large")
        start = max(0, len(buffer) - 3)
        buffer += await stream.receive(RECV_SIZE)


def _parse_head(head: bytearray) -> tuple[str, str, Headers]:
    try:
        lines = head.decode("iso-8859-1").split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise ValueError(version)
        headers = Headers()
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep or not name or name != name.strip():
                    raise ValueError(line)
                headers[name] = value.strip()
        headers.get("Upgrade")  # multiple values are malformed for our purposes
        headers.get("Content-Length")
    except (ValueError, LookupError) as exc:
        raise _BadRequest(400, "malformed HTTP request") from exc
    return method, path, headers


async def _read_body(
    stream: anyio.abc.ByteStream, buffer: bytearray, head_end: int, headers: Headers, limit: int
) -> bytes:
    if "Transfer-Encoding" in headers:
        raise _BadRequest(411, "send a Content-Length, not a transfer coding")
    raw = headers.get("Content-Length", "0")
    if not raw.isdigit():
        raise _BadRequest(400, "invalid Content-Length")
    length = int(raw)
    if length > limit:
        raise _BadRequest(413, "request body too large")
    body = buffer[head_end:]
    while len(body) < length:
        body += await stream.receive(RECV_SIZE)
    return bytes(body[:length])


async def _serve_websocket(
    stream: anyio.abc.SocketStream,
    buffer: bytearray,
    handler: Callable[[WebSocket], Awaitable[None]],
    config: WebSocketConfig,
    process_request: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse | None] | None]
    | None,
) -> None:
    protocol = ServerProtocol(max_size=config.max_size, logger=_PROTOCOL_LOGGER)
    protocol.receive_data(buffer)
    events = protocol.events_received()
    if not events:
        # websockets rejected the head itself (its answer, if any, is in data_to_send).
        await _send_chunks(stream, protocol.data_to_send(), config)
        return
    request = events[0]
    assert isinstance(request, Request)
    response: Response | None = None
    if process_request is not None:
        try:
            result = process_request(
                # Request.method exists from websockets 17 on; upgrades are GET anyway.
                HttpRequest(getattr(request, "method", "GET"), request.path, request.headers, b"")
            )
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception("process_request failed for %s", request.path)
            result = _error_response(500, "internal server error", "server_error")
        if result is not None:
            response = _to_response(result)
    if response is None:
        response = protocol.accept(request)
    protocol.send_response(response)
    if response.status_code != 101:
        await _send_chunks(stream, protocol.data_to_send(), config)
        return
    ws = WebSocket(stream, protocol, config, request=request)
    async with anyio.create_task_group() as tg:
        if config.ping_interval is not None:
            tg.start_soon(ws._keepalive, name="rtagent keepalive")
        try:
            async with ws._send_lock:
                await ws._flush()
            ws._handle_events(events[1:])
            await handler(ws)
        except TransportError as exc:
            logger.debug("connection ended in handler: %r", exc)
        except anyio.get_cancelled_exc_class():
            await ws.aclose(CloseCode.GOING_AWAY, "server shutting down")
            raise
        except Exception:
            logger.exception("connection handler failed")
            await ws.aclose(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            await ws.aclose()
            tg.cancel_scope.cancel()


async def _send_chunks(
    stream: anyio.abc.SocketStream, chunks: list[bytes], config: WebSocketConfig
) -> None:
    """Write an HTTP answer, half-close, and let the client read it before we close."""
    data = b"".join(chunks)
    try:
        if data:
            await stream.send(data)
        await stream.send_eof()
        # Closing with unread input would send RST and could destroy the answer.
        with anyio.move_on_after(config.close_timeout):
            while True:
                await stream.receive(RECV_SIZE)
    except (anyio.EndOfStream, *STREAM_ERRORS):
        pass


async def _send_http(
    stream: anyio.abc.SocketStream, response: HttpResponse, config: WebSocketConfig
) -> None:
    await _send_chunks(stream, [_to_response(response).serialize()], config)


def _to_response(response: HttpResponse) -> Response:
    try:
        phrase = http.HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(response.body))),
        ]
    )
    for name, value in response.headers:
        if name.lower() not in ("content-length", "connection"):
            headers[name] = value
    return Response(response.status, phrase, headers, response.body)


def _error_response(status: int, message: str, code: str | None = None) -> HttpResponse:
    """An error answered below the API (malformed HTTP, no route, a crashed handler)."""
    return HttpResponse(status, ApiError(code, message).transport_body())
