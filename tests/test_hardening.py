"""Hostile servers and bad input: no hang, no crash, no leaked secret (asyncio and trio).

Most tests drive rtagent against ``hostile.Hostile``, a fault-injecting server that shares
no code with rtagent: the behaviour under test cannot be an artefact of the local server.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hostile import Conn, Hostile
from live import Echo, live, outputs, received
from sansio import Feed, call_item, created, done, item_done, key_of, message

from rtagent import (
    Agent,
    FrameSkipped,
    InputError,
    ReconnectFailed,
    ResponseTimeout,
    RetryPolicy,
    ServerError,
    WebSocketConfig,
    connect,
    tool,
)
from rtagent._cli import main
from rtagent.local import Call, Faults, LocalRealtimeServer, Turn

REPO = Path(__file__).resolve().parent.parent
MARK = "sk-MARKED-secret-0123456789"
QUICK = RetryPolicy(max_attempts=3, delays=[0.05])


def answer_turn(conn: Conn, text: str, *, rid: str = "resp_1") -> dict[str, Any]:
    """Read the client's user message and response.create; answer with ``text``."""
    conn.expect("conversation.item.create")
    create = conn.expect("response.create")
    metadata = (create.get("response") or {}).get("metadata")
    response = {"id": rid, "status": "in_progress", "output": [], "metadata": metadata}
    conn.send_event("response.created", response=response)
    item = {"id": f"item_{rid}", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text}]}
    conn.send_event("response.output_item.done", response_id=rid, output_index=0, item=item)
    conn.send_event("response.done", response={**response, "status": "completed", "output": [item]})
    return create


# -- 1. secrets in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_any_logger_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG on every logger, a marked key through success, refusal, reconnects and secrets."""
    from rtagent import acreate_client_secret

    caplog.set_level(logging.DEBUG)
    with anyio.fail_after(20):
        async with LocalRealtimeServer(api_key=MARK, faults=[Faults(drop_after_sent="response.done")]) as server:
            async with connect(Echo(), url=server.url, api_key=MARK, retry=QUICK) as session:
                assert await session.ask("hi")
                assert await session.ask("again")  # the first connection dropped after "hi"
            secret = await acreate_client_secret(Agent(), api_key=MARK, base_url=server.http_url)
            async with connect(Agent(), url=server.url, api_key=secret.value, retry=QUICK) as session:
                pass
            with pytest.raises(Exception):  # noqa: B017 - refused one way or another
                async with connect(Agent(), url=server.url, api_key=MARK + "x", retry=QUICK):
                    pass
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "Authorization" in logged or "authorization" in logged  # the headers were logged...
    assert MARK not in logged  # ...but never the key
    assert secret.value not in logged
    assert len(server.connections) >= 3


def test_no_secret_in_chat_or_serve_debug_output(tmp_path: Path) -> None:
    """`rtagent serve --debug` and `rtagent chat --debug` print no key, even when refusing one."""
    env = {**os.environ, "OPENAI_API_KEY": MARK, "PYTHONPATH": str(REPO)}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = subprocess.Popen(
        [sys.executable, "-m", "rtagent", "serve", "--debug", "--port", str(port), "--api-key", MARK],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert serve.stdout is not None
        serve.stdout.readline()  # the URL: listening
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        for key in (MARK, MARK + "-wrong"):
            chat = subprocess.run(
                [sys.executable, "-m", "rtagent", "chat", "examples/pirate.py", "--debug", "--url", url],
                input="Ahoy\n", capture_output=True, text=True, cwd=REPO, timeout=60,
                env={**env, "OPENAI_API_KEY": key},
            )
            assert MARK not in chat.stdout + chat.stderr
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=10)
    assert MARK not in err
    assert "GET /v1/realtime" in err or "connection" in err.lower()  # it did log at DEBUG


def test_reprs_of_public_objects_hold_no_secret() -> None:
    """repr() of endpoints, configs, secrets and errors never shows a credential."""
    from rtagent import ClientSecret, Endpoint

    objects: list[Any] = [
        Endpoint.resolve(api_key=MARK),
        Endpoint.resolve(azure_endpoint="https://x.openai.azure.com", azure_api_key=MARK),
        Endpoint.resolve(url="ws://127.0.0.1:1/v1/realtime", api_key=MARK,
                         headers={"Authorization": f"Bearer {MARK}"}),
        WebSocketConfig(proxy=f"http://user:{MARK}@proxy:3128"),
        ClientSecret(value="ek_" + MARK, expires_at=0),
        LocalRealtimeServer(api_key=MARK),
    ]
    for obj in objects:
        assert MARK not in repr(obj), type(obj).__name__


