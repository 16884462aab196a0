"""Drive the local server with a recording's client events, and compare what it sends.

The local server's brain is scripted from the recording's outputs (each
``response.done`` becomes a :class:`~rtagent.local.Turn` with the recorded text, or
transcript, and calls with their recorded ``call_id`` and ``arguments``), so the
client's recorded ``function_call_output`` events fit. Each client event is sent once
the local server has sent the event the recording shows right before it (deltas,
transcription and ``rate_limits.updated`` aside). The recorder truncated audio to 32
bytes, which no VAD hears as speech: each spoken turn is sent as a synthetic utterance
(tone, then silence) instead of its recorded appends.

:func:`shape` reduces a stream of server events to what must match: the event types in
order, each run of deltas as one entry (which delta types it holds, not how many or how
they interleave: audio and transcript deltas alternate by chunk size), input
transcription in its own lane,
``rate_limits.updated`` left out (the real service sends it after some responses only;
:func:`rate_limits_follow_done` checks where it may appear).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import anyio

from rtagent._transport import connect
from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn
from rtagent.local._audio import silence_pcm16, sine_pcm16

from .corpus import TRANSCRIPTION_PREFIX, Recording

_UNORDERED = frozenset({"rate_limits.updated"})
_SKIP_ANCHOR = frozenset({"rate_limits.updated", "output_audio_buffer.started"})


def brain_for(recording: Recording) -> ScriptedBrain:
    """A brain that says what the recorded model said, one turn per response."""
    turns = []
    for response in recording.responses:
        text: str | None = None
        calls: list[Call] = []
        for item in response["output"]:
            if item["type"] == "message":
                part = item["content"][0]
                text = str(part.get("text") or part.get("transcript") or "")
            elif item["type"] == "function_call":
                calls.append(Call(item["name"], item["arguments"], call_id=item["call_id"]))
        turns.append(Turn(text=text, calls=calls))
    return ScriptedBrain(turns)


def is_delta(kind: str) -> bool:
    return kind.endswith(".delta")


def lane(kind: str) -> str:
    return "transcription" if kind.startswith(TRANSCRIPTION_PREFIX) else "main"


def shape(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The events of each lane that must match; a run of deltas becomes one entry.

    A run's entry has the type ``deltas(<types>)`` and, under ``"first"``, the first
    event of each delta type in it (whose fields are compared).
    """
    lanes: dict[str, list[dict[str, Any]]] = {"main": [], "transcription": []}
    for event in events:
        kind = event["type"]
        if kind in _UNORDERED:
            continue
        kept = lanes[lane(kind)]
        if not is_delta(kind):
            kept.append(event)
            continue
        if not kept or "first" not in kept[-1]:
            kept.append({"type": "", "first": {}})
        run = kept[-1]
        run["first"].setdefault(kind, event)
        run["type"] = f"deltas({', '.join(sorted(run['first']))})"
    return lanes


def rate_limits_follow_done(events: list[dict[str, Any]]) -> bool:
    """Every ``rate_limits.updated`` comes right after a ``response.done`` (transcription aside)."""
    main = [e["type"] for e in events if lane(e["type"]) == "main"]
    return all(
        i > 0 and main[i - 1] == "response.done"
        for i, kind in enumerate(main)
        if kind == "rate_limits.updated"
    )


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in ``value`` (list positions as ``*``)."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= field_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= field_paths(item, f"{prefix}.*")
    return paths


def _utterance() -> list[str]:
    """A spoken turn the local VAD hears: tone, then enough silence to end the turn."""
    audio = silence_pcm16(100) + sine_pcm16(500) + silence_pcm16(900)
    step = 100 * 48
    return [base64.b64encode(audio[i : i + step]).decode() for i in range(0, len(audio), step)]


def _plan(recording: Recording) -> list[tuple[dict[str, Any] | None, tuple[str, int] | None]]:
    """Each client event to send (None: a synthetic utterance), with its anchor.

    The anchor is the (type, occurrence) of the last server event before it that the
    local server must have sent first.
    """
    frames = recording.frames
    # Spoken turn k is sent where the last append before its speech_started was sent;
    # the user was silent in the other appends (the model was speaking meanwhile).
    speaking = set()
    last_append = None
    for i, frame in enumerate(frames):
        kind = frame["event"]["type"]
        if kind == "input_audio_buffer.append":
            last_append = i
        elif kind == "input_audio_buffer.speech_started" and last_append is not None:
            speaking.add(last_append)
    counts: Counter[str] = Counter()
    anchor: tuple[str, int] | None = None
    out: list[tuple[dict[str, Any] | None, tuple[str, int] | None]] = []
    for i, frame in enumerate(frames):
        event = frame["event"]
        kind = event["type"]
        if frame["dir"] == "server":
            counts[kind] += 1
            if not is_delta(kind) and lane(kind) == "main" and kind not in _SKIP_ANCHOR:
                anchor = (kind, counts[kind])
            continue
        if kind == "input_audio_buffer.append":
            if i in speaking:
                out.append((None, anchor))
            continue
        out.append((event, anchor))
    return out


def _endpoint(recording: Recording, server: LocalRealtimeServer) -> tuple[str, dict[str, str]]:
    model = recording.model
    if recording.service == "azure":
        path = "/openai/v1/realtime"
        headers = {"api-key": "azure-local-key"}
    else:
        path = "/v1/realtime"
        headers = {"Authorization": "Bearer sk-local"}
    if recording.sideband:  # a WebRTC call, as a browser starts one, to attach to
        call = server.calls.create(model=model, azure=recording.service == "azure")
        query = f"?call_id={call.id}"
    else:
        query = f"?model={model}"
    return f"ws://127.0.0.1:{server.port}{path}{query}", headers


def _settled(recording: Recording, sent: list[dict[str, Any]]) -> bool:
    """The local server has sent at least as many events of each kind as the recording's end needs."""
    def key(kind: str) -> str:  # a transcription ends completed, or failed
        return "transcription end" if lane(kind) == "transcription" else kind

    have = Counter(key(e["type"]) for e in sent if not is_delta(e["type"]))
    need = Counter(
        key(e["type"])
        for e in recording.server()
        if not is_delta(e["type"]) and e["type"] not in _UNORDERED
    )
    if recording.service != "azure":
        need["rate_limits.updated"] = need["response.done"]
    return all(have[kind] >= n for kind, n in need.items())


async def drive(recording: Recording) -> list[dict[str, Any]]:
    """The events the local server sends when the recording's client events drive it."""
    async with LocalRealtimeServer(brain_for(recording), audio_chunk_ms=100) as server:
        url, headers = _endpoint(recording, server)
        async with connect(url, headers=headers) as ws, anyio.create_task_group() as tg:

            async def read() -> None:
                async for _ in ws:
                    pass

            tg.start_soon(read)
            record = await server.wait_for(lambda r: True)
            for event, anchor in _plan(recording):
                if anchor is not None:
                    kind, n = anchor
                    await server.wait_for(
                        lambda r, kind=kind, n=n: sum(e["type"] == kind for e in r.sent) >= n
                    )
                if event is None:
                    for chunk in _utterance():
                        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                else:
                    await ws.send(json.dumps(event))
            with anyio.move_on_after(5):  # a guard against a hang; what was sent is compared
                await server.wait_for(lambda r: _settled(recording, r.sent), timeout=10)
            tg.cancel_scope.cancel()
        return list(record.sent)
