"""The default conversation of one connection: its items in order, and the audio of each.

Items enter at the end, after ``previous_item_id``, or first (``"root"``), and each
entry is reported as ``conversation.item.added`` then ``conversation.item.done``
(without audio bytes). ``conversation.item.retrieve`` returns an item with its audio,
``delete`` removes it, and ``truncate`` cuts an assistant item's audio (and transcript)
to what the user heard (PROTOCOL.md §2, §4, §6).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from ._audio import bytes_per_ms
from ._validate import Invalid
from ._wire import Event, Ids, server_event

__all__ = ["ConversationStore", "public_item"]


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item as conversation.item.added/done and responses show it: no audio bytes."""
    shown = copy.deepcopy(item)
    for part in shown.get("content") or []:
        part.pop("audio", None)
    return shown


class ConversationStore:
    """Items of the default conversation, the audio kept per item, and item ids.

    Args:
        ids: id factory (conversation, item, call and event ids).
    """

    def __init__(self, ids: Ids) -> None:
        self._ids = ids
        self.id = ids.new("conv")
        self.items: list[dict[str, Any]] = []
        self.audio: dict[str, bytes | bytearray] = {}
        """Item id -> audio bytes (user input audio, assistant output audio)."""
        self.heard: dict[str, str] = {}
        """Item id -> what a caller's speech said (a call's ``say()``): the model hears it,
        though the item shows no transcript unless transcription is on."""

    # ---- lookups ---------------------------------------------------------------------------

    def find(self, item_id: str) -> int:
        """Position of the item with this id, or -1."""
        for i, item in enumerate(self.items):
            if item.get("id") == item_id:
                return i
        return -1

    def lookup(self, item_id: str) -> dict[str, Any]:
        """The item with this id.

        Raises:
            Invalid: no such item (param ``item_id``).
        """
        pos = self.find(item_id)
        if pos < 0:
            raise Invalid("invalid_value", f"Item with item_id '{item_id}' not found.", "item_id")
        return self.items[pos]

    def last_id(self) -> str | None:
        """Id of the newest item, if any."""
        return self.items[-1]["id"] if self.items else None

    def new_item_id(self) -> str:
        """A fresh item id not used in the conversation (clients may choose their own)."""
        while True:
            item_id = self._ids.new("item")
            if self.find(item_id) < 0:
                return item_id

    def snapshot(self) -> list[dict[str, Any]]:
        """A deep copy of the items, in order, as the model hears them (see :attr:`heard`)."""
        return [self._as_heard(item) for item in self.items]

    def _as_heard(self, item: dict[str, Any]) -> dict[str, Any]:
        shown = copy.deepcopy(item)
        heard = self.heard.get(str(item.get("id")))
        if heard is None:
            return shown
        for part in shown.get("content") or []:
            if part.get("type") == "input_audio" and not part.get("transcript"):
                part["transcript"] = heard
        return shown

    def resolve_input(self, raw_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The context of a ``response.create`` with ``input``: references resolved, ids given.

        Raises:
            Invalid: an ``item_reference`` names no item (param ``response.input[i].id``).
        """
        context = []
        for i, raw in enumerate(raw_items):
            if raw["type"] == "item_reference":
                pos = self.find(raw["id"])
                if pos < 0:
                    raise Invalid(
                        "invalid_value",
                        f"Item with id '{raw['id']}' not found.",
                        f"response.input[{i}].id",
                    )
                context.append(self._as_heard(self.items[pos]))
            else:
                item = copy.deepcopy(raw)
                item.setdefault("id", self.new_item_id())
                context.append(item)
        return context

    # ---- entries ---------------------------------------------------------------------------

    def insert(self, item: dict[str, Any], index: int | None = None) -> list[Event]:
        """Add an item (at the end by default); return its conversation.item.added."""
        pos = len(self.items) if index is None else index
        self.items.insert(pos, item)
        prev = self.items[pos - 1]["id"] if pos > 0 else None
        return [
            server_event(
                self._ids,
                "conversation.item.added",
                previous_item_id=prev,
                item=public_item(item),
            )
        ]

    def done(self, item: dict[str, Any], *, output: bool = False) -> Event:
        """``conversation.item.done`` for an item of the conversation.

        Args:
            item: the item, now final.
            output: the item is a response's output. The real service then reports
                ``previous_item_id`` as ``null`` when the previous item is the first of
                the conversation (every recording shows it; other items name it).
        """
        pos = self.find(item["id"])
        prev = self.items[pos - 1]["id"] if pos > 0 else None
        if output and pos == 1:
            prev = None
        return server_event(
            self._ids, "conversation.item.done", previous_item_id=prev, item=public_item(item)
        )

    def keep_audio(self, item_id: str, audio: bytes | bytearray) -> None:
        """Remember an item's audio (returned by retrieve, cut by truncate)."""
        self.audio[item_id] = audio

    # ---- client events ---------------------------------------------------------------------

    def _normalise(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        """Validate semantics of a client item and give it the server-side shape."""
        item = copy.deepcopy(raw)
        if item["type"] == "message" and item["role"] == "assistant":
            for i, part in enumerate(item["content"]):
                if part.get("type") == "output_audio":
                    raise Invalid(
                        "invalid_value",
                        "Assistant messages with output_audio content cannot be created; "
                        "use output_text.",
                        f"{path}.content[{i}].type",
                    )
        if "id" in item and self.find(item["id"]) >= 0:
            raise Invalid(
                "invalid_value", f"Item with id '{item['id']}' already exists.", f"{path}.id"
            )
        # Both defaults are drawn even when the client chose the value (ids stay predictable).
        item.setdefault("id", self.new_item_id())
        item.pop("object", None)  # recorded items carry no "object"
        if item["type"] in ("function_call_output", "mcp_approval_response"):
            item.pop("status", None)  # recorded: a function_call_output has no status
        else:
            item["status"] = "completed"
        if item["type"] == "function_call":
            item.setdefault("call_id", self._ids.new("call"))
        if item["type"] == "message":
            for part in item["content"]:
                if part.get("type") == "input_audio":
                    part.setdefault("transcript", None)
        return item

    def create(
        self, raw: dict[str, Any], previous_item_id: str | None
    ) -> tuple[dict[str, Any], list[Event]]:
        """``conversation.item.create``: the stored item, and its added + done events.

        Raises:
            Invalid: unknown ``previous_item_id``, assistant audio, a duplicate id, a
                function_call_output whose call_id matches no function_call, or an
                mcp_approval_response that answers no mcp_approval_request.
        """
        index: int | None = None
        if previous_item_id == "root":
            index = 0
        elif previous_item_id is not None:
            pos = self.find(previous_item_id)
            if pos < 0:
                raise Invalid(
                    "invalid_value",
                    f"Previous item with id '{previous_item_id}' does not exist in the "
                    "conversation.",
                    "previous_item_id",
                )
            index = pos + 1
        item = self._normalise(raw, "item")
        if item["type"] == "function_call_output" and not any(
            i.get("type") == "function_call" and i.get("call_id") == item["call_id"]
            for i in self.items
        ):
            raise Invalid(
                "invalid_value",
                f"No tool call found for function call output with call_id {item['call_id']}.",
                "item.call_id",
            )
        if item["type"] == "mcp_approval_response" and not any(
            i.get("type") == "mcp_approval_request" and i.get("id") == item["approval_request_id"]
            for i in self.items
        ):
            raise Invalid(
                "invalid_value",
                f"No approval request found with id '{item['approval_request_id']}'.",
                "item.approval_request_id",
            )
        for part in item.get("content") or []:
            if part.get("type") == "input_audio" and part.get("audio"):
                self.audio[item["id"]] = base64.b64decode(part["audio"], validate=False)
        out = self.insert(item, index)
        out.append(self.done(item))
        return item, out

    def retrieve(self, item_id: str) -> Event:
        """``conversation.item.retrieved``: the item with its audio.

        Raises:
            Invalid: no such item.
        """
        item = copy.deepcopy(self.lookup(item_id))
        audio = self.audio.get(item["id"])
        for part in item.get("content") or []:
            if part.get("type") in ("input_audio", "output_audio") and audio is not None:
                part["audio"] = base64.b64encode(audio).decode("ascii")
        return server_event(self._ids, "conversation.item.retrieved", item=item)

    def delete(self, item_id: str) -> Event:
        """``conversation.item.deleted``; the item and its audio are gone.

        Raises:
            Invalid: no such item.
        """
        item = self.lookup(item_id)
        self.items.remove(item)
        self.audio.pop(item["id"], None)
        return server_event(self._ids, "conversation.item.deleted", item_id=item["id"])

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> Event:
        """``conversation.item.truncated``: audio and transcript cut at ``audio_end_ms``.

        Raises:
            Invalid: not an assistant message, no audio part there, or the audio is
                already shorter than ``audio_end_ms``.
        """
        item = self.lookup(item_id)
        if item.get("type") != "message" or item.get("role") != "assistant":
            raise Invalid(
                "invalid_value", "Only assistant message items can be truncated.", "item_id"
            )
        content = item.get("content") or []
        if content_index >= len(content) or content[content_index].get("type") != "output_audio":
            raise Invalid(
                "invalid_value", "The content part has no audio to truncate.", "content_index"
            )
        audio = self.audio.get(item["id"], b"")
        duration_ms = len(audio) // bytes_per_ms("audio/pcm")  # synthetic output is PCM16
        if audio_end_ms > duration_ms:
            raise Invalid(
                "invalid_value",
                f"Audio content of {duration_ms}ms is already shorter than {audio_end_ms}ms.",
                "audio_end_ms",
            )
        keep = audio_end_ms * bytes_per_ms("audio/pcm")
        transcript = str(content[content_index].get("transcript") or "")
        if duration_ms:
            cut = len(transcript) * audio_end_ms // duration_ms
            content[content_index]["transcript"] = transcript[:cut]
        # A new object: a response still streaming into the old buffer no longer counts.
        self.audio[item["id"]] = audio[:keep]
        return server_event(
            self._ids,
            "conversation.item.truncated",
            item_id=item["id"],
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )
