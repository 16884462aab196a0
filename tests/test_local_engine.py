"""Sans-I/O tests of the local server's engine and its parts, brains, validation and VAD.

The parts (session config, conversation store, input audio, responses, usage, the
error builder and the engine's dispatch table) are also tested on their own.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conformance import assert_client_event, assert_server_event

from rtagent.local import Call, Conversation, Engine, RuleBrain, ScriptedBrain, Turn
from rtagent.local._api_error import (
    SESSION_EXPIRED,
    ApiError,
    incorrect_api_key,
    injected_error_body,
    invalid_url,
)
from rtagent.local._audio import EnergyVad, silence_pcm16, sine_pcm16
from rtagent.local._brains import fill_arguments
from rtagent.local._conversation_store import ConversationStore
from rtagent.local._input_audio import InputAudio
from rtagent.local._responses import Responses
from rtagent.local._session_config import (
    SessionConfig,
    check_session_update,
    default_session,
    merge_session,
)
from rtagent.local._specs import CLIENT_EVENT_TYPES
from rtagent.local._usage import UsageMeter, tokens
from rtagent.local._validate import Invalid
from rtagent.local._wire import Ids

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


def response_done(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``response`` of the last response.done among ``events``."""
    return next(e for e in reversed(events) if e["type"] == "response.done")["response"]