async def test_repr_of_a_live_session_and_its_connection_records() -> None:
    """A live session and the local server's connection records show no key."""
    async with LocalRealtimeServer(api_key=MARK) as server:
        async with connect(Agent(), url=server.url, api_key=MARK, retry=QUICK) as session:
            assert MARK not in repr(session)
            assert MARK not in repr(server.connections[0])


# -- 2. reconnect pacing -----------------------------------------------------------------------


async def test_connections_that_close_at_once_count_against_the_retry_policy() -> None:
    """Handshake succeeds, then close 1011 at once, every time: ReconnectFailed after 3 attempts."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.close(1011, "internal error")

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            with pytest.raises(ReconnectFailed) as info:
                await session.ask("hello?")
    assert info.value.attempts == 3
    assert len(server.connections) == 3  # the first connection counts: it never proved itself


async def test_a_session_whose_server_starts_closing_at_once_ends_with_reconnect_failed() -> None:
    """After a good first connection, short-lived ones are paced and ask() raises in the end."""

    def script(conn: Conn) -> None:
        conn.handshake()
        if conn.index == 0:
            answer_turn(conn, "first")
            conn.close(1008, "policy")
        else:
            conn.close(4001, "go away")

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            assert await session.ask("one") == "first"
            with pytest.raises(ReconnectFailed):
                await session.ask("two")
    assert len(server.connections) == 1 + QUICK.max_attempts  # type: ignore[operator]


async def test_an_expires_at_in_the_past_never_drives_rollovers() -> None:
    """session.created with expires_at long past: one connection, no rollover loop."""

    def script(conn: Conn) -> None:
        conn.handshake(expires_at=10)
        answer_turn(conn, "fine")
        conn.wait_closed(timeout=3)

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            assert await session.ask("hi") == "fine"
            await anyio.sleep(0.3)
            assert len(server.connections) == 1


async def test_a_close_frame_without_end_of_stream_does_not_stall_the_reconnect() -> None:
    """The server sends its close frame and keeps TCP open: the client reconnects promptly."""

    def script(conn: Conn) -> None:
        conn.handshake()
        if conn.index == 0:
            answer_turn(conn, "first")
            conn.close_frame_only(1001, "going away")
            conn.wait_closed(timeout=30)  # never closes the TCP stream itself
        else:
            answer_turn(conn, "second")
            conn.wait_closed(timeout=3)

    config = WebSocketConfig(close_timeout=30, ping_interval=None)
    with Hostile(script) as server, anyio.fail_after(8):  # far below the close timeout
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK, ws_config=config) as session:
            assert await session.ask("one") == "first"
            assert await session.ask("two") == "second"


# -- 3. one bad field never wedges a session ---------------------------------------------------


async def test_odd_field_types_in_response_events_cost_nothing() -> None:
    """usage: [], status_details: "x", a malformed output entry: the turn still completes."""

    def script(conn: Conn) -> None:
        conn.handshake()
        for rid, text in (("r1", "one"), ("r2", "two")):
            conn.expect("conversation.item.create")
            create = conn.expect("response.create")
            meta = create["response"]["metadata"]
            conn.send_event("response.created", response={"id": rid, "status": "in_progress",
                                                          "usage": [], "metadata": meta})
            item = {"id": f"m_{rid}", "type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": text}, 42]}
            conn.send_event("response.done", response={
                "id": rid, "status": "completed", "usage": [], "status_details": "x",
                "output": [item, "not an item"], "metadata": meta, "conversation_id": 7})
        conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            assert await session.ask("a") == "one"
            assert await session.ask("b") == "two"


async def test_a_failed_response_with_a_non_object_error_is_one_server_error() -> None:
    """status failed with status_details.error a string: ServerError, and the next turn works."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.expect("conversation.item.create")
        meta = conn.expect("response.create")["response"]["metadata"]
        conn.send_event("response.created", response={"id": "r1", "status": "in_progress", "metadata": meta})
        conn.send_event("response.done", response={"id": "r1", "status": "failed", "metadata": meta,
                                                   "status_details": {"type": "failed", "error": "boom"}})
        answer_turn(conn, "recovered", rid="r2")
        conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            with pytest.raises(ServerError):
                await session.ask("a")
            assert await session.ask("b") == "recovered"


