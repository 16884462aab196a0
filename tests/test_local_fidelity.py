"""The local server behaves like the recorded real service: models and their defaults, null
fields, event order and shapes, sidebands, Azure, session.close, binary frames and logging."""

from __future__ import annotations

import json
import logging
import typing
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from conformance import assert_server_event

from rtagent._errors import ConnectionClosed
from rtagent._transport import connect
from rtagent.local import (
    Call,
    Conversation,
    Engine,
    LocalRealtimeServer,
    RuleBrain,
    ScriptedBrain,
    Turn,
)
from rtagent.local._audio import silence_pcm16, sine_pcm16
from rtagent.local._models import BUILTIN_INSTRUCTIONS, REALTIME_MODELS, defaults_for
from rtagent.local._server import run_server
from rtagent.local._wire import Flavor

TEXT = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}


def drain(engine: Engine, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Handle one client event and every event streamed after it; all are valid GA events."""
    out = engine.handle(event)
    while (ev := engine.next_event()) is not None:
        out.append(ev)
    for ev in out:
        assert_server_event(ev)
    return out


def kinds(events: list[dict[str, Any]]) -> list[str]:
    """Event types, with the item type of item events, consecutive deltas collapsed."""
    out: list[str] = []
    for e in events:
        kind = e["type"]
        if "item" in e and isinstance(e["item"], dict):
            kind += ":" + e["item"]["type"]
        if out and kind.endswith(".delta") and out[-1] == kind:
            continue
        out.append(kind)
    return out


def say(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


# ---- models ---------------------------------------------------------------------------------


def test_the_model_list_is_the_openai_packages() -> None:
    """The hard-coded realtime models are exactly the ``model`` Literal of the openai package."""
    from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

    def literals(annotation: Any) -> list[str]:
        found: list[str] = []
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is typing.Literal:
                found += list(typing.get_args(arg))
            else:
                found += literals(arg)
        return found

    annotation = RealtimeSessionCreateRequest.model_fields["model"].annotation
    assert sorted(REALTIME_MODELS) == sorted(literals(annotation))


@pytest.mark.parametrize(
    ("model", "voice", "silence"),
    [("gpt-realtime", "alloy", 200), ("gpt-realtime-2.1", "marin", 500), ("gpt-realtime-mini", "alloy", 200)],
)
def test_session_defaults_per_model(model: str, voice: str, silence: int) -> None:
    """session.created carries the model's recorded voice, silence duration and built-in instructions."""
    (created,) = Engine(model=model).start()
    session = created["session"]
    assert session["audio"]["output"]["voice"] == voice
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == silence
    assert session["instructions"] == BUILTIN_INSTRUCTIONS
    assert defaults_for(model).phases is model.startswith("gpt-realtime-2")


def test_empty_instructions_keep_the_built_in_ones() -> None:
    """As recorded, session.update with instructions "" leaves the built-in instructions."""
    engine = Engine()
    engine.start()
    (updated,) = drain(engine, {"type": "session.update", "session": {"type": "realtime", "instructions": ""}})
    assert updated["session"]["instructions"] == BUILTIN_INSTRUCTIONS


# ---- null means unset ------------------------------------------------------------------------


def test_null_optional_fields_are_unset_in_response_create() -> None:
    """instructions/tools/voice null in response.create are ignored (livekit sends them on every reply)."""
    engine = Engine(ScriptedBrain([Turn(text="hi")]))
    engine.start()
    drain(engine, TEXT)
    events = drain(
        engine,
        {
            "type": "response.create",
            "response": {
                "instructions": None,
                "tools": None,
                "tool_choice": None,
                "output_modalities": None,
                "audio": {"output": {"voice": None}},
                "metadata": {"k": "v"},
            },
        },
    )
    assert "error" not in kinds(events)
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["metadata"] == {"k": "v"} and done["output_modalities"] == ["text"]


def test_null_in_session_update_is_unset_unless_null_means_something() -> None:
    """A null instructions leaves them; a null turn_detection still turns VAD off."""
    engine = Engine()
    engine.start()
    update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": None,
            "tools": None,
            "audio": {"input": {"turn_detection": None}, "output": {"voice": None, "speed": None}},
        },
    }
    (updated,) = drain(engine, update)
    assert updated["type"] == "session.updated"
    assert updated["session"]["instructions"] == BUILTIN_INSTRUCTIONS
    assert updated["session"]["audio"]["input"]["turn_detection"] is None
    assert updated["session"]["audio"]["output"]["speed"] == 1.0
    (error,) = drain(engine, {"type": "session.update", "session": {"type": None}})
    assert error["error"]["code"] == "invalid_type"  # a required field is never "unset"


