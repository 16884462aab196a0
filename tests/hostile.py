"""A scriptable, fault-injecting Realtime server independent of ``rtagent.local``.

Each connection runs a script in its own thread over a raw socket, with websockets'
sans-I/O ``ServerProtocol`` for framing only, so a test controls every byte: the
upgrade answer, events with any fields, binary or broken frames, a close frame with or
without the end of the TCP stream, an abort. It shares no code with the local server
(the oracle) or the client under test, and it runs under either anyio backend because
it lives in threads.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

__all__ = ["Conn", "Hostile"]

Script = Callable[["Conn"], None]

DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime", "object": "realtime.session", "id": "sess_hostile", "model": "gpt-realtime",
    "output_modalities": ["audio"], "instructions": "", "tools": [], "tool_choice": "auto",
    "max_output_tokens": "inf", "tracing": None, "truncation": "auto", "prompt": None,
    "expires_at": 0, "include": None,
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": None,
                        "noise_reduction": None, "turn_detection": None},
              "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0}},
}


class Conn:
    """One client connection, driven by a script."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.protocol = ServerProtocol(max_size=2**25)
        self.request: Request | None = None
        self.received: list[dict[str, Any]] = []
        self.raw: list[str | bytes] = []
        self._pending: list[str | bytes] = []
        self._ids = 0
        self.closed = False

    # -- the handshake ---------------------------------------------------------------------

    def accept(self) -> Request:
        """Complete the HTTP upgrade (101)."""
        while self.request is None:
            self._read()
        response = self.protocol.accept(self.request)
        self.protocol.send_response(response)
        self._flush()
        return self.request

    def reject(self, status: int, body: bytes = b"") -> None:
        """Answer the upgrade with an HTTP error."""
        while self.request is None:
            self._read()
        response = self.protocol.reject(status, body.decode())
        self.protocol.send_response(response)
        self._flush()
        self.abort()

    def handshake(self, **session: Any) -> dict[str, Any]:
        """101, session.created, read the client's session.update, session.updated."""
        self.accept()
        full = {**DEFAULT_SESSION, **session}
        self.send_event("session.created", session=full)
        update = self.expect("session.update")
        self.send_event("session.updated", session={**full, **update["session"]})
        return update

    # -- sending ---------------------------------------------------------------------------

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._ids += 1
        return {"type": kind, "event_id": f"event_h{self.index}_{self._ids}", **fields}

    def send_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = self.event(kind, **fields)
        self.send(json.dumps(event))
        return event

    def send(self, frame: str | bytes) -> None:
        """One text frame (str) or binary frame (bytes), verbatim."""
        if isinstance(frame, str):
            self.protocol.send_text(frame.encode())
        else:
            self.protocol.send_binary(frame)
        self._flush()

    def send_raw_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_frame_only(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and never end the TCP stream (a misbehaving peer)."""
        self.sock.sendall(Frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode()).serialize(
            mask=False))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close handshake, then end the TCP stream."""
        if not self.closed:
            try:
                self.protocol.send_close(code, reason)
                self._flush()
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline and self.protocol.close_rcvd is None:
                    if not self._read(timeout=0.2):
                        break
            except OSError:
                pass
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()

    # -- receiving -------------------------------------------------------------------------

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next client event (JSON object)."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            if time.monotonic() > deadline or not self._read(timeout=max(0.01, deadline - time.monotonic())):
                raise TimeoutError("no client event")
        frame = self._pending.pop(0)
        event = json.loads(frame)
        self.received.append(event)
        return event  # type: ignore[no-any-return]

    def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """Read client events until one of ``kind``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if event.get("type") == kind:
                return event

    def wait_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if not self._read(timeout=0.1) and self.protocol.close_rcvd is not None:
                break

    def _read(self, timeout: float = 5.0) -> bool:
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except OSError:
            self.closed = True
            return False
        if not data:
            self.protocol.receive_eof()
            self.closed = True
            return False
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self.request = event
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                payload = event.data.decode() if event.opcode is Opcode.TEXT else bytes(event.data)
                self.raw.append(payload)
                if isinstance(payload, str):
                    self._pending.append(payload)
        self._flush()
        return True

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk and not self.closed:
                try:
                    self.sock.sendall(chunk)
                except OSError:
                    self.closed = True


class Hostile:
    """A threaded server that runs ``script(conn)`` for each connection (index-aware).

    Use as ``with Hostile(script) as server:`` and connect to ``server.url``.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections: list[Conn] = []
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def __enter__(self) -> Hostile:
        accept = threading.Thread(target=self._accept, daemon=True, name="hostile accept")
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self.connections:
            conn.abort()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            conn = Conn(sock, len(self.connections))
            self.connections.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True,
                                      name=f"hostile conn {conn.index}")
            thread.start()
            self._threads.append(thread)

    def _run(self, conn: Conn) -> None:
        try:
            self.script(conn)
        except (OSError, TimeoutError):
            pass  # the client went away: that is its business
        except BaseException as exc:  # a broken script must fail the test that uses it
            self.errors.append(exc)
        finally:
            if not self._stop.is_set():
                conn.wait_closed(timeout=1.0)
