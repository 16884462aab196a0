"""The local server stays bounded: old connections let go of their events, a log keeps its
newest entries, huge frames do not pile up, and JSON nested too deeply is refused as invalid
(400 on HTTP, an ``error`` event on a socket), never a 500 or a dropped connection."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anyio
import anyio.to_thread
import pytest
from websockets.asyncio.client import connect as ws_connect

from rtagent.local import LocalRealtimeServer, _records
from rtagent.local._records import BoundedLog
from rtagent.local._wire import MAX_DEPTH, parse_json


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the websockets client of these tests is asyncio's


def test_a_log_keeps_its_newest_entries_and_counts_the_rest() -> None:
    log: BoundedLog[int] = BoundedLog(max_entries=100, max_bytes=10_000)
    for n in range(1000):
        log.add(n, 5)
    assert len(log) <= 100 and log.total == 1000
    assert log[-1] == 999 and log.dropped == 1000 - len(log)
    assert log.since(990) == list(range(990, 1000))
    assert log.since(0) == list(log)  # positions already dropped are skipped
    big: BoundedLog[str] = BoundedLog(max_entries=1000, max_bytes=1000)
    for n in range(50):
        big.add(str(n), 100)
    assert sum(100 for _ in big) <= 1000 and big[-1] == "49"


def test_json_nested_too_deeply_is_invalid_not_a_crash() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    for text in ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "[" * 100_000 + "]" * 100_000,
                 '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(ValueError, match="nested more than"):
            parse_json(text)


def _post(url: str, body: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body.encode(), headers={
        "Content-Type": "application/json", "Authorization": "Bearer sk-test"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_deeply_nested_bodies_get_400_invalid_json() -> None:
    deep = '{"session":' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}"
    async with LocalRealtimeServer() as server:
        status, body = await anyio.to_thread.run_sync(
            _post, f"{server.http_url}/realtime/client_secrets", deep)
        assert status == 400 and body["error"]["code"] == "invalid_json"
        call = await server.calls.ring()
        status, body = await anyio.to_thread.run_sync(
            _post, f"{server.http_url}/realtime/calls/{call.id}/accept", deep)
        assert status == 400 and body["error"]["code"] == "invalid_json"
        assert call.state == "ringing"  # refused, nothing changed


async def test_a_deeply_nested_event_gets_an_error_event_and_the_session_goes_on() -> None:
    async with LocalRealtimeServer() as server, ws_connect(f"{server.url}?model=gpt-realtime") as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send("[" * 200_000 + "]" * 200_000)
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
        await ws.send(json.dumps({"type": "session.update", "event_id": "e1",
                                  "session": {"type": "realtime", "instructions": "hi"}}))
        assert json.loads(await ws.recv())["type"] == "session.updated"


async def test_huge_frames_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends large frames and leaves costs at most the byte budget."""
    monkeypatch.setattr(_records, "MAX_BYTES", 2 * 1024 * 1024)
    frame = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (512 * 1024)})
    async with LocalRealtimeServer() as server:
        async with ws_connect(f"{server.url}?model=gpt-realtime", max_size=None) as ws:
            await ws.recv()
            for _ in range(20):  # 10 MiB in all
                await ws.send(frame)
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await ws.recv()
        record = server.connections[0]
        kept = sum(len(f) for f in record.raw_received)
        assert kept <= 2 * 1024 * 1024 and record.raw_received.dropped > 0
        assert sum(len(json.dumps(e)) for e in record.received) <= 2 * 1024 * 1024 + len(frame)
        assert record.received.total == 21


async def test_old_closed_connections_let_go_of_their_events() -> None:
    async with LocalRealtimeServer() as server:
        for _ in range(_records.KEEP_RECORDS + 6):
            async with ws_connect(f"{server.url}?model=gpt-realtime") as ws:
                await ws.recv()
            await server.wait_for(lambda rec: rec.index == len(server.connections) - 1
                                  and rec.closed.is_set())
        async with ws_connect(f"{server.url}?model=gpt-realtime") as ws:
            await ws.recv()
            old, new = server.connections[0], server.connections[-2]
            assert old.pruned and old.engine is None and len(old.sent) == 0
            assert old.sent.total == 1 and old.path.startswith("/v1/realtime")
            assert not new.pruned and new.sent_types() == ["session.created"]
            assert sum(not r.pruned for r in server.connections) <= _records.KEEP_RECORDS + 1
