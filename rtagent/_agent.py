"""The ``Agent`` base class: what an agent says, which tools it has, how its session is set up.

An ``Agent`` describes an agent; it does not run one (see ``rtagent._runtime``). Subclass it
and set class attributes, or pass the same names as keyword arguments::

    class Weather(Agent):
        instructions = "You tell people the weather."
        voice = "marin"

        @tool
        def get_weather(self, city: str) -> str:
            '''Current weather for a city.'''
            return "sunny"

    Weather().session_config()       # the GA ``session`` object for session.update

Settings that are never set are not sent, so the server keeps its defaults. ``UNSET`` marks
"not set"; ``None`` means "send null" (``turn_detection = None`` disables VAD).
"""

from __future__ import annotations

import copy
import enum
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias, Union, overload

from ._errors import ConfigurationError, ToolDefinitionError
from ._plugins import load_plugins
from ._tools import Tool, ToolRegistry, get_tool

__all__ = ["UNSET", "Agent", "ToolLike"]


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET
"""Marks a setting that is not set (and so not sent); distinct from ``None``, which sends null."""

ToolLike: TypeAlias = Union[Tool, Callable[..., Any], ToolRegistry]
"""What ``Agent.tools`` accepts: a function (``@tool``-decorated or plain), a ``Tool``, a registry."""

# Shorthands for the GA audio format objects (PROTOCOL §6); beta names accepted for old configs.
_PCM = {"type": "audio/pcm", "rate": 24000}
_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": _PCM,
    "audio/pcm": _PCM,
    "g711_ulaw": {"type": "audio/pcmu"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "audio/pcma": {"type": "audio/pcma"},
}
_TOOL_CHOICE_MODES = ("auto", "none", "required")

# Keyword arguments of Agent() besides instructions/tools/plugins: the session settings.
_SETTINGS = (
    "model",
    "output_modalities",
    "voice",
    "speed",
    "input_audio_format",
    "output_audio_format",
    "transcription",
    "turn_detection",
    "noise_reduction",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "truncation",
    "tracing",
    "reasoning",
    "include",
    "prompt",
)


class _ToolsAttribute:
    """``Agent.tools``: declared as a list on the class, read back as the agent's ``ToolRegistry``.

    A subclass body's ``tools = [...]`` is moved aside by ``Agent.__init_subclass__`` so that
    this descriptor stays in charge of ``agent.tools``.
    """

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _ToolsAttribute: ...
    @overload
    def __get__(self, obj: Agent, owner: type[Any]) -> ToolRegistry: ...
    def __get__(self, obj: Agent | None, owner: type[Any]) -> ToolRegistry | _ToolsAttribute:
        if obj is None:
            return self
        return obj._tool_registry()

    def __set__(self, obj: Agent, value: Iterable[ToolLike]) -> None:
        obj.__dict__["_declared_tools"] = _as_tool_list(value, "tools")
        obj.__dict__.pop("_registry", None)


