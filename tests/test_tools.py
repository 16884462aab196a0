"""Tool invocation (every failure path), context injection, methods, and ToolRegistry."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from rtagent._errors import ToolDefinitionError, ToolError
from rtagent._tools import Tool, ToolContext, ToolRegistry, ToolResult, tool


class Weather(BaseModel):
    temp_c: int
    sky: str


@dataclasses.dataclass
class Reading:
    value: float


@tool
def get_weather(city: str) -> Weather:
    """Current weather for a city."""
    if city == "Atlantis":
        raise ToolError("Atlantis is under water; ask for another city.")
    if city == "crash":
        raise RuntimeError("secret internals")
    return Weather(temp_c=21, sky="sunny")


@tool
async def echo(text: str = "") -> str:
    """Echo the text."""
    return text


@tool
def anything(kind: str) -> Any:
    """Return values of several kinds."""
    values: dict[str, Any] = {
        "none": None,
        "int": 3,
        "list": [1, "a"],
        "dict": {"a": 1},
        "dataclass": Reading(1.5),
        "object": object(),
    }
    return values[kind]


@tool
async def who(ctx: ToolContext, greeting: str) -> str:
    """Report the injected context."""
    return f"{greeting} {ctx.tool_name} {ctx.call_id} {ctx.agent}"


@tool
def positional(a: int, /, ctx: ToolContext, b: int = 1) -> str:
    """Positional-only parameters are passed positionally."""
    return f"{a}-{b}-{ctx.call_id}"


CTX = ToolContext(call_id="call_1", tool_name="t", agent="A")


def run(fn: Any, arguments: str) -> ToolResult:
    """Invoke a tool built from ``fn`` on a fresh event loop (keeps sync tests sync)."""
    return anyio.run(Tool.from_function(fn).invoke, arguments, CTX)


# --------------------------------------------------------------------------- success paths


async def test_sync_tool_returns_serialised_model() -> None:
    """A sync tool runs (in a worker thread) and its pydantic result becomes JSON."""
    result = await Tool.from_function(get_weather).invoke('{"city":"Paris"}', CTX)
    assert result == ToolResult(output='{"temp_c":21,"sky":"sunny"}', ok=True)


async def test_async_tool_and_empty_arguments() -> None:
    """An async tool is awaited; an empty arguments string means {}."""
    t = Tool.from_function(echo)
    assert await t.invoke("", CTX) == ToolResult(output="", ok=True)
    assert await t.invoke('{"text":"hi"}', CTX) == ToolResult(output="hi", ok=True)


@pytest.mark.parametrize(
    ("kind", "output"),
    [
        ("none", "null"),
        ("int", "3"),
        ("list", '[1,"a"]'),
        ("dict", '{"a":1}'),
        ("dataclass", '{"value":1.5}'),
    ],
)
def test_results_are_serialised_to_json(kind: str, output: str) -> None:
    """Non-string results are serialised with pydantic_core.to_json."""
    assert run(anything, f'{{"kind":"{kind}"}}') == ToolResult(output=output, ok=True)


def test_unserialisable_result_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """A result JSON cannot express becomes an error output, logged."""
    result = run(anything, '{"kind":"object"}')
    assert result == ToolResult(
        output="error: anything returned a result that cannot be sent (object)",
        ok=False,
        error="exception",
    )
    assert "anything" in caplog.text and "call_1" in caplog.text


async def test_context_is_injected() -> None:
    """The ToolContext parameter receives the call's context, wherever it is declared."""
    assert (
        await Tool.from_function(who).invoke('{"greeting":"hi"}', CTX)
    ).output == "hi t call_1 A"
    assert (await Tool.from_function(positional).invoke('{"a":5}', CTX)).output == "5-1-call_1"


def test_context_cannot_be_passed_by_the_model() -> None:
    """The model cannot supply the context parameter: it is an unknown argument."""
    result = run(who, '{"greeting":"hi","ctx":{}}')
    assert result.error == "invalid_arguments"
    assert result.output == "error: invalid arguments for who: ctx: extra inputs are not permitted"


# --------------------------------------------------------------------------- failure paths


