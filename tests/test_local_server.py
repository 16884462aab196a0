"""Wire-level tests of LocalRealtimeServer: real WebSockets on 127.0.0.1, strict GA events."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from conformance import assert_client_event, assert_server_event

from rtagent._errors import ConnectionClosed, HandshakeError
from rtagent._transport import WebSocket, connect
from rtagent.local import Call, Faults, LocalRealtimeServer, RuleBrain, ScriptedBrain, Turn
from rtagent.local._audio import silence_pcm16, sine_pcm16

TEXT_MODE = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"]},
}
ECHO_TOOL = {
    "type": "function",
    "name": "echo",
    "description": "Echo the text back.",
    "parameters": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


class Client:
    """A test client that validates every event in both directions."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def send(self, event: dict[str, Any]) -> None:
        assert_client_event(event)
        await self.ws.send(json.dumps(event))

    async def recv(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            event = json.loads(await self.ws.recv())
        assert_server_event(event)
        return event

    async def until(self, kind: str) -> list[dict[str, Any]]:
        """Receive events up to and including the first of type ``kind``."""
        events = []
        while True:
            event = await self.recv()
            events.append(event)
            if event["type"] == kind:
                return events

    async def say(self, text: str) -> None:
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        await self.until("conversation.item.done")

    async def output(self, call_id: str, output: str) -> None:
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )


@asynccontextmanager
async def client(
    server: LocalRealtimeServer,
    *,
    query: str = "?model=gpt-realtime",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Client]:
    async with connect(server.url + query, headers=headers or {}) as ws:
        c = Client(ws)
        assert (await c.recv())["type"] == "session.created"
        yield c


