"""The defects fixed with Core v2, each over real sockets on asyncio and trio."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from live import FAST_RETRY, Echo, live, outputs, received

from rtagent import (
    Agent,
    ConnectionLost,
    Reconnected,
    ReconnectFailed,
    RetryPolicy,
    SessionRefused,
    connect,
    connect_sync,
)
from rtagent import events as ev
from rtagent._cli import main
from rtagent._errors import first_error
from rtagent.local import Call, Faults, LocalRealtimeServer, ScriptedBrain, Turn

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

RATE_LIMITED = {"type": "invalid_request_error", "code": "rate_limit_exceeded",
                "message": "Rate limit reached."}


async def test_unsolicited_error_right_after_session_created_does_not_fail_connect() -> None:
    """An error with no event_id during the handshake reaches the app; connect() succeeds at once."""
    seen: list[Any] = []
    faults = Faults(error_after=[("session.created", RATE_LIMITED)])
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="still here")], faults, event_buffer=64) as (server, session):
            async for event in session:
                seen.append(event)
                if isinstance(event, ev.Error):
                    break
            assert await session.ask("hi") == "still here"
            assert len(server.connections) == 1
    assert seen[-1].error.code == "rate_limit_exceeded"


async def test_unsolicited_error_mid_response_does_not_end_the_turn() -> None:
    """server_error with no event_id while a response streams: ask() still gets the answer."""
    faults = Faults(error_after=[("response.created", {"type": "server_error", "code": "server_error",
                                                       "message": "hiccup"})])
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="the whole answer")], faults) as (server, session):
            assert await session.ask("hi") == "the whole answer"
            assert len(server.connections) == 1


async def test_repeated_answered_call_id_is_not_rerun_and_the_model_answers() -> None:
    """A later response reusing an answered call_id: no rerun, no second output, the answer comes."""
    agent = Echo()
    turns = [Turn(calls=[Call("echo", {"text": "x"}, call_id="call_same")]),
             Turn(calls=[Call("echo", {"text": "x"}, call_id="call_same")]),
             Turn(text="final answer")]
    with anyio.fail_after(10):
        async with live(agent, turns) as (server, session):
            assert await session.ask("go") == "final answer"
            sent = received(server)
    assert agent.runs == ["x"]
    assert len(outputs(sent)) == 1


async def test_vad_type_change_survives_a_reconnect() -> None:
    """server_vad -> semantic_vad drops server_vad's fields, so the replayed config is accepted."""
    agent = Agent(output_modalities=["text"],
                  turn_detection={"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 300})
    faults = [Faults(drop_after_sent="session.updated", drop_nth=2), None]
    with anyio.fail_after(10):
        async with live(agent, [Turn(text="fine")], faults) as (server, session):
            await session.update(audio={"input": {"turn_detection": {"type": "semantic_vad"}}})
            async for event in session:
                if isinstance(event, Reconnected):
                    break
            assert await session.ask("hello") == "fine"
            assert len(server.connections) == 2
            replayed = server.connections[1].received[0]["session"]
    assert replayed["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}


async def test_an_exception_in_the_callers_block_comes_out_unwrapped(
    local_server: LocalRealtimeServer,
) -> None:
    """connect() re-raises the caller's own exception as it is, not in an exception group."""
    with pytest.raises(KeyError):
        async with connect(Agent(), url=local_server.url, retry=FAST_RETRY):
            raise KeyError("mine")


async def test_audio_that_is_not_bytes_is_an_input_error(local_server: LocalRealtimeServer) -> None:
    """session.audio.send("text") raises InputError, not a TypeError from base64."""
    from rtagent import InputError

    async with connect(Agent(), url=local_server.url, retry=FAST_RETRY) as session:
        with pytest.raises(InputError):
            await session.audio.send("not audio")  # type: ignore[arg-type]


async def test_a_failed_session_raises_its_error_unwrapped() -> None:
    """When reconnecting gives up, ask() raises ReconnectFailed itself, on both backends."""
    faults = lambda i: Faults(drop_after_sent="session.created") if i > 0 else Faults(  # noqa: E731
        drop_after_sent="response.created")
    async with LocalRealtimeServer(ScriptedBrain([Turn(text="x")]), faults=faults) as server:
        async with connect(Agent(), url=server.url,
                           retry=RetryPolicy(max_attempts=2, delays=[0.01])) as session:
            with pytest.raises(ReconnectFailed):
                await session.ask("hi")


def test_connect_sync_raises_the_handshake_error_unwrapped() -> None:
    """connect_sync with a refused key raises SessionRefused, not an exception group."""
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        LocalRealtimeServer(api_key="right")
    ) as server:
        with pytest.raises(SessionRefused) as info, connect_sync(
            Agent(), url=server.url, api_key="wrong"
        ):
            pass
    assert info.value.close_code == 3000


def test_the_cli_prints_the_one_error_inside_a_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rtagent chat` against a dead port: one line, exit 1, no TaskGroup wording."""
    agent = tmp_path / "agent.py"
    agent.write_text("from rtagent import Agent\nagent = Agent(instructions='hi')\n")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = main(["chat", str(agent), "--url", f"ws://127.0.0.1:{port}/v1/realtime", "--retries", "1"])
    err = capsys.readouterr().err
    assert status == 1
    # Besides the line that says where it connects, one error line.
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("rtagent: connecting to ")]
    assert len(lines) == 1 and lines[0].startswith("rtagent: error: could not connect"), err
    assert "TaskGroup" not in err and "ExceptionGroup" not in err


def test_first_error_finds_the_rtagent_error_in_nested_groups() -> None:
    """first_error() skips cancellations and nesting to the error users should see."""
    import asyncio  # only to build a cancellation like the ones task groups collect

    inner = ReconnectFailed(3, None)
    group = BaseExceptionGroup("outer", [asyncio.CancelledError(), ExceptionGroup("inner", [inner])])
    assert first_error(group) is inner
    assert first_error(ExceptionGroup("x", [ExceptionGroup("y", [inner])])) is inner
    assert first_error(inner) is inner
    only_cancelled = BaseExceptionGroup("c", [asyncio.CancelledError()])
    assert first_error(only_cancelled) is only_cancelled


async def test_events_before_the_first_iteration_are_kept() -> None:
    """send_text() then `async for`: the response's events since connect are all delivered."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="hello")]) as (_server, session):
            await session.send_text("hi")
            await anyio.sleep(0.2)  # the whole response arrives before anybody iterates
            kinds = []
            async for event in session:
                kinds.append(event.type)
                if event.type == "response.done":
                    break
    assert kinds[0] == "session.created" and "response.created" in kinds


async def test_reconnect_notices_and_one_tool_output_after_a_drop() -> None:
    """A drop while the tool runs: one ConnectionLost, one Reconnected, the output posted once."""
    agent = Echo()
    notices: list[Any] = []
    turns = [Turn(calls=[Call("echo", {"text": "z"})]), Turn(text="after the drop")]
    faults = [Faults(drop_after_sent="response.output_item.done"), None]
    with anyio.fail_after(10):
        async with live(agent, turns, faults) as (server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        if isinstance(event, (ConnectionLost, Reconnected)):
                            notices.append(event)

                tg.start_soon(watch)
                assert await session.ask("go") == "after the drop"
                tg.cancel_scope.cancel()
            assert len(outputs(received(server, 1))) == 1
    assert [type(n) for n in notices] == [ConnectionLost, Reconnected]
    assert agent.runs == ["z"]


@pytest.mark.parametrize(("close", "code"), [(3000, "invalid_api_key"), (4000, "invalid_model")])
async def test_a_session_refused_after_the_upgrade_is_one_clear_error(close: int, code: str) -> None:
    """101, one error event, then close 3000/4000 (as the real service does): SessionRefused, no retry."""
    import json

    from rtagent import SessionRefused
    from rtagent._transport import WebSocket
    from rtagent.local._http import serve

    opened: list[int] = []

    async def refuse(ws: WebSocket) -> None:
        opened.append(1)
        error = {"type": "invalid_request_error", "code": code, "message": f"refused: {code}",
                 "param": None, "event_id": None}
        await ws.send(json.dumps({"type": "error", "event_id": "event_1", "error": error}))
        await ws.aclose(close, f"invalid_request_error.{code}")

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, refuse)
        with anyio.fail_after(10), pytest.raises(SessionRefused) as info:
            async with connect(Agent(), url=f"ws://127.0.0.1:{port}/v1/realtime", retry=FAST_RETRY):
                pass
        tg.cancel_scope.cancel()
    assert (info.value.code, info.value.close_code) == (code, close)
    assert info.value.close_reason == f"invalid_request_error.{code}"
    assert opened == [1]  # not retried