def test_malformed_json(caplog: pytest.LogCaptureFixture) -> None:
    """Malformed JSON gives error kind invalid_json with the parser's position."""
    with caplog.at_level(logging.WARNING, logger="rtagent._tools"):
        result = run(get_weather, '{"city": "Par')
    assert result == ToolResult(
        output="error: arguments for get_weather are not valid JSON: "
        "EOF while parsing a string at line 1 column 13",
        ok=False,
        error="invalid_json",
    )
    assert "get_weather" in caplog.text and "call_1" in caplog.text


def test_validation_errors_are_one_line() -> None:
    """Missing, mistyped and unknown arguments are listed on one line, by location."""
    assert run(get_weather, "{}") == ToolResult(
        output="error: invalid arguments for get_weather: city: field required",
        ok=False,
        error="invalid_arguments",
    )
    result = run(positional, '{"a":"x","b":2,"c":3}')
    assert result.output == (
        "error: invalid arguments for positional: a: input should be a valid integer, "
        "unable to parse string as an integer; c: extra inputs are not permitted"
    )


def test_arguments_that_are_not_an_object() -> None:
    """Valid JSON that is not an object is an invalid_arguments error, not invalid_json."""
    result = run(get_weather, "[1, 2]")
    assert result.error == "invalid_arguments"
    assert result.output.startswith("error: invalid arguments for get_weather: input should be")


def test_exception_is_generic_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception yields a short generic output; the traceback is logged."""
    result = run(get_weather, '{"city":"crash"}')
    assert result == ToolResult(
        output="error: get_weather failed unexpectedly (RuntimeError)",
        ok=False,
        error="exception",
    )
    assert "secret internals" not in result.output
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "get_weather" in record.getMessage() and "call_1" in record.getMessage()
    assert record.exc_info is not None


def test_tool_error_message_is_verbatim() -> None:
    """ToolError's message reaches the model unchanged."""
    assert run(get_weather, '{"city":"Atlantis"}') == ToolResult(
        output="Atlantis is under water; ask for another city.", ok=False, error="tool_error"
    )


async def test_timeout_on_async_tool() -> None:
    """An async tool exceeding its timeout is cancelled and reported."""

    @tool(timeout=0.01)
    async def stuck() -> str:
        await anyio.sleep_forever()
        return "never"

    with anyio.fail_after(5):
        result = await Tool.from_function(stuck).invoke("{}", CTX)
    assert result == ToolResult(
        output="error: stuck timed out after 0.01s", ok=False, error="timeout"
    )


async def test_timeout_on_sync_tool() -> None:
    """A sync tool exceeding its timeout is abandoned in its thread and reported."""
    gate = threading.Event()

    @tool(timeout=0.01)
    def blocked() -> str:
        gate.wait(5)
        return "late"

    try:
        with anyio.fail_after(5):
            result = await Tool.from_function(blocked).invoke("{}", CTX)
    finally:
        gate.set()
    assert result == ToolResult(
        output="error: blocked timed out after 0.01s", ok=False, error="timeout"
    )


async def test_tool_raising_timeout_error_is_an_exception_not_a_timeout() -> None:
    """A TimeoutError raised by the tool itself is not mistaken for our timeout."""

    @tool(timeout=5)
    async def flaky() -> str:
        raise TimeoutError("upstream")

    result = await Tool.from_function(flaky).invoke("{}", CTX)
    assert result.error == "exception"


async def test_cancellation_propagates() -> None:
    """Cancelling the caller cancels the tool; invoke never swallows cancellation."""
    started = anyio.Event()
    results: list[ToolResult] = []

    @tool
    async def hang() -> str:
        started.set()
        await anyio.sleep_forever()
        return "never"

    t = Tool.from_function(hang)

    async def call() -> None:
        results.append(await t.invoke("{}", CTX))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await started.wait()
            tg.cancel_scope.cancel()
    assert results == []


def test_cancelled_result() -> None:
    """ToolResult.cancelled builds the output posted for an interrupted call."""
    assert ToolResult.cancelled("book") == ToolResult(
        output="error: book was cancelled because the user interrupted",
        ok=False,
        error="cancelled",
    )


# --------------------------------------------------------------------------- methods


