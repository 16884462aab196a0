"""History in and out, images, and usage against the local server (asyncio and trio)."""

from __future__ import annotations

import json
import struct
import zlib

import anyio
import pytest
from live import Echo, live, received

from rtagent import Agent, ConfigurationError, Prices
from rtagent.local import Call, Turn
from rtagent.local._brains import Conversation

HISTORY = [
    {"role": "system", "content": "The user's name is Ada."},
    {"role": "user", "content": "What is 2+2?"},
    {"type": "function_call", "call_id": "call_old", "name": "echo", "arguments": {"text": "4"}},
    {"type": "function_call_output", "call_id": "call_old", "output": "echo:4"},
    {"role": "assistant", "content": "It is 4."},
]


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00\xff\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


async def test_history_seeds_a_new_session_before_anything_else() -> None:
    """connect(history=...) creates every item first, in order, and the model sees them."""
    seen: list[list[str]] = []

    def recall(convo: Conversation) -> str:
        seen.append([str(i.get("type")) for i in convo.items])
        return "Your name is Ada."

    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text=recall)], history=HISTORY) as (server, session):
            assert await session.ask("What is my name?") == "Your name is Ada."
            sent = received(server)
    creates = [e["item"] for e in sent if e["type"] == "conversation.item.create"]
    assert [i["type"] for i in creates] == ["message", "message", "function_call",
                                            "function_call_output", "message", "message"]
    assert creates[0]["role"] == "system" and creates[0]["content"][0]["type"] == "input_text"
    assert creates[4]["content"] == [{"type": "output_text", "text": "It is 4."}]
    assert json.loads(creates[2]["arguments"]) == {"text": "4"}
    assert seen[0][:5] == ["message", "message", "function_call", "function_call_output", "message"]


def test_history_that_the_server_would_refuse_is_a_configuration_error() -> None:
    """An output before its call, an unknown role or type: refused before connecting."""
    from rtagent._session.history import normalise_history

    for bad in ([{"type": "function_call_output", "call_id": "x", "output": "o"}],
                [{"role": "robot", "content": "hi"}], [{"type": "mystery"}], ["not a mapping"]):
        with pytest.raises(ConfigurationError):
            normalise_history(bad)  # type: ignore[arg-type]


async def test_transcript_exports_messages_tool_calls_and_outputs_with_times() -> None:
    """session.transcript() lists who said what and which tool ran, as JSON and as text."""
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="done")]
    with anyio.fail_after(10):
        async with live(Echo(), turns) as (_server, session):
            await session.ask("go")
            entries = session.transcript()
            text = session.transcript("text")
    assert [e["kind"] for e in entries] == ["message", "tool_call", "tool_output", "message"]
    assert entries[1]["name"] == "echo" and entries[2]["output"] == "echo:x"
    assert entries[2]["name"] == "echo" and all(e["at"] for e in entries)
    json.dumps(entries)
    lines = text.splitlines()
    assert lines[0].endswith("user: go") and "tool call echo" in lines[1] and lines[3].endswith("assistant: done")


async def test_send_image_shows_the_model_an_image() -> None:
    """send_image() adds a user message with an input_image data URI and asks for a reply."""
    png = tiny_png()
    with anyio.fail_after(10):
        async with live(Agent(output_modalities=["text"]), [Turn(text="a red pixel")]) as (server, session):
            await session.send_image(png, text="What is this?")
            await server.wait_for(lambda rec: any(e["type"] == "response.done" for e in rec.sent))
            sent = received(server)
    item = next(e["item"] for e in sent if e["type"] == "conversation.item.create")
    image, words = item["content"]
    assert image["type"] == "input_image" and image["image_url"].startswith("data:image/png;base64,")
    assert words == {"type": "input_text", "text": "What is this?"}
    assert [e["type"] for e in sent].count("response.create") == 1


async def test_usage_totals_match_what_the_server_reported() -> None:
    """session.usage adds up exactly the usage of every response.done, and costs it."""
    prices = Prices(input_text=1.0, output_text=2.0, output_audio=4.0)
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="done"), Turn(text="again")]
    with anyio.fail_after(10):
        async with live(Echo(), turns, prices=prices) as (server, session):
            await session.ask("one")
            first_turn = session.usage.last_turn
            await session.ask("two")
            done = [e["response"]["usage"] for e in server.connections[0].sent if e["type"] == "response.done"]
            ledger = session.usage
    assert ledger.total.input_tokens == sum(u["input_tokens"] for u in done)
    assert ledger.total.output_tokens == sum(u["output_tokens"] for u in done)
    assert ledger.total.responses == 3 and len(ledger.turns) == 2
    assert first_turn is not None and first_turn.responses == 2
    assert ledger.cost is not None and ledger.cost > 0