def check_all_sent(server: LocalRealtimeServer) -> None:
    """Every event the server recorded as sent is a valid GA server event."""
    for record in server.connections:
        for event in record.sent:
            assert_server_event(event)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_text_turn_lifecycle() -> None:
    """A text turn streams the full GA lifecycle in order."""
    async with LocalRealtimeServer(
        ScriptedBrain([Turn(text="Hello! Nice to meet you today.")])
    ) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            assert (await c.recv())["type"] == "session.updated"
            await c.say("hi")
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
        check_all_sent(server)
    kinds = types(events)
    assert kinds[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    # As recorded: conversation.item.done comes before response.output_item.done.
    assert kinds[-5:] == [
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    padded = [e for e in events if e["type"] == "response.output_text.delta"]
    assert all(len(e["delta"]) + len(e["obfuscation"]) == 16 for e in padded)
    assert "object" not in events[1]["item"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Hello! Nice to meet you today."
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["output_tokens"] > 0
    assert done["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello! Nice to meet you today."}
    ]
    assert server.connections[0].received_types() == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]


async def test_tool_call_turn_then_answer() -> None:
    """A function call streams its arguments; the output plus one response.create gets an answer."""
    brain = ScriptedBrain([Turn(calls=[Call("echo", {"text": "hi"})])])
    async with LocalRealtimeServer(brain) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.say("echo hi")
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
            added = next(e for e in events if e["type"] == "response.output_item.added")
            assert added["item"]["status"] == "in_progress" and added["item"]["arguments"] == ""
            args_done = next(
                e for e in events if e["type"] == "response.function_call_arguments.done"
            )
            call_id = added["item"]["call_id"]
            assert args_done["name"] == "echo" and args_done["call_id"] == call_id
            assert call_id.startswith("call_") and len(call_id) == len("call_") + 16
            fragments = [
                e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
            ]
            assert len(fragments) > 1 and json.loads("".join(fragments)) == {"text": "hi"}
            call = events[-1]["response"]["output"][0]
            assert call["type"] == "function_call" and call["status"] == "completed"
            await c.output(call_id, "hi")
            assert types(await c.until("conversation.item.done"))[-2:] == [
                "conversation.item.added",
                "conversation.item.done",
            ]
            await c.send({"type": "response.create"})
            answer = await c.until("response.done")
        check_all_sent(server)
    assert "hi" in answer[-1]["response"]["output"][0]["content"][0]["text"]


async def test_parallel_calls_and_preamble() -> None:
    """A preamble message and two calls share one response with distinct indexes and ids."""
    brain = ScriptedBrain([Turn(text="Let me check.", calls=[Call("a", {}), Call("b", {"x": 1})])])
    async with LocalRealtimeServer(brain) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
            output = events[-1]["response"]["output"]
            assert [o["type"] for o in output] == ["message", "function_call", "function_call"]
            assert len({o["call_id"] for o in output[1:]}) == 2
            indexes = [
                e["output_index"] for e in events if e["type"] == "response.output_item.done"
            ]
            assert indexes == [0, 1, 2]
            for o in output[1:]:
                await c.output(o["call_id"], "done")
                await c.until("conversation.item.done")
            await c.send({"type": "response.create"})
            assert (await c.until("response.done"))[-1]["response"]["status"] == "completed"
        check_all_sent(server)


async def test_second_response_create_is_rejected_while_active() -> None:
    """response.create during an active response errors with the real code and event_id echo."""
    slow = Faults(delay={"response.output_text.delta": 0.05})
    brain = ScriptedBrain([Turn(text="one two three four five six seven eight nine ten")])
    async with LocalRealtimeServer(brain, faults=slow) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.send({"type": "response.create"})
            created = (await c.until("response.created"))[-1]
            await c.send({"type": "response.create", "event_id": "evt_client_42"})
            events = await c.until("response.done")
        check_all_sent(server)
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1
    error = errors[0]["error"]
    assert error["code"] == "conversation_already_has_active_response"
    assert error["event_id"] == "evt_client_42"
    assert created["response"]["id"] in error["message"]
    assert "response.created" not in types(events)


async def test_cancel_mid_response() -> None:
    """response.cancel closes the partial item as incomplete and ends with client_cancelled."""
    slow = Faults(delay={"response.output_text.delta": 0.05})
    brain = ScriptedBrain([Turn(text="a long answer that streams slowly word by word for a while")])
    async with LocalRealtimeServer(brain, faults=slow) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.send({"type": "response.create"})
            await c.until("response.output_text.delta")
            await c.send({"type": "response.cancel"})
            events = await c.until("response.done")
            done = events[-1]["response"]
            assert done["status"] == "cancelled"
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            item_done = next(e for e in events if e["type"] == "response.output_item.done")
            assert item_done["item"]["status"] == "incomplete"
            await c.send({"type": "response.cancel", "event_id": "c2"})
            error = (await c.until("error"))[-1]
            assert error["error"]["code"] == "response_cancel_not_active"
            assert error["error"]["event_id"] == "c2"
        check_all_sent(server)


async def test_out_of_band_response_runs_in_parallel() -> None:
    """A conversation "none" response runs beside the default one and stays out of the conversation."""
    slow = Faults(delay={"response.output_text.delta": 0.02})
    brain = ScriptedBrain(
        [Turn(text="main answer with several words in it"), Turn(text="greeting")]
    )
    async with LocalRealtimeServer(brain, faults=slow) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.say("hello")
            await c.send({"type": "response.create"})
            await c.until("response.created")
            oob = {
                "type": "response.create",
                "response": {
                    "conversation": "none",
                    "metadata": {"purpose": "classify"},
                    "output_modalities": ["text"],
                    "input": [
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "hi"}],
                        }
                    ],
                },
            }
            await c.send(oob)
            done: dict[str, dict[str, Any]] = {}
            while len(done) < 2:
                event = await c.recv()
                assert event["type"] != "error"
                if event["type"] == "response.done":
                    done[event["response"]["conversation_id"] or "none"] = event["response"]
            engine = server.connections[0].engine
            assert engine is not None
        check_all_sent(server)
    assert done["none"]["metadata"] == {"purpose": "classify"}
    oob_item = done["none"]["output"][0]["id"]
    assert all(item["id"] != oob_item for item in engine.items)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def send_audio(c: Client, audio: bytes, chunk_ms: int = 100) -> None:
    step = chunk_ms * 48
    for start in range(0, len(audio), step):
        await c.send(
            {"type": "input_audio_buffer.append", "audio": b64(audio[start : start + step])}
        )


