"""A sans-I/O feed for the session state machine: events in, actions out, no sockets."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from conformance import assert_client_event

from rtagent import UsageReported
from rtagent import _events as ev
from rtagent._session import (
    Action,
    CancelCall,
    EndConnection,
    Notify,
    Ready,
    RunCall,
    Send,
    Session,
    ToolCall,
    TurnDone,
)

A = TypeVar("A")


class Feed:
    """Drives a :class:`Session` and collects its actions, drained by kind."""

    def __init__(self, config: dict[str, Any] | None = None, **options: Any) -> None:
        options.setdefault("id_prefix", "t")
        self.session = Session(config or {"type": "realtime", "instructions": "hi"}, **options)
        self.actions: list[Action] = []
        self._event_ids = 0

    # -- inputs ---------------------------------------------------------------------------

    def apply(self, actions: list[Action]) -> Feed:
        self.actions += actions
        return self

    def feed(self, *events: dict[str, Any]) -> Feed:
        """Parse each event dict as the driver would and feed it to the session."""
        for event in events:
            self._event_ids += 1
            event.setdefault("event_id", f"event_s{self._event_ids}")
            self.apply(self.session.receive(ev.parse_server_event(json.dumps(event))))
        return self

    def open(self, *, session: dict[str, Any] | None = None) -> Feed:
        """Open a connection and complete the handshake; drops the handshake's sends."""
        self.apply(self.session.connection_opened())
        if not self.session.sideband:
            self.feed(session_created(**(session or {})))
        self.feed({"type": "session.updated", "session": {"type": "realtime"}})
        self.take(Ready)
        self.sent()
        return self

    # -- outputs --------------------------------------------------------------------------

    def take(self, kind: type[A]) -> list[A]:
        """Drain the actions of one kind, in order."""
        taken = [a for a in self.actions if isinstance(a, kind)]
        self.actions = [a for a in self.actions if not isinstance(a, kind)]
        return taken

    def sent(self) -> list[dict[str, Any]]:
        """Drain the client events as wire dicts, each validated against the openai types."""
        out = [json.loads(ev.encode_client_event(a.event)) for a in self.take(Send)]
        for event in out:
            assert_client_event(event)
        return out

    def sent_types(self) -> list[str]:
        return [e["type"] for e in self.sent()]

    def calls(self) -> list[ToolCall]:
        return [a.call for a in self.take(RunCall)]

    def cancels(self) -> list[str]:
        return [a.call_id for a in self.take(CancelCall)]

    def turns(self) -> list[tuple[set[int], str, str | None]]:
        """Finished turns as (turns, text, error code or None)."""
        return [(set(t.turns), t.text, t.error.code if t.error else None) for t in self.take(TurnDone)]

    def ends(self) -> list[EndConnection]:
        return self.take(EndConnection)

    def notices(self, *, usage: bool = False) -> list[Any]:
        """Drain the notices (``UsageReported`` ones only when ``usage``)."""
        notices = [a.notice for a in self.take(Notify)]
        return [n for n in notices if usage or not isinstance(n, UsageReported)]


# -- server events ----------------------------------------------------------------------------


def session_created(**fields: Any) -> dict[str, Any]:
    return {"type": "session.created", "session": {"type": "realtime", **fields}}


def call_item(call_id: str, name: str = "echo", args: str = '{"text":"x"}',
              status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": f"item_{call_id}", "call_id": call_id, "name": name,
            "arguments": args, "status": status}


def message(item_id: str, text: str, phase: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "id": item_id, "role": "assistant",
                            "status": "completed", "content": [{"type": "output_text", "text": text}]}
    if phase:
        item["phase"] = phase
    return item


def created(rid: str, key: str | None = None) -> dict[str, Any]:
    """response.created; ``key`` is the request key rtagent put in the metadata."""
    metadata = {"rtagent_request": key} if key else None
    return {"type": "response.created",
            "response": {"id": rid, "status": "in_progress", "output": [], "metadata": metadata}}


def done(rid: str, status: str = "completed", output: list[dict[str, Any]] | None = None,
         key: str | None = None, **extra: Any) -> dict[str, Any]:
    metadata = {"rtagent_request": key} if key else None
    return {"type": "response.done", "response": {"id": rid, "status": status, "output": output or [],
                                                  "metadata": metadata, **extra}}


def item_done(rid: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item}


def added(item_id: str, kind: str = "function_call_output", previous: str | None = None,
          **fields: Any) -> dict[str, Any]:
    return {"type": "conversation.item.added", "previous_item_id": previous,
            "item": {"id": item_id, "type": kind, **fields}}


def error(code: str | None, event_id: str | None = None, message: str = "refused") -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "code": code,
                                       "message": message, "event_id": event_id}}


def key_of(create: dict[str, Any]) -> str:
    """The request key of a response.create wire event."""
    return str(create["response"]["metadata"]["rtagent_request"])
