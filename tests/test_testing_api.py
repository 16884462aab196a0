"""rtagent.testing: users' agents against the local server, with assertions that explain themselves."""

from __future__ import annotations

import textwrap
from unittest.mock import ANY

import anyio
import pytest

from rtagent import Agent, ServerError, ToolError, ToolFinished, tool
from rtagent.events import SessionCreated
from rtagent.testing import (
    Call,
    ExpectationFailed,
    Turn,
    TurnResult,
    run_agent,
    run_agent_sync,
)


class Weather(Agent):
    instructions = "You report the weather at sea."

    @tool
    def get_weather(self, port: str) -> str:
        """Current weather in a port.

        Args:
            port: The port.
        """
        return f"21°C and sunny in {port}"

    @tool
    def get_tide(self, port: str, day: str = "today") -> str:
        """Tide times in a port."""
        if port == "Atlantis":
            raise ToolError("No tides under the sea.")
        return f"high tide at noon in {port} {day}"


async def test_rule_based_turn_is_recorded() -> None:
    """With no script, the rule-based model calls the tool the words name; the result says so."""
    with anyio.fail_after(10):
        async with run_agent(Weather()) as run:
            result = await run.ask("What is the weather in Tortuga?")
    call = result.expect.tool_call("get_weather", port="Tortuga")
    assert call.output == "21°C and sunny in Tortuga" and call.ok and call.error is None
    assert call.duration is not None and call.duration >= 0
    assert result.expect.output(contains="Tortuga") == result.text
    result.expect.output(matches=r"21°C and sunny in \w+")
    result.expect.tool_calls("get_weather")
    assert result.text == "Here is what I found: get weather returned 21°C and sunny in Tortuga."
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert result.responses == 2
    assert result.usage["input_tokens"] > 0 and result.errors == []
    assert run.results == [result]


async def test_scripted_turns_play_in_order() -> None:
    """A list of turns plays one per response; calls run in order and the text answers."""
    script = [
        Turn(calls=[Call("get_weather", {"port": "Nassau"}), Call("get_tide", {"port": "Nassau"})]),
        Turn(text="Sunny, high tide at noon."),
        Turn(text="Goodbye!"),
    ]
    with anyio.fail_after(10):
        async with run_agent(Weather(), script) as run:
            first = await run.ask("Plan my day in Nassau")
            second = await run.ask("Thanks")
    first.expect.tool_calls("get_weather", "get_tide")
    first.expect.tool_call("get_tide", port=ANY)
    first.expect.output(equals="Sunny, high tide at noon.")
    second.expect.no_tool_calls()
    second.expect.output("goodbye", ignore_case=True)
    assert [r.prompt for r in run.results] == ["Plan my day in Nassau", "Thanks"]


async def test_tool_errors_are_recorded_not_raised() -> None:
    """A tool's ToolError becomes a failed call in the result; the turn still answers."""
    script = [Turn(calls=[Call("get_tide", {"port": "Atlantis"})]), Turn(text="No tides, sorry.")]
    with anyio.fail_after(10):
        async with run_agent(Weather(), script) as run:
            result = await run.ask("tides in Atlantis?")
    call = result.expect.tool_call("get_tide", {"port": "Atlantis"})
    assert (call.ok, call.error, call.output) == (False, "tool_error", "No tides under the sea.")
    assert str(call) == "get_tide(port='Atlantis') -> 'No tides under the sea.' (failed: tool_error)"


async def test_every_event_since_connecting_is_recorded() -> None:
    """run.events starts at session.created and holds the turn's notices in order."""
    with anyio.fail_after(10):
        async with run_agent(Weather()) as run:
            result = await run.ask("weather in Tortuga?")
            events = run.events
    assert isinstance(events[0], SessionCreated)
    finished = [e for e in result.events if isinstance(e, ToolFinished)]
    assert [e.name for e in finished] == ["get_weather"]
    assert all(any(e is f for f in events) for e in result.events)


async def test_the_environment_key_never_reaches_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run sends its own placeholder key, never OPENAI_API_KEY from the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret")
    with anyio.fail_after(10):
        async with run_agent(Weather()) as run:
            await run.ask("hello")
            headers = run.server.connections[0].headers
    assert headers["authorization"] == "Bearer sk-local-test"


async def test_failed_response_raises_server_error() -> None:
    """A response that fails raises ServerError from ask(), as RealtimeSession.ask does."""
    with anyio.fail_after(10):
        async with run_agent(Weather(), [Turn(fail="the model fell over")]) as run:
            with pytest.raises(ServerError, match="the model fell over"):
                await run.ask("hello")


async def test_assertion_in_the_block_is_not_wrapped() -> None:
    """A failed assertion inside the run's block reaches the test as itself, not in a group."""
    with anyio.fail_after(10), pytest.raises(ExpectationFailed) as caught:
        async with run_agent(Weather()) as run:
            (await run.ask("weather in Tortuga?")).expect.tool_call("get_tide")
    assert type(caught.value) is ExpectationFailed
    assert isinstance(caught.value, AssertionError)


def _result() -> TurnResult:
    return TurnResult.from_events("weather in Tortuga?", "Sunny in Paris.", [
        _started("call_1", "get_weather", '{"port":"Paris"}'),
        _finished("call_1", "get_weather", '{"port":"Paris"}', "21°C and sunny in Paris"),
    ])


def _started(call_id: str, name: str, arguments: str) -> object:
    from rtagent import ToolStarted

    return ToolStarted(call_id, name, arguments)


def _finished(call_id: str, name: str, arguments: str, output: str) -> ToolFinished:
    return ToolFinished(call_id, name, arguments, output, True, None, 0.002)


