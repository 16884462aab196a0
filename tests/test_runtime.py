"""The live runtime over real sockets against the local server, on asyncio and trio."""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from live import FAST_RETRY, AnswersAfterLookup, Echo, kinds, live, outputs, received

from rtagent import (
    Agent,
    ConnectionLost,
    FrameSkipped,
    Reconnected,
    ReconnectFailed,
    RetryPolicy,
    SessionRefused,
    ToolError,
    ToolFinished,
    connect,
    tool,
)
from rtagent.local import Call, Faults, LocalRealtimeServer, ScriptedBrain, Turn
from rtagent.local._brains import Conversation


async def test_text_turn() -> None:
    """ask() returns the assistant's text after config and one response.create."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="Hello there!")]) as (server, session):
            assert await session.ask("hi") == "Hello there!"
            sent = received(server)
    assert kinds(sent) == ["session.update", "conversation.item.create:message", "response.create"]
    assert sent[0]["session"]["tools"][0]["name"] == "echo"


async def test_single_tool_turn() -> None:
    """A function call runs once, its output is posted, then one response.create follows."""
    agent = Echo()
    turns = [Turn(calls=[Call("echo", {"text": "x"}, call_id="call_1")]), Turn(text="done")]
    with anyio.fail_after(10):
        async with live(agent, turns) as (server, session):
            assert await session.ask("go") == "done"
            sent = received(server)
    assert agent.runs == ["x"]
    assert kinds(sent)[-2:] == ["conversation.item.create:function_call_output", "response.create"]
    assert outputs(sent) == [{"type": "function_call_output", "id": outputs(sent)[0]["id"],
                              "call_id": "call_1", "output": "echo:x"}]


async def test_parallel_calls_one_response_create_after_all_outputs() -> None:
    """Three calls in one response run concurrently and get exactly one response.create, last."""

    class Slow(Agent):
        def __init__(self) -> None:
            super().__init__()
            self.active = 0
            self.peak = 0

        @tool
        async def work(self, n: int) -> int:
            """Do some work."""
            self.active += 1
            self.peak = max(self.peak, self.active)
            await anyio.sleep(0.05 * (3 - n))
            self.active -= 1
            return n

    agent = Slow()
    turns = [Turn(calls=[Call("work", {"n": i}, call_id=f"call_{i + 1}") for i in range(3)]),
             Turn(text="all done")]
    with anyio.fail_after(10):
        async with live(agent, turns) as (server, session):
            assert await session.ask("go") == "all done"
            sent = received(server)
    assert agent.peak == 3
    tail = kinds(sent)[2:]
    assert tail == ["response.create"] + ["conversation.item.create:function_call_output"] * 3 + ["response.create"]
    assert sorted(o["call_id"] for o in outputs(sent)) == ["call_1", "call_2", "call_3"]


class _SlowEcho(Agent):
    instructions = "You echo."

    @tool
    def echo(self, text: str) -> str:
        """Echo the text back, a moment later.

        Args:
            text: The text to echo.
        """
        time.sleep(0.05)
        return text


async def test_server_started_response_race_is_absorbed() -> None:
    """When the server starts a response itself after our output, our create is not repeated."""
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="from the server"), Turn(text="never")]
    faults = Faults(auto_response_after_output=True)
    with anyio.fail_after(10):
        # The tool takes a moment, so the output (with our create) reaches the server after
        # its response.done on both backends, and the server's own response wins the race.
        async with live(_SlowEcho(), turns, faults, race=True) as (server, session):
            answer = await session.ask("go")
            sent = received(server)
            server_sent = server.connections[-1].sent
    assert answer == "from the server"
    errors = [e for e in server_sent if e["type"] == "error"]
    # Our create after the output lost the race once, and was not sent again.
    assert [e["error"]["code"] for e in errors] == ["conversation_already_has_active_response"]
    assert kinds(sent).count("response.create") == 2
    assert sum(1 for e in server_sent if e["type"] == "response.created") == 2


async def test_duplicate_call_id_runs_once() -> None:
    """A call_id issued twice runs the tool once and posts one output."""
    agent = Echo()
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="ok")]
    with anyio.fail_after(10):
        async with live(agent, turns, Faults(duplicate_call_ids=True)) as (server, session):
            assert await session.ask("go") == "ok"
            sent = received(server)
    assert agent.runs == ["x"]
    assert len(outputs(sent)) == 1


async def test_unknown_tool_gets_error_output_and_conversation_goes_on() -> None:
    """A call to a tool that does not exist gets an explanatory output, then a reply."""
    turns = [Turn(calls=[Call("nope", {})]), Turn(text="sorry")]
    with anyio.fail_after(10):
        async with live(Echo(), turns) as (server, session):
            assert await session.ask("go") == "sorry"
            out = outputs(received(server))
    assert "nope" in out[0]["output"] and "echo" in out[0]["output"]


async def test_tool_failures_become_outputs() -> None:
    """Exceptions, ToolError, timeouts and invalid arguments each become an output; the loop goes on."""

    class Faulty(Agent):
        @tool
        def boom(self) -> str:
            """Fail."""
            raise RuntimeError("secret internals")

        @tool
        def refuse(self) -> str:
            """Refuse politely."""
            raise ToolError("I cannot do that today.")

        @tool(timeout=0.05)
        async def slow(self) -> str:
            """Take too long."""
            await anyio.sleep(5)
            return "late"

        @tool
        def typed(self, n: int) -> int:
            """Needs an int."""
            return n

    turns = [
        Turn(calls=[Call("boom", call_id="call_1"), Call("refuse", call_id="call_2"),
                    Call("slow", call_id="call_3"), Call("typed", {"n": "abc"}, call_id="call_4"),
                    Call("typed", '{"n": 1', call_id="call_5")]),
        Turn(text="recovered"),
    ]
    with anyio.fail_after(10):
        async with live(Faulty(), turns) as (server, session):
            assert await session.ask("go") == "recovered"
            out = {o["call_id"]: o["output"] for o in outputs(received(server))}
    assert len(out) == 5
    assert "secret internals" not in out["call_1"]
    assert out["call_2"] == "I cannot do that today."
    assert "timed out" in out["call_3"] or "timeout" in out["call_3"]
    assert "n" in out["call_4"]
    assert "JSON" in out["call_5"] or "json" in out["call_5"]


async def test_slow_tool_does_not_block_events_or_audio() -> None:
    """While a tool sleeps, audio appends flow and other events are read."""
    gate = anyio.Event()

    class Waits(Agent):
        @tool
        async def wait(self) -> str:
            """Wait for a signal."""
            await gate.wait()
            return "released"

    turns = [Turn(calls=[Call("wait")]), Turn(text="finally")]
    with anyio.fail_after(10):
        async with live(Waits(), turns) as (server, session):
            async with anyio.create_task_group() as tg:
                result: list[str] = []

                async def asker() -> None:
                    result.append(await session.ask("go"))

                tg.start_soon(asker)
                await server.wait_for(lambda rec: any(e["type"] == "response.create" for e in rec.received))
                for _ in range(20):
                    await session.audio.send(b"\x00\x00" * 480)
                await server.wait_for(
                    lambda rec: sum(e["type"] == "input_audio_buffer.append" for e in rec.received) >= 20
                )
                gate.set()
            assert result == ["finally"]


async def test_error_event_is_surfaced_and_not_fatal() -> None:
    """A server error event reaches the event stream and the session keeps working."""
    faults = Faults(error_after=[("session.updated", {"type": "server_error", "code": "server_error",
                                                      "message": "The server had an error"})])
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="still here")], faults) as (_server, session):
            assert await session.ask("hi") == "still here"


async def test_malformed_and_unknown_frames_are_skipped() -> None:
    """Garbage frames and unknown event types are skipped and counted; the turn completes."""
    faults = Faults(inject_after=[("response.created", "{not json"),
                                  ("response.created", '{"type":"response.brand_new","event_id":"e"}')])
    seen: list[Any] = []
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="fine")], faults) as (_server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        seen.append(event)

                tg.start_soon(watch)
                await anyio.lowlevel.checkpoint()
                assert await session.ask("hi") == "fine"
                tg.cancel_scope.cancel()
            assert session.stats.skipped_frames == 1
    assert any(isinstance(e, FrameSkipped) for e in seen)
    assert any(getattr(e, "type", None) == "response.brand_new" for e in seen)


@pytest.mark.parametrize(
    ("faults", "creates_after"),
    [
        # Cut before any call: the user's request is repeated, then the tool round's.
        pytest.param(Faults(drop_after_sent="response.created"), 2, id="before-the-call"),
        pytest.param(Faults(drop_after_sent="response.done"), 1, id="after-call-response-done"),
        pytest.param(Faults(drop_after_sent="response.output_item.done"), 1, id="while-tool-runs"),
        pytest.param(Faults(drop_after_received="function_call_output"), 1, id="after-output-sent"),
    ],
)
async def test_drop_during_tool_turn_recovers_without_loss(faults: Faults, creates_after: int) -> None:
    """A connection dropped at any point of a tool turn: the tool runs once, ask() still answers."""

    class Once(Agent):
        def __init__(self) -> None:
            super().__init__()
            self.runs = 0

        @tool
        async def lookup(self, key: str) -> str:
            """Look a key up."""
            self.runs += 1
            await anyio.sleep(0.05)
            return f"value-of-{key}"

    agent = Once()
    notices: list[Any] = []
    with anyio.fail_after(15):
        async with live(agent, AnswersAfterLookup(), [faults, None]) as (server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        if isinstance(event, (ConnectionLost, Reconnected)):
                            notices.append(event)

                tg.start_soon(watch)
                await anyio.lowlevel.checkpoint()
                answer = await session.ask("what is k?")
                tg.cancel_scope.cancel()
            assert len(server.connections) == 2
            last = received(server, 1)
    assert answer == "answer"
    assert agent.runs == 1  # never re-asked for a call whose output was still coming
    assert [o["output"] for o in outputs(last)] == ["value-of-k"]
    assert kinds(last).count("response.create") == creates_after
    user_messages = [e for e in last if e["type"] == "conversation.item.create"
                     and e["item"]["type"] == "message" and e["item"]["role"] == "user"]
    assert len(user_messages) == 1
    assert [type(n).__name__ for n in notices] == ["ConnectionLost", "Reconnected"]


async def test_session_expiry_mid_tool_call_loses_nothing() -> None:
    """The server ends the session while a tool runs: the call's output lands on the next connection."""

    class Slow(Agent):
        def __init__(self) -> None:
            super().__init__()
            self.runs = 0

        @tool
        async def crunch(self) -> str:
            """Crunch numbers for a while."""
            self.runs += 1
            await anyio.sleep(1.0)
            return "crunched"

    agent = Slow()
    turns = [Turn(calls=[Call("crunch")]), Turn(text="result is in")]
    with anyio.fail_after(15):
        async with live(agent, turns, [Faults(expire_after=0.5), None],
                        planned_rollover=False) as (server, session):
            assert await session.ask("go") == "result is in"
            first = server.connections[0].sent
            last = received(server, 1)
    assert agent.runs == 1
    assert any(e["type"] == "error" and e["error"]["code"] == "session_expired" for e in first)
    assert kinds(last) == ["session.update", "conversation.item.create:message",
                           "conversation.item.create:function_call",
                           "conversation.item.create:function_call_output", "response.create"]


