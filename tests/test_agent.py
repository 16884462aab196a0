"""Agent: tool collection over the MRO, plugins, the settings table, and the exact GA session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rtagent._agent import UNSET, Agent, AgentSettings, Setting
from rtagent._errors import ConfigurationError, PluginLoadError, ToolDefinitionError
from rtagent._invoke import ToolContext
from rtagent._tools import Tool, ToolRegistry, tool

try:
    from conformance import assert_client_event
except ImportError:  # pragma: no cover - depends on how pytest was started
    from tests.conformance import assert_client_event


def _ctx(name: str) -> ToolContext:
    return ToolContext(call_id="call_1", tool_name=name)


def _validate(cfg: dict[str, Any]) -> None:
    assert_client_event({"type": "session.update", "session": cfg})


@tool
def ping() -> str:
    """Answer pong."""
    return "pong"


class Base(Agent):
    instructions = "Base instructions."

    def __init__(self, greeting: str = "hello") -> None:
        super().__init__()
        self.greeting = greeting

    @tool
    def greet(self, name: str) -> str:
        """Greet someone.

        Args:
            name: Who to greet.
        """
        return f"{self.greeting} {name}"

    @tool
    def farewell(self) -> str:
        """Say goodbye."""
        return "bye"

    @tool
    def helper(self) -> str:
        """A tool a subclass turns back into a plain method."""
        return "helper"


class Child(Base):
    @tool(name="greet")
    def greet_loudly(self, name: str) -> str:
        """Greet someone loudly.

        Args:
            name: Who to greet.
        """
        return f"{self.greeting.upper()} {name.upper()}"

    def helper(self) -> str:  # no longer a tool
        return "plain"

    @tool
    def extra(self) -> int:
        """Return 42."""
        return 42


def test_method_tools_are_collected_in_order_and_bound() -> None:
    """@tool methods become tools bound to the instance, without `self` in the schema."""
    agent = Base(greeting="hi")
    assert isinstance(agent.tools, ToolRegistry)
    assert agent.tools.names() == ["greet", "farewell", "helper"]
    assert agent.tools["greet"].parameters["properties"].keys() == {"name"}
    assert agent.tools["greet"].description == "Greet someone."


async def test_bound_method_tool_uses_instance_state() -> None:
    """Invoking a method tool runs it on the agent instance it came from."""
    result = await Base(greeting="hi").tools.invoke("greet", '{"name": "Ann"}', _ctx("greet"))
    assert result.ok
    assert result.output == "hi Ann"


async def test_subclass_tool_of_same_name_replaces_base_tool() -> None:
    """A subclass tool with the base's tool name wins; a plain override removes a tool."""
    agent = Child(greeting="hey")
    assert sorted(agent.tools.names()) == ["extra", "farewell", "greet"]
    result = await agent.tools.invoke("greet", '{"name": "bo"}', _ctx("greet"))
    assert result.output == "HEY BO"
    assert agent.tools["greet"].description == "Greet someone loudly."
    # The base class is unaffected.
    assert "helper" in Base().tools


def test_tools_are_computed_once_per_instance() -> None:
    """agent.tools is cached per instance, and each instance binds its own methods."""
    a, b = Base(greeting="a"), Base(greeting="b")
    assert a.tools is a.tools
    assert a.tools is not b.tools


def test_class_tools_attribute_adds_functions_and_registries() -> None:
    """A `tools` class attribute adds functions, Tools and registries after the methods."""

    def shout(text: str) -> str:
        """Shout a text."""
        return text.upper()

    extra = ToolRegistry([Tool.from_function(shout)])

    class WithTools(Base):
        tools = [ping, extra]

    agent = WithTools()
    assert agent.tools.names() == ["greet", "farewell", "helper", "ping", "shout"]
    # The declaration is not visible as a list anymore: `tools` reads back as the registry.
    assert isinstance(WithTools().tools, ToolRegistry)


def test_class_tools_attribute_may_be_a_registry() -> None:
    """`tools = ToolRegistry([...])` (the mypy-friendly spelling) works like a list."""

    class Typed(Agent):
        tools = ToolRegistry([ping])

        @tool
        def own(self) -> str:
            """Own tool."""
            return "own"

    agent = Typed()
    assert agent.tools.names() == ["own", "ping"]
    assert Typed.tools is not agent.tools