TRANSCRIPT = """
what happened in the turn:
  user:      'weather in Tortuga?'
  tool call: get_weather(port='Paris') -> '21°C and sunny in Paris' (ok)
  answer:    'Sunny in Paris.'"""


def test_tool_call_failure_names_the_differing_argument() -> None:
    """A near miss says which argument differed, then shows the whole turn."""
    with pytest.raises(ExpectationFailed) as caught:
        _result().expect.tool_call("get_weather", port="Tortuga")
    assert str(caught.value) == textwrap.dedent("""\
        expected a call to get_weather(port='Tortuga'), but none matched:
          get_weather(port='Paris'): port: expected 'Tortuga', got 'Paris'
        """) + TRANSCRIPT


def test_tool_call_failure_for_a_missing_argument_and_another_tool() -> None:
    """A missing argument is named; a tool never called lists the tools that were."""
    with pytest.raises(ExpectationFailed, match=r"get_weather\(port='Paris'\): day: missing, expected 'monday'"):
        _result().expect.tool_call("get_weather", day="monday")
    with pytest.raises(ExpectationFailed) as caught:
        _result().expect.tool_call("get_tide", port="Paris")
    assert str(caught.value).startswith(
        "expected a call to get_tide(port='Paris'), but get_tide was not called (called: get_weather)\n"
    )


def test_output_failure_quotes_the_answer() -> None:
    """An output expectation that fails says what was expected and quotes the answer."""
    with pytest.raises(ExpectationFailed) as caught:
        _result().expect.output(contains="Tortuga", matches=r"\d+°C")
    assert str(caught.value) == (
        "expected the answer to contain 'Tortuga' and to match /\\d+°C/, but it was 'Sunny in Paris.'\n"
        + TRANSCRIPT
    )
    with pytest.raises(ExpectationFailed, match="to equal 'sunny'"):
        _result().expect.output(equals="sunny")
    assert _result().expect.output(equals="SUNNY IN PARIS.", ignore_case=True) == "Sunny in Paris."


def test_tool_calls_failure_lists_both_sequences() -> None:
    """tool_calls() and no_tool_calls() compare the exact sequence of names."""
    with pytest.raises(ExpectationFailed, match="expected tool calls: get_tide, get_weather; got: get_weather"):
        _result().expect.tool_calls("get_tide", "get_weather")
    with pytest.raises(ExpectationFailed, match="expected tool calls: no tool calls; got: get_weather"):
        _result().expect.no_tool_calls()
    empty = TurnResult.from_events("hi", "", [])
    with pytest.raises(ExpectationFailed) as caught:
        empty.expect.tool_call("get_weather")
    assert str(caught.value) == (
        "expected a call to get_weather, but the turn made no tool calls\n\n"
        "what happened in the turn:\n  user:      'hi'\n  answer:    (no text)"
    )
    with pytest.raises(ExpectationFailed, match="to have some text"):
        empty.expect.output()


def test_arguments_that_are_not_json_are_kept_raw() -> None:
    """Malformed arguments decode to {} and show verbatim in the transcript."""
    result = TurnResult.from_events("x", "y", [_started("c", "get_weather", "{not json")])
    call = result.tool_calls[0]
    assert call.arguments == {} and call.raw_arguments == "{not json" and not call.finished
    assert str(call) == "get_weather('{not json') (still running)"


def test_sync_run() -> None:
    """run_agent_sync runs the same turn from synchronous code, on either backend."""
    for backend in ("asyncio", "trio"):
        with run_agent_sync(Weather(), backend=backend) as run:
            result = run.ask("What is the weather in Tortuga?")
            assert isinstance(run.events[0], SessionCreated)
        result.expect.tool_call("get_weather", port="Tortuga")
        assert run.results == [result]


def test_sync_run_raises_assertions_as_themselves() -> None:
    """A failed expectation inside run_agent_sync's block is raised as itself."""
    with pytest.raises(ExpectationFailed, match="expected a call to get_tide"), run_agent_sync(Weather()) as run:
        run.ask("weather in Tortuga?").expect.tool_call("get_tide")


def test_event_buffer_must_keep_events() -> None:
    """run_agent refuses event_buffer=0: it records every event."""

    async def main() -> None:
        async with run_agent(Weather(), event_buffer=0):
            pass  # pragma: no cover

    with pytest.raises(ValueError, match="event_buffer"):
        anyio.run(main)


PLUGIN_TEST = '''
from rtagent import Agent, tool

class Weather(Agent):
    @tool
    def get_weather(self, port: str) -> str:
        """Current weather in a port."""
        return f"sunny in {port}"

def test_passes(agent_runner):
    run = agent_runner(Weather())
    run.ask("weather in Tortuga?").expect.tool_call("get_weather", port="Tortuga")

def test_fails(agent_runner):
    run = agent_runner(Weather())
    run.ask("weather in Tortuga?").expect.tool_call("get_weather", port="Nassau")
'''


def test_pytest_plugin_fixture(pytester: pytest.Pytester) -> None:
    """The plugin's agent_runner fixture runs agents; a failure shows the expectation and the turn."""
    pytester.makepyfile(test_rtagent_plugin_user=PLUGIN_TEST)
    result = pytester.runpytest("-p", "rtagent.testing.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*ExpectationFailed: expected a call to get_weather(port='Nassau'), but none matched:",
        "*get_weather(port='Tortuga'): port: expected 'Nassau', got 'Tortuga'",
        "*tool call: get_weather(port='Tortuga') -> 'sunny in Tortuga' (ok)",
    ])
