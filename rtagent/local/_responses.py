"""Responses of one connection: the runs in flight and the lazy event stream of each.

A response starts with ``response.created``, sent at once; the rest (output items:
messages with text or audio, function calls) is generated lazily, one event per
:meth:`Responses.next_event`, so a ``response.cancel`` or a VAD barge-in can cut in
between. Every response ends with exactly one ``response.done`` (PROTOCOL.md §3, §7),
followed on api.openai.com by ``rate_limits.updated`` (tokens only). Only one response
at a time may write to the default conversation; out-of-band ones (``conversation:
"none"``) run alongside.

The order and shapes are those of recorded real traffic (``tests/replay/``): an item
ends with ``conversation.item.done`` before ``response.output_item.done``; deltas carry
``obfuscation``; with the gpt-realtime-2.x models a message carries ``phase`` and a
spoken or written preamble is still streaming when the first ``function_call`` opens.
Hosted MCP calls (``mcp_call`` items) are streamed by :mod:`~._hosted_mcp`; while one
waits for its MCP server the response's stream yields ``PENDING`` and sends nothing.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._audio import synth_speech
from ._brains import Brain, Call, Conversation, Turn
from ._conversation_store import ConversationStore, public_item
from ._hosted_mcp import HostedCalls, HostedServers, McpOutcome, Pending, summary
from ._models import defaults_for
from ._session_config import SessionConfig
from ._usage import UsageMeter, tokens
from ._validate import Invalid
from ._wire import PLAIN, Event, Flavor, Ids, server_event

__all__ = ["MediaOut", "Responses"]

logger = logging.getLogger("rtagent.local")

_TOKENS_LIMIT = 15_000_000
"""The ``limit`` of the ``tokens`` rate limit (as recorded for a paid account)."""


class MediaOut(Protocol):
    """Where a call's spoken output goes: its media (WebRTC/SIP), not the WebSocket."""

    def play(self, pcm: bytes) -> None:
        """Queue PCM16 24 kHz audio for the caller."""

    def clear(self) -> None:
        """Drop what is queued and not played yet (barge-in, ``output_audio_buffer.clear``)."""


def _chunks(text: str, size: int) -> list[str]:
    """Split text into deltas of about ``size`` characters, on word boundaries."""
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        piece = word if not current and not out else " " + word
        if current and len(current) + len(piece) > size:
            out.append(current)
            current = piece
        else:
            current += piece
    if current or not out:
        out.append(current)
    return out


def _token_limit(max_output_tokens: int | str) -> int:
    return 4096 if max_output_tokens == "inf" else int(max_output_tokens)


@dataclass
class _Open:
    """An output item of a response that is still streaming (closed on cancel)."""

    item: dict[str, Any]
    output_index: int
    part_added: bool = False
    text: str = ""
    audio: bytearray = field(default_factory=bytearray)
    arguments: str = ""


@dataclass
class _Run:
    """One response in flight."""

    id: str
    in_conversation: bool
    modalities: list[str]
    max_output_tokens: int | str
    voice: str
    audio_format: dict[str, Any]
    metadata: dict[str, str] | None
    convo: Conversation
    turn: Turn
    output: list[dict[str, Any]] = field(default_factory=list)
    open: list[_Open] = field(default_factory=list)
    stream: Generator[Event | Pending, None, None] | None = None
    finished: bool = False
    playing: bool = False
    """Sideband: ``output_audio_buffer.started`` was sent (``stopped`` follows the end)."""


