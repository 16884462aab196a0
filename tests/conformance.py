"""Strict checks of wire events against the ``openai`` package's own types.

The SDK's models accept unknown fields (``extra="allow"``), so validating alone would
let a typo'd field through. We validate with the SDK's discriminated unions and then
walk the resulting models, failing on any field the SDK does not declare.

Client events (what rtagent sends) get no exception at all. Server events may carry
the fields the real service is recorded sending beyond the SDK's types
(``/work/shared/recordings``, ``tests/replay/``): every recorded server event passes.
"""

from __future__ import annotations

import json
from typing import Any

from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

_server = TypeAdapter(RealtimeServerEvent)
_client = TypeAdapter(RealtimeClientEvent)

_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.output_audio_transcript.delta",
        "response.function_call_arguments.delta",
        "conversation.item.input_audio_transcription.delta",
    }
)

# (path pattern, field) pairs real server events carry beyond the SDK's types; "*" is
# any list index, and the pattern matches the end of the path to the field's object.
_SERVER_EXTRA = {
    # session.created/updated: the session's identity and end.
    (("session",), "id"),
    (("session",), "object"),
    (("session",), "expires_at"),
    # gpt-realtime-2.x tags assistant messages "commentary" or "final_answer".
    (("item",), "phase"),
    (("output", "*"), "phase"),
    # gpt-realtime-2.x reports reasoning tokens when the model reasoned.
    (("output_token_details",), "reasoning_tokens"),
}


def _server_top_level(kind: str, key: str) -> bool:
    # Deltas are padded so their length reveals nothing; Azure repeats "part" as "content".
    return (key == "obfuscation" and kind in _DELTAS) or (
        key == "content" and kind.startswith("response.content_part.")
    )


def _allowed(kind: str | None, path: tuple[str, ...], key: str) -> bool:
    if kind is None:  # a client event: nothing beyond the SDK's types
        return False
    if not path:
        return _server_top_level(kind, key)
    shape = tuple("*" if part.isdigit() else part for part in path)
    return any(shape[-len(p) :] == p and f == key for p, f in _SERVER_EXTRA)


def _walk(obj: Any, path: tuple[str, ...], problems: list[str], kind: str | None) -> None:
    if isinstance(obj, BaseModel):
        extra = obj.__pydantic_extra__ or {}
        for key in extra:
            if not _allowed(kind, path, key):
                problems.append(".".join((*path, key)))
        for name in type(obj).model_fields:
            _walk(getattr(obj, name), (*path, name), problems, kind)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            _walk(item, (*path, str(i)), problems, kind)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, (*path, str(k)), problems, kind)


def _load(event: dict[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(event, (str, bytes)):
        loaded = json.loads(event)
        assert isinstance(loaded, dict)
        return loaded
    return event


def assert_server_event(event: dict[str, Any] | str | bytes) -> BaseModel:
    """Fail unless ``event`` is a GA server event with no fields the real service never sends."""
    data = _load(event)
    model = _server.validate_python(data)
    problems: list[str] = []
    _walk(model, (), problems, str(data.get("type")))
    assert not problems, f"{data.get('type')}: fields not in the openai types: {problems}"
    return model


def assert_client_event(event: dict[str, Any] | str | bytes) -> BaseModel:
    """Fail unless ``event`` is a GA client event with no undeclared fields."""
    data = _load(event)
    model = _client.validate_python(data)
    problems: list[str] = []
    _walk(model, (), problems, None)
    assert not problems, f"{data.get('type')}: fields not in the openai types: {problems}"
    return model
