"""Recorded real traffic against rtagent: its event types, and its client replaying each session."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import pytest
from conformance import assert_client_event, assert_server_event
from replay.corpus import FIXTURES, Recording, load, names
from replay.replayer import ReplayServer

from rtagent import Agent, RealtimeSession, connect, tool
from rtagent._events import KNOWN_TYPES
from rtagent.events import UnknownServerEvent, parse_server_event

ALL = names()
SIDEBAND = [n for n in ALL if load(n).sideband]
SESSIONS = [n for n in ALL if not load(n).sideband]


# ---- (a) every recorded event parses --------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_recorded_server_events_parse_into_rtagent_events(name: str) -> None:
    """Each recorded server event is a modelled rtagent event, or parses as unknown if unmodelled."""
    for event in load(name).server():
        parsed = parse_server_event(json.dumps(event))
        if event["type"] in KNOWN_TYPES:
            assert not isinstance(parsed, UnknownServerEvent), event["type"]
            assert parsed.type == event["type"]
        else:
            assert isinstance(parsed, UnknownServerEvent) and parsed.data == event


@pytest.mark.parametrize("name", ALL)
def test_the_oracle_accepts_every_recorded_event(name: str) -> None:
    """The conformance oracle accepts what the real service sent, and what its client sent."""
    for frame in load(name).frames:
        check = assert_server_event if frame["dir"] == "server" else assert_client_event
        check(frame["event"])


def test_the_corpus_covers_every_recording() -> None:
    """All twenty recordings are in the corpus, each with its source and licence."""
    assert len(ALL) == 20
    for name in ALL:
        raw = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
        assert raw["licence"].startswith("MIT") and raw["source"].startswith("shared/recordings/")


# ---- (b) rtagent's client against each recorded session ---------------------------------


def replay_agent(recording: Recording, runs: list[tuple[str, dict[str, Any]]]) -> Agent:
    """An agent declaring the recording's tools, each answering with the recorded output."""
    tools = []
    output = next(iter(recording.outputs.values()), "ok")
    for spec in recording.tools:
        params = list(spec["parameters"]["properties"])
        source = (
            f"def {spec['name']}({', '.join(f'{p}: str' for p in params)}) -> str:\n"
            f"    runs.append(({spec['name']!r}, dict({', '.join(f'{p}={p}' for p in params)})))\n"
            "    return output\n"
        )
        namespace: dict[str, Any] = {"runs": runs, "output": output}
        exec(source, namespace)
        function = namespace[spec["name"]]
        function.__doc__ = spec.get("description") or spec["name"]
        tools.append(tool(function))
    session = recording.session_update
    audio_in = session.get("audio", {}).get("input", {})
    return Agent(
        instructions=session.get("instructions", ""),
        output_modalities=session["output_modalities"],
        turn_detection=(audio_in.get("turn_detection") or {}).get("type"),
        tools=tools,
    )


def recorded_calls(recording: Recording) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item["name"], json.loads(item["arguments"]))
        for response in recording.responses
        for item in response["output"]
        if item["type"] == "function_call"
    ]


async def play(recording: Recording, session: RealtimeSession) -> str | None:
    """Do what the recorded client did; return ask()'s answer for a typed turn."""
    appends = recording.audio_appends
    if appends:
        async with anyio.create_task_group() as tg:
            done = anyio.Event()

            async def watch() -> None:
                seen = 0
                async for event in session:
                    if event.type == "response.done":
                        seen += 1
                        if seen == len(recording.responses):
                            done.set()
                            return

            tg.start_soon(watch)
            for payload in appends:
                await session.audio.send(base64.b64decode(payload))
            await done.wait()
        return None
    messages = [i for i in recording.items_created if i["type"] == "message"]
    for item in messages[:-1]:  # a seeded history
        await session.add_item(item)
    return await session.ask(messages[-1]["content"][0]["text"])


@pytest.mark.parametrize("name", SESSIONS)
async def test_rtagent_client_completes_each_recorded_session(name: str) -> None:
    """Replayed to rtagent's client, a recorded session completes: tools run once, one create a round."""
    recording = load(name)
    runs: list[tuple[str, dict[str, Any]]] = []
    agent = replay_agent(recording, runs)
    replay = ReplayServer(recording)
    with anyio.fail_after(15):
        async with replay.running():
            if recording.service == "azure":
                where: dict[str, Any] = {
                    "azure_endpoint": replay.azure_endpoint,
                    "azure_deployment": recording.model,
                    "azure_api_key": "azure-replay-key",
                }
            else:
                where = {"url": replay.url, "api_key": "sk-replay", "model": recording.model}
            async with connect(agent, reconnect=False, audio_chunk_ms=20, **where) as session:
                answer = await play(recording, session)
    (received,) = replay.received
    for event in received:
        assert_client_event(event)
    assert len(replay.sent[0]) == len(list(recording.server()))  # every event was played
    assert runs == recorded_calls(recording)
    sent_creates = sum(e["type"] == "response.create" for e in received)
    recorded_creates = sum(e["type"] == "response.create" for e in recording.client())
    assert sent_creates == recorded_creates
    if answer is not None:
        assert answer == recording.final_text


@pytest.mark.parametrize("name", SIDEBAND)
async def test_rtagent_client_as_a_sideband(name: str) -> None:
    """A sideband session (no session.created) completes its recorded turn with rtagent's client."""
    recording = load(name)
    replay = ReplayServer(recording)
    with anyio.fail_after(10):
        async with replay.running():
            url = replay.url + "?call_id=rtc_replay"
            async with connect(
                replay_agent(recording, []), url=url, api_key="sk-replay", reconnect=False
            ) as session:
                answer = await play(recording, session)
    assert answer == recording.final_text
