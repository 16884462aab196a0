"""Wire-level tests of rtagent._transport: real sockets on 127.0.0.1, both backends."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from rtagent._errors import (
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    KeepaliveTimeout,
    TransportError,
)
from rtagent._transport import WebSocket, WebSocketConfig, connect
from rtagent.local._http import HttpRequest, HttpResponse, serve

NO_PING = WebSocketConfig(ping_interval=None)

Handler = Callable[[WebSocket], Awaitable[None]]


@asynccontextmanager
async def running_server(handler: Handler, **kwargs: object) -> AsyncIterator[int]:
    """Run serve() in a task group for the duration of the block; yield its port."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve(handler, task_status=task_status, **kwargs))  # type: ignore[arg-type]
        yield port
        tg.cancel_scope.cancel()


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        if isinstance(message, str):
            await ws.send(message)


Script = Callable[[anyio.abc.ByteStream, ServerProtocol], Awaitable[None]]


@asynccontextmanager
async def raw_server(script: Script, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A hand-driven websockets ServerProtocol: completes the handshake, then runs `script`."""

    async def handle(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            protocol = ServerProtocol()
            events: list[object] = []
            while not events:
                protocol.receive_data(await stream.receive())
                events = list(protocol.events_received())
            assert isinstance(events[0], Request)
            protocol.send_response(protocol.accept(events[0]))
            await stream.send(b"".join(protocol.data_to_send()))
            await script(stream, protocol)

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    listener: anyio.abc.Listener[anyio.abc.ByteStream] = (
        TLSListener(tcp, tls, standard_compatible=False) if tls is not None else tcp
    )
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield port
        tg.cancel_scope.cancel()


async def flush(stream: anyio.abc.ByteStream, protocol: ServerProtocol | ClientProtocol) -> None:
    await stream.send(b"".join(protocol.data_to_send()))


async def answer_until_closed(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
    """Behave like a plain peer: answer pings and the close handshake until EOF."""
    try:
        while True:
            protocol.receive_data(await stream.receive())
            for data in protocol.data_to_send():
                if data:
                    await stream.send(data)
                else:
                    return
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        pass


async def test_echo_round_trip_and_handshake_details() -> None:
    """A text message goes to the server and back; both sides see the handshake."""
    seen: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        seen.append(ws)
        await echo(ws)

    with anyio.fail_after(5):
        async with running_server(handler, config=NO_PING) as port:
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
            async with connect(
                url, headers={"Authorization": "Bearer sk-test"}, config=NO_PING
            ) as ws:
                await ws.send('{"type":"session.update"}')
                assert await ws.recv() == '{"type":"session.update"}'
                await ws.send("héllo ✓")
                assert await ws.recv() == "héllo ✓"
                assert ws.response is not None and ws.response.status_code == 101
            request = seen[0].request
            assert request is not None
            assert request.path == "/v1/realtime?model=gpt-realtime"
            assert request.headers["authorization"] == "Bearer sk-test"
            assert request.headers["User-Agent"] == "rtagent/0.1"


async def test_send_many_delivers_all_messages_in_order() -> None:
    """send_many() delivers each message as its own frame, in order."""
    received: list[str | bytes] = []
    done = anyio.Event()

    async def handler(ws: WebSocket) -> None:
        for _ in range(3):
            received.append(await ws.recv())
        done.set()
        await ws.recv()

    with anyio.fail_after(5):
        async with (
            running_server(handler, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            await ws.send_many(["one", "two", "three"])
            await ws.send_many([])
            await done.wait()
    assert received == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "invalid_api_key"), (429, "rate_limit_exceeded"), (500, "server_error")],
)
async def test_handshake_refusal_keeps_status_and_body(status: int, code: str) -> None:
    """A process_request rejection surfaces as HandshakeError with status, body and headers."""
    body = json.dumps(
        {"error": {"type": "invalid_request_error", "code": code, "message": "no", "param": None}}
    ).encode()

    async def process_request(request: HttpRequest) -> HttpResponse | None:
        assert request.headers["authorization"] == "Bearer bad"
        return HttpResponse(status, body)

    async def handler(ws: WebSocket) -> None:
        raise AssertionError("handler must not run for a refused upgrade")

    with anyio.fail_after(5):
        async with running_server(handler, process_request=process_request) as port:
            with pytest.raises(HandshakeError) as info:
                async with connect(
                    f"ws://127.0.0.1:{port}/v1/realtime", headers=[("Authorization", "Bearer bad")]
                ):
                    pass
    assert info.value.status_code == status
    assert json.loads(info.value.body)["error"]["code"] == code
    assert info.value.headers["Content-Type"] == "application/json"


async def test_sync_process_request_returning_none_accepts() -> None:
    """A synchronous process_request that returns None lets the upgrade through."""
    paths: list[str] = []

    def process_request(request: HttpRequest) -> None:
        paths.append(request.path)

    with anyio.fail_after(5):
        async with (
            running_server(echo, process_request=process_request, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/x?y=1", config=NO_PING) as ws,
        ):
            await ws.send("hi")
            assert await ws.recv() == "hi"
    assert paths == ["/x?y=1"]


async def test_connection_refused_is_transport_error() -> None:
    """Connecting to a closed port raises TransportError chained to the OS error."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    await listener.aclose()
    with anyio.fail_after(5), pytest.raises(TransportError) as info:
        async with connect(f"ws://127.0.0.1:{port}/"):
            pass
    assert not isinstance(info.value, HandshakeError)
    assert isinstance(info.value.__cause__, OSError)


async def test_open_timeout_is_transport_error() -> None:
    """A server that accepts TCP but never answers the upgrade hits open_timeout."""

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        with anyio.fail_after(5), pytest.raises(TransportError) as info:
            async with connect(f"ws://127.0.0.1:{port}/", config=WebSocketConfig(open_timeout=0.2)):
                pass
        assert isinstance(info.value.__cause__, TimeoutError)
        tg.cancel_scope.cancel()


async def test_invalid_url_is_configuration_error() -> None:
    """A URL that is not ws:// or wss:// is a configuration mistake."""
    with pytest.raises(ConfigurationError):
        async with connect("https://api.openai.com/v1/realtime"):
            pass


async def test_keepalive_timeout_when_server_goes_silent() -> None:
    """If pings go unanswered, recv() raises KeepaliveTimeout."""

    async def go_silent(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        await anyio.sleep_forever()

    config = WebSocketConfig(ping_interval=0.05, ping_timeout=0.1)
    with anyio.fail_after(5):
        async with (
            raw_server(go_silent) as port,
            connect(f"ws://127.0.0.1:{port}/", config=config) as ws,
        ):
            with pytest.raises(KeepaliveTimeout):
                await ws.recv()
            with pytest.raises(KeepaliveTimeout):
                await ws.send("too late")


async def test_keepalive_waits_for_the_reader_to_see_the_pong() -> None:
    """Keepalive never reads: the owner's reader sees each pong, through many ping rounds."""
    config = WebSocketConfig(ping_interval=0.02, ping_timeout=0.2)
    with anyio.fail_after(5):
        async with (
            running_server(echo, config=config) as port,
            connect(f"ws://127.0.0.1:{port}/", config=config) as ws,
        ):
            received: list[str | bytes] = []
            both = anyio.Event()
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    while True:
                        received.append(await ws.recv())
                        if len(received) == 2:
                            both.set()

                tg.start_soon(reader)
                await ws.send("early")
                await anyio.sleep(0.3)  # several ping rounds while only the reader reads
                await ws.send("later")
                await both.wait()
                tg.cancel_scope.cancel()
            assert received == ["early", "later"]
            assert ws._ping_count >= 5


async def test_peer_abort_gives_code_none() -> None:
    """When the server drops TCP without a close frame, the client sees code None."""

    async def handler(ws: WebSocket) -> None:
        await ws.recv()
        await ws.abort()

    with anyio.fail_after(5):
        async with (
            running_server(handler, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code is None
            assert ws.close_code is None


async def test_client_abort_is_seen_by_server_handler() -> None:
    """When the client drops TCP, the server handler's recv() raises ConnectionClosed(None)."""
    outcome: list[ConnectionClosed] = []
    done = anyio.Event()

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            outcome.append(exc)
        done.set()

    with anyio.fail_after(5):
        async with running_server(handler, config=NO_PING) as port:
            async with connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws:
                await ws.abort()
                with pytest.raises(ConnectionClosed):
                    await ws.send("after abort")
            await done.wait()
    assert outcome[0].code is None


async def test_oversized_message_closes_with_1009() -> None:
    """A message above max_size fails the connection with 1009 on both sides."""
    server_saw: list[int | None] = []

    async def handler(ws: WebSocket) -> None:
        await ws.send("x" * 5000)
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            server_saw.append(exc.code)

    config = WebSocketConfig(max_size=1024, ping_interval=None)
    with anyio.fail_after(5):
        async with (
            running_server(handler, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=config) as ws,
        ):
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1009
            assert ws.close_code == 1009
    assert server_saw == [1009]


async def test_server_close_code_and_reason_reach_client() -> None:
    """A server-initiated close keeps code and reason; a non-clean code ends iteration with an error."""

    async def handler(ws: WebSocket) -> None:
        await ws.send("last words")
        await ws.aclose(4000, "beta_api_shape_disabled")

    with anyio.fail_after(5):
        async with (
            running_server(handler, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            got: list[str | bytes] = []
            with pytest.raises(ConnectionClosed) as info:
                async for message in ws:
                    got.append(message)
            assert got == ["last words"]
            assert (info.value.code, info.value.reason) == (4000, "beta_api_shape_disabled")
            assert (ws.close_code, ws.close_reason) == (4000, "beta_api_shape_disabled")
            with pytest.raises(ConnectionClosed):
                await ws.send("nope")


async def test_client_close_code_and_reason_reach_server() -> None:
    """A client-initiated close keeps code and reason; a 1000 close ends iteration cleanly."""
    server_saw: list[tuple[int | None, str]] = []
    iterated = anyio.Event()

    async def handler(ws: WebSocket) -> None:
        async for _ in ws:
            pass
        iterated.set()
        server_saw.append((ws.close_code, ws.close_reason))

    with anyio.fail_after(5):
        async with running_server(handler, config=NO_PING) as port:
            async with connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws:
                await ws.send("hi")
                await ws.aclose(1000, "done here")
                await ws.aclose()  # idempotent
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.code == 1000
            await iterated.wait()
    assert server_saw == [(1000, "done here")]


async def test_fragmented_messages_are_reassembled() -> None:
    """Text and binary messages split into continuation frames arrive whole."""

    async def fragments(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        protocol.send_text("héllo ".encode()[:2], fin=False)  # split inside a UTF-8 char
        protocol.send_continuation("héllo ".encode()[2:], fin=False)
        protocol.send_ping(b"interleaved control frame")
        protocol.send_continuation(b"world", fin=True)
        protocol.send_binary(b"\x00\x01", fin=False)
        protocol.send_continuation(b"\x02", fin=True)
        protocol.send_text(b"whole")
        await flush(stream, protocol)
        await answer_until_closed(stream, protocol)

    with anyio.fail_after(5):
        async with (
            raw_server(fragments) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            assert await ws.recv() == "héllo world"
            assert await ws.recv() == b"\x00\x01\x02"
            assert await ws.recv() == "whole"


async def test_server_reassembles_fragments_from_raw_client() -> None:
    """The server side reassembles a fragmented message sent by a sans-I/O client."""
    with anyio.fail_after(5):
        async with running_server(echo, config=NO_PING) as port:
            protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                protocol.send_request(protocol.connect())
                await flush(stream, protocol)
                while not protocol.events_received():
                    protocol.receive_data(await stream.receive())
                protocol.send_text(b"abc", fin=False)
                protocol.send_continuation(b"def", fin=True)
                await flush(stream, protocol)
                frames: list[Frame] = []
                while not frames:
                    protocol.receive_data(await stream.receive())
                    frames = [e for e in protocol.events_received() if isinstance(e, Frame)]
                assert frames[0].opcode is Opcode.TEXT
                assert frames[0].data == b"abcdef"


async def test_invalid_utf8_closes_with_1007() -> None:
    """A text frame that is not UTF-8 fails the connection with 1007."""

    async def bad_text(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        protocol.send_text(b"\xff\xfe")
        await flush(stream, protocol)
        await answer_until_closed(stream, protocol)

    with anyio.fail_after(5):
        async with (
            raw_server(bad_text) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1007


async def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a raw HTTP request and read the whole response until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        data = b""
        try:
            while True:
                data += await stream.receive()
        except anyio.EndOfStream:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_plain_http_post_goes_to_http_handler() -> None:
    """A POST with a body is answered by http_handler with Content-Length and Connection: close."""
    seen: list[HttpRequest] = []

    async def http_handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(200, json.dumps({"value": "ek_123"}).encode())

    payload = b'{"session":{"type":"realtime"}}'
    request = (
        b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
    )
    with anyio.fail_after(5):
        # Send the head and body separately to exercise body buffering.
        async with (
            running_server(echo, http_handler=http_handler) as port,
            await anyio.connect_tcp("127.0.0.1", port) as stream,
        ):
            await stream.send(request)
            await anyio.sleep(0.01)
            await stream.send(payload)
            data = b""
            try:
                while True:
                    data += await stream.receive()
            except anyio.EndOfStream:
                pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: %d" % len(body) in head
    assert b"Connection: close" in head
    assert json.loads(body) == {"value": "ek_123"}
    assert seen[0].method == "POST"
    assert seen[0].path == "/v1/realtime/client_secrets"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].body == payload


async def test_plain_http_without_handler_is_404() -> None:
    """Without http_handler, plain HTTP requests get a JSON 404."""
    with anyio.fail_after(5):
        async with running_server(echo) as port:
            status, headers, body = await raw_http(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["message"]


async def test_malformed_request_is_400() -> None:
    """A request line the server cannot parse gets a 400, not a crash."""
    with anyio.fail_after(5):
        async with running_server(echo) as port:
            status, _, _ = await raw_http(port, b"garbage\r\n\r\n")
            status2, _, _ = await raw_http(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    assert status2 == 404


async def test_handler_exception_closes_with_1011_and_server_keeps_serving() -> None:
    """A failing handler closes only its connection with 1011; later connections work."""
    calls = 0

    async def handler(ws: WebSocket) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await echo(ws)

    with anyio.fail_after(5):
        async with running_server(handler, config=NO_PING) as port:
            async with connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.code == 1011
            async with connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws:
                await ws.send("still alive")
                assert await ws.recv() == "still alive"


async def test_server_shutdown_closes_with_1001() -> None:
    """Cancelling serve() closes open connections with 1001 (going away)."""
    started = anyio.Event()

    async def handler(ws: WebSocket) -> None:
        started.set()
        await ws.recv()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            port = await tg.start(
                lambda task_status: serve(handler, config=NO_PING, task_status=task_status)
            )
            async with connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws:
                await started.wait()
                tg.cancel_scope.cancel()
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.code == 1001


async def test_body_exception_propagates_unwrapped() -> None:
    """An exception raised inside `async with connect()` comes out as itself, not a group."""
    with anyio.fail_after(5):
        async with running_server(echo, config=NO_PING) as port:
            with pytest.raises(KeyError):
                async with connect(f"ws://127.0.0.1:{port}/"):
                    raise KeyError("mine")


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed localhost certificate made with the openssl CLI (skips without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    directory: Path = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_wss_round_trip(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """wss:// URLs connect over TLS with the given SSL context."""
    server_ctx, client_ctx = tls_contexts

    async def reply(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        protocol.send_text(b"over tls")
        await flush(stream, protocol)
        await answer_until_closed(stream, protocol)

    with anyio.fail_after(5):
        async with (
            raw_server(reply, tls=server_ctx) as port,
            connect(f"wss://127.0.0.1:{port}/", ssl_context=client_ctx, config=NO_PING) as ws,
        ):
            assert await ws.recv() == "over tls"


async def test_header_with_line_break_is_configuration_error() -> None:
    """A header value with a newline (e.g. an API key read from a file) is rejected up front."""
    with pytest.raises(ConfigurationError) as info:
        async with connect("ws://127.0.0.1:9/", headers={"Authorization": "Bearer sk-secret\n"}):
            pass
    assert "sk-secret" not in str(info.value)


async def test_invalid_close_code_is_value_error() -> None:
    """aclose() refuses close codes that may not be sent, leaving the connection open."""
    with anyio.fail_after(5):
        async with (
            running_server(echo, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            with pytest.raises(ValueError):
                await ws.aclose(1005)
            with pytest.raises(ValueError):
                await ws.aclose(1000, "x" * 124)
            await ws.send("still open")
            assert await ws.recv() == "still open"


async def test_send_cancelled_before_writing_keeps_connection() -> None:
    """A send() whose scope is already cancelled writes nothing and leaves the connection usable."""
    with anyio.fail_after(5):
        async with (
            running_server(echo, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await ws.send("never sent")
            await ws.send("sent")
            assert await ws.recv() == "sent"


async def test_aclose_while_another_task_is_receiving() -> None:
    """aclose() from one task completes the handshake while another task is blocked in recv()."""
    outcome: list[ConnectionClosed] = []

    async def reader(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            outcome.append(exc)

    with anyio.fail_after(5):
        async with (
            running_server(echo, config=NO_PING) as port,
            connect(f"ws://127.0.0.1:{port}/", config=NO_PING) as ws,
        ):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader, ws)
                await anyio.sleep(0.05)
                await ws.aclose(1000, "bye")
    assert (outcome[0].code, outcome[0].reason) == (1000, "bye")


async def test_wss_untrusted_certificate_is_transport_error(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A certificate the client does not trust fails the connection with TransportError."""
    server_ctx, _ = tls_contexts

    async def never(stream: anyio.abc.ByteStream, protocol: ServerProtocol) -> None:
        raise AssertionError("the handshake must not complete")

    with anyio.fail_after(5):
        async with raw_server(never, tls=server_ctx) as port:
            with pytest.raises(TransportError) as info:
                async with connect(f"wss://127.0.0.1:{port}/", config=NO_PING):
                    pass
    assert isinstance(info.value.__cause__, ssl.SSLError)


async def test_messages_of_several_megabytes_go_both_ways() -> None:
    """A 3 MiB message and its echo: reading pauses and resumes, writing waits for the drain."""
    big = "x" * (3 * 2**20)
    config = WebSocketConfig(ping_interval=None, max_size=8 * 2**20)

    async def slow_echo(ws: WebSocket) -> None:
        async for message in ws:
            await anyio.sleep(0.05)  # let the client's writes pile up and its reads wait
            assert isinstance(message, str)
            await ws.send(message)

    with anyio.fail_after(20):
        async with running_server(slow_echo, config=config) as port:
            async with connect(f"ws://127.0.0.1:{port}", config=config) as ws:
                for _ in range(3):
                    await ws.send_many([big, "small"])
                for _ in range(3):
                    assert await ws.recv() == big
                    assert await ws.recv() == "small"
