"""The Tool record, invoke_tool (every failure path), context injection, methods, ToolRegistry."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
from pydantic import BaseModel

from rtagent._errors import ToolDefinitionError, ToolError
from rtagent._invoke import ToolContext, ToolResult, invoke_tool, unknown_tool
from rtagent._tools import Tool, ToolRegistry, get_tool, tool


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
    return anyio.run(invoke_tool, Tool.from_function(fn), arguments, CTX)


# --------------------------------------------------------------------------- the record


def test_tool_is_one_record_of_user_fields_plus_its_signature() -> None:
    """Tool holds only the user-facing fields and the call plan (signature), nothing copied."""
    names = [f.name for f in dataclasses.fields(Tool)]
    assert names == [
        "name",
        "description",
        "parameters",
        "handler",
        "timeout",
        "on_interrupt",
        "strict",
        "needs_approval",
        "background",
        "idempotent",
        "inline",
        "signature",
    ]
    item = get_tool(get_weather)
    assert item is not None
    assert get_weather.__rtagent_tool__ is item  # type: ignore[attr-defined]
    assert item.handler is get_weather
    assert get_weather.schema == item.schema == {  # type: ignore[attr-defined]
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": item.parameters,
    }
    assert "signature" not in repr(item) and "handler" not in repr(item)


async def test_replace_renames_and_still_runs() -> None:
    """dataclasses.replace(tool, name=...) sends the new name and runs the same handler."""
    renamed = dataclasses.replace(Tool.from_function(echo), name="say", description="Say it.")
    assert renamed.schema["name"] == "say" and renamed.schema["description"] == "Say it."
    assert await invoke_tool(renamed, '{"text":"hi"}', CTX) == ToolResult(output="hi", ok=True)
    with pytest.raises(ToolDefinitionError, match="timeout must be a positive number"):
        dataclasses.replace(renamed, timeout=-1)
    with pytest.raises(ToolDefinitionError, match="on_interrupt must be one of"):
        dataclasses.replace(renamed, on_interrupt="later")  # type: ignore[arg-type]


def test_strict_tool_validates_without_coercion() -> None:
    """A strict tool refuses "3" for an int, where a lax one coerces it."""

    @tool(strict=True)
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    assert run(double, '{"n":3}') == ToolResult(output="6", ok=True)
    assert run(double, '{"n":"3"}').error == "invalid_arguments"
    lax = dataclasses.replace(Tool.from_function(double), strict=False)
    assert anyio.run(invoke_tool, lax, '{"n":"3"}', CTX).output == "6"


# --------------------------------------------------------------------------- success paths


async def test_sync_tool_returns_serialised_model() -> None:
    """A sync tool runs (in a worker thread) and its pydantic result becomes JSON."""
    result = await invoke_tool(Tool.from_function(get_weather), '{"city":"Paris"}', CTX)
    assert result == ToolResult(output='{"temp_c":21,"sky":"sunny"}', ok=True)


async def test_async_tool_and_empty_arguments() -> None:
    """An async tool is awaited; an empty arguments string means {}."""
    t = Tool.from_function(echo)
    assert await invoke_tool(t, "", CTX) == ToolResult(output="", ok=True)
    assert await invoke_tool(t, '{"text":"hi"}', CTX) == ToolResult(output="hi", ok=True)


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


def test_nan_and_infinity_become_null() -> None:
    """nan and inf in a result are sent as null, so the output is always valid JSON."""

    @tool
    def stats() -> dict[str, Any]:
        """Statistics."""
        return {"mean": float("nan"), "max": float("inf"), "values": [1.5, float("-inf")]}

    result = run(stats, "{}")
    assert result == ToolResult(output='{"mean":null,"max":null,"values":[1.5,null]}', ok=True)
    json.loads(result.output)


def test_lone_surrogates_in_a_text_result_are_replaced(caplog: pytest.LogCaptureFixture) -> None:
    """A str result with a lone surrogate is sent with U+FFFD instead, and a warning is logged."""

    @tool
    def mangled() -> str:
        """Text decoded with surrogateescape."""
        return b"caf\xe9 ok".decode("utf-8", "surrogateescape")

    with caplog.at_level(logging.WARNING, logger="rtagent.tools"):
        result = run(mangled, "{}")
    assert result == ToolResult(output="caf\ufffd ok", ok=True)
    result.output.encode()  # sendable as UTF-8
    assert "mangled" in caplog.text and "U+FFFD" in caplog.text


def test_lone_surrogates_inside_a_structure_are_replaced(caplog: pytest.LogCaptureFixture) -> None:
    """Surrogates in keys and values of a structured result are repaired; pairs are joined."""

    @tool
    def listing() -> dict[str, Any]:
        """A structure with broken text."""
        return {"k\ud800": ["fine", Reading(2.0), "pair \ud83d\ude00"], "ok": "\udcff"}

    with caplog.at_level(logging.WARNING, logger="rtagent.tools"):
        result = run(listing, "{}")
    assert result.ok
    assert json.loads(result.output) == {
        "k\ufffd": ["fine", {"value": 2.0}, "pair \U0001f600"],
        "ok": "\ufffd",
    }
    assert "U+FFFD" in caplog.text

    @tool
    def model() -> Weather:
        """A model with broken text."""
        return Weather(temp_c=1, sky="gr\udce9y")

    assert run(model, "{}") == ToolResult(output='{"temp_c":1,"sky":"gr\ufffdy"}', ok=True)


def test_a_result_containing_itself_is_an_error() -> None:
    """A self-referencing structure gives the 'cannot be sent' output instead of crashing."""

    @tool
    def loop() -> list[Any]:
        """A list that contains itself."""
        items: list[Any] = []
        items.append(items)
        return items

    assert run(loop, "{}") == ToolResult(
        output="error: loop returned a result that cannot be sent (list)",
        ok=False,
        error="exception",
    )


def test_clean_text_is_not_touched(caplog: pytest.LogCaptureFixture) -> None:
    """Valid non-ASCII text passes unchanged and nothing is logged."""

    @tool
    def greet() -> list[str]:
        """Greetings."""
        return ["héllo", "\U0001f600"]

    with caplog.at_level(logging.WARNING, logger="rtagent.tools"):
        assert run(greet, "{}").output == '["héllo","\U0001f600"]'
        assert run(echo, '{"text":"naïve"}').output == "naïve"
    assert caplog.text == ""


async def test_sync_tools_run_in_worker_threads_bounded_per_loop() -> None:
    """Sync tools run off the event loop thread, at most THREAD_LIMIT at a time."""
    from rtagent._invoke import THREAD_LIMIT

    gate = threading.Event()
    running: list[int] = []
    lock = threading.Lock()
    loop_thread = threading.get_ident()

    full = anyio.Event()
    token = anyio.lowlevel.current_token()

    @tool
    def block() -> str:
        """Block until the gate opens."""
        with lock:
            running.append(threading.get_ident())
            if len(running) == THREAD_LIMIT:
                anyio.from_thread.run_sync(full.set, token=token)
        gate.wait(5)
        return "done"

    t = Tool.from_function(block)
    results: list[ToolResult] = []

    async def call() -> None:
        results.append(await invoke_tool(t, "{}", CTX))

    try:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for _ in range(THREAD_LIMIT + 4):
                    tg.start_soon(call)
                await full.wait()
                await anyio.sleep(0.05)
                assert len(running) == THREAD_LIMIT  # the others wait for a thread
                gate.set()
    finally:
        gate.set()
    assert len(results) == THREAD_LIMIT + 4 and all(r.ok for r in results)
    assert loop_thread not in running


async def test_inline_sync_tool_runs_on_the_event_loop_thread() -> None:
    """A def tool declared inline runs on the event loop's thread; a plain one does not."""
    loop_thread = threading.get_ident()
    ran: dict[str, int] = {}

    @tool(inline=True)
    def quick() -> str:
        """Quick."""
        ran["quick"] = threading.get_ident()
        return "q"

    @tool
    def plain() -> str:
        """Plain."""
        ran["plain"] = threading.get_ident()
        return "p"

    assert (await invoke_tool(Tool.from_function(quick), "{}", CTX)).output == "q"
    assert (await invoke_tool(Tool.from_function(plain), "{}", CTX)).output == "p"
    assert ran["quick"] == loop_thread and ran["plain"] != loop_thread