class Agent:
    """Describes a Realtime agent: instructions, tools and session settings.

    Every setting below is a class attribute a subclass may override, or a keyword argument
    of ``Agent(...)`` (keyword arguments win). Settings left ``UNSET`` are not sent.

    Attributes:
        instructions: The system prompt; a string, or a method ``instructions(self) -> str``
            evaluated each time ``session_config()`` is built.
        model: The Realtime model id, also used in the connection URL.
        output_modalities: ``["audio"]`` (audio plus transcript) or ``["text"]``.
        voice: A voice name such as ``"marin"``, or ``{"id": "voice_..."}``.
        speed: Speaking speed of the audio output.
        input_audio_format: A GA format object (``{"type": "audio/pcm", "rate": 24000}``) or
            a shorthand: ``"pcm16"``, ``"g711_ulaw"``, ``"g711_alaw"``, ``"audio/pcmu"``...
        output_audio_format: As ``input_audio_format``, for the audio the model produces.
        transcription: Input transcription settings (``{"model": ..., "language": ...}``),
            a model name, or None to send null.
        turn_detection: VAD settings (``{"type": "semantic_vad", ...}``), ``"server_vad"``
            or ``"semantic_vad"``, or None to disable VAD (you commit and respond yourself).
        noise_reduction: ``{"type": "near_field"}``, ``"near_field"``/``"far_field"``, or None.
        tool_choice: ``"auto"``, ``"none"``, ``"required"``, a GA tool choice object, or the
            name of one of this agent's tools to force it.
        parallel_tool_calls: Whether the model may call several tools at once.
        max_output_tokens: 1..4096 or ``"inf"``, per response.
        truncation: ``"auto"``, ``"disabled"`` or a retention-ratio object.
        tracing: ``"auto"``, a tracing object, or None.
        reasoning: ``{"effort": "low"}`` or just the effort string.
        include: Extra server output, e.g. ``["item.input_audio_transcription.logprobs"]``.
        prompt: A stored prompt reference (``{"id": ..., "variables": ...}``) or its id.
        tools: Functions, ``Tool`` objects or registries; read back, ``agent.tools`` is the
            agent's full ``ToolRegistry`` (``@tool`` methods, then these, then plugins).
            Type checkers take a class-body list for the attribute's type; write
            ``tools = ToolRegistry([...])`` to keep mypy happy.
        plugins: Plugin folders whose tools the agent gets (see ``rtagent.plugins``). A relative
            path in a class attribute is resolved against the folder of the file defining the
            class; one passed to ``Agent(plugins=...)`` against the current directory.
    """

    instructions: str | Callable[[], str] | _Unset = UNSET
    model: str = "gpt-realtime"
    output_modalities: Sequence[Literal["text", "audio"]] | Literal["text", "audio"] | _Unset = (
        UNSET
    )
    voice: str | Mapping[str, str] | _Unset = UNSET
    speed: float | _Unset = UNSET
    input_audio_format: str | Mapping[str, Any] | _Unset = UNSET
    output_audio_format: str | Mapping[str, Any] | _Unset = UNSET
    transcription: str | Mapping[str, Any] | _Unset | None = UNSET
    turn_detection: str | Mapping[str, Any] | _Unset | None = UNSET
    noise_reduction: str | Mapping[str, Any] | _Unset | None = UNSET
    tool_choice: str | Mapping[str, Any] | _Unset = UNSET
    parallel_tool_calls: bool | _Unset = UNSET
    max_output_tokens: int | Literal["inf"] | _Unset = UNSET
    truncation: str | Mapping[str, Any] | _Unset = UNSET
    tracing: str | Mapping[str, Any] | _Unset | None = UNSET
    reasoning: str | Mapping[str, Any] | _Unset = UNSET
    include: Sequence[str] | _Unset = UNSET
    prompt: str | Mapping[str, Any] | _Unset = UNSET
    plugins: Sequence[str | os.PathLike[str]] = ()

    tools = _ToolsAttribute()
    _declared_tools: tuple[ToolLike, ...] = ()
    _plugin_base: Path | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("tools")
        if declared is not None and not isinstance(declared, _ToolsAttribute):
            # Move the list aside so `agent.tools` keeps returning the registry.
            cls._declared_tools = _as_tool_list(declared, f"{cls.__qualname__}.tools")
            delattr(cls, "tools")
        if "plugins" in cls.__dict__:
            cls._plugin_base = _defining_folder(cls)

    def __init__(
        self,
        *,
        instructions: str | Callable[[], str] | _Unset = UNSET,
        tools: Iterable[ToolLike] | _Unset = UNSET,
        plugins: Sequence[str | os.PathLike[str]] | _Unset = UNSET,
        model: str | _Unset = UNSET,
        output_modalities: Sequence[Literal["text", "audio"]]
        | Literal["text", "audio"]
        | _Unset = UNSET,
        voice: str | Mapping[str, str] | _Unset = UNSET,
        speed: float | _Unset = UNSET,
        input_audio_format: str | Mapping[str, Any] | _Unset = UNSET,
        output_audio_format: str | Mapping[str, Any] | _Unset = UNSET,
        transcription: str | Mapping[str, Any] | _Unset | None = UNSET,
        turn_detection: str | Mapping[str, Any] | _Unset | None = UNSET,
        noise_reduction: str | Mapping[str, Any] | _Unset | None = UNSET,
        tool_choice: str | Mapping[str, Any] | _Unset = UNSET,
        parallel_tool_calls: bool | _Unset = UNSET,
        max_output_tokens: int | Literal["inf"] | _Unset = UNSET,
        truncation: str | Mapping[str, Any] | _Unset = UNSET,
        tracing: str | Mapping[str, Any] | _Unset | None = UNSET,
        reasoning: str | Mapping[str, Any] | _Unset = UNSET,
        include: Sequence[str] | _Unset = UNSET,
        prompt: str | Mapping[str, Any] | _Unset = UNSET,
    ) -> None:
        """Override any class-level setting for this instance; see the class docstring."""
        given = dict(locals())  # the keyword arguments, by name
        for name in ("instructions", *_SETTINGS):
            value = given[name]
            if value is not UNSET:
                setattr(self, name, value)
        if not isinstance(tools, _Unset):
            self.tools = tools
        if not isinstance(plugins, _Unset):
            # Resolve now: a later chdir must not change which folder is meant.
            self.plugins = [Path(p).resolve() for p in plugins]
            self._plugin_base = None
        self._check_settings()

    def __repr__(self) -> str:
        # Never build the registry here: that imports plugins, and repr() must not fail.
        cached = self.__dict__.get("_registry")
        tools = f" tools=[{', '.join(cached.names())}]" if isinstance(cached, ToolRegistry) else ""
        return f"<{type(self).__qualname__} model={self.model!r}{tools}>"

    # -- tools ---------------------------------------------------------------------------

    def _tool_registry(self) -> ToolRegistry:
        cached = self.__dict__.get("_registry")
        if isinstance(cached, ToolRegistry):
            return cached
        registry = ToolRegistry()
        for fn in _method_tools(type(self)).values():
            registry.add(Tool.from_function(fn, instance=self))
        for item in self._declared_tools:
            if isinstance(item, ToolRegistry):
                for t in item:
                    registry.add(t)
            else:
                registry.add(item)
        for folder in self.plugins:
            path = Path(folder)
            if not path.is_absolute() and self._plugin_base is not None:
                path = self._plugin_base / path
            for t in load_plugins(path):
                registry.add(t)
        self.__dict__["_registry"] = registry
        return registry

    # -- session configuration -------------------------------------------------------------

    def session_config(self) -> dict[str, Any]:
        """Build the GA ``session`` object of a ``session.update`` for this agent.

        Only settings that are set appear (PROTOCOL §5); ``tools`` is always sent, so an agent
        without tools clears any left from a previous agent. Each call returns a new dict.

        Raises:
            ConfigurationError: A setting has a value the Realtime API cannot take.
        """
        cfg: dict[str, Any] = {"type": "realtime", "model": self.model}
        instructions = self.instructions
        if callable(instructions):
            instructions = instructions()
            if not isinstance(instructions, str):
                raise ConfigurationError(
                    f"{type(self).__qualname__}.instructions() returned "
                    f"{type(instructions).__name__}, not str"
                )
        if not isinstance(instructions, _Unset):
            cfg["instructions"] = instructions
        if not isinstance(self.output_modalities, _Unset):
            cfg["output_modalities"] = _modalities(self.output_modalities)
        audio = self._audio_config()
        if audio:
            cfg["audio"] = audio
        registry = self.tools
        cfg["tools"] = registry.schemas()
        if not isinstance(self.tool_choice, _Unset):
            cfg["tool_choice"] = _tool_choice(self.tool_choice, registry)
        if not isinstance(self.parallel_tool_calls, _Unset):
            cfg["parallel_tool_calls"] = self.parallel_tool_calls
        if not isinstance(self.max_output_tokens, _Unset):
            cfg["max_output_tokens"] = self.max_output_tokens
        if not isinstance(self.truncation, _Unset):
            cfg["truncation"] = _plain(self.truncation)
        if not isinstance(self.tracing, _Unset):
            cfg["tracing"] = _plain(self.tracing)
        if not isinstance(self.reasoning, _Unset):
            reasoning = self.reasoning
            cfg["reasoning"] = (
                {"effort": reasoning} if isinstance(reasoning, str) else _plain(reasoning)
            )
        if not isinstance(self.include, _Unset):
            cfg["include"] = list(self.include)
        if not isinstance(self.prompt, _Unset):
            prompt = self.prompt
            cfg["prompt"] = {"id": prompt} if isinstance(prompt, str) else _plain(prompt)
        return cfg

    def _audio_config(self) -> dict[str, Any]:
        audio_in: dict[str, Any] = {}
        if not isinstance(self.input_audio_format, _Unset):
            audio_in["format"] = _audio_format(self.input_audio_format, "input_audio_format")
        if not isinstance(self.transcription, _Unset):
            t = self.transcription
            audio_in["transcription"] = {"model": t} if isinstance(t, str) else _plain(t)
        if not isinstance(self.turn_detection, _Unset):
            td = self.turn_detection
            audio_in["turn_detection"] = {"type": td} if isinstance(td, str) else _plain(td)
        if not isinstance(self.noise_reduction, _Unset):
            nr = self.noise_reduction
            audio_in["noise_reduction"] = {"type": nr} if isinstance(nr, str) else _plain(nr)
        audio_out: dict[str, Any] = {}
        if not isinstance(self.output_audio_format, _Unset):
            audio_out["format"] = _audio_format(self.output_audio_format, "output_audio_format")
        if not isinstance(self.voice, _Unset):
            audio_out["voice"] = _plain(self.voice)
        if not isinstance(self.speed, _Unset):
            audio_out["speed"] = self.speed
        audio: dict[str, Any] = {}
        if audio_in:
            audio["input"] = audio_in
        if audio_out:
            audio["output"] = audio_out
        return audio

    def _check_settings(self) -> None:
        """Fail at construction on shorthand values session_config() could not translate."""
        if not isinstance(self.output_modalities, _Unset):
            _modalities(self.output_modalities)
        self._audio_config()

    # -- running (higher layers, imported lazily) ------------------------------------------

    def connect(self, **kwargs: Any) -> Any:
        """Open a live session for this agent; see rtagent._runtime.connect."""
        from ._runtime import connect  # runtime is a higher layer; imported lazily on purpose

        return connect(self, **kwargs)

    def connect_sync(self, **kwargs: Any) -> Any:
        """Open a live session from synchronous code; see rtagent._sync.connect_sync."""
        from ._sync import connect_sync  # higher layer, imported lazily

        return connect_sync(self, **kwargs)