def test_class_tools_attribute_is_inherited_and_overridable() -> None:
    """A subclass inherits its base's `tools` list unless it declares its own."""

    @tool
    def pong() -> str:
        """Answer ping."""
        return "ping"

    class A(Agent):
        tools = [ping]

    class B(A):
        pass

    class C(A):
        tools = [pong]

    assert B().tools.names() == ["ping"]
    assert C().tools.names() == ["pong"]


def test_duplicate_tool_names_between_methods_and_tools_raise() -> None:
    """A `tools` entry with a method tool's name is a ToolDefinitionError, not a shadow."""

    @tool(name="farewell")
    def other_farewell() -> str:
        """Another goodbye."""
        return "ciao"

    class Clash(Base):
        tools = [other_farewell]

    with pytest.raises(ToolDefinitionError, match="farewell"):
        _ = Clash().tools


def test_two_tools_with_one_name_in_one_class_raise() -> None:
    """Two methods of one class declaring the same tool name are a ToolDefinitionError."""

    class Twice(Agent):
        @tool(name="same")
        def one(self) -> str:
            """One."""
            return "1"

        @tool(name="same")
        def two(self) -> str:
            """Two."""
            return "2"

    with pytest.raises(ToolDefinitionError, match="same"):
        _ = Twice().tools


async def test_static_and_class_method_tools() -> None:
    """@tool on a staticmethod or classmethod works too."""

    class Statics(Agent):
        unit = "C"

        @staticmethod
        @tool
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            return a + b

        @classmethod
        @tool
        def which_unit(cls) -> str:
            """Return the unit."""
            return cls.unit

    agent = Statics()
    assert agent.tools.names() == ["add", "which_unit"]
    assert (await agent.tools.invoke("add", '{"a": 2, "b": 3}', _ctx("add"))).output == "5"
    assert (await agent.tools.invoke("which_unit", "{}", _ctx("which_unit"))).output == "C"


def test_agent_without_subclassing() -> None:
    """Agent(...) takes instructions, tools and settings as keyword arguments."""
    agent = Agent(instructions="Be brief.", tools=[ping], voice="marin", model="gpt-realtime-2")
    assert agent.tools.names() == ["ping"]
    cfg = agent.session_config()
    assert cfg == {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "instructions": "Be brief.",
        "audio": {"output": {"voice": "marin"}},
        "tools": [ping.schema],  # type: ignore[attr-defined]
    }
    _validate(cfg)


def test_keyword_arguments_override_class_attributes() -> None:
    """Keyword arguments win over class attributes, for that instance only."""

    class Voiced(Agent):
        voice = "cedar"
        instructions = "Class."

    agent = Voiced(voice="marin")
    assert agent.session_config()["audio"]["output"]["voice"] == "marin"
    assert agent.session_config()["instructions"] == "Class."
    assert Voiced().session_config()["audio"]["output"]["voice"] == "cedar"


def test_unknown_keyword_argument_is_a_configuration_error() -> None:
    """A misspelt setting fails loudly, naming the valid settings, instead of being ignored."""
    with pytest.raises(ConfigurationError, match="'voise'") as info:
        Agent(voise="marin")  # type: ignore[call-arg]
    assert "voice" in str(info.value) and "turn_detection" in str(info.value)


def test_default_session_config_sends_only_what_is_set() -> None:
    """A bare agent sends the session type, the default model and an empty tool list."""
    cfg = Agent().session_config()
    assert cfg == {"type": "realtime", "model": "gpt-realtime-2.1", "tools": []}
    _validate(cfg)