async def test_planned_rollover_between_responses() -> None:
    """Past max_duration the runtime moves to a new connection while idle, with no loss."""
    turns = [Turn(text="first"), Turn(text="second")]
    notices: list[Reconnected] = []
    rolled = anyio.Event()
    with anyio.fail_after(15):
        async with live(Echo(), turns, max_duration=0.5) as (server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        if isinstance(event, Reconnected):
                            notices.append(event)
                            rolled.set()

                tg.start_soon(watch)
                assert await session.ask("one") == "first"
                await rolled.wait()
                assert await session.ask("two") == "second"
                tg.cancel_scope.cancel()
            first = server.connections[0]
    assert notices[0].planned and notices[0].items_restored == 2
    assert not any(e["type"] == "error" for e in first.sent)


async def test_retry_limit_gives_one_clear_error() -> None:
    """When every reconnect fails, ask() raises ReconnectFailed."""
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="never")]
    with anyio.fail_after(15):
        async with LocalRealtimeServer(brain=ScriptedBrain(turns),
                                       faults=lambda i: Faults(drop_after_sent="session.created")
                                       if i > 0 else Faults(drop_after_sent="response.done")) as server:
            async with connect(Echo(), url=server.url, api_key="k",
                               retry=RetryPolicy(max_attempts=3, delays=[0.01])) as session:
                with pytest.raises(ReconnectFailed):
                    await session.ask("go")