async def test_invalid_base64_audio_costs_one_event_with_a_sink() -> None:
    """A non-base64 audio delta with a sink attached: skipped with a notice, the turn completes."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.expect("conversation.item.create")
        meta = conn.expect("response.create")["response"]["metadata"]
        conn.send_event("response.created", response={"id": "r1", "status": "in_progress", "metadata": meta})
        for delta in ("AAAA", "not base64 !!", "AAAA"):
            conn.send_event("response.output_audio.delta", response_id="r1", item_id="a1",
                            output_index=0, content_index=0, delta=delta)
        item = {"id": "a1", "type": "message", "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "hello"}]}
        conn.send_event("response.done", response={"id": "r1", "status": "completed",
                                                   "output": [item], "metadata": meta})
        conn.wait_closed()

    chunks: list[bytes] = []
    seen: list[Any] = []
    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            session.audio.add_sink(chunks.append)
            assert await session.ask("speak") == "hello"
            async for event in session:
                seen.append(event)
                if event.type == "response.done":
                    break
    assert chunks == [b"\x00\x00\x00", b"\x00\x00\x00"]
    assert any(isinstance(e, FrameSkipped) and "base64" in e.reason for e in seen)


async def test_binary_and_garbage_frames_are_skipped() -> None:
    """A binary frame, invalid JSON and an object without a type: each skipped, none fatal."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.send(b"\x00\x01binary")
        conn.send("{not json")
        conn.send('{"no_type": 1}')
        conn.send('"a string"')
        answer_turn(conn, "still fine")
        conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            assert await session.ask("hi") == "still fine"
            assert session.stats.skipped_frames == 4


# -- 4. attribution in the server-started race -------------------------------------------------


async def test_a_server_response_crossing_ours_never_answers_the_next_question() -> None:
    """VAD starts a response as our create arrives, then ours is honoured too: each ask its own."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.expect("conversation.item.create")
        create = conn.expect("response.create")
        meta = create["response"]["metadata"]
        # A server-started response (no metadata) crosses ours, then ours is honoured too.
        conn.send_event("response.created", response={"id": "r_vad", "status": "in_progress"})
        vad = {"id": "m_vad", "type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": "vad answer"}]}
        conn.send_event("response.done", response={"id": "r_vad", "status": "completed", "output": [vad]})
        conn.send_event("response.created", response={"id": "r1", "status": "in_progress", "metadata": meta})
        ours = {**vad, "id": "m1", "content": [{"type": "output_text", "text": "answer one"}]}
        conn.send_event("response.done", response={"id": "r1", "status": "completed",
                                                   "output": [ours], "metadata": meta})
        answer_turn(conn, "answer two", rid="r2")
        conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            # The first turn teaches the client that this server echoes metadata keys.
            assert await session.ask("one") in ("answer one", "vad answer")
            assert await session.ask("two") == "answer two"


async def test_attribution_by_key_once_the_server_echoes_keys() -> None:
    """After an echoed key, an unkeyed response never answers a pending ask()."""

    def script(conn: Conn) -> None:
        conn.handshake()
        answer_turn(conn, "zero", rid="r0")
        conn.expect("conversation.item.create")
        meta = conn.expect("response.create")["response"]["metadata"]
        conn.send_event("response.created", response={"id": "r_vad", "status": "in_progress"})
        vad = {"id": "m_vad", "type": "message", "role": "assistant",
               "content": [{"type": "output_text", "text": "previous question's answer"}]}
        conn.send_event("response.done", response={"id": "r_vad", "status": "completed", "output": [vad]})
        conn.send_event("response.created", response={"id": "r1", "status": "in_progress", "metadata": meta})
        ours = {**vad, "id": "m1", "content": [{"type": "output_text", "text": "answer one"}]}
        conn.send_event("response.done", response={"id": "r1", "status": "completed",
                                                   "output": [ours], "metadata": meta})
        conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(10):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK) as session:
            assert await session.ask("zero") == "zero"
            assert await session.ask("one") == "answer one"


# -- 5. text encoding --------------------------------------------------------------------------


async def test_lone_surrogates_in_caller_input_are_refused_before_anything_is_sent() -> None:
    """ask()/send_text()/add_item() with a lone surrogate: InputError; the session goes on."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="fine")]) as (server, session):
            for call in (lambda: session.ask("bad \ud800"), lambda: session.send_text("\udc80"),
                         lambda: session.add_item({"type": "message", "role": "user",
                                                   "content": [{"type": "input_text", "text": "\ud83d"}]}),
                         lambda: session.update(instructions=float("nan"))):
                with pytest.raises(InputError):
                    await call()
            assert session.history == []
            assert await session.ask("good") == "fine"
            assert [e["type"] for e in received(server)][1:] == ["conversation.item.create", "response.create"]


