"""Strict checks of wire events against the ``openai`` package's own types.

The SDK's models accept unknown fields (``extra="allow"``), so validating alone would
let a typo'd field through. We validate with the SDK's discriminated unions and then
walk the resulting models, failing on any field the SDK does not declare, except a
short allow-list of fields the real server is documented to add (PROTOCOL.md §3).
"""

from __future__ import annotations

import json
from typing import Any

from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, TypeAdapter

_server = TypeAdapter(RealtimeServerEvent)
_client = TypeAdapter(RealtimeClientEvent)

# (path suffix, field) pairs the real server sends beyond the SDK's types.
_ALLOWED_EXTRA = {
    ("session", "id"),
    ("session", "object"),
    ("session", "expires_at"),
}


def _walk(obj: Any, path: tuple[str, ...], problems: list[str]) -> None:
    if isinstance(obj, BaseModel):
        extra = obj.__pydantic_extra__ or {}
        for key in extra:
            if (path[-1] if path else "", key) not in _ALLOWED_EXTRA:
                problems.append(".".join((*path, key)))
        for name in type(obj).model_fields:
            _walk(getattr(obj, name), (*path, name), problems)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            _walk(item, (*path, str(i)), problems)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, (*path, str(k)), problems)


def _load(event: dict[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(event, (str, bytes)):
        loaded = json.loads(event)
        assert isinstance(loaded, dict)
        return loaded
    return event


def assert_server_event(event: dict[str, Any] | str | bytes) -> BaseModel:
    """Fail unless ``event`` is a GA server event with no undeclared fields."""
    data = _load(event)
    model = _server.validate_python(data)
    problems: list[str] = []
    _walk(model, (), problems)
    assert not problems, f"{data.get('type')}: fields not in the openai types: {problems}"
    return model


def assert_client_event(event: dict[str, Any] | str | bytes) -> BaseModel:
    """Fail unless ``event`` is a GA client event with no undeclared fields."""
    data = _load(event)
    model = _client.validate_python(data)
    problems: list[str] = []
    _walk(model, (), problems)
    assert not problems, f"{data.get('type')}: fields not in the openai types: {problems}"
    return model