async def test_first_connect_refused_key_is_not_retried() -> None:
    """A refused key (an error event, then close 3000) on the first connect raises SessionRefused at once."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(brain=ScriptedBrain([]), api_key="right") as server:
            with pytest.raises(SessionRefused) as info:
                async with connect(Echo(), url=server.url, api_key="wrong", retry=FAST_RETRY):
                    pass
            assert (info.value.close_code, info.value.code) == (3000, "invalid_api_key")
            assert len(server.connections) == 1


async def test_unreachable_server_exhausts_retries() -> None:
    """Connection refused on every attempt ends in ReconnectFailed."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with anyio.fail_after(10), pytest.raises(ReconnectFailed):
        async with connect(Echo(), url=f"ws://127.0.0.1:{port}/v1/realtime", api_key="k",
                           retry=RetryPolicy(max_attempts=2, delays=[0.01])):
            pass


@pytest.mark.parametrize("policy", ["cancel", "finish", "reply"])
async def test_interrupt_with_tool_in_flight(policy: str) -> None:
    """On app cancel, a running tool is cancelled or finishes, and only 'reply' asks for a reply."""
    started = anyio.Event()
    release = anyio.Event()
    finished: list[bool] = []

    class Interruptible(Agent):
        @tool(on_interrupt=policy)  # type: ignore[call-overload]
        async def long_job(self) -> str:
            """A long job."""
            started.set()
            await release.wait()
            finished.append(True)
            return "job result"

    turns = [Turn(calls=[Call("long_job")]), Turn(text="after")]
    answers: list[str] = []
    with anyio.fail_after(10):
        async with live(Interruptible(), turns) as (server, session):
            async with anyio.create_task_group() as tg:
                async def asker() -> None:
                    answers.append(await session.ask("start"))

                tg.start_soon(asker)
                await started.wait()
                await session.cancel()
                release.set()
            # ask() returned: with a reply for "reply", without one otherwise.
            sent = received(server)
    assert answers == (["after"] if policy == "reply" else [""])
    out = outputs(sent)[0]["output"]
    if policy == "cancel":
        assert finished == [] and "cancelled" in out
    else:
        assert finished == [True] and out == "job result"
    creates_after_output = kinds(sent)[kinds(sent).index("conversation.item.create:function_call_output"):]
    assert creates_after_output.count("response.create") == (1 if policy == "reply" else 0)


