"""OpenTelemetry: GenAI spans and metrics through the global providers, from a live session."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from live import Echo, live
from otel_globals import reset_otel_globals

from rtagent import Agent, ToolFinished, _otel, connect, tool
from rtagent.events import ResponseCreated, ResponseDone, SessionCreated
from rtagent.local import Call, Faults, LocalRealtimeServer, Turn

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

REPO = Path(__file__).resolve().parent.parent
MODEL = "gpt-realtime"


class Telemetry:
    """The SDK's in-memory span exporter and metric reader behind the global providers."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        delta = AggregationTemporality.DELTA
        self.reader = InMemoryMetricReader(preferred_temporality={Histogram: delta, Counter: delta})
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))

    def clear(self) -> None:
        self.spans.clear()
        self.reader.get_metrics_data()  # delta temporality: forget what earlier tests measured

    def finished(self) -> list[ReadableSpan]:
        return sorted(self.spans.get_finished_spans(), key=lambda s: s.start_time or 0)

    def points(self) -> dict[str, list[tuple[dict[str, Any], int, float]]]:
        """Metric name -> (attributes, count, sum) of each histogram point since the last call."""
        out: dict[str, list[tuple[dict[str, Any], int, float]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out[metric.name] = [
                        (dict(p.attributes or {}), p.count, p.sum)  # type: ignore[union-attr]
                        for p in metric.data.data_points
                    ]
        return out


@pytest.fixture(scope="module")
def global_telemetry() -> Iterator[Telemetry]:
    reset_otel_globals()
    telemetry = Telemetry()
    yield telemetry
    reset_otel_globals()


@pytest.fixture
def otel(global_telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> Telemetry:
    monkeypatch.delenv(_otel.CAPTURE_ENV, raising=False)
    global_telemetry.clear()
    return global_telemetry


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def tree(spans: list[ReadableSpan]) -> str:
    """The spans as an indented tree, children in start order (what the report shows)."""
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        attrs = span.attributes or {}
        keys = ("rtagent.turn.outcome", "gen_ai.response.finish_reasons", "gen_ai.tool.call.id",
                "rtagent.tool.outcome", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
        shown = ", ".join(f"{k}={attrs[k]!r}" for k in keys if k in attrs)
        lines.append(f"{'    ' * depth}{span.name}  [{shown}]")
        for child in _children(spans, span):
            walk(child, depth + 1)

    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in spans:
        if span.parent is None or span.parent.span_id not in ids:
            walk(span, 0)
    return "\n".join(lines)


TOOL_TURN = [Turn(calls=[Call("echo", {"text": "ahoy"}, call_id="call_1")]), Turn(text="It said ahoy.")]


async def test_span_tree_of_one_tool_turn(otel: Telemetry) -> None:
    """One tool turn: invoke_agent, parent of the call's response, the tool and the answer."""
    with anyio.fail_after(10):
        async with live(Echo(), TOOL_TURN, model=MODEL) as (_server, session):
            assert await session.ask("echo ahoy") == "It said ahoy."
    spans = otel.finished()
    print(tree(spans))
    assert [s.name for s in spans] == [
        "invoke_agent Echo",
        "realtime_inference gpt-realtime",
        "execute_tool echo",
        "realtime_inference gpt-realtime",
    ]
    turn, first, call, answer = spans
    assert turn.parent is None and _children(spans, turn) == [first, call, answer]
    assert len({s.context.trace_id for s in spans if s.context}) == 1
    assert (turn.kind, first.kind, call.kind) == (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.INTERNAL)
    common = {"gen_ai.provider.name": "openai", "gen_ai.system": "openai", "gen_ai.request.model": MODEL}
    for span in spans:
        assert common.items() <= dict(span.attributes or {}).items(), span.name
        assert span.status.status_code is StatusCode.UNSET
    t = dict(turn.attributes or {})
    assert t["gen_ai.operation.name"] == "invoke_agent" and t["gen_ai.agent.name"] == "Echo"
    assert (t["rtagent.turn.outcome"], t["rtagent.turn.responses"], t["rtagent.turn.tool_calls"]) == (
        "completed", 2, 1)
    assert str(t["gen_ai.conversation.id"]).startswith("sess_")
    assert t["server.address"] == "127.0.0.1" and isinstance(t["server.port"], int)
    f, a = dict(first.attributes or {}), dict(answer.attributes or {})
    assert f["gen_ai.operation.name"] == "realtime_inference"
    assert (f["gen_ai.response.finish_reasons"], a["gen_ai.response.finish_reasons"]) == (("tool_calls",), ("stop",))
    assert f["gen_ai.response.id"] != a["gen_ai.response.id"]
    for inference in (f, a):
        assert inference["gen_ai.usage.input_tokens"] > 0 and inference["gen_ai.usage.output_tokens"] > 0
        assert inference["rtagent.response.status"] == "completed"
    c = dict(call.attributes or {})
    assert c == {
        **common,
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "echo",
        "gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": t["gen_ai.conversation.id"], "rtagent.tool.outcome": "ok",
    }  # no arguments or result: content capture is off
    assert first.end_time is not None and call.start_time is not None and first.end_time <= call.start_time + 10**7


async def test_metrics_of_one_tool_turn(otel: Telemetry) -> None:
    """Durations per operation, token usage per type, and the tool-turn latencies are recorded."""
    with anyio.fail_after(10):
        async with live(Echo(), TOOL_TURN, model=MODEL) as (_server, session):
            await session.ask("echo ahoy")
    points = otel.points()
    durations = {p[0]["gen_ai.operation.name"]: p[1] for p in points["gen_ai.client.operation.duration"]}
    assert durations == {"invoke_agent": 1, "realtime_inference": 2, "execute_tool": 1}
    tool_point = next(p for p in points["gen_ai.client.operation.duration"]
                      if p[0]["gen_ai.operation.name"] == "execute_tool")
    assert tool_point[0]["gen_ai.tool.name"] == "echo" and 0 <= tool_point[2] < 5
    usage = {p[0]["gen_ai.token.type"]: (p[1], p[2]) for p in points["gen_ai.client.token.usage"]}
    assert set(usage) == {"input", "output"} and usage["input"][0] == 2 and usage["input"][1] > 0
    for name in ("rtagent.tool.time_to_output", "rtagent.tool.time_to_next_delta"):
        [(attributes, count, total)] = points[name]
        assert attributes["gen_ai.tool.name"] == "echo" and count == 1 and 0 <= total < 5
    assert all("gen_ai.conversation.id" not in p[0] for ps in points.values() for p in ps)


async def test_content_is_captured_only_when_asked(otel: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the GenAI capture variable set, messages, arguments and results go into spans."""
    monkeypatch.setenv(_otel.CAPTURE_ENV, "true")
    with anyio.fail_after(10):
        async with live(Echo(), TOOL_TURN, model=MODEL) as (_server, session):
            await session.ask("echo ahoy")
    turn, _first, call, answer = otel.finished()
    c = dict(call.attributes or {})
    assert (c["gen_ai.tool.call.arguments"], c["gen_ai.tool.call.result"]) == ('{"text":"ahoy"}', "echo:ahoy")
    t = dict(turn.attributes or {})
    assert json.loads(str(t["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "echo ahoy"}]}]
    assert json.loads(str(t["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It said ahoy."}], "finish_reason": "stop"}]
    assert "gen_ai.output.messages" in dict(answer.attributes or {})


async def test_interrupted_turn(otel: Telemetry) -> None:
    """A turn whose answer is cancelled ends as interrupted; its response says why."""
    faults = Faults(delay={"response.output_text.delta": 0.2})
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="a long and slow answer")], faults, model=MODEL) as (_server, session):
            await session.send_text("tell me a story")
            async for event in session:
                if isinstance(event, ResponseCreated):
                    await session.cancel()
                elif isinstance(event, ResponseDone):
                    break
    turn, response = otel.finished()
    assert dict(turn.attributes or {})["rtagent.turn.outcome"] == "interrupted"
    r = dict(response.attributes or {})
    assert r["rtagent.response.status"] == "cancelled"
    assert r["gen_ai.response.finish_reasons"] == ("client_cancelled",)


async def test_failed_turn(otel: Telemetry) -> None:
    """A failed response ends its turn as failed, both spans with an error status and type."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(fail="the model fell over")], model=MODEL) as (_server, session):
            with pytest.raises(Exception, match="the model fell over"):
                await session.ask("hi")
    turn, response = otel.finished()
    assert dict(turn.attributes or {})["rtagent.turn.outcome"] == "failed"
    for span in (turn, response):
        assert span.status.status_code is StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"]


async def test_session_closed_mid_tool(otel: Telemetry) -> None:
    """Closing the session while a tool runs ends the turn and the tool as session_closed."""
    started = anyio.Event()

    class Stuck(Agent):
        @tool
        async def wait(self) -> str:
            """Wait forever."""
            started.set()
            await anyio.sleep_forever()
            return "never"  # pragma: no cover

    with anyio.fail_after(10):
        async with live(Stuck(), [Turn(calls=[Call("wait")])], model=MODEL) as (_server, session):
            await session.send_text("wait")
            await started.wait()
    spans = {s.name: s for s in otel.finished()}
    assert dict(spans["invoke_agent Stuck"].attributes or {})["rtagent.turn.outcome"] == "session_closed"
    assert dict(spans["execute_tool wait"].attributes or {})["rtagent.tool.outcome"] == "session_closed"
    # The call runs once its item is complete, maybe before its response.done arrives.
    status = dict(spans["realtime_inference gpt-realtime"].attributes or {})["rtagent.response.status"]
    assert status in ("completed", "session_closed")


async def test_reconnect_replay_starts_no_new_turn(otel: Telemetry) -> None:
    """A drop mid-response ends that response's span; the replayed message is the same turn."""
    faults = [Faults(drop_after_sent="response.created")]
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="lost"), Turn(text="Hello again")], faults, model=MODEL) as (
            _server, session,
        ):
            assert await session.ask("hello") == "Hello again"
    spans = otel.finished()
    turns = [s for s in spans if s.name.startswith("invoke_agent")]
    assert len(turns) == 1
    assert dict(turns[0].attributes or {})["rtagent.turn.outcome"] == "completed"
    assert [e.name for e in turns[0].events] == ["rtagent.connection.lost", "rtagent.reconnected"]
    statuses = [dict(s.attributes or {})["rtagent.response.status"] for s in spans if s.name.startswith("realtime")]
    assert statuses == ["connection_lost", "completed"]


async def test_spans_are_children_of_the_callers_span(otel: Telemetry) -> None:
    """Turns are children of the span current where connect() was called."""
    tracer = trace.get_tracer("test")
    with anyio.fail_after(10), tracer.start_as_current_span("handle call") as outer:
        async with live(Echo(), [Turn(text="hi")], model=MODEL) as (_server, session):
            await session.ask("hello")
    spans = {s.name: s for s in otel.finished()}
    turn = spans["invoke_agent Echo"]
    assert turn.parent is not None and turn.parent.span_id == outer.get_span_context().span_id


async def test_application_still_gets_the_early_events(otel: Telemetry) -> None:
    """The telemetry's subscription leaves the events kept since connecting to the application."""
    with anyio.fail_after(10):
        async with live(Echo(), [Turn(text="hi")], model=MODEL) as (_server, session):
            async for event in session:
                assert isinstance(event, SessionCreated)
                break


async def test_telemetry_errors_never_reach_the_session(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An error inside the instrumentation is logged once as a warning; the session carries on."""
    from rtagent._otel.tracker import Tracker

    def broken(self: Tracker, event: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(Tracker, "handle", broken)
    with anyio.fail_after(10), caplog.at_level(logging.DEBUG, logger="rtagent.otel"):
        async with live(Echo(), TOOL_TURN, model=MODEL) as (_server, session):
            assert await session.ask("echo ahoy") == "It said ahoy."
            events = [e async for e in _until_tool_finished(session)]
    assert events
    warnings = [r for r in caplog.records if r.name == "rtagent.otel" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "could not record" in warnings[0].getMessage()


async def _until_tool_finished(session: Any) -> Any:
    await session.send_text("echo again")
    async for event in session:
        yield event
        if isinstance(event, ToolFinished):
            return


def test_no_telemetry_unless_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without providers, or when disabled by the standard variables, sessions get no telemetry."""
    url = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    reset_otel_globals()
    assert _otel.session_telemetry("A", MODEL, url) is None
    trace.set_tracer_provider(TracerProvider())
    try:
        telemetry = _otel.session_telemetry("A", MODEL, url)
        assert telemetry is not None
        assert telemetry.tracker._info.server_port == 443
        azure = _otel.session_telemetry("A", MODEL, "wss://x.openai.azure.com/openai/v1/realtime")
        assert azure is not None and azure.tracker._info.provider == "azure.ai.openai"
        monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "requests, rtagent")
        assert _otel.session_telemetry("A", MODEL, url) is None
        monkeypatch.delenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
        monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
        assert _otel.session_telemetry("A", MODEL, url) is None
    finally:
        reset_otel_globals()


def test_works_without_opentelemetry_installed() -> None:
    """With opentelemetry unimportable, rtagent imports and a session runs, without telemetry."""
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed
import anyio
from rtagent import Agent, connect, _otel
from rtagent.local import LocalRealtimeServer

async def main() -> None:
    assert _otel.session_telemetry("A", "m", "ws://127.0.0.1/v1/realtime") is None
    async with LocalRealtimeServer() as server, connect(Agent(), url=server.url) as session:
        print(await session.ask("hello"))

anyio.run(main)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Hello" in done.stdout and "opentelemetry" not in done.stderr


async def test_connect_without_a_tool_turn_is_quiet(otel: Telemetry) -> None:
    """A session with no user turn makes no spans (connecting is not a turn)."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer() as server, connect(Echo(), url=server.url):
            pass
    assert otel.finished() == []
