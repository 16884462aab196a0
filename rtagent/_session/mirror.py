"""The conversation mirror: what the server's conversation holds, in the server's order.

Every item that entered the default conversation is kept as the wire dict a client could
send in ``conversation.item.create``, so a new connection can be given the same
conversation (:meth:`ConversationMirror.replay`). Order follows the server:
``conversation.item.added`` carries ``previous_item_id``, which places an item that was
acknowledged after others the client sent later. Input transcripts, which arrive on
their own schedule, are folded into their items; assistant audio is counted so a
barge-in truncates at what the user heard.

The mirror is bounded: past ``max_items`` the oldest items are dropped (a function call
together with its output), and a replay says how many were left out. The server's own
conversation is bounded by its ``truncation`` setting in the same spirit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .. import _events as ev

__all__ = ["DEFAULT_MAX_ITEMS", "ConversationMirror", "replayable"]

logger = logging.getLogger("rtagent.session")

DEFAULT_MAX_ITEMS = 1000
"""Items kept for replay; older ones are dropped (see ``connect(max_items=...)``)."""

_REPLAYABLE = ("message", "function_call", "function_call_output")


class ConversationMirror:
    """Items by id in server order, plus what is needed to replay and truncate them."""

    def __init__(
        self, max_items: int = DEFAULT_MAX_ITEMS, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_items = max(2, max_items)
        self._clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self.times: dict[str, float] = {}
        """When each item entered the conversation (wall clock), for transcripts."""
        self._prev: dict[str, str | None] = {}
        self._next: dict[str, str] = {}
        self._last: str | None = None
        self._incomplete: set[str] = set()
        self._own: set[str] = set()
        self._transcripts: dict[str, str] = {}
        self._outputs: dict[str, str] = {}  # call_id -> output item id
        self._calls: dict[str, str] = {}  # call_id -> function_call item id
        self._audio: dict[str, int] = {}  # assistant item id -> audio bytes received
        self.audio_item: str | None = None
        self.played: tuple[str, int] | None = None
        self.playing: str | None = None
        """WebRTC/SIP: the response whose audio the server is playing to the caller."""
        """The assistant audio item being heard and how many ms of it (for barge-in)."""
        self.dropped = 0
        """Items dropped by the ``max_items`` bound so far."""

    # -- questions -----------------------------------------------------------------------

    def answered(self, call_id: str) -> bool:
        """Whether the conversation holds an output for ``call_id``."""
        return call_id in self._outputs

    def received_ms(self, item_id: str, bytes_per_ms: int) -> int:
        return self._audio.get(item_id, 0) // bytes_per_ms

    # -- our items -----------------------------------------------------------------------

    def record(self, item: dict[str, Any]) -> None:
        """Record an item the client creates (it is final as sent)."""
        self._append(item["id"], item)

    def sent(self, item_id: str) -> None:
        """The item was sent on this connection; its acknowledgement is awaited."""
        self._own.add(item_id)

    def acknowledged(self, event: ev.ConversationItemAdded | ev.ConversationItemCreated) -> bool:
        """Place an added item; returns True when it acknowledges one of ours."""
        item = event.item
        item_id = item.id
        if item_id is None:
            return False
        mine = item_id in self._own
        if mine:
            self._own.discard(item_id)
        elif item_id not in self.items and item.type in ("message", "function_call"):
            # A server item (model output, committed audio) takes its place now; its
            # content is filled in when done. Until then it is not replayable.
            self._append(item_id, item.to_wire())
            self._incomplete.add(item_id)
        self._place(item_id, event.previous_item_id)
        return mine

    # -- the server's items --------------------------------------------------------------

    def item_done(self, item: ev.Item) -> None:
        """``conversation.item.done``: the item is final (audio bytes excluded)."""
        if item.type == "function_call" and item.status != "completed":
            if item.id in self._incomplete:
                self.forget(item.id)  # a call cut off before its arguments were complete
            return
        if not item.id or item.type not in ("message", "function_call"):
            return
        if item.id not in self.items or item.id in self._incomplete:
            self.remember(item)  # our own items are final already

    def remember(self, item: ev.Item) -> None:
        """Record a finished server item, keeping its place if it already has one."""
        item_id = item.id
        if not item_id:
            return
        wire = item.to_wire()
        transcript = self._transcripts.pop(item_id, None)
        if transcript is not None:
            _apply_transcript(wire, transcript)
        if item_id in self.items:
            self.items[item_id] = wire  # same key: position unchanged
            self._index(item_id, wire)
        else:
            self._append(item_id, wire)
        self._incomplete.discard(item_id)

    def transcript(self, item_id: str, text: str) -> None:
        """Input transcription is asynchronous: it may come before or after the item."""
        item = self.items.get(item_id)
        if item is None or item_id in self._incomplete:
            if len(self._transcripts) < self.max_items:
                self._transcripts[item_id] = text
            if item is None:
                return
        _apply_transcript(item, text)

    def audio(self, item_id: str, base64_len: int, padding: int) -> None:
        """Count the bytes of an assistant audio delta (only its length matters)."""
        size = base64_len * 3 // 4 - padding
        self._audio[item_id] = self._audio.get(item_id, 0) + size
        self.audio_item = item_id

    def report_playback(self, item_id: str, played_ms: int) -> None:
        """How much of an assistant audio item the user has heard (for barge-in)."""
        self.played = (item_id, max(0, played_ms))

    def response_started(self) -> None:
        """Keep audio lengths only for what a barge-in may still truncate."""
        keep = (self.played[0] if self.played else None, self.audio_item)
        self._audio = {k: v for k, v in self._audio.items() if k in keep}

    def truncated(self, item_id: str, audio_end_ms: int, bytes_per_ms: int) -> None:
        """The server cut assistant audio; it drops the transcript past the cut too."""
        item = self.items.get(item_id)
        total_ms = self._audio.get(item_id, 0) // bytes_per_ms
        if item is None or total_ms <= 0:
            return
        share = min(1.0, audio_end_ms / total_ms)
        for part in item.get("content") or ():
            for key in ("transcript", "text"):
                if isinstance(part.get(key), str):
                    words = part[key].split()
                    part[key] = " ".join(words[: round(len(words) * share)])

    def forget(self, item_id: str | None) -> None:
        if item_id is not None and self._remove(item_id) is not None:
            self._transcripts.pop(item_id, None)

    # -- connections ---------------------------------------------------------------------

    def connection_lost(self) -> list[str]:
        """Drop items the server never finished; returns them, in words."""
        lost = []
        for item_id in list(self._incomplete):
            item = self.items.get(item_id, {})
            kind = item.get("role", item.get("type", "item"))
            lost.append(f"unfinished {kind} item {item_id} dropped")
            self.forget(item_id)
        self._incomplete.clear()
        self._own.clear()
        self.audio_item = None
        return lost

    def replay(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The items to create on a new connection, and what cannot be restored."""
        items: list[dict[str, Any]] = []
        lost: list[str] = []
        if self.dropped:
            lost.append(f"{self.dropped} older item(s) beyond the replay limit of {self.max_items}")
        for item in self.items.values():
            wire = replayable(item)
            if wire is None:
                lost.append(f"{item.get('role', item['type'])} item {item['id']}: no text to replay")
            else:
                items.append(wire)
        return items, lost

    # -- order ---------------------------------------------------------------------------
    # The dict keeps the order; _prev/_next link each item to its neighbours so that
    # appending and dropping are O(1) in a long session. Only a move (rare) rebuilds.

    def _append(self, item_id: str, item: dict[str, Any]) -> None:
        self.items[item_id] = item
        self.times[item_id] = self._clock()
        self._prev[item_id] = self._last
        if self._last is not None:
            self._next[self._last] = item_id
        self._last = item_id
        self._index(item_id, item)
        if len(self.items) > self.max_items:
            self._drop_oldest()

    def _remove(self, item_id: str) -> dict[str, Any] | None:
        item = self.items.pop(item_id, None)
        if item is None:
            return None
        self.times.pop(item_id, None)
        before = self._prev.pop(item_id, None)
        after = self._next.pop(item_id, None)
        if after is not None:
            self._prev[after] = before
        if before is not None:
            if after is None:
                self._next.pop(before, None)
            else:
                self._next[before] = after
        if self._last == item_id:
            self._last = before
        self._incomplete.discard(item_id)
        self._audio.pop(item_id, None)
        call_id = item.get("call_id") or item.get("approval_request_id")
        if isinstance(call_id, str):
            answer = item.get("type") in ("function_call_output", "mcp_approval_response")
            index = self._outputs if answer else self._calls
            if index.get(call_id) == item_id:
                del index[call_id]
        return item

    def _index(self, item_id: str, item: dict[str, Any]) -> None:
        call_id = item.get("call_id") or item.get("approval_request_id")
        if isinstance(call_id, str):
            if item.get("type") in ("function_call_output", "mcp_approval_response"):
                self._outputs[call_id] = item_id
            elif item.get("type") == "function_call":
                self._calls[call_id] = item_id

    def _drop_oldest(self) -> None:
        while len(self.items) > self.max_items:
            item = self._remove(next(iter(self.items)))
            self.dropped += 1
            call_id = item.get("call_id") if item else None
            if item and item.get("type") == "function_call" and isinstance(call_id, str):
                # A call's output must not outlive it: the server refuses an output
                # whose call is not in the conversation.
                output = self._outputs.get(call_id)
                if output is not None and self._remove(output) is not None:
                    self.dropped += 1

    def _place(self, item_id: str, previous_item_id: str | None) -> None:
        """Move ``item_id`` right after ``previous_item_id`` if it is elsewhere (rare)."""
        if previous_item_id is None or item_id not in self.items:
            return  # no position given: appended at the end already
        if self._prev.get(item_id) == previous_item_id or previous_item_id not in self.items:
            return  # in place, or after an item we do not mirror: keep our order
        item = self.items.pop(item_id)
        rebuilt: dict[str, dict[str, Any]] = {}
        for key, value in self.items.items():
            rebuilt[key] = value
            if key == previous_item_id:
                rebuilt[item_id] = item
        self.items = rebuilt
        self._prev, self._next, before = {}, {}, None
        for key in self.items:
            self._prev[key] = before
            if before is not None:
                self._next[before] = key
            before = key
        self._last = before


def _apply_transcript(item: dict[str, Any], transcript: str) -> None:
    for part in item.get("content") or ():
        if part.get("type") == "input_audio":
            part["transcript"] = transcript


def replayable(item: dict[str, Any]) -> dict[str, Any] | None:
    """The item as a client may create it, or None when it cannot be recreated."""
    if item.get("type") not in _REPLAYABLE:
        return None
    if item.get("type") != "message":
        return item
    content: list[dict[str, Any]] = []
    for part in item.get("content") or ():
        kind = part.get("type")
        if kind in ("output_audio", "audio", "output_text", "text"):
            # Clients cannot create assistant audio: replay its transcript as text.
            text = part.get("text") or part.get("transcript")
            if text:
                content.append({"type": "output_text", "text": text})
        elif kind == "input_audio":
            transcript = part.get("transcript")
            if transcript:
                content.append({"type": "input_text", "text": transcript})
        else:
            content.append(part)
    if not content:
        return None
    return {"type": "message", "id": item["id"], "role": item.get("role"), "content": content}