def pcm_tone(ms: int, amplitude: int) -> bytes:
    samples = 24 * ms
    return b"".join(struct.pack("<h", int(amplitude * math.sin(i / 6))) for i in range(samples))


async def test_barge_in_cancels_response_and_tool() -> None:
    """Speech during a tool call (server VAD) cancels an on_interrupt='cancel' tool."""
    started = anyio.Event()

    class Voice(Agent):
        turn_detection = {"type": "server_vad", "silence_duration_ms": 200,
                          "create_response": True, "interrupt_response": True}

        @tool(on_interrupt="cancel")
        async def search(self) -> str:
            """Search forever."""
            started.set()
            await anyio.sleep(30)
            return "never"

    turns = [Turn(calls=[Call("search")]), Turn(text="you interrupted me")]
    with anyio.fail_after(15):
        async with live(Voice(), turns) as (server, session):
            await session.send_text("search")
            await started.wait()
            await session.audio.send(pcm_tone(300, 12000))
            await session.audio.send(pcm_tone(400, 0))
            await server.wait_for(lambda rec: len(outputs(rec.received)) == 1)
            sent = received(server)
    assert "cancelled" in outputs(sent)[0]["output"]


async def test_live_tool_update_and_handoff() -> None:
    """update_tools() and handoff() send session.update; the new agent's tools answer calls."""

    class Billing(Agent):
        instructions = "You handle billing."

        @tool
        def refund(self, amount: float) -> str:
            """Refund an amount."""
            return f"refunded {amount}"

    billing = Billing()

    front = Echo()
    turns = [Turn(text="ok"), Turn(calls=[Call("refund", {"amount": 5})]), Turn(text="refund done")]
    with anyio.fail_after(10):
        async with live(front, turns) as (server, session):
            await session.update_tools([])
            assert await session.ask("hi") == "ok"
            await session.handoff(billing)
            assert await session.ask("refund me") == "refund done"
            sent = received(server)
    updates = [e for e in sent if e["type"] == "session.update"]
    assert updates[1]["session"] == {"type": "realtime", "tools": []}
    assert updates[2]["session"]["instructions"] == "You handle billing."
    assert [t["name"] for t in updates[2]["session"]["tools"]] == ["refund"]
    assert outputs(sent)[-1]["output"] == "refunded 5.0"