async def test_tool_results_with_surrogates_or_nan_are_posted_valid() -> None:
    """A tool returning lone surrogates or nan: the output is repaired or made valid JSON."""

    class Odd(Agent):
        @tool
        def text(self) -> str:
            """Broken text."""
            return "caf\udce9 \ud83d\ude00"

        @tool
        def numbers(self) -> dict[str, float]:
            """Numbers JSON cannot hold."""
            return {"nan": math.nan, "inf": math.inf, "ok": 1.5}

    turns = [Turn(calls=[Call("text", call_id="call_1"), Call("numbers", call_id="call_2")]),
             Turn(text="done")]
    with anyio.fail_after(10):
        async with live(Odd(), turns) as (server, session):
            assert await session.ask("go") == "done"
            out = {o["call_id"]: o["output"] for o in outputs(received(server))}
    assert out["call_1"] == "caf\ufffd \U0001f600"
    assert json.loads(out["call_2"]) == {"nan": None, "inf": None, "ok": 1.5}


# -- 6. tools that misbehave at the edge of the runtime ----------------------------------------


class _Weird(BaseException):
    pass


async def test_base_exceptions_from_tools_are_tool_failures() -> None:
    """SystemExit, KeyboardInterrupt and a custom BaseException: failed outputs, same on both backends."""

    class Rude(Agent):
        @tool
        def exits(self) -> str:
            """Exit."""
            raise SystemExit(3)

        @tool
        async def interrupts(self) -> str:
            """Interrupt."""
            raise KeyboardInterrupt

        @tool
        def weird(self) -> str:
            """Weird."""
            raise _Weird("odd")

    turns = [Turn(calls=[Call("exits"), Call("interrupts"), Call("weird")]), Turn(text="survived")]
    with anyio.fail_after(10):
        async with live(Rude(), turns) as (server, session):
            assert await session.ask("go") == "survived"
            out = [o["output"] for o in outputs(received(server))]
    assert sorted(out) == sorted([
        "error: exits failed unexpectedly (SystemExit)",
        "error: interrupts failed unexpectedly (KeyboardInterrupt)",
        "error: weird failed unexpectedly (_Weird)",
    ])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # only asyncio lets a tool raise its own
async def test_a_tool_cancelled_from_inside_is_a_tool_failure(anyio_backend: str) -> None:
    """A tool awaiting something another task cancelled: a failed output, the app goes on."""
    import asyncio  # the asyncio-only case under test: a foreign CancelledError

    class Awaits(Agent):
        @tool
        async def wait_for_it(self) -> str:
            """Await a future that gets cancelled elsewhere."""
            future = asyncio.get_running_loop().create_future()
            future.cancel()
            return str(await future)

    turns = [Turn(calls=[Call("wait_for_it")]), Turn(text="carried on")]
    with anyio.fail_after(10):
        async with live(Awaits(), turns) as (server, session):
            assert await session.ask("go") == "carried on"
            [out] = outputs(received(server))
    assert out["output"] == "error: wait_for_it failed unexpectedly (cancelled)"


def test_an_abandoned_sync_tool_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """A def tool that overran its timeout is abandoned; the process still exits promptly."""
    script = tmp_path / "slow_tool.py"
    script.write_text(textwrap.dedent('''
        import time, anyio
        from rtagent import Agent, connect, tool
        from rtagent.local import Call, LocalRealtimeServer, ScriptedBrain, Turn

        class Slow(Agent):
            @tool(timeout=0.2)
            def crawl(self) -> str:
                """Take forever."""
                time.sleep(120)
                return "late"

        async def main() -> None:
            brain = ScriptedBrain([Turn(calls=[Call("crawl")]), Turn(text="gave up")])
            async with LocalRealtimeServer(brain) as server:
                async with connect(Slow(), url=server.url, api_key="k") as session:
                    print(await session.ask("go"), flush=True)

        anyio.run(main)
    '''))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gave up"