class Responses:
    """Starts, streams and cancels the responses of one connection.

    Args:
        ids: id factory (response, item, call and event ids).
        config: the session (defaults of each response, the model).
        store: the default conversation (context, and where output items go).
        brain: decides what each response says.
        flavor: the service imitated (Azure's extra fields, a sideband's audio).
        connection_index: 0-based index of the connection, shown to the brain.
        audio_chunk_ms: duration of each ``response.output_audio.delta``.
        duplicate_call_ids: fault: issue each function_call twice with one call_id.
        on_idle: called when the response writing to the conversation has ended; its
            events follow that response's last ones.
        hosted: the connection's hosted MCP servers.
        media: where a call's output audio is played (a sideband flavor only).
    """

    def __init__(
        self,
        ids: Ids,
        config: SessionConfig,
        store: ConversationStore,
        brain: Brain,
        *,
        flavor: Flavor = PLAIN,
        connection_index: int = 0,
        audio_chunk_ms: int = 100,
        duplicate_call_ids: bool = False,
        on_idle: Callable[[], list[Event]] | None = None,
        hosted: HostedServers | None = None,
        media: MediaOut | None = None,
    ) -> None:
        self._on_idle = on_idle
        self._hosted = HostedCalls(
            hosted if hosted is not None else HostedServers(ids, store),
            ids, store.new_item_id, self._open_item, self._close_item,
        )
        self._media = media
        self._last_played: str | None = None
        self._ids = ids
        self._config = config
        self._store = store
        self._brain = brain
        self._flavor = flavor
        self._phases = defaults_for(str(config.session["model"])).phases
        self._connection_index = connection_index
        self._audio_chunk_ms = audio_chunk_ms
        self._duplicate_call_ids = duplicate_call_ids
        self._usage = UsageMeter()
        self._runs: list[_Run] = []  # round-robin order of the streams still producing
        self._active: _Run | None = None  # the one writing to the default conversation
        self.spoke = False
        """Whether any response has streamed audio (the voice is then fixed)."""

    @property
    def has_active(self) -> bool:
        """True while a response writes to the default conversation."""
        return self._active is not None

    # ---- client events ---------------------------------------------------------------------

    def create(self, params: dict[str, Any]) -> list[Event]:
        """``response.create``: start a response unless one already writes to the conversation.

        Raises:
            Invalid: ``conversation_already_has_active_response`` (no response is started),
                or an ``input`` reference names no item.
        """
        if params.get("conversation", "auto") == "auto" and self._active is not None:
            raise Invalid(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._active.id}. "
                "Wait until the response is finished before creating a new one.",
                None,
            )
        return self.start(params)

    def cancel(self, response_id: str | None) -> list[Event]:
        """``response.cancel``: the named response, else the active or newest one.

        Raises:
            Invalid: ``response_cancel_not_active``: nothing to cancel.
        """
        run: _Run | None
        if response_id is not None:
            run = next((r for r in self._runs if r.id == response_id and not r.finished), None)
        else:
            run = self._active or next((r for r in reversed(self._runs) if not r.finished), None)
        if run is None:
            raise Invalid(
                "response_cancel_not_active", "Cancellation failed: no active response found", None
            )
        return self._cancel(run, "client_cancelled")

    def interrupt(self) -> list[Event]:
        """VAD barge-in: cancel the active response (reason ``turn_detected``), if any."""
        if self._active is None:
            return []
        return self._cancel(self._active, "turn_detected")

    def clear_output(self) -> list[Event]:
        """``output_audio_buffer.clear`` (WebRTC/SIP): stop the audio the caller hears.

        Answered with ``output_audio_buffer.cleared`` naming the response whose audio
        was playing (the last one that played when none is); a response cleared while it
        still streams sends no ``output_audio_buffer.stopped``.
        """
        if self._media is not None:
            self._media.clear()
        playing = next((r for r in self._runs if r.playing and not r.finished), None)
        if playing is not None:
            playing.playing = False
        response_id = playing.id if playing is not None else self._last_played
        if response_id is None:
            return []
        return [self._event("output_audio_buffer.cleared", response_id=response_id)]

    def start(self, params: dict[str, Any]) -> list[Event]:
        """Start a response; return ``response.created``, sent at once like the real server.

        ``response.created`` goes out before any event caused by a later client event,
        so a client can rely on it to know a response started; the rest streams lazily.

        Raises:
            Invalid: an ``input`` reference names no item.
        """
        session = self._config.session
        in_conversation = params.get("conversation", "auto") == "auto"
        convo = Conversation(
            items=(
                self._store.resolve_input(params["input"])
                if "input" in params
                else self._store.snapshot()
            ),
            instructions=str(params.get("instructions", session.get("instructions") or "")),
            tools=copy.deepcopy(params.get("tools", session.get("tools") or [])),
            tool_choice=copy.deepcopy(
                params.get("tool_choice", session.get("tool_choice", "auto"))
            ),
            connection_index=self._connection_index,
        )
        try:
            # Approval decisions on hosted MCP calls are the service's to carry out.
            turn = self._hosted.servers.answer_decisions(convo) or self._brain.reply(convo)
            turn = turn.resolve(convo)
        except Exception as exc:  # a broken script fails the response, not the connection
            logger.exception("brain failed")
            turn = Turn(fail=f"The local brain raised {type(exc).__name__}: {exc}")
        out_audio = params.get("audio", {}).get("output", {})
        voice = out_audio.get("voice", session["audio"]["output"].get("voice", "marin"))
        run = _Run(
            id=self._ids.new("resp"),
            in_conversation=in_conversation,
            modalities=list(
                params.get("output_modalities", session.get("output_modalities", ["audio"]))
            ),
            max_output_tokens=params.get(
                "max_output_tokens", session.get("max_output_tokens", "inf")
            ),
            voice=str(voice["id"] if isinstance(voice, dict) else voice),
            audio_format=copy.deepcopy(
                out_audio.get("format", session["audio"]["output"]["format"])
            ),
            metadata=copy.deepcopy(params.get("metadata")),
            convo=convo,
            turn=turn,
        )
        run.stream = self._stream(run)
        self._runs.append(run)
        if in_conversation:
            self._active = run
        return [self._event("response.created", response=self._response(run, "in_progress"))]

    def drain_ended(self) -> list[Event]:
        """What ended responses still have to send (after ``response.done``), all at once.

        The real server sends these before it reads the next client event, so a client
        event must not overtake them.
        """
        out: list[Event] = []
        for run in [r for r in self._runs if r.finished]:
            assert run.stream is not None
            out += [e for e in run.stream if not isinstance(e, Pending)]
            self._runs.remove(run)
        return out

    def next_event(self) -> Event | None:
        """The next streamed response event (round-robin over active responses), or None."""
        for _ in range(len(self._runs)):
            run = self._runs.pop(0)
            assert run.stream is not None
            event = next(run.stream, None)
            if event is None:
                continue
            self._runs.append(run)
            if isinstance(event, Pending):
                continue  # waiting for an MCP server: the others stream meanwhile
            return event
        return None

    # ---- the response object and its end ---------------------------------------------------

    def _event(self, type: str, **fields: Any) -> Event:
        return server_event(self._ids, type, **fields)

    def _response(
        self, run: _Run, status: str, details: Any = None, usage: Any = None
    ) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": run.id,
            "status": status,
            "status_details": details,
            "output": [public_item(i) for i in run.output] if status != "in_progress" else [],
            "conversation_id": self._store.id if run.in_conversation else None,
            "output_modalities": run.modalities,
            "max_output_tokens": run.max_output_tokens,
            "audio": {"output": {"format": run.audio_format, "voice": run.voice}},
            "usage": usage,
            "metadata": run.metadata,
        }

    def _end(self, run: _Run, status: str, details: Any) -> list[Event]:
        """``response.done``, then what the real service sends after it."""
        self._finish(run)
        usage = self._usage.measure(run.convo, run.output, self._store.audio)
        out = [self._event("response.done", response=self._response(run, status, details, usage))]
        if not self._flavor.azure:
            # rate_limits.updated: recorded after response.done, with the tokens limit only.
            out.append(
                self._event(
                    "rate_limits.updated",
                    rate_limits=[
                        {
                            "name": "tokens",
                            "limit": _TOKENS_LIMIT,
                            "remaining": _TOKENS_LIMIT - usage["total_tokens"],
                            "reset_seconds": 0.002,
                        }
                    ],
                )
            )
        if run.playing:
            # output_audio_buffer.stopped: the call has played the response's audio.
            out.append(self._event("output_audio_buffer.stopped", response_id=run.id))
        if run.in_conversation and self._on_idle is not None:
            out += self._on_idle()
        return out

    def _finish(self, run: _Run) -> None:
        run.finished = True
        if self._active is run:
            self._active = None

    def _cancel(self, run: _Run, reason: str) -> list[Event]:
        """Close a streaming response now: incomplete items, then response.done cancelled."""
        if run.playing and self._media is not None:
            self._media.clear()  # the caller stops hearing it at once
        out: list[Event] = []
        for cur in list(run.open):
            if cur.item["type"] == "message":
                out += self._end_message(run, cur, "incomplete")
            elif cur.item["type"] == "function_call":
                out += self._end_call(run, cur, "incomplete")
            else:  # an mcp_call waiting for its server: it ends without output
                out += self._close_item(run, cur, None)
        if run.stream is not None:
            run.stream.close()
        if run in self._runs:
            self._runs.remove(run)
        return out + self._end(run, "cancelled", {"type": "cancelled", "reason": reason})

    # ---- the lazy stream -------------------------------------------------------------------

    def _stream(self, run: _Run) -> Generator[Event | Pending, None, None]:
        """All events of one response, generated lazily so a cancel can cut in between."""
        turn = run.turn
        if turn.fail:
            message = (
                turn.fail
                if isinstance(turn.fail, str)
                else ("The server had an error while processing your request. Sorry about that!")
            )
            failure: dict[str, Any] = {
                "type": "failed",
                "error": {"type": "server_error", "code": "server_error", "message": message},
            }
            yield from self._end(run, "failed", failure)
            return
        budget = _token_limit(run.max_output_tokens)
        incomplete = False
        calls: list[Call] = []
        for call in turn.calls:
            if call.server_label is not None:
                calls.append(call)  # a hosted MCP call has no call_id
                continue
            call_id = call.call_id or self._ids.new("call")
            copies = 2 if self._duplicate_call_ids else 1
            calls += [dataclasses.replace(call, call_id=call_id)] * copies
        preamble: _Open | None = None
        text = turn.text if isinstance(turn.text, str) else None
        if text:
            if tokens(text) > budget:
                text, incomplete = text[: budget * 4], True
            budget -= tokens(text)
            phase = ("commentary" if calls else "final_answer") if self._phases else None
            preamble = yield from self._open_message(run, phase)
            yield from self._message_deltas(run, preamble, text)
            if incomplete or not (self._phases and calls):
                yield from self._end_message(
                    run, preamble, "incomplete" if incomplete else "completed"
                )
                preamble = None
        hosted: list[McpOutcome] = []
        for call in [] if incomplete else calls:
            args = call.arguments_json()
            if tokens(args) + 5 > budget:
                incomplete = True
                break
            budget -= tokens(args) + 5
            cur: _Open | None = None
            if call.server_label is not None:
                hosted.append((yield from self._hosted.stream(run, call, args)))
            else:
                cur = yield from self._open_call(run, call.name, str(call.call_id))
                yield from self._call_deltas(run, cur, args)
            if preamble is not None:
                # gpt-realtime-2.x: the preamble ends while the call's arguments stream.
                yield from self._end_message(run, preamble, "completed")
                preamble = None
            if cur is not None:
                yield from self._end_call(run, cur, "completed")
        if preamble is not None:
            yield from self._end_message(run, preamble, "completed")
        said = summary(hosted) if all(c.server_label for c in calls) else None
        if said and not incomplete:
            # The model speaks after its hosted calls, in the same response.
            cur = yield from self._open_message(run, "final_answer" if self._phases else None)
            yield from self._message_deltas(run, cur, said)
            yield from self._end_message(run, cur, "completed")
        status = "incomplete" if incomplete else "completed"
        details: dict[str, Any] | None = (
            {"type": "incomplete", "reason": "max_output_tokens"} if incomplete else None
        )
        yield from self._end(run, status, details)

    def _open_item(self, run: _Run, item: dict[str, Any]) -> Iterator[Event]:
        cur = _Open(item=item, output_index=len(run.output))
        run.open.append(cur)
        run.output.append(item)
        yield self._event(
            "response.output_item.added",
            response_id=run.id,
            output_index=cur.output_index,
            item=public_item(item),
        )
        if run.in_conversation:
            yield from self._store.insert(item)

    def _close_item(self, run: _Run, cur: _Open, status: str | None) -> list[Event]:
        """The item is final: conversation.item.done, then response.output_item.done.

        MCP items have no ``status`` (``None``).
        """
        if status is not None:
            cur.item["status"] = status
        run.open.remove(cur)
        out = []
        if run.in_conversation and self._store.find(cur.item["id"]) >= 0:
            out.append(self._store.done(cur.item, output=True))
        out.append(
            self._event(
                "response.output_item.done",
                response_id=run.id,
                output_index=cur.output_index,
                item=public_item(cur.item),
            )
        )
        return out

    def _part_event(self, type: str, where: dict[str, Any], part: dict[str, Any]) -> Event:
        if self._flavor.azure:
            # Azure repeats the part as "content" on response.content_part.added/done.
            return self._event(type, **where, part=part, content=copy.deepcopy(part))
        return self._event(type, **where, part=part)

    def _where(self, run: _Run, cur: _Open) -> dict[str, Any]:
        return {
            "response_id": run.id,
            "item_id": cur.item["id"],
            "output_index": cur.output_index,
            "content_index": 0,
        }

    def _open_message(self, run: _Run, phase: str | None) -> Generator[Event, None, _Open]:
        audio = run.modalities == ["audio"]
        item: dict[str, Any] = {
            "id": self._store.new_item_id(),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        if phase is not None:
            item["phase"] = phase
        yield from self._open_item(run, item)
        cur = run.open[-1]
        item["content"].append(
            {"type": "output_audio", "transcript": ""}
            if audio
            else {"type": "output_text", "text": ""}
        )
        cur.part_added = True
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        yield self._part_event("response.content_part.added", self._where(run, cur), part)
        return cur

    def _message_deltas(self, run: _Run, cur: _Open, text: str) -> Iterator[Event]:
        where = self._where(run, cur)
        item = cur.item
        if run.modalities != ["audio"]:
            for delta in _chunks(text, 12):
                cur.text += delta
                item["content"][0]["text"] = cur.text
                yield self._event(
                    "response.output_text.delta",
                    **where,
                    delta=delta,
                    obfuscation=self._ids.obfuscation(delta),
                )
            return
        chunk_bytes = self._audio_chunk_ms * 48
        for delta in _chunks(text, 12):
            cur.text += delta
            item["content"][0]["transcript"] = cur.text
            yield self._event(
                "response.output_audio_transcript.delta",
                **where,
                delta=delta,
                obfuscation=self._ids.obfuscation(delta),
            )
            pcm = synth_speech(delta)
            self.spoke = True
            if item["id"] not in self._store.audio:
                # Shared with the streaming buffer (no copy per chunk); a truncate
                # replaces the entry, so later chunks no longer count.
                self._store.keep_audio(item["id"], cur.audio)
            if self._flavor.sideband:
                cur.audio += pcm  # played over the call, not sent on this socket
                if self._media is not None:
                    self._media.play(pcm)
                continue
            for start in range(0, len(pcm), chunk_bytes):
                piece = pcm[start : start + chunk_bytes]
                cur.audio += piece
                yield self._event(
                    "response.output_audio.delta",
                    **where,
                    delta=base64.b64encode(piece).decode("ascii"),
                )
        if self._flavor.sideband and not run.playing:
            # output_audio_buffer.started: the call starts playing the response's audio.
            run.playing = True
            self._last_played = run.id
            yield self._event("output_audio_buffer.started", response_id=run.id)

    def _end_message(self, run: _Run, cur: _Open, status: str) -> list[Event]:
        where = self._where(run, cur)
        out: list[Event] = []
        if cur.part_added:
            if run.modalities == ["audio"]:
                out.append(self._event("response.output_audio.done", **where))
                out.append(
                    self._event(
                        "response.output_audio_transcript.done", **where, transcript=cur.text
                    )
                )
                part = {"type": "audio", "transcript": cur.text}
            else:
                out.append(self._event("response.output_text.done", **where, text=cur.text))
                part = {"type": "text", "text": cur.text}
            out.append(self._part_event("response.content_part.done", where, part))
        return out + self._close_item(run, cur, status)

    def _open_call(self, run: _Run, name: str, call_id: str) -> Generator[Event, None, _Open]:
        item = {
            "id": self._store.new_item_id(),
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        yield from self._open_item(run, item)
        return run.open[-1]

    def _call_deltas(self, run: _Run, cur: _Open, args: str) -> Iterator[Event]:
        step = max(1, math.ceil(len(args) / 3))
        for start in range(0, len(args), step):
            delta = args[start : start + step]
            cur.arguments += delta
            cur.item["arguments"] = cur.arguments
            yield self._event(
                "response.function_call_arguments.delta",
                response_id=run.id,
                item_id=cur.item["id"],
                output_index=cur.output_index,
                call_id=cur.item["call_id"],
                delta=delta,
                obfuscation=self._ids.obfuscation(delta),
            )

    def _end_call(self, run: _Run, cur: _Open, status: str) -> list[Event]:
        done = self._event(
            "response.function_call_arguments.done",
            response_id=run.id,
            item_id=cur.item["id"],
            output_index=cur.output_index,
            call_id=cur.item["call_id"],
            name=cur.item["name"],
            arguments=cur.arguments,
        )
        return [done, *self._close_item(run, cur, status)]