async def test_tool_finished_notices_carry_durations() -> None:
    """Each tool call yields a ToolFinished notice with its output and duration."""
    seen: list[ToolFinished] = []
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="done")]
    with anyio.fail_after(10):
        async with live(Echo(), turns) as (_server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        if isinstance(event, ToolFinished):
                            seen.append(event)

                tg.start_soon(watch)
                await anyio.lowlevel.checkpoint()
                await session.ask("go")
                tg.cancel_scope.cancel()
    assert [(n.name, n.output, n.ok) for n in seen] == [("echo", "echo:x", True)]
    assert seen[0].duration >= 0


def test_sync_facade() -> None:
    """connect_sync gives blocking ask() against the local server."""
    from rtagent import connect_sync

    holder: dict[str, Any] = {}

    async def serve(ready: Callable[[str], None], stop: anyio.Event) -> None:
        async with LocalRealtimeServer(brain=ScriptedBrain([Turn(calls=[Call("echo", {"text": "s"})]),
                                                            Turn(text="sync ok")])) as server:
            ready(server.url)
            await stop.wait()

    import threading

    url_ready = threading.Event()
    with anyio.from_thread.start_blocking_portal() as portal:
        stop = portal.call(anyio.Event)

        def ready(url: str) -> None:
            holder["url"] = url
            url_ready.set()

        future = portal.start_task_soon(serve, ready, stop)
        assert url_ready.wait(10)
        agent = Echo()
        with connect_sync(agent, url=holder["url"], api_key="k") as session:
            assert session.ask("hi") == "sync ok"
        assert agent.runs == ["s"]
        portal.call(stop.set)
        future.result(10)


async def test_history_survives_for_inspection() -> None:
    """session.history mirrors the conversation: user, call, output, assistant."""
    turns = [Turn(calls=[Call("echo", {"text": "x"})]), Turn(text="done")]
    with anyio.fail_after(10):
        async with live(Echo(), turns) as (_server, session):
            await session.ask("go")
            history = session.history
    assert [i["type"] for i in history] == ["message", "function_call", "function_call_output", "message"]
    assert json.loads(history[1]["arguments"]) == {"text": "x"}


async def test_out_of_band_response_skips_the_gate_and_the_history() -> None:
    """conversation="none" responses go out at once, run beside others, and leave history alone."""
    turns = [Turn(text="classified: greeting"), Turn(text="Hello!")]
    with anyio.fail_after(10):
        async with live(Echo(), turns) as (server, session):
            await session.create_response(conversation="none", output_modalities=["text"],
                                          instructions="Classify the intent.", input=[])
            assert await session.ask("hi") == "Hello!"
            await server.wait_for(lambda rec: sum(e["type"] == "response.done" for e in rec.sent) == 2)
            sent = received(server)
            history = session.history
    creates = [e for e in sent if e["type"] == "response.create"]
    assert creates[0]["response"]["conversation"] == "none"
    assert set(creates[0]["response"]["metadata"]) == {"rtagent_request"}
    assert [i.get("role") for i in history] == ["user", "assistant"]


async def test_follow_plugins_applies_reloads_live(tmp_path: Any) -> None:
    """Editing a plugin folder updates the live session's tools with session.update."""
    import os

    from rtagent._plugins import PluginFolder

    (tmp_path / "first.py").write_text(
        "from rtagent import tool\n\n@tool\ndef alpha() -> str:\n    \"\"\"Alpha.\"\"\"\n    return 'a'\n"
    )
    folder = PluginFolder(tmp_path)
    folder.load()
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="ok")]) as (server, session):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: folder.follow(session, interval=0.02))
                second = tmp_path / "second.py"
                second.write_text(
                    "from rtagent import tool\n\n@tool\ndef beta(n: int) -> int:\n"
                    "    \"\"\"Beta.\"\"\"\n    return n\n"
                )
                os.utime(second, (1, 1))
                record = await server.wait_for(lambda rec: any(
                    e["type"] == "session.update" and len(e["session"].get("tools", [])) == 3
                    for e in rec.received))
                tg.cancel_scope.cancel()
    update = [e for e in record.received if e["type"] == "session.update"][-1]
    assert sorted(t["name"] for t in update["session"]["tools"]) == ["alpha", "beta", "echo"]