async def test_server_vad_turn_and_barge_in() -> None:
    """Speech then silence commits a user item and auto-responds; new speech cancels the response."""
    slow = Faults(delay={"response.output_audio.delta": 0.05})
    brain = ScriptedBrain(
        [Turn(text="a fairly long spoken answer so that there is time to interrupt it")]
    )
    async with LocalRealtimeServer(brain, faults=slow) as server:
        async with client(server) as c:
            await send_audio(c, silence_pcm16(200) + sine_pcm16(400) + silence_pcm16(700))
            events = await c.until("response.created")
            assert types(events)[:6] == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
                "response.created",
            ]
            started, stopped = events[0], events[1]
            assert started["audio_start_ms"] == 0  # 200 ms onset minus 300 ms prefix padding
            assert stopped["audio_end_ms"] == 600
            assert events[2]["item_id"] == started["item_id"] == events[3]["item"]["id"]
            assert events[3]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
            await c.until("response.output_audio.delta")
            await send_audio(c, sine_pcm16(200))
            events = await c.until("response.done")
            assert "input_audio_buffer.speech_started" in types(events)
            assert events[-1]["response"]["status_details"] == {
                "type": "cancelled",
                "reason": "turn_detected",
            }
        check_all_sent(server)


async def test_audio_output_mode() -> None:
    """The default audio modality streams PCM16 deltas with a transcript and audio content parts."""
    async with LocalRealtimeServer(
        ScriptedBrain([Turn(text="Hi there")]), audio_chunk_ms=20
    ) as server:
        async with client(server) as c:
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
        check_all_sent(server)
    part = next(e for e in events if e["type"] == "response.content_part.added")["part"]
    assert part == {"type": "audio", "transcript": ""}
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) > 0 and len(audio) % 2 == 0
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Hi there"
    assert "response.output_audio.done" in types(events)
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "output_audio", "transcript": "Hi there"}
    ]


async def test_fault_drop_after_sent() -> None:
    """drop_after_sent aborts the TCP connection right after the chosen event, without a close frame."""
    faults = [Faults(drop_after_sent="response.done"), None]
    async with LocalRealtimeServer(
        ScriptedBrain([Turn(text="one"), Turn(text="two")]), faults=faults
    ) as server:
        async with client(server) as c:
            await c.send({"type": "response.create"})
            await c.until("response.done")
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.code is None
        # The second connection has no faults and continues the script.
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
            assert events[-1]["response"]["output"][0]["content"][0]["text"] == "two"
        check_all_sent(server)


async def test_fault_drop_after_function_call_output() -> None:
    """drop_after_received with the function_call_output pseudo-type drops on the tool result."""
    brain = ScriptedBrain([Turn(calls=[Call("echo", {"text": "x"}, call_id="call_1")])])
    async with LocalRealtimeServer(
        brain, faults=Faults(drop_after_received="function_call_output")
    ) as server:
        async with client(server) as c:
            await c.send({"type": "response.create"})
            await c.until("response.done")
            await c.output("call_1", "x")
            with pytest.raises(ConnectionClosed):
                while True:  # rate_limits.updated may still be on its way
                    await c.recv()
        record = await server.wait_for(lambda r: r.closed.is_set())
        assert record.received_types()[-1] == "conversation.item.create"
        check_all_sent(server)


async def test_fault_inject_and_error_after() -> None:
    """inject_after sends a raw frame and error_after an error event after the chosen event."""
    faults = Faults(
        inject_after=[("session.created", "{not json")],
        error_after=[("session.created", {"type": "server_error", "message": "boom"})],
    )
    async with LocalRealtimeServer(faults=faults) as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            with anyio.fail_after(5):
                first = json.loads(await ws.recv())
                raw = await ws.recv()
                error = json.loads(await ws.recv())
        check_all_sent(server)
    assert first["type"] == "session.created" and raw == "{not json"
    assert_server_event(error)
    assert error["error"]["type"] == "server_error" and error["error"]["message"] == "boom"