class Counter:
    """An object whose methods are tools."""

    def __init__(self, start: int) -> None:
        self.value = start

    @tool
    def add(self, n: int) -> int:
        """Add n."""
        self.value += n
        return self.value

    @tool
    async def peek(self, ctx: ToolContext) -> str:
        """Read the value."""
        return f"{self.value}@{ctx.call_id}"

    @classmethod
    @tool
    def kind(cls) -> str:
        """Class name."""
        return cls.__name__


async def test_methods_bind_to_their_instance() -> None:
    """A method tool runs against the instance given, or the bound method's own."""
    counter = Counter(10)
    add = Tool.from_function(Counter.add, instance=counter)
    assert (await add.invoke('{"n":5}', CTX)).output == "15"
    assert (await Tool.from_function(counter.peek).invoke("", CTX)).output == "15@call_1"
    kind = Tool.from_function(Counter.__dict__["kind"], instance=counter)
    assert (await kind.invoke("", CTX)).output == "Counter"
    assert counter.add(1) == 16  # still callable as before


def test_method_without_instance_is_an_error() -> None:
    """Building a tool from an unbound method without an instance fails clearly."""
    with pytest.raises(ToolDefinitionError, match="is a method: pass instance="):
        Tool.from_function(Counter.add)


def test_plain_function_becomes_a_tool() -> None:
    """An undecorated function is treated as a bare @tool."""

    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    t = Tool.from_function(shout)
    assert (t.name, t.description, t.timeout, t.on_interrupt) == ("shout", "Shout.", None, "finish")
    assert anyio.run(t.invoke, '{"text":"hi"}', CTX).output == "HI"


# --------------------------------------------------------------------------- registry


def test_registry_lookup_and_order() -> None:
    """Tools are kept in insertion order and found by name."""
    reg = ToolRegistry([get_weather, echo])
    assert reg.names() == ["get_weather", "echo"]
    assert len(reg) == 2 and "echo" in reg and "nope" not in reg
    assert [t.name for t in reg] == ["get_weather", "echo"]
    assert reg["echo"] is reg.get("echo") and reg.get("nope") is None
    assert reg.schemas() == [get_weather.schema, echo.schema]  # type: ignore[attr-defined]
    reg.remove("echo")
    assert reg.names() == ["get_weather"]
    with pytest.raises(KeyError):
        reg["echo"]


def test_registry_duplicate_and_replace() -> None:
    """A duplicate name is an error unless replace=True."""
    reg = ToolRegistry([echo])
    other = dataclasses.replace(Tool.from_function(get_weather), name="echo")
    with pytest.raises(ToolDefinitionError, match="already registered"):
        reg.add(other)
    assert reg.add(other, replace=True) is other
    assert reg["echo"] is other


def test_registry_rejects_bad_names() -> None:
    """A tool renamed to an invalid name cannot exist."""
    with pytest.raises(ToolDefinitionError, match="must match"):
        dataclasses.replace(Tool.from_function(echo), name="bad name")


def test_registry_merge_and_copy() -> None:
    """merge and copy return new registries; conflicts need replace=True (other wins)."""
    a = ToolRegistry([echo])
    b = ToolRegistry([get_weather])
    merged = a.merge(b)
    assert merged.names() == ["echo", "get_weather"] and a.names() == ["echo"]
    clash = ToolRegistry([dataclasses.replace(Tool.from_function(who), name="echo")])
    with pytest.raises(ToolDefinitionError):
        a.merge(clash)
    assert a.merge(clash, replace=True)["echo"].handler is who
    copy = a.copy()
    copy.add(get_weather)
    assert a.names() == ["echo"] and copy.names() == ["echo", "get_weather"]


async def test_registry_invoke_and_unknown_tool() -> None:
    """The registry dispatches by name; an unknown name lists the available tools."""
    reg = ToolRegistry([echo, get_weather])
    assert await reg.invoke("echo", '{"text":"x"}', CTX) == ToolResult(output="x", ok=True)
    assert await reg.invoke("fly", "{}", CTX) == ToolResult(
        output="error: unknown tool 'fly'; available tools: echo, get_weather",
        ok=False,
        error="unknown_tool",
    )