def feed(engine: Engine, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one valid client event, then drain every streamed event; all are validated."""
    assert_client_event(event)
    out = engine.handle(event)
    while (ev := engine.next_event()) is not None:
        out.append(ev)
    for ev in out:
        assert_server_event(ev)
    return out


def user(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def test_session_created_is_full_default() -> None:
    """session.created carries the complete GA default session."""
    engine = Engine(model="gpt-realtime-2")
    (event,) = engine.start()
    assert_server_event(event)
    session = event["session"]
    assert session["type"] == "realtime" and session["object"] == "realtime.session"
    assert session["id"].startswith("sess_") and session["model"] == "gpt-realtime-2"
    assert session["output_modalities"] == ["audio"] and session["tools"] == []
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["max_output_tokens"] == "inf" and session["tracing"] is None


def test_session_update_merges_nested_fields() -> None:
    """session.update changes only the fields sent, deep inside audio too."""
    engine = Engine()
    engine.start()
    update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}
            },
        },
    }
    (event,) = feed(engine, update)
    session = event["session"]
    assert event["type"] == "session.updated"
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 800
    assert session["audio"]["input"]["turn_detection"]["threshold"] == 0.5
    assert session["audio"]["output"]["voice"] == "marin"


def test_session_update_rejects_bad_fields_naming_them() -> None:
    """Unknown, missing and mistyped session fields give errors whose param names the field."""
    engine = Engine()
    engine.start()
    cases = [
        ({"type": "realtime", "temperature": 0.8}, "unknown_parameter", "session.temperature"),
        ({"instructions": "x"}, "missing_required_parameter", "session.type"),
        ({"type": "realtime", "instructions": 5}, "invalid_type", "session.instructions"),
        (
            {"type": "realtime", "output_modalities": ["video"]},
            "invalid_value",
            "session.output_modalities[0]",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function"}]},
            "missing_required_parameter",
            "session.tools[0].name",
        ),
        (
            {"type": "realtime", "max_output_tokens": 0},
            "integer_below_min_value",
            "session.max_output_tokens",
        ),
        ({"type": "realtime", "model": "other"}, "invalid_value", "session.model"),
    ]
    for session, code, param in cases:
        (event,) = engine.handle(
            {"type": "session.update", "event_id": "evt_1", "session": session}
        )
        assert_server_event(event)
        assert event["type"] == "error", session
        assert (event["error"]["code"], event["error"]["param"]) == (code, param)
        assert event["error"]["event_id"] == "evt_1"
    assert engine.session["instructions"].startswith("Your knowledge cutoff")  # unchanged


def test_item_create_chains_previous_item_ids() -> None:
    """Items chain by previous_item_id; 'root' inserts first; an unknown one is rejected."""
    engine = Engine()
    engine.start()
    first = feed(engine, user("one"))
    assert [e["type"] for e in first] == ["conversation.item.added", "conversation.item.done"]
    assert first[0]["previous_item_id"] is None
    second = feed(engine, user("two"))
    assert second[0]["previous_item_id"] == first[0]["item"]["id"]
    root = feed(engine, {**user("zero"), "previous_item_id": "root"})
    assert root[0]["previous_item_id"] is None
    assert [i["content"][0]["text"] for i in engine.items] == ["zero", "one", "two"]
    (err,) = feed(engine, {**user("x"), "previous_item_id": "item_missing"})
    assert err["type"] == "error" and err["error"]["param"] == "previous_item_id"
    assert len(engine.items) == 3


def test_item_create_errors() -> None:
    """Orphan outputs, assistant audio and malformed items are rejected and not added."""
    engine = Engine()
    engine.start()
    orphan = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_x", "output": "{}"},
    }
    (err,) = feed(engine, orphan)
    assert err["error"]["param"] == "item.call_id"
    audio = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": "x"}],
        },
    }
    (err,) = feed(engine, audio)
    assert err["error"]["param"] == "item.content[0].type"
    bad = [
        {"type": "conversation.item.create", "item": {"type": "user", "text": "hi"}},
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c", "output": {}},
        },
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_image", "image_url": "x"}],
            },
        },
    ]
    for event in bad:
        (err,) = engine.handle(event)
        assert_server_event(err)
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert engine.items == []


def test_retrieve_delete_truncate() -> None:
    """Retrieve returns the item, delete removes it, truncate checks the audio length."""
    engine = Engine(ScriptedBrain([Turn(text="Hello there friend")]))
    engine.start()
    (added, _) = feed(engine, user("hi"))
    (got,) = feed(engine, {"type": "conversation.item.retrieve", "item_id": added["item"]["id"]})
    assert got["type"] == "conversation.item.retrieved"
    events = feed(engine, {"type": "response.create"})  # audio output by default
    item_id = response_done(events)["output"][0]["id"]
    (bad,) = feed(
        engine,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 10**6,
        },
    )
    assert bad["type"] == "error" and bad["error"]["param"] == "audio_end_ms"
    (ok,) = feed(
        engine,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 50,
        },
    )
    assert ok["type"] == "conversation.item.truncated"
    (full,) = feed(engine, {"type": "conversation.item.retrieve", "item_id": item_id})
    assert len(base64.b64decode(full["item"]["content"][0]["audio"])) == 50 * 48
    (gone,) = feed(engine, {"type": "conversation.item.delete", "item_id": added["item"]["id"]})
    assert gone == {
        "event_id": gone["event_id"],
        "type": "conversation.item.deleted",
        "item_id": added["item"]["id"],
    }
    (err,) = feed(engine, {"type": "conversation.item.delete", "item_id": added["item"]["id"]})
    assert err["type"] == "error"


def test_protocol_errors_keep_going() -> None:
    """Malformed JSON, unknown types and bad shapes become invalid_request_error events."""
    engine = Engine()
    engine.start()
    for raw in (
        "{oops",
        "[1]",
        json.dumps({"type": "response.audio.delta"}),
        json.dumps({"event_id": "e"}),
    ):
        (event,) = engine.handle_text(raw)
        assert_server_event(event)
        assert event["error"]["type"] == "invalid_request_error"
    (event,) = engine.handle(
        {"type": "response.create", "response": {"modalities": ["text"]}, "event_id": "e9"}
    )
    assert (
        event["error"]["code"] == "unknown_parameter"
        and event["error"]["param"] == "response.modalities"
    )
    assert event["error"]["event_id"] == "e9"


def test_commit_empty_buffer() -> None:
    """Committing less than 100 ms of audio is input_audio_buffer_commit_empty."""
    engine = Engine()
    engine.start()
    (err,) = feed(engine, {"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert err["error"]["code"] == "input_audio_buffer_commit_empty"
    feed(
        engine,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    feed(
        engine,
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(sine_pcm16(200)).decode()},
    )
    events = feed(engine, {"type": "input_audio_buffer.commit"})
    assert [e["type"] for e in events] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[1]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert not engine.has_active_response  # commit never starts a response


def test_energy_vad_timing() -> None:
    """The VAD reports speech start (minus prefix padding) and stop after the silence window."""
    vad = EnergyVad(prefix_padding_ms=100, silence_duration_ms=300)
    from rtagent.local._audio import decode_samples

    audio = silence_pcm16(500) + sine_pcm16(400) + silence_pcm16(400)
    changes = vad.feed(decode_samples(audio, "audio/pcm"), 24000)
    assert [(c.kind, c.ms) for c in changes] == [("started", 400), ("stopped", 900)]


def test_max_output_tokens_makes_incomplete() -> None:
    """A reply longer than max_output_tokens ends incomplete with reason max_output_tokens."""
    engine = Engine(ScriptedBrain([Turn(text="word " * 50)]))
    engine.start()
    events = feed(
        engine,
        {
            "type": "response.create",
            "response": {"max_output_tokens": 5, "output_modalities": ["text"]},
        },
    )
    done = response_done(events)
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert done["output"][0]["status"] == "incomplete"


def test_scripted_brain_turns_and_fallback() -> None:
    """ScriptedBrain plays turns in order, computes lambdas, then summarises the last output."""
    brain = ScriptedBrain(
        [Turn(text=lambda c: f"n={len(c.items)}"), Turn(calls=[Call("echo", {"text": "hi"})])]
    )
    convo = Conversation(
        items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
        ]
    )
    assert brain.reply(convo).text == "n=1"
    assert brain.reply(convo).calls[0].name == "echo"
    assert brain.reply(convo).text == "OK"
    outputs = Conversation(
        items=[
            {"type": "function_call", "call_id": "c1", "name": "echo", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "hi"},
        ]
    )
    assert "hi" in str(brain.reply(outputs).text)


def test_rule_brain_picks_tool_and_fills_arguments() -> None:
    """RuleBrain calls the tool the user names and fills args from the schema."""
    convo = Conversation(
        items=[
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What's the weather in New York in fahrenheit?"}
                ],
            }
        ],
        tools=[WEATHER],
    )
    turn = RuleBrain().reply(convo)
    assert turn.calls == [Call("get_weather", {"city": "New York", "unit": "fahrenheit"})]
    assert RuleBrain().reply(convo) == turn  # deterministic
    add = {
        "type": "function",
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    }
    assert fill_arguments(add, "please add 2.5 and 4") == {"a": 2.5, "b": 4}
    echo = {
        "type": "function",
        "name": "echo",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    }
    assert fill_arguments(echo, "echo hello world") == {"text": "hello world"}
    assert fill_arguments(WEATHER, "weather please") is None


def test_rule_brain_text_replies() -> None:
    """RuleBrain greets, talks like a pirate when told, and uses tool outputs."""
    hello = Conversation(
        items=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello!"}],
            }
        ]
    )
    assert RuleBrain().reply(hello).text == "Hello! How can I help you today?"
    pirate = Conversation(items=hello.items, instructions="Speak like a pirate.")
    assert "matey" in str(RuleBrain().reply(pirate).text)
    outputs = Conversation(
        items=[
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": json.dumps({"temp_c": 21})},
        ]
    )
    assert "21" in str(RuleBrain().reply(outputs).text)


# ---- session config (sans-I/O rules of session.update) --------------------------------------


def test_merge_session_changes_only_the_fields_sent() -> None:
    """A nested update changes the fields it names and keeps their siblings."""
    session = default_session("gpt-realtime", "sess_1", 0)
    merged = merge_session(session, {"type": "realtime", "audio": {"output": {"speed": 1.2}}})
    assert merged["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",  # gpt-realtime's default voice
        "speed": 1.2,
    }
    assert merged["audio"]["input"] == session["audio"]["input"]
    assert session["audio"]["output"]["speed"] == 1.0  # the current session is not mutated


def test_merge_session_replaces_an_object_whose_type_changes() -> None:
    """A new ``type`` replaces the object, completed with that type's defaults (or none)."""
    session = default_session("gpt-realtime", "sess_1", 0)
    update = {
        "type": "realtime",
        "audio": {
            "input": {
                "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                "format": {"type": "audio/pcmu"},
            }
        },
    }
    merged = merge_session(session, update)["audio"]["input"]
    assert merged["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert merged["format"] == {"type": "audio/pcmu"}  # no server_vad or pcm leftovers
    cleared = merge_session(session, {"audio": {"input": {"turn_detection": None}}})
    assert cleared["audio"]["input"]["turn_detection"] is None


def test_check_session_update_rules() -> None:
    """The model never changes, the voice only until audio was sent, tracing once set stays."""
    session = default_session("gpt-realtime", "sess_1", 0)
    voice = {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
    check_session_update(session, {"type": "realtime", "model": "gpt-realtime"}, spoke=False)
    check_session_update(session, voice, spoke=False)
    check_session_update(session, {"audio": {"output": {"voice": "alloy"}}}, spoke=True)
    check_session_update(session, {"type": "realtime", "tracing": "auto"}, spoke=False)
    traced = {**session, "tracing": "auto"}
    check_session_update(traced, {"type": "realtime", "tracing": "auto"}, spoke=False)
    rejected = [
        (session, {"model": "gpt-realtime-2"}, False, "invalid_value", "session.model"),
        (session, voice, True, "cannot_update_voice", "session.audio.output.voice"),
        (traced, {"tracing": None}, False, "invalid_value", "session.tracing"),
    ]
    for current, update, spoke, code, param in rejected:
        with pytest.raises(Invalid) as info:
            check_session_update(current, update, spoke=spoke)
        assert (info.value.code, info.value.param) == (code, param)


# ---- usage -----------------------------------------------------------------------------------


def test_tokens_count_about_four_characters_each() -> None:
    """Text tokens round up at four characters each; only empty text is free."""
    assert [tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_usage_counts_cached_tokens_from_the_second_long_response() -> None:
    """Input repeated after a 1024-token context is reported as cached, in steps of 64."""
    meter = UsageMeter()
    convo = Conversation(items=[], instructions="x" * 4400)  # 1100 tokens
    first = meter.measure(convo, [], {})
    second = meter.measure(convo, [], {})
    assert first["input_token_details"]["cached_tokens"] == 0
    assert second["input_token_details"]["cached_tokens"] == 1088
    assert second["input_tokens"] == second["total_tokens"] == 1100


# ---- conversation store ----------------------------------------------------------------------


def text_item(text: str, role: str = "user") -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def test_store_inserts_after_previous_item_or_at_root() -> None:
    """previous_item_id places the item after that one, "root" first; an unknown id adds nothing."""
    store = ConversationStore(Ids())
    first, _ = store.create(text_item("one"), None)
    last, _ = store.create(text_item("three"), None)
    middle, (added, done) = store.create(text_item("two"), first["id"])
    assert (added["previous_item_id"], done["previous_item_id"]) == (first["id"], first["id"])
    zero, (added, _) = store.create(text_item("zero"), "root")
    assert added["previous_item_id"] is None
    assert [i["id"] for i in store.items] == [zero["id"], first["id"], middle["id"], last["id"]]
    with pytest.raises(Invalid) as info:
        store.create(text_item("x"), "item_missing")
    assert info.value.param == "previous_item_id" and len(store.items) == 4


def test_store_new_item_ids_skip_ids_clients_chose() -> None:
    """A generated item id never collides with an id a client already used."""
    taken = ConversationStore(Ids(seed=7)).new_item_id()  # the id the next draw gives
    store = ConversationStore(Ids(seed=7))
    store.insert({**text_item("mine"), "id": taken})
    fresh = store.new_item_id()
    assert fresh != taken and fresh.startswith("item_") and len(fresh) == len(taken)


def test_store_truncate_cuts_audio_and_transcript() -> None:
    """Truncating keeps audio_end_ms of audio and the matching share of the transcript."""
    store = ConversationStore(Ids())
    item = {
        "id": "item_a",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "abcdefghij"}],
    }
    store.insert(item)
    store.keep_audio("item_a", bytes(1000 * 48))  # one second of PCM16 at 24 kHz
    event = store.truncate("item_a", 0, 500)
    assert (event["type"], event["audio_end_ms"]) == ("conversation.item.truncated", 500)
    assert item["content"][0]["transcript"] == "abcde"
    retrieved = store.retrieve("item_a")["item"]["content"][0]
    assert len(base64.b64decode(retrieved["audio"])) == 500 * 48
    with pytest.raises(Invalid) as info:
        store.truncate("item_a", 0, 501)
    assert info.value.message == "Audio content of 500ms is already shorter than 501ms."


def test_store_delete_forgets_item_and_audio() -> None:
    """A deleted item and its audio are gone; a second delete names the missing item_id."""
    store = ConversationStore(Ids())
    store.insert({**text_item("hi"), "id": "item_a"})
    store.keep_audio("item_a", b"\x00\x00")
    assert store.delete("item_a")["item_id"] == "item_a"
    assert store.items == [] and store.audio == {}
    with pytest.raises(Invalid) as info:
        store.delete("item_a")
    assert info.value.param == "item_id"


# ---- input audio -----------------------------------------------------------------------------


def audio_parts(turn_detection: dict[str, Any] | None) -> tuple[InputAudio, ConversationStore]:
    ids = Ids()
    config = SessionConfig(ids, "gpt-realtime", 0)
    config.update(
        {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}}, spoke=False
    )
    store = ConversationStore(ids)
    return InputAudio(ids, config, store), store


def test_input_commit_needs_100ms_and_never_starts_a_response() -> None:
    """Commit refuses under 100 ms, then turns the buffer into one user item with its audio."""
    audio, store = audio_parts(None)
    assert audio.append(base64.b64encode(sine_pcm16(50)).decode()) == []  # no VAD
    with pytest.raises(Invalid) as info:
        audio.commit()
    assert info.value.code == "input_audio_buffer_commit_empty"
    audio.append(base64.b64encode(sine_pcm16(80)).decode())
    events = audio.commit()
    assert [e["type"] for e in events] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    (item,) = store.items
    assert len(store.audio[item["id"]]) == 130 * 48


def test_input_vad_transitions_name_the_committed_item() -> None:
    """speech_started announces the id of the user item that speech_stopped commits."""
    audio, store = audio_parts({"type": "server_vad"})
    pcm = silence_pcm16(300) + sine_pcm16(400) + silence_pcm16(700)
    changes = audio.append(base64.b64encode(pcm).decode())
    assert [c.kind for c in changes] == ["started", "stopped"]
    started = audio.speech_started(changes[0].ms)
    stopped, committed, *_ = audio.speech_stopped(changes[1].ms)
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == store.items[0]["id"]
    with pytest.raises(Invalid) as info:
        audio.append("not base64!")
    assert info.value.param == "audio"


# ---- responses -------------------------------------------------------------------------------


def responses_with(*turns: Turn) -> Responses:
    ids = Ids()
    config = SessionConfig(ids, "gpt-realtime", 0)
    config.update({"type": "realtime", "output_modalities": ["text"]}, spoke=False)
    return Responses(ids, config, ConversationStore(ids), ScriptedBrain(turns))


def test_responses_one_writes_to_the_conversation_others_run_out_of_band() -> None:
    """A second default response is refused while one runs; out-of-band ones interleave."""
    responses = responses_with(Turn(text="first answer"), Turn(text="side answer"))
    (created,) = responses.create({})
    assert created["type"] == "response.created"
    with pytest.raises(Invalid) as info:
        responses.create({})
    assert info.value.code == "conversation_already_has_active_response"
    assert created["response"]["id"] in info.value.message
    (side,) = responses.create({"conversation": "none"})
    first_two = [responses.next_event(), responses.next_event()]
    assert [e["response_id"] for e in first_two if e] == [
        created["response"]["id"],
        side["response"]["id"],
    ]
    while (event := responses.next_event()) is not None:
        last = event
    assert last["type"] == "rate_limits.updated" and not responses.has_active


def test_cancel_closes_the_open_item_as_incomplete() -> None:
    """Cancelling mid-message ends the open item incomplete, then response.done cancelled."""
    responses = responses_with(Turn(text="a reply long enough to be cut in the middle"))
    responses.create({})
    while (event := responses.next_event()) is not None:
        if event["type"] == "response.output_text.delta":
            break
    events = responses.cancel(None)
    assert [e["type"] for e in events] == [
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[3]["item"]["status"] == "incomplete"
    assert events[4]["response"]["status_details"] == {
        "type": "cancelled",
        "reason": "client_cancelled",
    }
    assert responses.next_event() is None and responses.interrupt() == []
    with pytest.raises(Invalid) as info:
        responses.cancel(None)
    assert info.value.code == "response_cancel_not_active"


# ---- the engine's dispatch table -------------------------------------------------------------


def test_dispatch_table_routes_exactly_the_ga_client_events() -> None:
    """Every GA client event type has one handler, in the order errors list them."""
    assert tuple(Engine.HANDLERS) == CLIENT_EVENT_TYPES
    assert sorted(Engine.HANDLERS) == [
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "output_audio_buffer.clear",
        "response.cancel",
        "response.create",
        "session.update",
    ]


def test_dispatch_rejects_types_it_has_no_handler_for() -> None:
    """Beta names, server events and engine method names are invalid_value errors on 'type'."""
    engine = Engine()
    engine.start()
    for kind in ("transcription_session.update", "response.done", "start", "__init__", "_on_x"):
        (event,) = engine.handle({"type": kind, "event_id": "evt_9"})
        assert_server_event(event)
        error = event["error"]
        assert (error["code"], error["param"], error["event_id"]) == (
            "invalid_value",
            "type",
            "evt_9",
        )
        assert error["message"].startswith(f"Invalid value: '{kind}'. Supported values are: ")
    assert engine.items == [] and engine.next_event() is None


# ---- the error builder -----------------------------------------------------------------------


def test_api_error_renders_the_event_and_http_bodies() -> None:
    """One error renders as the error event and as both HTTP bodies, with the same fields."""
    error = ApiError("invalid_value", "Bad.", "session.model")
    event = error.event(Ids(), "evt_1")
    assert_server_event(event)
    assert list(event)[:2] == ["type", "event_id"]  # the real service's order
    assert event == {
        "type": "error",
        "event_id": event["event_id"],
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Bad.",
            "param": "session.model",
            "event_id": "evt_1",
        },
    }
    assert error.http_body() == (
        b'{"error": {"message": "Bad.", "type": "invalid_request_error", '
        b'"param": "session.model", "code": "invalid_value"}}'
    )
    assert error.transport_body() == (
        b'{"error": {"type": "invalid_request_error", "code": "invalid_value", '
        b'"message": "Bad.", "param": "session.model"}}'
    )
    assert ApiError.from_invalid(Invalid("invalid_value", "Bad.", "session.model")) == error


def test_injected_error_body_completes_a_fault_with_server_error_defaults() -> None:
    """A fault's error fields override server_error defaults; extra fields are kept."""
    assert injected_error_body({"message": "boom", "extra": 1}) == {
        "type": "server_error",
        "code": None,
        "message": "boom",
        "param": None,
        "event_id": None,
        "extra": 1,
    }


def test_connection_errors_keep_the_real_texts() -> None:
    """Session expiry and API-key errors carry the texts the real API sends."""
    assert SESSION_EXPIRED.body() == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes.",
        "param": None,
        "event_id": None,
    }
    assert incorrect_api_key("sk-abcdefghijklmnop").message.startswith(
        "Incorrect API key provided: sk-ab****mnop. You can find your API key at "
    )
    assert "sho****." in incorrect_api_key("short").message
    assert invalid_url("GET", "/v1/nope") == ApiError(None, "Invalid URL (GET /v1/nope)")