async def test_tool_hands_off_through_its_context() -> None:
    """A tool given ToolContext can hand the conversation to another agent mid-round."""
    from rtagent import ToolContext

    class Billing(Agent):
        instructions = "You handle billing."

        @tool
        def refund(self, amount: float) -> str:
            """Refund an amount."""
            return f"refunded {amount}"

    class Front(Agent):
        instructions = "You route callers."

        @tool
        async def transfer_to_billing(self, ctx: ToolContext) -> str:
            """Transfer the caller to billing."""
            await ctx.session.handoff(Billing())
            return "transferred"

    turns = [Turn(calls=[Call("transfer_to_billing")]), Turn(text="billing here"),
             Turn(calls=[Call("refund", {"amount": 2})]), Turn(text="refunded")]
    with anyio.fail_after(10):
        async with live(Front(), turns) as (server, session):
            assert await session.ask("I want a refund") == "billing here"
            assert await session.ask("two dollars") == "refunded"
            sent = received(server)
    kinds_seen = kinds(sent)
    handoff_at = [i for i, e in enumerate(sent) if e["type"] == "session.update"][1]
    assert sent[handoff_at]["session"]["instructions"] == "You handle billing."
    # The handoff's session.update precedes the output, so the next response uses the new agent.
    assert handoff_at < kinds_seen.index("conversation.item.create:function_call_output")
    assert [o["output"] for o in outputs(sent)] == ["transferred", "refunded 2.0"]


async def test_model_option_overrides_the_agents_model() -> None:
    """connect(model=...) puts that model in the URL and in session.update alike."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="hi")], model="gpt-realtime-2.1") as (server, session):
            assert await session.ask("hello") == "hi"
            record = server.connections[0]
    assert record.query.get("model") == "gpt-realtime-2.1"
    assert record.received[0]["session"]["model"] == "gpt-realtime-2.1"


async def test_queued_user_turns_are_each_answered() -> None:
    """send_text("a") then ask("b"): b gets its own response, after a's."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="A"), Turn(text="B")]) as (server, session):
            await session.send_text("a")
            assert await session.ask("b") == "B"
            sent = received(server)
    assert kinds(sent).count("response.create") == 2


async def test_barge_in_after_audio_received_truncates_at_played_position() -> None:
    """Audio arrives faster than real time: a barge-in after response.done still truncates."""

    class Speaker(Agent):
        turn_detection = {"type": "server_vad", "silence_duration_ms": 200,
                          "create_response": False, "interrupt_response": True}

    seen_items: list[str] = []
    with anyio.fail_after(15):
        async with live(Speaker(), [Turn(text="A long spoken answer, well over half a second.")]) \
                as (server, session):
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    async for event in session:
                        if event.type == "response.output_audio.delta":
                            seen_items.append(event.item_id)  # type: ignore[union-attr]

                tg.start_soon(watch)
                await anyio.lowlevel.checkpoint()
                await session.ask("talk to me")
                tg.cancel_scope.cancel()
            session.audio.played(seen_items[0], 120)
            await session.audio.send(pcm_tone(300, 12000))
            record = await server.wait_for(lambda rec: any(
                e["type"] == "conversation.item.truncated" for e in rec.sent))
    truncate = next(e for e in record.received if e["type"] == "conversation.item.truncate")
    assert truncate["item_id"] == seen_items[0]
    assert truncate["audio_end_ms"] == 120


