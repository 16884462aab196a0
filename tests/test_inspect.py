"""The live inspector: records built from events (rtagent._inspect.feed) and the page's server."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest

from rtagent import Agent, ToolError, connect, tool
from rtagent._chat import ChatOptions, run_chat
from rtagent._inspect import Inspector, Tracker, open_inspector
from rtagent._inspect.feed import cost_of, prices_for, trim
from rtagent._transport import connect as ws_connect
from rtagent.local import LocalRealtimeServer


class Harbour(Agent):
    output_modalities = ["text"]

    @tool
    def get_weather(self, port: str) -> str:
        """Weather at a port.

        Args:
            port: Name of the port.
        """
        if port == "Lima":
            raise ToolError("No news from Lima.")
        return "fog at dawn"


# -- records ---------------------------------------------------------------------------------


def _user_item(text: str) -> dict[str, Any]:
    return {"type": "conversation.item.added", "item": {"type": "message", "role": "user",
                                                        "content": [{"type": "input_text", "text": text}]}}


def _done(output: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": "resp_1", "status": "completed", "output": output,
                                                  "usage": usage}}


def test_a_turn_is_timed_from_the_user_item_to_the_final_response() -> None:
    """A turn record has the first-token and complete latencies and counts its tool rounds."""
    tracker = Tracker("session")
    tracker.server_event(0.0, {"type": "session.created", "session": {"model": "gpt-realtime-mini"}})
    tracker.server_event(1.0, _user_item("weather?"))
    tracker.server_event(1.2, _done([{"type": "function_call", "name": "get_weather"}]))
    tracker.server_event(1.5, {"type": "response.output_text.delta", "delta": "Fog"})
    records = tracker.server_event(2.0, _done([{"type": "message"}]))
    turn = next(r for r in records if r["kind"] == "turn")
    assert turn["turn"] == 1 and turn["rounds"] == 1 and turn["status"] == "completed"
    assert turn["first"] == pytest.approx(0.5) and turn["done"] == pytest.approx(1.0)
    assert [r["kind"] for r in tracker.server_event(3.0, _done([]))] == ["event"]  # no turn open


def test_usage_is_priced_at_list_prices() -> None:
    """Cost counts text, audio and cached tokens at the model family's prices per million."""
    usage = {
        "input_tokens": 3000, "output_tokens": 1100,
        "input_token_details": {"text_tokens": 2000, "audio_tokens": 1000,
                                "cached_tokens_details": {"text_tokens": 1000, "audio_tokens": 0}},
        "output_token_details": {"text_tokens": 100, "audio_tokens": 1000},
    }
    # gpt-realtime: 1000 text at $4 + 1000 cached at $0.40 + 1000 audio at $32 + 100 out at $16 + 1000 audio out at $64
    assert cost_of(usage, "gpt-realtime-2.1") == pytest.approx((4000 + 400 + 32000 + 1600 + 64000) / 1e6)
    assert prices_for("gpt-realtime-mini-2025")[0] == "gpt-realtime-mini"
    tracker = Tracker("session")
    usage_record = next(r for r in tracker.server_event(1.0, _done([], usage)) if r["kind"] == "usage")
    assert usage_record["input_tokens"] == 3000 and usage_record["priced_as"] == "gpt-realtime"


def test_a_servers_view_yields_tool_calls_from_events() -> None:
    """Seen from the server, a function call and its output make one tool call with its duration."""
    tracker = Tracker("connection 0", derive_tools=True)
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"port":"Lima"}'}
    started = tracker.server_event(1.0, {"type": "response.output_item.done", "item": call})
    assert started[-1] == {**started[-1], "kind": "tool", "status": "running", "name": "get_weather"}
    output = {"type": "function_call_output", "call_id": "call_1", "output": "error: No news from Lima."}
    done = tracker.client_event(1.25, {"type": "conversation.item.create", "item": output})
    assert done[-1]["status"] == "done" and done[-1]["ok"] is False
    assert done[-1]["duration"] == pytest.approx(0.25)
    assert done[0]["origin"] == "client"


def test_trim_keeps_payloads_small() -> None:
    """Audio and other long strings are shortened; structure is kept."""
    trimmed = trim({"type": "input_audio_buffer.append", "audio": "A" * 10_000, "list": list(range(60))})
    assert trimmed["audio"].endswith("(10000 characters)") and len(trimmed["audio"]) < 300
    assert len(trimmed["list"]) == 51