# -- helpers -------------------------------------------------------------------------------


def _method_tools(cls: type[Agent]) -> dict[str, Any]:
    """The ``@tool`` functions of ``cls`` and its bases, by tool name, base classes first.

    A subclass replaces a base's tool of the same name, or of the same attribute name (so
    overriding a tool method with a plain method removes the tool).
    """
    by_name: dict[str, Any] = {}  # functions, staticmethods, classmethods
    name_of_attr: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        seen_here: dict[str, str] = {}
        for attr, value in vars(klass).items():
            old = name_of_attr.pop(attr, None)
            if old is not None:
                by_name.pop(old, None)
            is_function = inspect.isfunction(value) or isinstance(
                value, (staticmethod, classmethod)
            )
            declared = get_tool(value) if is_function else None
            if declared is None:
                continue
            if declared.name in seen_here:
                raise ToolDefinitionError(
                    f"{klass.__qualname__}.{attr}",
                    [
                        f"tool name {declared.name!r} is already used by {klass.__qualname__}.{seen_here[declared.name]}"
                    ],
                )
            seen_here[declared.name] = attr
            by_name.pop(declared.name, None)  # re-insert so the order follows the subclass
            by_name[declared.name] = value
            name_of_attr[attr] = declared.name
    return by_name


def _as_tool_list(value: Any, where: str) -> tuple[ToolLike, ...]:
    if isinstance(value, (ToolRegistry, Tool)) or callable(value):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{where} must be a list of functions, Tools or ToolRegistry")
    items = tuple(value)
    for item in items:
        if not (isinstance(item, (Tool, ToolRegistry)) or callable(item)):
            raise ConfigurationError(f"{where}: {item!r} is not a function, Tool or ToolRegistry")
    return items