# -- 7. no silent forever ----------------------------------------------------------------------


async def test_a_server_silent_mid_response_is_left_and_asked_again() -> None:
    """response.created, then silence (pings still answered): a new connection answers."""

    def script(conn: Conn) -> None:
        conn.handshake()
        if conn.index == 0:
            conn.expect("conversation.item.create")
            meta = conn.expect("response.create")["response"]["metadata"]
            conn.send_event("response.created", response={"id": "r1", "status": "in_progress",
                                                          "metadata": meta})
            conn.wait_closed(timeout=30)  # never finishes, keeps the socket open
        else:
            conn.expect("conversation.item.create")
            create = conn.expect("response.create")
            meta = create["response"]["metadata"]
            item = {"id": "m2", "type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "second try"}]}
            conn.send_event("response.created", response={"id": "r2", "status": "in_progress", "metadata": meta})
            conn.send_event("response.done", response={"id": "r2", "status": "completed",
                                                       "output": [item], "metadata": meta})
            conn.wait_closed()

    with Hostile(script) as server, anyio.fail_after(15):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK,
                           response_timeout=0.4) as session:
            assert await session.ask("hello") == "second try"
    assert len(server.connections) == 2


async def test_a_server_that_never_answers_ends_in_a_clear_error() -> None:
    """Every connection goes silent mid-response: ReconnectFailed whose last error says why."""

    def script(conn: Conn) -> None:
        conn.handshake()
        conn.expect("response.create")
        conn.send_event("response.created", response={"id": "r", "status": "in_progress"})
        conn.wait_closed(timeout=30)

    with Hostile(script) as server, anyio.fail_after(15):
        async with connect(Agent(), url=server.url, api_key="k", retry=QUICK,
                           response_timeout=0.3) as session:
            with pytest.raises(ReconnectFailed) as info:
                await session.ask("hello")
    assert isinstance(info.value.last_error, ResponseTimeout)


async def test_planned_rollover_happens_between_back_to_back_turns() -> None:
    """Turns that follow each other at once still let the session roll over in between."""
    with anyio.fail_after(15):
        async with live(Echo(), [Turn(text=str(i)) for i in range(12)], max_duration=0.3) as (server, session):
            for i in range(12):
                assert await session.ask(f"q{i}") == str(i)
                await anyio.sleep(0.05)
            assert len(server.connections) >= 2


# -- 9. plugins ---------------------------------------------------------------------------------


def test_missing_plugin_folder_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`rtagent chat AGENT --plugins missing/` exits 2 before connecting, with one line."""
    status = main(["chat", str(REPO / "examples" / "pirate.py"), "--local", "--plugins", "/no/such/dir"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip() == "rtagent: error: --plugins /no/such/dir: no such folder"


# -- 10. long sessions stay bounded ------------------------------------------------------------


def test_five_thousand_tool_turns_keep_the_session_bounded() -> None:
    """5,000 tool turns: no per-call state left, the mirror capped, the replay bounded and said so."""
    f = Feed(max_items=500).open()
    for n in range(5000):
        f.apply(f.session.add_item({"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": f"q{n}"}]}))
        f.apply(f.session.request_response(turns={n}))
        k = key_of([e for e in f.sent() if e["type"] == "response.create"][-1])
        call = call_item(f"c{n}")
        f.feed(created(f"r{n}", k), item_done(f"r{n}", call), done(f"r{n}", key=k))
        [run] = f.calls()
        f.apply(f.session.calls.finished(run.call_id, "out"))
        k2 = key_of([e for e in f.sent() if e["type"] == "response.create"][-1])
        f.feed(created(f"s{n}", k2), item_done(f"s{n}", message(f"m{n}", "ok")),
               done(f"s{n}", output=[message(f"m{n}", "ok")], key=k2))
        assert f.turns() == [({n}, "ok", None)]
    session = f.session
    assert not session.rounds and session.gate.idle
    assert len(session.mirror.items) <= 500
    assert len(session.mirror._outputs) <= 500 and len(session.mirror._calls) <= 500
    f.apply(session.connection_lost("reset"))
    f.apply(session.connection_opened())
    f.feed({"type": "session.created", "session": {"type": "realtime"}})
    replayed = [e for e in f.sent() if e["type"] == "conversation.item.create"]
    assert len(replayed) <= 500
    assert any("beyond the replay limit" in line for line in session.life.resumed[2])