# ---- order and shapes --------------------------------------------------------------------------


def test_items_end_in_the_conversation_before_the_response() -> None:
    """conversation.item.done precedes response.output_item.done; rate_limits (tokens) follows response.done."""
    engine = Engine(ScriptedBrain([Turn(text="Hello there")]), model="gpt-realtime")
    engine.start()
    drain(engine, TEXT)
    drain(engine, say("hi"))
    events = drain(engine, {"type": "response.create"})
    assert kinds(events) == [
        "response.created",
        "response.output_item.added:message",
        "conversation.item.added:message",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done:message",
        "response.output_item.done:message",
        "response.done",
        "rate_limits.updated",
    ]
    assert [r["name"] for r in events[-1]["rate_limits"]] == ["tokens"]
    # The first item is the user's: the real service then reports no previous_item_id on done.
    added = next(e for e in events if e["type"] == "conversation.item.added")
    done = next(e for e in events if e["type"] == "conversation.item.done")
    assert added["previous_item_id"] == engine.items[0]["id"] and done["previous_item_id"] is None
    assert "phase" not in added["item"] and "object" not in added["item"]


def test_gpt_realtime_2_streams_a_preamble_while_the_call_opens() -> None:
    """With gpt-realtime-2.x the commentary preamble ends while the call's arguments stream."""
    brain = ScriptedBrain([Turn(text="Let me check.", calls=[Call("lookup", {"q": "x"})]), Turn(text="Done.")])
    engine = Engine(brain, model="gpt-realtime-2.1")
    engine.start()
    drain(engine, TEXT)
    events = drain(engine, {"type": "response.create"})
    assert kinds(events)[1:-2] == [
        "response.output_item.added:message",
        "conversation.item.added:message",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_item.added:function_call",
        "conversation.item.added:function_call",
        "response.function_call_arguments.delta",
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done:message",
        "response.output_item.done:message",
        "response.function_call_arguments.done",
        "conversation.item.done:function_call",
        "response.output_item.done:function_call",
    ]
    assert events[1]["item"]["phase"] == "commentary"
    for e in events:
        if e["type"].endswith(".delta"):
            assert len(e["delta"]) + len(e["obfuscation"]) in (16, 32)
    call = events[-2]["response"]["output"][1]
    drain(engine, {"type": "conversation.item.create",
                   "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "y"}})
    answer = drain(engine, {"type": "response.create"})
    assert answer[1]["item"]["phase"] == "final_answer"


def test_an_item_created_during_a_response_enters_after_it() -> None:
    """A conversation.item.create sent while a response runs is added after its response.done."""
    engine = Engine(ScriptedBrain([Turn(text="a reply of several words")]))
    engine.start()
    drain(engine, TEXT)
    out = engine.handle({"type": "response.create"})
    assert engine.handle(say("meanwhile")) == []
    while (event := engine.next_event()) is not None:
        out.append(event)
    assert kinds(out)[-4:] == [
        "response.done",
        "rate_limits.updated",
        "conversation.item.added:message",
        "conversation.item.done:message",
    ]


def test_input_transcription_streams_after_the_response_starts() -> None:
    """Transcription deltas follow response.created, interleave with the reply, then complete."""
    engine = Engine(ScriptedBrain([Turn(text="a fairly long spoken answer to interleave with")]))
    engine.start()
    drain(engine, {"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}}}})
    audio = silence_pcm16(100) + sine_pcm16(500) + silence_pcm16(900)
    import base64

    events = drain(engine, {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()})
    order = [e["type"] for e in events]
    created = order.index("response.created")
    first = order.index("conversation.item.input_audio_transcription.delta")
    completed = order.index("conversation.item.input_audio_transcription.completed")
    assert created < first < completed < order.index("response.done")
    assert any(t.startswith("response.output_audio") for t in order[first:completed])
    usage = events[completed]["usage"]
    assert usage["type"] == "duration"


def test_binary_frames_are_refused() -> None:
    """A binary frame gets an invalid_event error; events are JSON text frames."""
    engine = Engine()
    engine.start()
    (error,) = engine.handle_text(b'{"type": "response.create"}')
    assert_server_event(error)
    assert error["error"]["code"] == "invalid_event" and engine.has_active_response is False


def test_rule_brain_says_what_it_cannot_do() -> None:
    """Asked something it cannot answer, the RuleBrain says so and never parrots the question."""
    question = "What is the capital of France?"
    convo = Conversation(
        items=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}],
        tools=[{"type": "function", "name": "get_weather", "description": "Weather.", "parameters": {}}],
    )
    text = str(RuleBrain().reply(convo).text)
    assert "cannot" in text and "get_weather" in text and "capital" not in text


# ---- over the wire -------------------------------------------------------------------------


async def test_session_close_ends_the_session_cleanly() -> None:
    """session.close is accepted: the server closes the socket normally, with no error."""
    async with LocalRealtimeServer() as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            with anyio.fail_after(5):
                assert json.loads(await ws.recv())["type"] == "session.created"
                await ws.send(json.dumps({"type": "session.close"}))
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
    assert info.value.code == 1000
    assert all(e["type"] != "error" for e in server.connections[0].sent)


async def test_a_sideband_starts_without_session_created_and_plays_audio_on_the_call() -> None:
    """?call_id= gets no session.created; audio is announced with output_audio_buffer.* instead of deltas."""
    async with LocalRealtimeServer(ScriptedBrain([Turn(text="Hello!")])) as server:
        call = server.calls.create(model="gpt-realtime")  # a WebRTC call, as a browser starts one
        async with connect(f"{server.url}?call_id={call.id}") as ws:
            with anyio.fail_after(5):
                await ws.send(json.dumps({"type": "response.create"}))
                events = []
                while not events or events[-1]["type"] != "output_audio_buffer.stopped":
                    events.append(json.loads(await ws.recv()))
    for event in events:
        assert_server_event(event)
    order = [e["type"] for e in events]
    assert order[0] == "response.created" and "session.created" not in order
    assert "response.output_audio.delta" not in order
    assert order.index("output_audio_buffer.started") < order.index("response.output_audio.done")
    assert order[-3:] == ["response.done", "rate_limits.updated", "output_audio_buffer.stopped"]


def test_azure_repeats_the_part_and_sends_no_rate_limits() -> None:
    """On Azure's path, content_part events carry "content" too, and rate_limits.updated never comes."""
    engine = Engine(ScriptedBrain([Turn(text="hi")]), flavor=Flavor(azure=True))
    engine.start()
    drain(engine, TEXT)
    events = drain(engine, {"type": "response.create"})
    part = next(e for e in events if e["type"] == "response.content_part.added")
    assert part["content"] == part["part"]
    assert "rate_limits.updated" not in kinds(events)


async def test_connections_and_events_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """rtagent.local logs connections and event types at INFO, never the API key."""
    caplog.set_level(logging.INFO, logger="rtagent.local")
    async with LocalRealtimeServer(api_key="sk-very-secret") as server:
        for key in ("sk-very-secret", "sk-wrong-secret"):
            async with connect(server.url + "?model=gpt-realtime", headers={"Authorization": f"Bearer {key}"}) as ws:
                with anyio.fail_after(5):
                    await ws.recv()
            last = len(server.connections) - 1
            await server.wait_for(lambda r, last=last: r.index == last and r.closed.is_set())
    text = caplog.text
    assert "connection 0: opened" in text and "-> session.created" in text
    assert "connection 1: refused (invalid_request_error.invalid_api_key, close 3000)" in text
    assert "secret" not in text


async def test_rtagent_serve_logs_at_info() -> None:
    """run_server (rtagent serve) turns the rtagent.local logger on at INFO."""
    logger = logging.getLogger("rtagent.local")
    level = logger.level
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server, "127.0.0.1", 0)
            with anyio.fail_after(5):
                while logger.level != logging.INFO:
                    await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    finally:
        logger.setLevel(level)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