def test_full_session_config_is_exact_and_valid() -> None:
    """Every setting lands at its GA path (PROTOCOL §5), and the openai types accept it."""

    class Full(Agent):
        instructions = "You are a helpful agent."
        model = "gpt-realtime-2"
        output_modalities = ["audio"]
        input_audio_format = "pcm16"
        output_audio_format = {"type": "audio/pcmu"}
        noise_reduction = "near_field"
        transcription = {"model": "gpt-4o-mini-transcribe", "language": "en"}
        turn_detection = {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
            "idle_timeout_ms": None,
        }
        voice = "marin"
        speed = 1.0
        tools = [ping]
        tool_choice = "auto"
        parallel_tool_calls = True
        max_output_tokens = "inf"
        tracing = "auto"
        truncation = {"type": "retention_ratio", "retention_ratio": 0.8}
        reasoning = "low"
        include = ["item.input_audio_transcription.logprobs"]
        prompt = {"id": "pmpt_123", "variables": {"city": "Paris"}}

    cfg = Full().session_config()
    assert cfg == {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "instructions": "You are a helpful agent.",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
                "noise_reduction": {"type": "near_field"},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0},
        },
        "tools": [
            {
                "type": "function",
                "name": "ping",
                "description": "Answer pong.",
                "parameters": ping.schema["parameters"],  # type: ignore[attr-defined]
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "max_output_tokens": "inf",
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.8},
        "tracing": "auto",
        "reasoning": {"effort": "low"},
        "include": ["item.input_audio_transcription.logprobs"],
        "prompt": {"id": "pmpt_123", "variables": {"city": "Paris"}},
    }
    _validate(cfg)
    json.dumps(cfg)  # plain JSON, ready for the wire


def test_none_sends_null_and_unset_sends_nothing() -> None:
    """turn_detection=None sends null (VAD off); UNSET leaves the server default alone."""
    agent = Agent(turn_detection=None, noise_reduction=None, tracing=None, output_modalities="text")
    cfg = agent.session_config()
    assert cfg["audio"] == {"input": {"turn_detection": None, "noise_reduction": None}}
    assert cfg["tracing"] is None
    assert cfg["output_modalities"] == ["text"]
    _validate(cfg)
    assert "audio" not in Agent(turn_detection=UNSET).session_config()


def test_shorthands_expand_to_ga_objects() -> None:
    """String shorthands become the GA objects: VAD type, transcription model, formats, prompt."""
    cfg = Agent(
        turn_detection="semantic_vad",
        transcription="whisper-1",
        input_audio_format="g711_alaw",
        output_audio_format="audio/pcm",
        voice={"id": "voice_123"},
        prompt="pmpt_1",
    ).session_config()
    assert cfg["audio"] == {
        "input": {
            "format": {"type": "audio/pcma"},
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "semantic_vad"},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": {"id": "voice_123"}},
    }
    assert cfg["prompt"] == {"id": "pmpt_1"}
    _validate(cfg)


def test_session_config_returns_independent_copies() -> None:
    """Mutating a returned config does not change the agent's settings."""

    class Vad(Agent):
        turn_detection = {"type": "server_vad", "threshold": 0.5}

    agent = Vad()
    agent.session_config()["audio"]["input"]["turn_detection"]["threshold"] = 0.9
    assert agent.session_config()["audio"]["input"]["turn_detection"]["threshold"] == 0.5


def test_tool_choice_may_name_one_of_the_agents_tools() -> None:
    """tool_choice="ping" forces that tool; an unknown name is a ConfigurationError."""
    cfg = Agent(tools=[ping], tool_choice="ping").session_config()
    assert cfg["tool_choice"] == {"type": "function", "name": "ping"}
    _validate(cfg)
    with pytest.raises(ConfigurationError, match="nope"):
        Agent(tools=[ping], tool_choice="nope").session_config()


def _settings() -> dict[str, Setting[Any]]:
    return {name: value for name, value in vars(Agent).items() if isinstance(value, Setting)}


def test_agent_settings_typeddict_matches_the_declared_settings() -> None:
    """AgentSettings has exactly one key per Setting declared on Agent, so they cannot drift."""
    assert set(AgentSettings.__annotations__) == set(_settings())
    assert len(_settings()) == 17