def _defining_folder(cls: type) -> Path | None:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def _plain(value: Any) -> Any:
    """A deep copy of a user value, with Mappings turned into dicts (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _modalities(value: Sequence[str] | str) -> list[str]:
    mods = [value] if isinstance(value, str) else list(value)
    if len(mods) != 1 or mods[0] not in ("text", "audio"):
        # GA output_modalities: ["audio"] or ["text"], never both (PROTOCOL §5).
        raise ConfigurationError(f'output_modalities must be ["audio"] or ["text"], not {mods!r}')
    return mods


def _audio_format(value: str | Mapping[str, Any], setting: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            return dict(_FORMATS[value])
        except KeyError:
            known = ", ".join(sorted(_FORMATS))
            raise ConfigurationError(
                f"{setting}: unknown audio format {value!r} (known: {known})"
            ) from None
    result: dict[str, Any] = _plain(value)
    return result


def _tool_choice(value: str | Mapping[str, Any], registry: ToolRegistry) -> Any:
    if not isinstance(value, str):
        return _plain(value)
    if value in _TOOL_CHOICE_MODES:
        return value
    if value in registry:
        return {"type": "function", "name": value}
    raise ConfigurationError(
        f"tool_choice {value!r} is neither auto/none/required nor one of this agent's tools "
        f"({', '.join(registry.names()) or 'none'})"
    )