def test_inline_is_only_for_quick_def_tools() -> None:
    """inline is refused for async def tools, with a timeout or as background work."""

    async def slow() -> str:
        """Slow."""
        return ""

    def work() -> str:
        """Work."""
        return ""

    with pytest.raises(ToolDefinitionError, match="inline is for plain def tools"):
        tool(inline=True)(slow)
    with pytest.raises(ToolDefinitionError, match="timeout cannot interrupt an inline tool"):
        tool(inline=True, timeout=1)(work)
    with pytest.raises(ToolDefinitionError, match=r"background tool .* cannot be inline"):
        tool(inline=True, background=True)(work)
    with pytest.raises(ToolDefinitionError, match="inline must be True or False"):
        tool(inline="yes")(work)  # type: ignore[call-overload]


async def test_a_blocking_sync_tool_holds_the_event_loop_only_briefly() -> None:
    """A def tool that blocks keeps the event loop for at most the hand-off, then runs alone."""
    from rtagent._threads import HAND_OFF

    release = threading.Event()

    @tool
    def stuck() -> str:
        """Block until released."""
        release.wait(5)
        return "released"

    lags: list[float] = []

    async def tick() -> None:
        while not release.is_set():
            before = anyio.current_time()
            await anyio.sleep(0.001)
            lags.append(anyio.current_time() - before - 0.001)

    async def call() -> None:
        await anyio.sleep(0.02)
        result = await invoke_tool(Tool.from_function(stuck), "{}", CTX)
        assert result.output == "released"

    async def open_later() -> None:
        await anyio.sleep(0.2)
        release.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            tg.start_soon(call)
            tg.start_soon(open_later)
    # Other work waited for the hand-off at most, not for the tool (generous for CI noise).
    assert max(lags) < HAND_OFF + 0.05