async def test_fault_duplicate_call_ids() -> None:
    """duplicate_call_ids issues each call twice with one call_id and distinct item ids."""
    brain = ScriptedBrain([Turn(calls=[Call("echo", {"text": "x"})])])
    async with LocalRealtimeServer(brain, faults=Faults(duplicate_call_ids=True)) as server:
        async with client(server) as c:
            await c.send({"type": "response.create"})
            output = (await c.until("response.done"))[-1]["response"]["output"]
        check_all_sent(server)
    assert output[0]["call_id"] == output[1]["call_id"]
    assert output[0]["id"] != output[1]["id"]


async def test_fault_auto_response_after_output() -> None:
    """auto_response_after_output starts a server response so the client's response.create loses."""
    brain = ScriptedBrain(
        [Turn(calls=[Call("echo", {"text": "x"}, call_id="call_1")]), Turn(text="auto")]
    )
    async with LocalRealtimeServer(brain, faults=Faults(auto_response_after_output=True)) as server:
        async with client(server) as c:
            await c.send(TEXT_MODE)
            await c.until("session.updated")
            await c.send({"type": "response.create"})
            await c.until("response.done")
            await c.output("call_1", "x")
            await c.send({"type": "response.create", "event_id": "mine"})
            events = await c.until("response.done")
        check_all_sent(server)
    error = next(e for e in events if e["type"] == "error")["error"]
    assert (
        error["code"] == "conversation_already_has_active_response" and error["event_id"] == "mine"
    )
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "auto"


async def test_fault_expire_after() -> None:
    """expire_after ends the session with the real session_expired error, then closes."""
    async with LocalRealtimeServer(faults=Faults(expire_after=0.2)) as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            with anyio.fail_after(5):
                created = json.loads(await ws.recv())
                error = json.loads(await ws.recv())
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
        check_all_sent(server)
    assert abs(created["session"]["expires_at"] - time.time()) < 5  # advertises the short lifetime
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes.",
        "param": None,
        "event_id": None,
    }


async def test_wrong_path_is_an_http_404() -> None:
    """Only the Realtime paths upgrade; another path is answered with HTTP 404 and OpenAI JSON."""
    async with LocalRealtimeServer(api_key="sk-good") as server:
        with anyio.fail_after(5), pytest.raises(HandshakeError) as info:
            async with connect(
                f"ws://127.0.0.1:{server.port}/v1/other?model=gpt-realtime",
                headers={"Authorization": "Bearer sk-good"},
            ):
                pass
    assert info.value.status_code == 404
    assert json.loads(info.value.body)["error"]["code"] is None


@pytest.mark.parametrize(
    ("query", "headers", "close", "code"),
    [
        ("?model=gpt-realtime", {"Authorization": "Bearer sk-bad"}, 3000, "invalid_api_key"),
        ("?model=gpt-realtime", {}, 3000, None),
        ("", {"Authorization": "Bearer sk-good"}, 4000, "missing_model"),
        ("?model=gpt-6-realtime", {"Authorization": "Bearer sk-good"}, 4000, "invalid_model"),
        (
            "?model=gpt-realtime",
            {"Authorization": "Bearer sk-good", "OpenAI-Beta": "realtime=v1"},
            4000,
            "beta_api_shape_disabled",
        ),
    ],
)
async def test_refused_sessions_are_an_error_then_a_close(
    query: str, headers: dict[str, str], close: int, code: str | None
) -> None:
    """Like the real service: the upgrade succeeds, one error event follows, then the close."""
    async with LocalRealtimeServer(api_key="sk-good") as server:
        async with connect(server.url + query, headers=headers) as ws:
            with anyio.fail_after(5):
                error = json.loads(await ws.recv())
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
        check_all_sent(server)
    assert error["type"] == "error"
    assert (error["error"]["type"], error["error"]["code"]) == ("invalid_request_error", code)
    assert info.value.code == close
    assert info.value.reason == (
        f"invalid_request_error.{code}" if code else "invalid_request_error"
    )
    assert "sk-bad" not in error["error"]["message"]  # a key is shown masked, if at all