# -- the page's server -----------------------------------------------------------------------


async def _get(url: str, path: str) -> tuple[int, str]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def test_page_and_assets_are_served() -> None:
    """The page, its script and stylesheet are served on 127.0.0.1; anything else is 404."""
    with anyio.fail_after(10):
        async with open_inspector(title="test") as inspector:
            assert inspector.url.startswith("http://127.0.0.1:")
            status, html = await _get(inspector.url, "/")
            assert status == 200 and '<script src="/inspector.js">' in html
            assert (await _get(inspector.url, "/inspector.js"))[0] == 200
            assert (await _get(inspector.url, "/inspector.css"))[0] == 200
            assert (await _get(inspector.url, "/secrets"))[0] == 404


async def test_following_a_session_feeds_the_page() -> None:
    """A page connected to /feed gets the history, then the tool calls and turns of a live session."""
    with anyio.fail_after(20):
        async with LocalRealtimeServer() as server, open_inspector(title="Harbour") as inspector:
            inspector.connecting(server.url)
            async with connect(Harbour(), url=server.url) as session:
                await inspector.follow(session)
                await session.ask("What is the weather in Tortuga?")
                feed = inspector.url.replace("http://", "ws://") + "feed"
                async with ws_connect(feed) as ws:
                    hello = json.loads(await ws.recv())
                    assert hello["kind"] == "hello" and hello["title"] == "Harbour"
                    assert any(r["kind"] == "tool" and r.get("output") == "fog at dawn" for r in hello["records"])
                    await session.ask("What is the weather in Lima?")
                    live: list[dict[str, Any]] = []
                    while not any(r["kind"] == "turn" for r in live):
                        live += json.loads(await ws.recv())["records"]
            failed = next(r for r in live if r["kind"] == "tool" and r["status"] == "done")
            assert failed["ok"] is False and failed["output"] == "No news from Lima."
            assert isinstance(failed["duration"], float)
            turn = next(r for r in live if r["kind"] == "turn")
            assert turn["turn"] == 2 and turn["rounds"] == 1 and 0 <= turn["first"] <= turn["done"]
            status, body = await _get(inspector.url, "/records.json")
            kinds = {r["kind"] for r in json.loads(body)["records"]}
            assert status == 200 and {"event", "tool", "turn", "usage", "connection"} <= kinds
            assert [r["seq"] for r in inspector.records] == list(range(1, len(inspector.records) + 1))


async def test_watching_a_server_shows_its_connections() -> None:
    """`serve --ui`: each connection of the local server, its events, tool calls and turns appear."""
    with anyio.fail_after(20):
        async with LocalRealtimeServer(api_key="sk-secret") as server, open_inspector() as inspector:
            async with anyio.create_task_group() as tg:
                tg.start_soon(inspector.watch_server, server)
                async with connect(Harbour(), url=server.url, api_key="sk-secret") as session:
                    await session.ask("What is the weather in Tortuga?")
                # The records have no event to wait on: poll them (bounded by fail_after).
                while not any(r["kind"] == "connection" and r["state"] == "closed" for r in inspector.records):  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        records = list(inspector.records)
        assert {r["source"] for r in records} == {"connection 0"}
        tool_done = next(r for r in records if r["kind"] == "tool" and r["status"] == "done")
        assert tool_done["output"] == "fog at dawn" and tool_done["ok"] is True
        assert any(r["kind"] == "turn" for r in records)
        assert any(r["kind"] == "event" and r["origin"] == "client" for r in records)
        assert "sk-secret" not in json.dumps(records)  # the upgrade's headers are never shown


async def test_chat_inspect_prints_the_pages_url() -> None:
    """`rtagent chat --inspect` says where the page is and the chat runs as usual."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(20):
        status = await run_chat(Harbour(), ChatOptions(inspect=True), stdin=io.StringIO("Hello\n"), stdout=out, stderr=err)
    assert status == 0
    assert "rtagent: inspector: http://127.0.0.1:" in err.getvalue()
    assert "assistant> Hello!" in out.getvalue()


def test_publish_never_blocks_on_a_slow_page() -> None:
    """A page that stops reading is dropped (it reloads the history), the source never waits."""
    inspector = Inspector("t")
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](2)
    inspector._pages.append(send)
    for i in range(5):
        inspector.publish({"kind": "note", "text": str(i)})
    assert inspector._pages == [] and len(inspector.records) == 5
    receive.close()
