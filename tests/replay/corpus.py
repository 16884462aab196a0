"""The replay fixtures and what tests read from them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"

TRANSCRIPTION_PREFIX = "conversation.item.input_audio_transcription."


@dataclass(frozen=True)
class Recording:
    """One recorded session."""

    name: str
    service: str
    sideband: bool
    model: str
    frames: tuple[dict[str, Any], ...]

    def client(self) -> Iterator[dict[str, Any]]:
        """The client's events, in order."""
        return (f["event"] for f in self.frames if f["dir"] == "client")

    def server(self) -> Iterator[dict[str, Any]]:
        """The server's events, in order."""
        return (f["event"] for f in self.frames if f["dir"] == "server")

    @property
    def session_update(self) -> dict[str, Any]:
        """The ``session`` of the client's first ``session.update``."""
        return next(e["session"] for e in self.client() if e["type"] == "session.update")

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The function tools the client declared."""
        return list(self.session_update.get("tools") or [])

    @property
    def items_created(self) -> list[dict[str, Any]]:
        """The items of the client's ``conversation.item.create`` events, in order."""
        return [e["item"] for e in self.client() if e["type"] == "conversation.item.create"]

    @property
    def audio_appends(self) -> list[str]:
        """The base64 payloads of the client's ``input_audio_buffer.append`` events."""
        return [e["audio"] for e in self.client() if e["type"] == "input_audio_buffer.append"]

    @property
    def outputs(self) -> dict[str, str]:
        """call_id -> the ``output`` the client posted for it."""
        return {
            i["call_id"]: i["output"]
            for i in self.items_created
            if i["type"] == "function_call_output"
        }

    @property
    def responses(self) -> list[dict[str, Any]]:
        """The ``response`` of every ``response.done``, in order."""
        return [e["response"] for e in self.server() if e["type"] == "response.done"]

    @property
    def final_text(self) -> str:
        """The text (or transcript) of the last response's final message."""
        for item in reversed(self.responses[-1]["output"]):
            if item["type"] == "message" and item.get("phase") != "commentary":
                part = item["content"][0]
                return str(part.get("text") or part.get("transcript") or "")
        return ""


@cache
def load(name: str) -> Recording:
    """The recording called ``name``."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return Recording(
        name=data["name"],
        service=data["service"],
        sideband=data["sideband"],
        model=data["model"],
        frames=tuple(data["frames"]),
    )


def names() -> list[str]:
    """Every recording's name, sorted."""
    return sorted(p.stem for p in FIXTURES.glob("*.json"))