async def test_azure_path_and_api_key_header() -> None:
    """/openai/v1/realtime takes any deployment name and the api-key header, like Azure."""
    async with LocalRealtimeServer(api_key="sk-good") as server:
        url = f"ws://127.0.0.1:{server.port}/openai/v1/realtime?model=my-deployment"
        async with connect(url, headers={"api-key": "sk-good"}) as ws:
            c = Client(ws)
            created = await c.recv()
            assert created["session"]["model"] == "my-deployment"
            await c.send({"type": "input_audio_buffer.clear"})
            assert (await c.recv())["type"] == "input_audio_buffer.cleared"
        check_all_sent(server)


async def test_rule_brain_over_the_wire() -> None:
    """The default RuleBrain calls a declared tool named by the user, then uses its output."""
    async with LocalRealtimeServer(RuleBrain()) as server:
        async with client(server) as c:
            await c.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "output_modalities": ["text"],
                        "tools": [ECHO_TOOL],
                    },
                }
            )
            await c.until("session.updated")
            await c.say("echo hello world")
            await c.send({"type": "response.create"})
            call = (await c.until("response.done"))[-1]["response"]["output"][0]
            assert call["name"] == "echo" and json.loads(call["arguments"]) == {
                "text": "hello world"
            }
            await c.output(call["call_id"], "hello world")
            await c.send({"type": "response.create"})
            answer = (await c.until("response.done"))[-1]["response"]["output"][0]
        check_all_sent(server)
    assert "hello world" in answer["content"][0]["text"]


# The openai package's realtime client is built on the `websockets` asyncio client and
# calls asyncio directly, so this test can only run on the asyncio backend.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_openai_sdk_client(anyio_backend: str) -> None:
    """The openai package's own AsyncOpenAI realtime client completes a text turn and a tool turn."""
    openai = pytest.importorskip("openai")
    brain = ScriptedBrain(
        [Turn(text="Hello from the local server."), Turn(calls=[Call("echo", {"text": "hi"})])]
    )
    async with LocalRealtimeServer(brain, api_key="sk-test") as server:
        sdk = openai.AsyncOpenAI(api_key="sk-test", base_url=server.http_url)
        secret = await sdk.realtime.client_secrets.create(
            session={"type": "realtime", "instructions": "Be brief."}
        )
        assert secret.value.startswith("ek_")
        with anyio.fail_after(10):
            async with sdk.realtime.connect(model="gpt-realtime") as conn:
                created = await conn.recv()
                assert created.type == "session.created"
                await conn.session.update(
                    session={
                        "type": "realtime",
                        "output_modalities": ["text"],
                        "tools": [ECHO_TOOL],
                    }
                )
                await conn.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hi"}],
                    }
                )
                await conn.response.create()
                text = ""
                async for event in conn:
                    if event.type == "response.output_text.delta":
                        text += event.delta
                    if event.type == "response.done":
                        break
                assert text == "Hello from the local server."
                await conn.response.create()
                async for event in conn:
                    if event.type == "response.done":
                        call = event.response.output[0]
                        break
                await conn.conversation.item.create(
                    item={"type": "function_call_output", "call_id": call.call_id, "output": "hi"}
                )
                await conn.response.create()
                async for event in conn:
                    if event.type == "response.done":
                        assert event.response.status == "completed"
                        break
        record = server.connections[0]
        assert record.headers["authorization"] == "Bearer sk-test"
        assert record.query == {"model": "gpt-realtime"}
        for event in record.received:
            assert_client_event(event)
        check_all_sent(server)