async def test_iterating_a_failed_session_raises_its_error() -> None:
    """When reconnecting gives up, `async for event in session` ends with ReconnectFailed."""
    turns = [Turn(text="hi")]
    with anyio.fail_after(15):
        async with LocalRealtimeServer(brain=ScriptedBrain(turns),
                                       faults=lambda i: Faults(drop_after_sent="session.created")
                                       if i > 0 else Faults(drop_after_sent="response.done")) as server:
            async with connect(Echo(), url=server.url, api_key="k",
                               retry=RetryPolicy(max_attempts=2, delays=[0.01])) as session:
                await session.send_text("hello")
                with pytest.raises(ReconnectFailed):
                    async for _event in session:
                        pass


async def test_ask_returns_after_cancel_and_a_drop() -> None:
    """Cancel while a finished tool waits for response.done, then the link drops: ask() returns."""
    ran = anyio.Event()

    class Fast(Agent):
        @tool
        async def fast(self) -> str:
            """Answer fast."""
            ran.set()
            return "ok"

    turns = [Turn(calls=[Call("fast")]), Turn(text="after")]
    faults = [Faults(delay={"response.done": 0.5}, drop_after_received="response.cancel"), None]
    answers: list[str] = []
    with anyio.fail_after(10):
        async with live(Fast(), turns, faults) as (_server, session):
            async with anyio.create_task_group() as tg:
                async def asker() -> None:
                    answers.append(await session.ask("go"))

                tg.start_soon(asker)
                await ran.wait()
                await session.cancel()
    assert answers == [""]  # interrupted with on_interrupt="finish": no reply was requested


async def test_concurrent_turns_each_get_their_own_answer() -> None:
    """ask("b") while another task sends "a": each turn is answered by its own response."""

    def answer(convo: Conversation) -> str:
        return "answer to " + convo.last_user_text

    turns = [Turn(text=answer)] * 3
    result: dict[str, str] = {}
    with anyio.fail_after(10):
        async with live(Echo(), turns, Faults(delay={"response.done": 0.2})) as (_server, session):
            async with anyio.create_task_group() as tg:
                async def asker() -> None:
                    result["b"] = await session.ask("b")

                tg.start_soon(asker)
                await anyio.sleep(0.05)
                await session.send_text("a")
                result["c"] = await session.ask("c")
    assert result == {"b": "answer to b", "c": "answer to c"}


async def test_close_during_reconnect_stops_promptly() -> None:
    """aclose() while reconnecting ends the session: iterators finish, no new connection serves."""
    faults = [Faults(drop_after_sent="response.done"), None, None]
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="hi")] * 3, faults,
                        retry=RetryPolicy(max_attempts=5, delays=[0.3])) as (server, session):
            events = session.__aiter__()
            await session.send_text("x")
            async for event in events:
                if isinstance(event, ConnectionLost):
                    break
            await session.aclose()
            async for _event in events:
                pass
            opened = len(server.connections)
    assert opened <= 2


async def test_iterating_after_the_end_returns_at_once() -> None:
    """A session that has ended yields nothing more, to new iterators and audio readers alike."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="hi")]) as (_server, session):
            assert await session.ask("hi") == "hi"
            await session.aclose()
            assert [e async for e in session] == []
            assert [c async for c in session.audio.output()] == []


async def test_a_failing_audio_sink_is_dropped_not_fatal() -> None:
    """An exception in an audio sink is logged and that sink removed; the turn completes."""
    good: list[bytes] = []

    def bad(_chunk: bytes) -> None:
        raise ValueError("player bug")

    class Speaks(Agent):
        output_modalities = ["audio"]
        turn_detection = None

    with anyio.fail_after(10):
        async with live(Speaks(), [Turn(text="hi there"), Turn(text="again")]) as (_server, session):
            session.audio.add_sink(bad)
            session.audio.add_sink(good.append)
            assert await session.ask("hello") == "hi there"
            assert await session.ask("more") == "again"
    assert good
