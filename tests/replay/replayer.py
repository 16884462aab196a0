"""A server that plays the server side of a recording to a live client.

Each recorded server event is released once the client has sent what caused it: the
k-th ``session.updated`` after the client's k-th ``session.update``, the
``conversation.item.added`` of an item the client created after that
``conversation.item.create``, a requested ``response.created`` after its
``response.create``, and what server VAD does (speech, commit, transcription, a
response it starts) after as many ``input_audio_buffer.append`` events as were recorded
before it. Everything else follows the event before it, as recorded.

Only what a real server echoes or derives from the client is substituted: the ids of
items the client created (rtagent chooses its own) and the ``metadata`` of each
``response.create`` on the response it started. Nothing else changes.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from rtagent._errors import TransportError
from rtagent._transport import WebSocket
from rtagent.local._http import HttpRequest, HttpResponse, serve

from .corpus import TRANSCRIPTION_PREFIX, Recording

_VAD = frozenset(
    {
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    }
)


@dataclass
class _Step:
    """One recorded server event and what the client must have sent before it."""

    event: dict[str, Any]
    needs: tuple[str, int] | None = None
    client_item: int | None = None
    """For a client-created item's events: its position among the client's items."""
    request: int | None = None
    """For a requested response: the position of its ``response.create``."""


def plan(recording: Recording) -> list[_Step]:
    """The recording's server events, each with what releases it."""
    outputs = {
        e["item"]["id"] for e in recording.server() if e["type"] == "response.output_item.added"
    }
    committed = {
        e["item_id"] for e in recording.server() if e["type"] == "input_audio_buffer.committed"
    }
    client_items: list[str] = []
    sent: Counter[str] = Counter()
    updated = 0
    requested = 0
    responses: dict[str, int] = {}
    steps: list[_Step] = []
    for frame in recording.frames:
        event = frame["event"]
        kind = event["type"]
        if frame["dir"] == "client":
            sent[kind] += 1
            continue
        step = _Step(event)
        if kind == "session.updated":
            updated += 1
            step.needs = ("session.update", updated)
        elif kind in ("conversation.item.added", "conversation.item.done"):
            item_id = event["item"]["id"]
            if item_id not in outputs and item_id not in committed:
                if item_id not in client_items:
                    client_items.append(item_id)
                step.client_item = client_items.index(item_id)
                step.needs = ("conversation.item.create", step.client_item + 1)
        elif kind == "response.created":
            if sent["response.create"] > requested:
                requested += 1
                step.request = requested - 1
                step.needs = ("response.create", requested)
                responses[event["response"]["id"]] = step.request
            else:  # started by server VAD
                step.needs = ("input_audio_buffer.append", sent["input_audio_buffer.append"])
        elif kind in _VAD or kind.startswith(TRANSCRIPTION_PREFIX):
            step.needs = ("input_audio_buffer.append", sent["input_audio_buffer.append"])
        if kind == "response.done" and event["response"]["id"] in responses:
            step.request = responses[event["response"]["id"]]
        steps.append(step)
    return steps


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    return value


@dataclass
class _Live:
    """What the live client has sent on its connection."""

    events: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)


class ReplayServer:
    """Serves one recording to every connection (``/v1/realtime`` and Azure's path).

    Attributes:
        received: the client events of each connection, in order.
        sent: the server events sent on each connection, after substitution.
    """

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.steps = plan(recording)
        self.port = 0
        self.received: list[list[dict[str, Any]]] = []
        self.sent: list[list[dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def azure_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ReplayServer]:
        async with anyio.create_task_group() as tg:
            self.port = await tg.start(self._serve)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        def accept(request: HttpRequest) -> HttpResponse | None:
            path = request.path.split("?", 1)[0].rstrip("/")
            ok = path in ("/v1/realtime", "/openai/v1/realtime")
            return None if ok else HttpResponse(404, b'{"error": {"message": "no route"}}')

        await serve(self._handle, process_request=accept, task_status=task_status)

    async def _handle(self, ws: WebSocket) -> None:
        live = _Live()
        self.received.append(live.events)
        sent: list[dict[str, Any]] = []
        self.sent.append(sent)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._play, ws, live, sent)
            await self._read(ws, live)  # until the client leaves
            tg.cancel_scope.cancel()

    async def _read(self, ws: WebSocket, live: _Live) -> None:
        with contextlib.suppress(TransportError):
            async for message in ws:
                event = json.loads(message)
                live.events.append(event)
                live.counts[event["type"]] += 1
                if event["type"] == "conversation.item.create":
                    live.items.append(event["item"])
                if event["type"] == "response.create":
                    live.requests.append(event.get("response") or {})
                live.changed.set()
                live.changed = anyio.Event()

    async def _play(self, ws: WebSocket, live: _Live, sent: list[dict[str, Any]]) -> None:
        ids: dict[str, str] = {}
        for step in self.steps:
            if step.needs is not None:
                kind, count = step.needs
                while live.counts[kind] < count:
                    await live.changed.wait()
            event = copy.deepcopy(step.event)
            if step.client_item is not None:
                # The client chose this item's id; the server echoes it.
                recorded = event["item"]["id"]
                chosen = live.items[step.client_item].get("id")
                if chosen:
                    ids[recorded] = chosen
            event = _substitute(event, ids)
            if step.request is not None and event["type"] in ("response.created", "response.done"):
                # response.metadata echoes the response.create that asked for it.
                event["response"]["metadata"] = live.requests[step.request].get("metadata")
            await ws.send(json.dumps(event))
            sent.append(event)