async def test_context_is_injected() -> None:
    """The ToolContext parameter receives the call's context, wherever it is declared."""
    assert (
        await invoke_tool(Tool.from_function(who), '{"greeting":"hi"}', CTX)
    ).output == "hi t call_1 A"
    assert (await invoke_tool(Tool.from_function(positional), '{"a":5}', CTX)).output == "5-1-call_1"


def test_context_cannot_be_passed_by_the_model() -> None:
    """The model cannot supply the context parameter: it is an unknown argument."""
    result = run(who, '{"greeting":"hi","ctx":{}}')
    assert result.error == "invalid_arguments"
    assert result.output == "error: invalid arguments for who: ctx: extra inputs are not permitted"


# --------------------------------------------------------------------------- failure paths


def test_malformed_json(caplog: pytest.LogCaptureFixture) -> None:
    """Malformed JSON gives error kind invalid_json with the parser's position."""
    with caplog.at_level(logging.WARNING, logger="rtagent.tools"):
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
    assert record.name == "rtagent.tools"  # the public logger name, not the module's


def test_at_most_five_validation_errors_are_listed() -> None:
    """Beyond five problems the output says how many more, still on one line."""

    @tool
    def many(a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> None:
        """Seven numbers."""

    result = run(many, "{}")
    assert result.error == "invalid_arguments"
    assert result.output == (
        "error: invalid arguments for many: a: field required; b: field required; "
        "c: field required; d: field required; e: field required; and 2 more"
    )


def test_tool_error_with_lone_surrogates_is_repaired() -> None:
    """A ToolError message is verbatim, except that lone surrogates become U+FFFD."""

    @tool
    def refuse() -> str:
        """Always refuses."""
        raise ToolError("no \udc80 way")

    assert run(refuse, "{}") == ToolResult(output="no \ufffd way", ok=False, error="tool_error")


def test_unknown_tool_lists_what_is_available(caplog: pytest.LogCaptureFixture) -> None:
    """unknown_tool answers a call to a missing name with the available names, logged."""
    with caplog.at_level(logging.WARNING, logger="rtagent.tools"):
        result = unknown_tool("fly", ["walk", "swim"], CTX)
    assert result == ToolResult(
        output="error: unknown tool 'fly'; available tools: walk, swim",
        ok=False,
        error="unknown_tool",
    )
    assert unknown_tool("fly", [], CTX).output == "error: unknown tool 'fly'; available tools: none"
    assert "fly" in caplog.text and "call_1" in caplog.text


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
        result = await invoke_tool(Tool.from_function(stuck), "{}", CTX)
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
            result = await invoke_tool(Tool.from_function(blocked), "{}", CTX)
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

    result = await invoke_tool(Tool.from_function(flaky), "{}", CTX)
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
        results.append(await invoke_tool(t, "{}", CTX))

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
    assert (await invoke_tool(add, '{"n":5}', CTX)).output == "15"
    assert (await invoke_tool(Tool.from_function(counter.peek), "", CTX)).output == "15@call_1"
    kind = Tool.from_function(Counter.__dict__["kind"], instance=counter)
    assert (await invoke_tool(kind, "", CTX)).output == "Counter"
    assert counter.add(1) == 16  # still callable as before


async def test_bind_gives_a_copy_for_each_instance() -> None:
    """Tool.bind returns a copy bound to the instance; the attached tool stays unbound."""
    unbound = get_tool(Counter.add)
    assert unbound is not None and not unbound.is_bound
    a, b = Counter(1), Counter(100)
    on_a, on_b = unbound.bind(a), unbound.bind(b)
    assert on_a.is_bound and on_b.is_bound and not unbound.is_bound
    assert (await invoke_tool(on_a, '{"n":1}', CTX)).output == "2"
    assert (await invoke_tool(on_b, '{"n":1}', CTX)).output == "101"
    assert (await invoke_tool(on_a.bind(b), '{"n":1}', CTX)).output == "102"  # rebinding
    kind = get_tool(Counter.__dict__["kind"])
    assert kind is not None
    assert (await invoke_tool(kind.bind(a), "", CTX)).output == "Counter"  # binds the class
    assert (await invoke_tool(kind.bind(Counter), "", CTX)).output == "Counter"
    plain = Tool.from_function(echo)
    assert plain.bind(a) is plain  # nothing to bind


async def test_unbound_method_tool_is_a_developer_error() -> None:
    """An unbound method tool cannot enter a registry, and invoking it raises."""
    unbound = get_tool(Counter.add)
    assert unbound is not None
    with pytest.raises(ToolDefinitionError, match="bind it first"):
        ToolRegistry([unbound])
    with pytest.raises(ToolDefinitionError, match="bind it first"):
        await invoke_tool(unbound, '{"n":1}', CTX)


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
    assert anyio.run(invoke_tool, t, '{"text":"hi"}', CTX).output == "HI"


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


# --------------------------------------------------------------------------- layering


def test_declaration_modules_import_only_downward() -> None:
    """At run time each declarations module imports only rtagent modules of lower layers."""
    import ast
    from pathlib import Path

    import rtagent

    layers = ["_errors", "_redact", "_events", "_usage", "_notices", "_threads", "_schema", "_invoke",
              "_tools", "_mcp", "_plugins", "_agent", "_loading"]
    root = Path(rtagent.__file__).parent
    for index, module in enumerate(layers):
        # A package (_mcp) is checked file by file; its own modules are one level deeper.
        package = root / module
        files = sorted(package.glob("*.py")) if package.is_dir() else [root / f"{module}.py"]
        depth = 2 if package.is_dir() else 1
        imported: set[str] = set()
        for file in files:
            tree = ast.parse(file.read_text(encoding="utf-8"))
            for node in tree.body:  # module level only: `if TYPE_CHECKING:` blocks are skipped
                if isinstance(node, ast.ImportFrom) and node.level == depth:
                    imported.add((node.module or "").split(".")[0])
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rtagent."):
                    imported.add((node.module or "").removeprefix("rtagent.").split(".")[0])
        assert imported <= set(layers[:index]), (module, imported - set(layers[:index]))