# One sendable value per setting, and where it must land in the GA session object.
SAMPLES: dict[str, tuple[Any, Any]] = {
    "model": ("gpt-realtime-mini", "gpt-realtime-mini"),
    "output_modalities": ("text", ["text"]),
    "input_audio_format": ("g711_ulaw", {"type": "audio/pcmu"}),
    "transcription": ("whisper-1", {"model": "whisper-1"}),
    "turn_detection": ("server_vad", {"type": "server_vad"}),
    "noise_reduction": ("far_field", {"type": "far_field"}),
    "output_audio_format": ("pcm16", {"type": "audio/pcm", "rate": 24000}),
    "voice": ("cedar", "cedar"),
    "speed": (1.2, 1.2),
    "tool_choice": ("required", "required"),
    "parallel_tool_calls": (False, False),
    "max_output_tokens": (512, 512),
    "truncation": ("disabled", "disabled"),
    "tracing": ({"workflow_name": "w"}, {"workflow_name": "w"}),
    "reasoning": ("high", {"effort": "high"}),
    "include": (("item.input_audio_transcription.logprobs",), ["item.input_audio_transcription.logprobs"]),
    "prompt": ("pmpt_9", {"id": "pmpt_9"}),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_setting_lands_at_its_declared_wire_path(name: str) -> None:
    """session_config() puts each setting, converted, at the path its Setting declares."""
    assert set(SAMPLES) == set(_settings())
    value, wire = SAMPLES[name]
    setting = _settings()[name]
    cfg = Agent(**{name: value}).session_config()  # type: ignore[misc]
    node: Any = cfg
    for part in setting.path.split("."):
        node = node[part]
    assert node == wire
    _validate(cfg)


def test_settings_read_back_through_class_instance_and_subclass() -> None:
    """A Setting reads UNSET (or its default) until a subclass or the instance sets it."""

    class Marin(Agent):
        voice = "marin"

    assert isinstance(Agent.voice, Setting) and Agent.voice.path == "audio.output.voice"
    assert Agent().voice is UNSET and Agent().model == "gpt-realtime-2.1"
    assert Marin.voice == "marin" and Marin().voice == "marin"
    agent = Marin(voice="cedar")
    assert agent.voice == "cedar"
    agent.voice = {"id": "voice_1"}  # type: ignore[assignment]
    assert agent.session_config()["audio"]["output"]["voice"] == {"id": "voice_1"}
    plain = Agent()
    plain.speed = 1.5
    assert plain.session_config()["audio"] == {"output": {"speed": 1.5}}
    assert Agent().session_config().get("audio") is None  # instances do not share values


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"speed": "fast"}, "speed: must be a number"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls: must be True or False"),
        ({"max_output_tokens": 1.5}, "max_output_tokens: must be a number of tokens"),
        ({"include": "item.input_audio_transcription.logprobs"}, "include: must be a list"),
        ({"model": ""}, "model: must be a model name"),
        ({"model": None}, "model: must be a model name"),
    ],
)
def test_mistyped_settings_fail_at_construction(settings: dict[str, Any], message: str) -> None:
    """A value of the wrong type is a ConfigurationError naming the setting, when the agent is built."""
    with pytest.raises(ConfigurationError, match=message):
        Agent(**settings)


def test_bad_class_setting_fails_when_the_agent_is_built() -> None:
    """A bad class attribute does not break the class statement, only Agent() construction."""

    class Odd(Agent):
        input_audio_format = "opus"

    with pytest.raises(ConfigurationError, match="input_audio_format: unknown audio format 'opus'"):
        Odd()


def test_agents_do_not_connect_themselves() -> None:
    """Declarations never run: Agent has no connect/connect_sync (use rtagent.connect)."""
    assert not hasattr(Agent, "connect") and not hasattr(Agent, "connect_sync")


def test_bad_settings_fail_at_construction() -> None:
    """Both modalities, or an unknown audio format shorthand, fail when the agent is built."""
    with pytest.raises(ConfigurationError, match="output_modalities"):
        Agent(output_modalities=["text", "audio"])
    with pytest.raises(ConfigurationError, match="mp3"):
        Agent(output_audio_format="mp3")


def test_instructions_method_is_evaluated_per_session_config() -> None:
    """`def instructions(self)` is called each time the config is built."""

    class Counting(Agent):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def instructions(self) -> str:
            self.calls += 1
            return f"Call number {self.calls}."

    agent = Counting()
    assert agent.session_config()["instructions"] == "Call number 1."
    assert agent.session_config()["instructions"] == "Call number 2."
    _validate(agent.session_config())


def test_instructions_callable_keyword() -> None:
    """Agent(instructions=callable) is called without arguments."""
    assert Agent(instructions=lambda: "dynamic").session_config()["instructions"] == "dynamic"


def test_instructions_method_must_return_str() -> None:
    """A non-string from instructions() is a ConfigurationError naming the class."""

    class Broken(Agent):
        def instructions(self) -> str:
            return 42  # type: ignore[return-value]

    with pytest.raises(ConfigurationError, match=r"Broken\.instructions"):
        Broken().session_config()


