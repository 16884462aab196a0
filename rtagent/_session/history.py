"""Conversation history in and out: seeding a session, exporting its transcript.

In: ``connect(agent, history=[...])`` takes items as ``conversation.item.create`` takes
them (PROTOCOL.md §4), or the shorthand ``{"role": "user", "content": "text"}``. Out:
:func:`transcript` turns the conversation mirror into JSON-ready entries, or plain text,
with tool calls, their outputs and when each item entered the conversation.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .._errors import ConfigurationError

__all__ = ["image_message", "normalise_history", "transcript", "transcript_text"]

_TEXT_PART = {"user": "input_text", "system": "input_text", "assistant": "output_text"}


def normalise_history(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Items to seed a session with, checked and in wire form.

    Raises:
        ConfigurationError: an item of an unknown shape, or a tool output whose call is
            not earlier in the history (the server would refuse it).
    """
    out: list[dict[str, Any]] = []
    calls: set[str] = set()
    for n, raw in enumerate(items):
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"history[{n}] must be a mapping, not {type(raw).__name__}")
        item = dict(raw)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _TEXT_PART:
                raise ConfigurationError(f"history[{n}]: role must be user, assistant or system")
            content = item.get("content")
            if isinstance(content, str):
                content = [{"type": _TEXT_PART[role], "text": content}]
            if not isinstance(content, list) or not content:
                raise ConfigurationError(f"history[{n}]: content must be text or a list of parts")
            item.update(type="message", role=role, content=content)
        elif kind == "function_call":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("name"), str):
                raise ConfigurationError(f"history[{n}]: a function_call needs call_id and name")
            arguments = item.get("arguments", "{}")
            item["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise ConfigurationError(
                    f"history[{n}]: output for call {item.get('call_id')!r} before its function_call"
                )
            output = item.get("output", "")
            item["output"] = output if isinstance(output, str) else json.dumps(output)
        else:
            raise ConfigurationError(f"history[{n}]: unknown item type {kind!r}")
        out.append(item)
    return out


def image_message(
    image: bytes, mime: str, text: str | None, detail: Literal["auto", "low", "high"]
) -> dict[str, Any]:
    """A user message carrying an image (as a data URI) and optional text."""
    if mime not in ("image/png", "image/jpeg"):
        raise ConfigurationError(f"images must be image/png or image/jpeg, not {mime!r}")
    url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
    content: list[dict[str, Any]] = [{"type": "input_image", "image_url": url, "detail": detail}]
    if text:
        content.append({"type": "input_text", "text": text})
    return {"type": "message", "role": "user", "content": content}


def transcript(
    items: Iterable[dict[str, Any]], times: Mapping[str, float]
) -> list[dict[str, Any]]:
    """JSON-ready entries: who said what (or which tool ran with what), and when."""
    names: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    for item in items:
        at = times.get(item.get("id", ""))
        entry: dict[str, Any] = {
            "id": item.get("id"),
            "at": datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat()
            if at is not None else None,
        }
        kind = item.get("type")
        if kind == "message":
            entry.update(kind="message", role=item.get("role"), text=_text(item))
        elif kind == "function_call":
            names[str(item.get("call_id"))] = str(item.get("name"))
            entry.update(kind="tool_call", call_id=item.get("call_id"), name=item.get("name"),
                         arguments=item.get("arguments"))
        elif kind == "function_call_output":
            entry.update(kind="tool_output", call_id=item.get("call_id"),
                         name=names.get(str(item.get("call_id"))), output=item.get("output"))
        else:
            entry.update(kind=str(kind))
        entries.append(entry)
    return entries


def transcript_text(entries: Iterable[dict[str, Any]]) -> str:
    """The transcript as lines of plain text, one per item."""
    lines = []
    for e in entries:
        stamp = f"[{e['at'][11:19]}] " if e.get("at") else ""
        kind = e.get("kind")
        if kind == "message":
            lines.append(f"{stamp}{e['role']}: {e['text']}")
        elif kind == "tool_call":
            lines.append(f"{stamp}tool call {e['name']}({e['arguments']})")
        elif kind == "tool_output":
            lines.append(f"{stamp}tool output {e['name'] or e['call_id']}: {e['output']}")
        else:
            lines.append(f"{stamp}{kind}")
    return "\n".join(lines) + ("\n" if lines else "")


def _text(item: dict[str, Any]) -> str:
    parts = []
    for part in item.get("content") or ():
        kind = part.get("type")
        if kind == "input_image":
            parts.append("[image]")
        elif kind == "input_audio" and not part.get("transcript"):
            parts.append("[audio]")
        else:
            parts.append(str(part.get("text") or part.get("transcript") or ""))
    return " ".join(p for p in parts if p)
