"""A minimal, GA-faithful Realtime server for benchmarks, timed on the server side.

It speaks exactly the GA events a real server sends for a tool-call turn (PROTOCOL.md §7)
and for streamed audio, nothing more, so it costs little per event and never becomes the
bottleneck:

* ``session.created`` on connect; ``session.update`` → ``session.updated``.
* ``conversation.item.create`` → ``conversation.item.added`` + ``conversation.item.done``.
* ``response.create`` after a user message → a response holding one ``function_call`` of the
  session's first tool, echoing the user text as ``{"text": ...}``; after a
  ``function_call_output`` → a short text reply carrying that output.
* In audio mode, ``response.create`` opens an audio response and every
  ``input_audio_buffer.append`` is echoed as ``response.output_audio.delta``;
  ``response.cancel`` ends it (``response.done`` with ``status: cancelled``).
* The one-active-response rule: a ``response.create`` while a response is active gets
  ``error`` ``conversation_already_has_active_response`` and nothing else.

Timing: ``data_received`` stamps each read with ``perf_counter_ns``. The tool turnaround is
the time from writing the ``response.done`` of the function-call response to reading the
``response.create`` that follows the ``function_call_output``; ``output→create`` is the time
between reading the output item and that ``response.create``.

Like a real server, the events that close a response (``function_call_arguments.done``,
``output_item.done``, ``conversation.item.done``, ``response.done``) leave together, a short
gap (``gap_us``, default 1000) after the events that open it; ``gap_us=0`` sends the whole
response at once (burst runs).

Built on asyncio's ``Protocol`` with websockets' sans-I/O ``ServerProtocol``: no task or
queue per message, so it is cheaper per event than websockets' asyncio server or
``rtagent._transport.serve`` and timestamps reads the moment the bytes arrive.

URL path: ``/<tag>/<mode>/<gap_us>/...`` (anything after is ignored, e.g. ``/v1/realtime``).
``tag`` groups samples; ``mode`` is ``tool`` or ``audio``.

Run as a process: ``python -m bench.server [--port N] [--reuse-port]``. It prints
``port N`` on stdout, then answers stdin commands one line each: ``dump TAG`` (and
``dump *``) prints one JSON line of samples and clears them; ``quit`` exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from typing import Any

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from rtagent.local._engine import default_session as _local_default_session

_loads = json.loads
_dumps = json.dumps
_now = time.perf_counter_ns

_FORMAT = {"type": "audio/pcm", "rate": 24000}
_USAGE = (
    '{"total_tokens":60,"input_tokens":50,"output_tokens":10,'
    '"input_token_details":{"text_tokens":50,"audio_tokens":0,"image_tokens":0,"cached_tokens":0,'
    '"cached_tokens_details":{"text_tokens":0,"audio_tokens":0,"image_tokens":0}},'
    '"output_token_details":{"text_tokens":10,"audio_tokens":0}}'
)
_RESPONSE_AUDIO = '{"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin"}}'


def default_session(session_id: str, model: str) -> dict[str, Any]:
    """The full default GA session reported in ``session.created`` (the local server's)."""
    return _local_default_session(model, session_id, int(time.time()) + 3600)


def _merge(current: Any, update: Any) -> Any:
    """``session.update`` merges: only the fields sent change."""
    if not isinstance(update, dict) or not isinstance(current, dict):
        return update
    merged = dict(current)
    for key, value in update.items():
        merged[key] = _merge(current.get(key), value)
    return merged


class Stats:
    """Samples per tag: (connection, turn index, turnaround ns, output→create ns)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[int, int, int, int]]] = {}
        self.connections: dict[str, int] = {}

    def dump(self, tag: str) -> dict[str, Any]:
        if tag == "*":
            out = {"samples": self.samples, "connections": self.connections}
            self.samples, self.connections = {}, {}
            return out
        return {
            "samples": {tag: self.samples.pop(tag, [])},
            "connections": {tag: self.connections.pop(tag, 0)},
        }


STATS = Stats()
_counter = 0


def _next() -> int:
    global _counter
    _counter += 1
    return _counter


class RealtimeBenchProtocol(asyncio.Protocol):
    """One WebSocket connection speaking the GA Realtime events of a tool turn or audio stream."""

    def __init__(self, stats: Stats = STATS) -> None:
        self.ws = ServerProtocol(max_size=16 * 1024 * 1024)
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.tag = "default"
        self.mode = "tool"
        self.gap = 0.001
        self.conn = _next()
        self.session: dict[str, Any] = {}
        self.last_item: str | None = None
        self.active: str | None = None  # response id while a response is active
        self.metadata = "null"  # the active response's metadata, as JSON
        self.last_kind = ""  # type of the last conversation item: "user", "output", ...
        self.user_text = ""
        self.output_text = ""
        self.call_id: str | None = None
        self.done_at = 0
        self.output_at = 0
        self.turns = 0
        self.fragments: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.audio_item = ""
        self.out: list[bytes] = []

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        now = _now()
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                if not event.fin:
                    self.fragments.append(event.data)
                    continue
                if self.fragments:
                    self.fragments.append(event.data)
                    payload = b"".join(self.fragments)
                    self.fragments = []
                else:
                    payload = event.data
                self._on_message(payload, now)
        self._flush()
        if (ws.state is State.CLOSED or ws.close_expected()) and self.transport is not None:
            # After the close handshake the server closes TCP first (RFC 6455 §7.1.1).
            self.transport.close()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    # -- plumbing ------------------------------------------------------------------------------

    def _flush(self) -> None:
        ws = self.ws
        if ws.state is State.OPEN:  # a client that is closing gets no more events
            for text in self.out:
                ws.send_text(text)
        self.out = []
        data = ws.data_to_send()
        if data and self.transport is not None:
            self.transport.write(b"".join(data))

    def _handshake(self, request: Request) -> None:
        response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code != 101:
            return
        parts = [p for p in request.path.split("?", 1)[0].split("/") if p]
        if len(parts) >= 1:
            self.tag = parts[0]
        if len(parts) >= 2:
            self.mode = parts[1]
        if len(parts) >= 3 and parts[2].isdigit():
            self.gap = int(parts[2]) / 1e6
        model = "gpt-realtime"
        if "?" in request.path:
            for pair in request.path.split("?", 1)[1].split("&"):
                if pair.startswith("model="):
                    model = pair[6:]
        self.open = True
        self.stats.connections[self.tag] = self.stats.connections.get(self.tag, 0) + 1
        self.session = default_session(f"sess_{self.conn}", model)
        self._send("session.created", f'"session":{_dumps(self.session)}')

    def _send(self, kind: str, body: str) -> None:
        """Queue one server event; ``body`` is the JSON of its fields after ``type``/``event_id``."""
        sep = "," if body else ""
        self.out.append(f'{{"type":"{kind}","event_id":"event_{_next()}"{sep}{body}}}'.encode())

    # -- client events -------------------------------------------------------------------------

    def _on_message(self, payload: bytes, now: int) -> None:
        try:
            event = _loads(payload)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            self._error("invalid_request_error", "invalid_json", "Invalid JSON.", None)
            return
        if kind == "input_audio_buffer.append":
            if self.active is not None and self.mode == "audio":
                # response.output_audio.delta: the audio is echoed back as it arrives.
                self._send(
                    "response.output_audio.delta",
                    f'"response_id":"{self.active}","item_id":"{self.audio_item}",'
                    f'"output_index":0,"content_index":0,"delta":"{event["audio"]}"',
                )
            return
        if kind == "conversation.item.create":
            self._item_create(event, now)
        elif kind == "response.create":
            self._response_create(event, now)
        elif kind == "session.update":
            self.session = _merge(self.session, event.get("session") or {})
            self._send("session.updated", f'"session":{_dumps(self.session)}')
        elif kind == "response.cancel":
            self._response_cancel(event)
        elif kind in ("input_audio_buffer.commit", "input_audio_buffer.clear"):
            if kind == "input_audio_buffer.clear":
                self._send("input_audio_buffer.cleared", "")
        else:
            # Other GA client events are valid but carry nothing this benchmark needs.
            pass

    def _error(self, type_: str, code: str, message: str, event_id: str | None) -> None:
        err = {"type": type_, "code": code, "message": message, "param": None, "event_id": event_id}
        self._send("error", f'"error":{_dumps(err)}')

    def _item_create(self, event: dict[str, Any], now: int) -> None:
        item = event.get("item") or {}
        item_id = item.get("id") or f"item_{_next()}"
        item["id"] = item_id
        item["object"] = "realtime.item"
        item.setdefault("status", "completed")
        kind = item.get("type")
        if kind == "function_call_output":
            self.last_kind = "output"
            self.output_text = str(item.get("output", ""))
            self.output_at = now
        elif kind == "message" and item.get("role") == "user":
            self.last_kind = "user"
            text = ""
            for part in item.get("content") or ():
                if part.get("type") == "input_text":
                    text += part.get("text", "")
            self.user_text = text
        else:
            self.last_kind = str(kind)
        prev = event.get("previous_item_id") or self.last_item
        self.last_item = item_id
        body = f'"previous_item_id":{_dumps(prev)},"item":{_dumps(item)}'
        self._send("conversation.item.added", body)
        self._send("conversation.item.done", body)

    def _response_create(self, event: dict[str, Any], now: int) -> None:
        if self.active is not None:
            self._error(
                "invalid_request_error",
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active}. "
                "Wait until the response is finished before creating a new one.",
                event.get("event_id"),
            )
            return
        rid = f"resp_{_next()}"
        self.active = rid
        params = event.get("response") or {}
        # The real service echoes the request's metadata on the response (PROTOCOL.md §2).
        self.metadata = _dumps(params["metadata"]) if params.get("metadata") else "null"
        modalities = params.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        self._send("response.created", f'"response":{self._response(rid, "in_progress", "[]", modalities)}')
        if self.mode == "audio":
            self._audio_open(rid)
        elif self.last_kind == "user":
            self._tool_call(rid, modalities)
        else:
            if self.last_kind == "output" and self.done_at:
                self.stats.samples.setdefault(self.tag, []).append(
                    (self.conn, self.turns, now - self.done_at, now - self.output_at)
                )
                self.turns += 1
                self.done_at = 0
            self._text_reply(rid, modalities)

    def _response(self, rid: str, status: str, output: str, modalities: list[str]) -> str:
        usage = _USAGE if status != "in_progress" else "null"
        details = "null" if status in ("in_progress", "completed") else f'{{"type":"{status}","reason":"client_cancelled"}}'
        return (
            f'{{"object":"realtime.response","id":"{rid}","status":"{status}","status_details":{details},'
            f'"output":{output},"conversation_id":"conv_{self.conn}","output_modalities":{_dumps(modalities)},'
            f'"max_output_tokens":"inf","audio":{_RESPONSE_AUDIO},"usage":{usage},"metadata":{self.metadata}}}'
        )

    def _tool_call(self, rid: str, modalities: list[str]) -> None:
        tools = self.session.get("tools") or [{"name": "echo"}]
        name = tools[0].get("name", "echo")
        item_id = f"item_{_next()}"
        call_id = f"call_{_next()}"
        self.call_id = call_id
        args = _dumps(_dumps({"text": self.user_text}))
        open_item = (
            f'{{"id":"{item_id}","type":"function_call","object":"realtime.item","status":"in_progress",'
            f'"name":"{name}","call_id":"{call_id}","arguments":""}}'
        )
        done_item = (
            f'{{"id":"{item_id}","type":"function_call","object":"realtime.item","status":"completed",'
            f'"name":"{name}","call_id":"{call_id}","arguments":{args}}}'
        )
        prev = _dumps(self.last_item)
        self.last_item = item_id
        where = f'"response_id":"{rid}","item_id":"{item_id}","output_index":0,"call_id":"{call_id}"'
        self._send("response.output_item.added", f'"response_id":"{rid}","output_index":0,"item":{open_item}')
        self._send("conversation.item.added", f'"previous_item_id":{prev},"item":{open_item}')
        self._send("response.function_call_arguments.delta", f'{where},"delta":{args}')

        def close() -> None:
            self.timer = None
            self._send("response.function_call_arguments.done", f'{where},"name":"{name}","arguments":{args}')
            self._send("response.output_item.done", f'"response_id":"{rid}","output_index":0,"item":{done_item}')
            self._send("conversation.item.done", f'"previous_item_id":{prev},"item":{done_item}')
            self.active = None
            self._send("response.done", f'"response":{self._response(rid, "completed", f"[{done_item}]", modalities)}')
            self._flush()
            self.done_at = _now()

        if self.gap > 0:
            self._flush()
            self.timer = asyncio.get_running_loop().call_later(self.gap, close)
        else:
            close()

    def _text_reply(self, rid: str, modalities: list[str]) -> None:
        item_id = f"item_{_next()}"
        text = _dumps(self.output_text or "ok")
        prev = _dumps(self.last_item)
        self.last_item = item_id
        open_item = (
            f'{{"id":"{item_id}","type":"message","object":"realtime.item","status":"in_progress",'
            f'"role":"assistant","content":[]}}'
        )
        done_item = (
            f'{{"id":"{item_id}","type":"message","object":"realtime.item","status":"completed",'
            f'"role":"assistant","content":[{{"type":"output_text","text":{text}}}]}}'
        )
        where = f'"response_id":"{rid}","item_id":"{item_id}","output_index":0,"content_index":0'
        self._send("response.output_item.added", f'"response_id":"{rid}","output_index":0,"item":{open_item}')
        self._send("conversation.item.added", f'"previous_item_id":{prev},"item":{open_item}')
        self._send("response.content_part.added", f'{where},"part":{{"type":"text","text":""}}')
        self._send("response.output_text.delta", f'{where},"delta":{text}')
        self._send("response.output_text.done", f'{where},"text":{text}')
        self._send("response.content_part.done", f'{where},"part":{{"type":"text","text":{text}}}')
        self._send("response.output_item.done", f'"response_id":"{rid}","output_index":0,"item":{done_item}')
        self._send("conversation.item.done", f'"previous_item_id":{prev},"item":{done_item}')
        self.active = None
        self._send("response.done", f'"response":{self._response(rid, "completed", f"[{done_item}]", modalities)}')

    # -- audio ---------------------------------------------------------------------------------

    def _audio_open(self, rid: str) -> None:
        item_id = f"item_{_next()}"
        self.audio_item = item_id
        prev = _dumps(self.last_item)
        self.last_item = item_id
        item = (
            f'{{"id":"{item_id}","type":"message","object":"realtime.item","status":"in_progress",'
            f'"role":"assistant","content":[]}}'
        )
        self._send("response.output_item.added", f'"response_id":"{rid}","output_index":0,"item":{item}')
        self._send("conversation.item.added", f'"previous_item_id":{prev},"item":{item}')
        self._send(
            "response.content_part.added",
            f'"response_id":"{rid}","item_id":"{item_id}","output_index":0,"content_index":0,'
            '"part":{"type":"audio","transcript":""}',
        )

    def _response_cancel(self, event: dict[str, Any]) -> None:
        rid = self.active
        if rid is None:
            self._error(
                "invalid_request_error",
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                event.get("event_id"),
            )
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        output = "[]"
        if self.mode == "audio" and self.audio_item:
            item_id = self.audio_item
            where = f'"response_id":"{rid}","item_id":"{item_id}","output_index":0,"content_index":0'
            item = (
                f'{{"id":"{item_id}","type":"message","object":"realtime.item","status":"incomplete",'
                f'"role":"assistant","content":[{{"type":"output_audio","transcript":""}}]}}'
            )
            self._send("response.output_audio.done", where)
            self._send("response.output_audio_transcript.done", f'{where},"transcript":""')
            self._send("response.content_part.done", f'{where},"part":{{"type":"audio","transcript":""}}')
            self._send("response.output_item.done", f'"response_id":"{rid}","output_index":0,"item":{item}')
            self._send("conversation.item.done", f'"previous_item_id":null,"item":{item}')
            output = f"[{item}]"
            self.audio_item = ""
        self.active = None
        modalities = self.session.get("output_modalities") or ["audio"]
        self._send("response.done", f'"response":{self._response(rid, "cancelled", output, modalities)}')


async def serve(host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False) -> asyncio.Server:
    """Listen on ``host:port``; several processes may share the port with ``reuse_port``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        RealtimeBenchProtocol, host, port, reuse_port=reuse_port, backlog=4096
    )


async def _main(port: int, reuse_port: bool) -> None:
    server = await serve(port=port, reuse_port=reuse_port)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"port {bound}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    buffer = b""

    def on_stdin() -> None:
        nonlocal buffer
        chunk = os.read(0, 65536)
        if not chunk:
            if not stop.done():
                stop.set_result(None)
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            cmd = line.decode().split()
            if not cmd:
                continue
            if cmd[0] == "dump":
                sys.stdout.write(_dumps(STATS.dump(cmd[1] if len(cmd) > 1 else "*")) + "\n")
                sys.stdout.flush()
            elif cmd[0] == "quit" and not stop.done():
                stop.set_result(None)

    loop.add_reader(0, on_stdin)
    try:
        await stop
    finally:
        loop.remove_reader(0)
        server.close()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.port, args.reuse_port))


if __name__ == "__main__":
    main()