def _plugin(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(
        "from rtagent._tools import tool\n\n"
        "@tool\n"
        f"def {name}(city: str) -> str:\n"
        '    """Weather for a city."""\n'
        "    return 'sunny'\n"
    )
    return path


def test_load_tools_adds_plugin_folders_after_the_agents_tools(tmp_path: Path) -> None:
    """load_tools() returns agent.tools then the plugin folders' tools; agent.tools is unchanged."""
    _plugin(tmp_path, "weather")
    agent = Agent(tools=[ping], plugins=[tmp_path])
    loaded = agent.load_tools()
    assert loaded.names() == ["ping", "weather"]
    assert agent.tools.names() == ["ping"]
    assert agent.load_tools() is not loaded  # each call loads afresh


def test_reading_tools_never_touches_plugin_folders() -> None:
    """agent.tools and session_config() work with a missing plugin folder; load_tools() fails."""
    agent = Agent(tools=[ping], plugins=["/no/such/folder"])
    assert agent.tools.names() == ["ping"]
    assert [t["name"] for t in agent.session_config()["tools"]] == ["ping"]
    with pytest.raises(PluginLoadError, match="no such plugin folder"):
        agent.load_tools()


def test_session_config_uses_the_registry_it_is_given(tmp_path: Path) -> None:
    """session_config(tools) declares exactly those tools, and tool_choice may name one."""
    _plugin(tmp_path, "forecast")
    agent = Agent(tools=[ping], plugins=[tmp_path], tool_choice="forecast")
    cfg = agent.session_config(agent.load_tools())
    assert [t["name"] for t in cfg["tools"]] == ["ping", "forecast"]
    assert cfg["tool_choice"] == {"type": "function", "name": "forecast"}
    _validate(cfg)
    with pytest.raises(ConfigurationError, match="forecast"):
        agent.session_config()  # agent.tools alone has no "forecast"


def test_plugins_can_be_extended_on_an_agent_with_method_tools(tmp_path: Path) -> None:
    """agent.plugins = [*agent.plugins, dir] adds a folder without re-adding the method tools."""
    _plugin(tmp_path / "a", "alpha")
    _plugin(tmp_path / "b", "beta")

    class WithMethods(Base):
        plugins = [tmp_path / "a"]

    agent = WithMethods()
    agent.plugins = [*agent.plugins, tmp_path / "b"]
    assert agent.plugins == (tmp_path / "a", tmp_path / "b")
    assert agent.load_tools().names() == ["greet", "farewell", "helper", "alpha", "beta"]
    assert WithMethods.plugins == (tmp_path / "a",)  # the class is unchanged
    assert WithMethods().load_tools().names()[-1] == "alpha"


def test_relative_plugin_paths_are_resolved_when_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative folder given to an agent is resolved against the directory current then."""
    _plugin(tmp_path / "mine", "mine")
    monkeypatch.chdir(tmp_path)
    agent = Agent(plugins=["mine"])
    agent.plugins = [*agent.plugins, "mine"]
    monkeypatch.chdir("/")
    assert agent.plugins == (tmp_path.resolve() / "mine",) * 2
    with pytest.raises(PluginLoadError, match="already declared by"):
        agent.load_tools()  # the same folder twice: its tool would be declared twice


def test_plugin_tool_clashing_with_an_agent_tool_names_the_file(tmp_path: Path) -> None:
    """A plugin declaring a tool name the agent already has is a PluginLoadError on that file."""
    path = _plugin(tmp_path, "greet")
    agent = Base()
    agent.plugins = [tmp_path]
    with pytest.raises(PluginLoadError, match="'greet' is already declared by the agent") as info:
        agent.load_tools()
    assert info.value.path == str(path.resolve())


def test_assigning_tools_resets_the_registry() -> None:
    """Setting agent.tools to a new list rebuilds the registry on next access."""
    agent = Agent(tools=[ping])
    first = agent.tools
    agent.tools = []
    assert agent.tools is not first
    assert agent.tools.names() == []


def test_repr_names_the_tools() -> None:
    """repr() shows the class and model, and the tool names once they are loaded."""
    agent = Agent(tools=[ping], plugins=["/no/such/folder"])
    assert repr(agent) == "<Agent model='gpt-realtime-2.1'>"  # does not load (failing) plugins
    agent = Agent(tools=[ping])
    _ = agent.tools
    assert repr(agent) == "<Agent model='gpt-realtime-2.1' tools=[ping]>"
