"""Parsing of server frames and encoding of client events."""

from __future__ import annotations

import json

import pytest
from conformance import assert_client_event

from rtagent import events as ev
from rtagent._errors import ProtocolError


def test_known_event_parses_to_its_model() -> None:
    """A response.done frame becomes a ResponseDone with typed output items."""
    frame = json.dumps({
        "type": "response.done", "event_id": "e1",
        "response": {"id": "r1", "status": "completed", "output": [
            {"type": "function_call", "id": "i1", "call_id": "c1", "name": "echo", "arguments": "{}", "status": "completed"},
        ]},
    })
    event = ev.parse_server_event(frame)
    assert isinstance(event, ev.ResponseDone)
    assert event.response.output[0].call_id == "c1"


def test_unknown_event_type_is_passed_through() -> None:
    """A type we do not model becomes UnknownServerEvent with its data, not an error."""
    event = ev.parse_server_event(b'{"type":"response.brand_new_kind","event_id":"e2","item_id":"x"}')
    assert isinstance(event, ev.UnknownServerEvent)
    assert event.type == "response.brand_new_kind"
    assert event.data["item_id"] == "x"


@pytest.mark.parametrize(
    "frame",
    ["not json", "[1, 2]", '{"no_type": 1}', '{"type": 5}', '{"type":"response.done","event_id":"e"}'],
)
def test_malformed_frames_raise_protocol_error(frame: str) -> None:
    """Frames that are not events, or known events missing fields, raise ProtocolError."""
    with pytest.raises(ProtocolError):
        ev.parse_server_event(frame)


def test_unknown_fields_are_ignored() -> None:
    """New server fields do not break parsing."""
    event = ev.parse_server_event('{"type":"input_audio_buffer.cleared","event_id":"e","brand_new":1}')
    assert isinstance(event, ev.InputAudioBufferCleared)


def test_client_events_encode_to_valid_ga_json() -> None:
    """Every client event we build passes the openai package's GA validation."""
    events: list[ev.ClientEvent] = [
        ev.SessionUpdate(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}),
        ev.ConversationItemCreate(event_id="x", item={"type": "function_call_output", "call_id": "c", "output": "o"}),
        ev.ConversationItemDelete(item_id="i"),
        ev.ConversationItemRetrieve(item_id="i"),
        ev.ConversationItemTruncate(item_id="i", audio_end_ms=10),
        ev.InputAudioBufferAppend(audio="AAAA"),
        ev.InputAudioBufferCommit(),
        ev.InputAudioBufferClear(),
        ev.ResponseCreate(),
        ev.ResponseCreate(response={"conversation": "none", "output_modalities": ["text"]}),
        ev.ResponseCancel(response_id="r"),
    ]
    for event in events:
        data = json.loads(ev.encode_client_event(event))
        assert_client_event(data)
    first = json.loads(ev.encode_client_event(events[0]))
    assert first["session"]["audio"]["input"]["turn_detection"] is None  # null is meaningful


def test_item_text_prefers_text_then_transcript() -> None:
    """Item.text() reads text parts and audio transcripts."""
    item = ev.Item(type="message", content=[ev.ContentPart(type="output_audio", transcript="hi"),
                                            ev.ContentPart(type="output_text", text=" there")])
    assert item.text() == "hi there"
