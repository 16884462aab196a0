"""The ``Agent`` base class: what an agent says, which tools it has, how its session is set up.

An ``Agent`` describes an agent; it does not run one (see ``rtagent.connect``). Subclass it
and set class attributes, or pass the same names as keyword arguments::

    class Weather(Agent):
        instructions = "You tell people the weather."
        voice = "marin"

        @tool
        def get_weather(self, city: str) -> str:
            '''Current weather for a city.'''
            return "sunny"

    Weather().session_config()       # the GA ``session`` object for session.update

Each session setting is declared once, below, as a ``Setting``: its type, where it goes in
the GA ``session`` object, and how a shorthand expands (``"pcm16"`` -> a format object).
``Agent(**settings)``, ``AgentSettings`` and ``session_config()`` all follow that table.

Settings that are never set are not sent, so the server keeps its defaults. ``UNSET`` marks
"not set"; ``None`` means "send null" (``turn_detection = None`` disables VAD).

Reading ``agent.tools`` never touches the disk: plugin folders are loaded only by
``agent.load_tools()``, which the runtime calls when a session starts.

MCP comes in two forms: ``hosted_mcp`` (:class:`~rtagent.HostedMcp`, servers the Realtime
service calls; they go into ``session_config()``'s ``tools``) and ``mcp_servers``
(:class:`~rtagent.McpStdio`, :class:`~rtagent.McpHttp`, servers this process calls; their
tools join the agent's when a session starts).
"""

from __future__ import annotations

import copy
import enum
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, TypeAlias, TypedDict, TypeVar, Union, overload

from ._errors import ConfigurationError, PluginLoadError, ToolDefinitionError
from ._mcp import HostedMcp, McpServer
from ._plugins import load_plugins
from ._tools import Tool, ToolRegistry, get_tool

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - exercised on Python 3.10 only
    from typing_extensions import Unpack

__all__ = ["UNSET", "Agent", "AgentSettings", "Setting", "ToolLike"]

T = TypeVar("T")


DEFAULT_MODEL = "gpt-realtime-2.1"
"""The model of an agent that names none: the newest GA realtime model."""

class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET
"""Marks a setting that is not set (and so not sent); distinct from ``None``, which sends null."""

ToolLike: TypeAlias = Union[Tool, Callable[..., Any], ToolRegistry]
"""What ``Agent.tools`` accepts: a function (``@tool``-decorated or plain), a ``Tool``, a registry."""

PluginPath: TypeAlias = Union[str, os.PathLike[str]]
"""A plugin folder: a string or a path."""


# -- converters: a user value -> its GA wire value -----------------------------------------


def _plain(value: Any) -> Any:
    """A deep copy of a user value, with Mappings turned into dicts (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _shorthand(key: str) -> Callable[[Any], Any]:
    """A converter where a string ``s`` stands for ``{key: s}``; anything else is copied."""

    def convert(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else _plain(value)

    return convert


def _model(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"must be a model name, not {value!r}")
    return value


def _modalities(value: Any) -> list[str]:
    mods = [value] if isinstance(value, str) else list(value)
    if len(mods) != 1 or mods[0] not in ("text", "audio"):
        # GA output_modalities: ["audio"] or ["text"], never both (PROTOCOL §5).
        raise ConfigurationError(f'must be ["audio"] or ["text"], not {mods!r}')
    return mods


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


def _audio_format(value: Any) -> Any:
    if not isinstance(value, str):
        return _plain(value)
    try:
        return dict(_FORMATS[value])
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        raise ConfigurationError(f"unknown audio format {value!r} (known: {known})") from None


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"must be a number, not {value!r}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"must be True or False, not {value!r}")
    return value


def _token_limit(value: Any) -> Any:
    if value != "inf" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigurationError(f'must be a number of tokens or "inf", not {value!r}')
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"must be a list of strings, not {value!r}")
    return list(value)


_TOOL_CHOICE_MODES = ("auto", "none", "required")


def _tool_choice(value: Any) -> Any:
    if not isinstance(value, str):
        return _plain(value)
    if value in _TOOL_CHOICE_MODES:
        return value
    # Any other string names one of the agent's tools (checked by session_config).
    return {"type": "function", "name": value}


# -- the Setting descriptor -------------------------------------------------------------------


class Setting(Generic[T]):
    """One session setting of ``Agent``: a typed attribute that knows its GA wire location.

    Reading it on an agent gives the value set on the instance, else the class's, else the
    default (``UNSET``: not sent). A subclass overrides it with a plain value
    (``voice = "marin"``); an instance with an assignment or a keyword argument.

    Args:
        path: Where the value goes in the GA ``session`` object, dotted
            (``"audio.output.voice"``).
        default: The value when nothing is set; ``UNSET`` leaves the setting out.
        convert: Turns a user value into its wire value (shorthands, copies); raises
            ``ConfigurationError`` for a value the Realtime API cannot take. The default
            copies the value; ``None`` passes through as null wherever the setting's type
            allows it (``turn_detection = None`` turns VAD off).
    """

    def __init__(
        self,
        path: str,
        *,
        default: T | _Unset = UNSET,
        convert: Callable[[Any], Any] = _plain,
    ) -> None:
        self.path = path
        self.default = default
        self.convert = convert
        self.name = path.rpartition(".")[2]

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T | _Unset: ...
    def __get__(self, obj: object | None, owner: type) -> Setting[T] | T | _Unset:
        if obj is None:
            return self
        value: T | _Unset = obj.__dict__.get(self.name, self.default)
        return value

    def __set__(self, obj: object, value: T | _Unset) -> None:
        obj.__dict__[self.name] = value

    def __repr__(self) -> str:
        return f"Setting({self.path!r}, default={self.default!r})"

    def to_wire(self, value: Any) -> Any:
        """The wire value of ``value`` for this setting.

        Raises:
            ConfigurationError: The value cannot be sent; the message names the setting.
        """
        try:
            return self.convert(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{self.name}: {exc}") from None
        except TypeError as exc:  # e.g. list() of a number
            raise ConfigurationError(f"{self.name}: cannot use {value!r} ({exc})") from None


class AgentSettings(TypedDict, total=False):
    """The session settings ``Agent(...)`` takes as keyword arguments (see ``Agent``).

    ``UNSET`` as a value keeps the class's setting; ``None`` sends null.
    """

    model: str | _Unset
    output_modalities: Sequence[Literal["text", "audio"]] | Literal["text", "audio"] | _Unset
    input_audio_format: str | Mapping[str, Any] | _Unset
    transcription: str | Mapping[str, Any] | _Unset | None
    turn_detection: str | Mapping[str, Any] | _Unset | None
    noise_reduction: str | Mapping[str, Any] | _Unset | None
    output_audio_format: str | Mapping[str, Any] | _Unset
    voice: str | Mapping[str, str] | _Unset
    speed: float | _Unset
    tool_choice: str | Mapping[str, Any] | _Unset
    parallel_tool_calls: bool | _Unset
    max_output_tokens: int | Literal["inf"] | _Unset
    truncation: str | Mapping[str, Any] | _Unset
    tracing: str | Mapping[str, Any] | _Unset | None
    reasoning: str | Mapping[str, Any] | _Unset
    include: Sequence[str] | _Unset
    prompt: str | Mapping[str, Any] | _Unset


# -- tools and plugins attributes -----------------------------------------------------------


class _ToolsAttribute:
    """``Agent.tools``: declared as a list, read back as the agent's ``ToolRegistry``.

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
        cached = obj.__dict__.get("_tool_registry")
        if isinstance(cached, ToolRegistry):
            return cached
        registry = obj._build_tools()
        obj.__dict__["_tool_registry"] = registry
        return registry

    def __set__(self, obj: Agent, value: Iterable[ToolLike]) -> None:
        obj.__dict__["_declared_tools"] = _as_tool_list(value, "tools")
        obj.__dict__.pop("_tool_registry", None)


class _PluginsAttribute:
    """``Agent.plugins``: plugin folders, read back as absolute paths.

    A relative path is resolved when it is declared: against the folder of the file
    defining the class for a class attribute, against the current directory otherwise.
    """

    # Typed as the sequence it accepts (it is a tuple of Paths), so that a subclass body's
    # `plugins = ["tools"]` type-checks: mypy compares it with what __get__ returns.
    def __get__(self, obj: Agent | None, owner: type[Agent]) -> Sequence[PluginPath]:
        if obj is None:
            return owner._plugin_folders
        return obj._plugin_folders

    def __set__(self, obj: Agent, value: Iterable[PluginPath]) -> None:
        obj.__dict__["_plugin_folders"] = _folders(value, "plugins", base=None)


# -- the Agent class --------------------------------------------------------------------------


class Agent:
    """Describes a Realtime agent: instructions, tools and session settings.

    Every session setting (``model``, ``voice``, ``turn_detection``... each documented
    where it is declared below) is a class attribute a subclass may override with a plain
    value, or a keyword argument of ``Agent(...)`` (keyword arguments win). Settings left
    ``UNSET`` are not sent.

    Attributes:
        instructions: The system prompt; a string, or a method ``instructions(self) -> str``
            evaluated each time ``session_config()`` is built.
        tools: Functions, ``Tool`` objects or registries; read back, ``agent.tools`` is a
            ``ToolRegistry`` of the ``@tool`` methods (over the class hierarchy), then these.
            Assigning replaces these (the methods stay). Type checkers take a class-body list
            for the attribute's type; write ``tools = ToolRegistry([...])`` to keep mypy happy.
        hosted_mcp: :class:`~rtagent.HostedMcp` servers the Realtime service calls for the
            model; each becomes an ``{"type": "mcp"}`` entry of the session's tools.
        mcp_servers: :class:`~rtagent.McpStdio` / :class:`~rtagent.McpHttp` servers whose
            tools this process calls; each session connects to them and keeps their tools
            current (needs the ``mcp`` extra).
        plugins: Plugin folders whose tools ``load_tools()`` adds (see ``rtagent.plugins``).
            A relative path in a class attribute is resolved against the folder of the file
            defining the class; one assigned or passed to ``Agent(plugins=...)`` against the
            current directory. Extend it at run time with
            ``agent.plugins = [*agent.plugins, "more_tools"]``.
    """

    instructions: str | Callable[[], str] | _Unset = UNSET

    model = Setting[str]("model", default=DEFAULT_MODEL, convert=_model)
    """The Realtime model id, also used in the connection URL."""
    output_modalities = Setting[Sequence[Literal["text", "audio"]] | Literal["text", "audio"]](
        "output_modalities", convert=_modalities
    )
    """``["audio"]`` (audio plus transcript) or ``["text"]``; a single string works too."""
    input_audio_format = Setting[str | Mapping[str, Any]](
        "audio.input.format", convert=_audio_format
    )
    """A GA format object (``{"type": "audio/pcm", "rate": 24000}``) or a shorthand:
    ``"pcm16"``, ``"g711_ulaw"``, ``"g711_alaw"``, ``"audio/pcmu"``..."""
    transcription = Setting[str | Mapping[str, Any] | None](
        "audio.input.transcription", convert=_shorthand("model")
    )
    """Input transcription settings (``{"model": ..., "language": ...}``), a model name,
    or None to send null."""
    turn_detection = Setting[str | Mapping[str, Any] | None](
        "audio.input.turn_detection", convert=_shorthand("type")
    )
    """VAD settings (``{"type": "semantic_vad", ...}``), ``"server_vad"`` or
    ``"semantic_vad"``, or None to disable VAD (you commit and respond yourself)."""
    noise_reduction = Setting[str | Mapping[str, Any] | None](
        "audio.input.noise_reduction", convert=_shorthand("type")
    )
    """``{"type": "near_field"}``, ``"near_field"``/``"far_field"``, or None."""
    output_audio_format = Setting[str | Mapping[str, Any]](
        "audio.output.format", convert=_audio_format
    )
    """As ``input_audio_format``, for the audio the model produces."""
    voice = Setting[str | Mapping[str, str]]("audio.output.voice")
    """A voice name such as ``"marin"``, or ``{"id": "voice_..."}``."""
    speed = Setting[float]("audio.output.speed", convert=_number)
    """Speaking speed of the audio output."""
    tool_choice = Setting[str | Mapping[str, Any]]("tool_choice", convert=_tool_choice)
    """``"auto"``, ``"none"``, ``"required"``, a GA tool choice object, or the name of one
    of this agent's tools to force it."""
    parallel_tool_calls = Setting[bool]("parallel_tool_calls", convert=_boolean)
    """Whether the model may call several tools at once."""
    max_output_tokens = Setting[int | Literal["inf"]]("max_output_tokens", convert=_token_limit)
    """1..4096 or ``"inf"``, per response."""
    truncation = Setting[str | Mapping[str, Any]]("truncation")
    """``"auto"``, ``"disabled"`` or a retention-ratio object."""
    tracing = Setting[str | Mapping[str, Any] | None]("tracing")
    """``"auto"``, a tracing object, or None."""
    reasoning = Setting[str | Mapping[str, Any]]("reasoning", convert=_shorthand("effort"))
    """``{"effort": "low"}`` or just the effort string."""
    include = Setting[Sequence[str]]("include", convert=_strings)
    """Extra server output, e.g. ``["item.input_audio_transcription.logprobs"]``."""
    prompt = Setting[str | Mapping[str, Any]]("prompt", convert=_shorthand("id"))
    """A stored prompt reference (``{"id": ..., "variables": ...}``) or its id."""

    tools = _ToolsAttribute()
    plugins = _PluginsAttribute()
    hosted_mcp: Sequence[HostedMcp] = ()
    mcp_servers: Sequence[McpServer] = ()
    _declared_tools: tuple[ToolLike, ...] = ()
    _plugin_folders: tuple[Path, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("tools")
        if declared is not None and not isinstance(declared, _ToolsAttribute):
            # Move the list aside so `agent.tools` keeps returning the registry.
            cls._declared_tools = _as_tool_list(declared, f"{cls.__qualname__}.tools")
            delattr(cls, "tools")
        folders = cls.__dict__.get("plugins")
        if folders is not None and not isinstance(folders, _PluginsAttribute):
            where = f"{cls.__qualname__}.plugins"
            cls._plugin_folders = _folders(folders, where, base=_defining_folder(cls))
            delattr(cls, "plugins")

    def __init__(
        self,
        *,
        instructions: str | Callable[[], str] | _Unset = UNSET,
        tools: Iterable[ToolLike] | _Unset = UNSET,
        plugins: Iterable[PluginPath] | _Unset = UNSET,
        hosted_mcp: Iterable[HostedMcp] | _Unset = UNSET,
        mcp_servers: Iterable[McpServer] | _Unset = UNSET,
        **settings: Unpack[AgentSettings],
    ) -> None:
        """Override any class-level setting for this instance; see the class docstring.

        Raises:
            ConfigurationError: An unknown keyword argument, or a setting (given here or
                on the class) with a value the Realtime API cannot take.
        """
        unknown = [name for name in settings if name not in _SETTINGS]
        if unknown:
            valid = ", ".join(
                ["instructions", "tools", "plugins", "hosted_mcp", "mcp_servers", *_SETTINGS]
            )
            raise ConfigurationError(
                f"{type(self).__qualname__}() got unknown setting(s) "
                f"{', '.join(map(repr, unknown))}; valid: {valid}"
            )
        if not isinstance(instructions, _Unset):
            self.instructions = instructions
        for name, value in settings.items():
            if value is not UNSET:
                setattr(self, name, value)
        if not isinstance(tools, _Unset):
            self.tools = tools
        if not isinstance(plugins, _Unset):
            self.plugins = plugins
        if not isinstance(hosted_mcp, _Unset):
            self.hosted_mcp = tuple(hosted_mcp)
        if not isinstance(mcp_servers, _Unset):
            self.mcp_servers = tuple(mcp_servers)
        self._check_settings()
        self._check_mcp()

    def __repr__(self) -> str:
        # Never build the registry here: repr() must be cheap and must not fail.
        cached = self.__dict__.get("_tool_registry")
        tools = f" tools=[{', '.join(cached.names())}]" if isinstance(cached, ToolRegistry) else ""
        return f"<{type(self).__qualname__} model={self.model!r}{tools}>"

    # -- tools ---------------------------------------------------------------------------

    def _build_tools(self) -> ToolRegistry:
        registry = ToolRegistry()
        for item in _method_tools(type(self)).values():
            registry.add(item.bind(self))
        for declared in self._declared_tools:
            if isinstance(declared, ToolRegistry):
                for item in declared:
                    registry.add(item)
            else:
                registry.add(declared)
        return registry

    def load_tools(self) -> ToolRegistry:
        """Load every tool of this agent: ``agent.tools``, then each plugin folder's tools.

        Each call reads the plugin folders again and returns a new registry; ``agent.tools``
        is left as it is. The runtime calls this once when a session starts.

        Raises:
            PluginLoadError: A plugin file cannot be loaded, or declares a tool name the
                agent or an earlier plugin already has; the error names the file.
            ToolDefinitionError: A tool of the agent itself is broken or declared twice.
        """
        registry = self.tools.copy()
        owner = {name: f"the agent ({type(self).__qualname__})" for name in registry.names()}
        for folder in self.plugins:
            for item in load_plugins(folder):
                where = _source_file(item, folder)
                if item.name in owner:
                    raise PluginLoadError(
                        where, f"tool {item.name!r} is already declared by {owner[item.name]}"
                    )
                owner[item.name] = where
                registry.add(item)
        return registry

    # -- session configuration -------------------------------------------------------------

    def session_config(self, tools: ToolRegistry | None = None) -> dict[str, Any]:
        """Build the GA ``session`` object of a ``session.update`` for this agent.

        Only settings that are set appear (PROTOCOL §5); ``tools`` is always sent, last, so
        an agent without tools clears any left from a previous agent. Each call returns a
        new dict.

        Args:
            tools: The tools to declare; defaults to ``agent.tools`` (no plugins). Pass
                ``agent.load_tools()`` to include the plugin folders' tools.

        Raises:
            ConfigurationError: A setting has a value the Realtime API cannot take, or
                ``tool_choice`` names a tool that is not in ``tools``.
        """
        registry = self.tools if tools is None else tools
        wire: dict[str, Any] = {}
        for setting, value in self._set_values():
            _place(wire, setting.path, setting.to_wire(value))
        cfg: dict[str, Any] = {"type": "realtime", "model": wire.pop("model")}
        instructions = self._instructions()
        if instructions is not None:
            cfg["instructions"] = instructions
        cfg.update(wire)
        choice = self.tool_choice
        if isinstance(choice, str) and choice not in _TOOL_CHOICE_MODES and choice not in registry:
            raise ConfigurationError(
                f"tool_choice {choice!r} is neither auto/none/required nor one of this agent's "
                f"tools ({', '.join(registry.names()) or 'none'})"
            )
        cfg["tools"] = [*self.hosted_tools(), *registry.schemas()]
        return cfg

    def hosted_tools(self) -> list[dict[str, Any]]:
        """The ``{"type": "mcp", ...}`` entries of the hosted MCP servers, as sent.

        They come first in ``session_config()``'s ``tools``, before the function tools.
        """
        return [server.to_wire() for server in self.hosted_mcp]

    def _instructions(self) -> str | None:
        instructions = self.instructions
        if callable(instructions):
            instructions = instructions()
            if not isinstance(instructions, str):
                raise ConfigurationError(
                    f"{type(self).__qualname__}.instructions() returned "
                    f"{type(instructions).__name__}, not str"
                )
        return None if isinstance(instructions, _Unset) else instructions

    def _set_values(self) -> Iterator[tuple[Setting[Any], Any]]:
        """The settings to send, with their values; a setting with a default always is."""
        for setting in _SETTINGS.values():
            value = getattr(self, setting.name)
            if value is not UNSET or setting.default is not UNSET:
                yield setting, value

    def _check_settings(self) -> None:
        """Fail at construction on values session_config() could not send."""
        for setting, value in self._set_values():
            setting.to_wire(value)

    def _check_mcp(self) -> None:
        """Fail at construction on MCP declarations of the wrong kind or with clashing names."""
        for attr, kind in (("hosted_mcp", HostedMcp), ("mcp_servers", McpServer)):
            value = getattr(self, attr)
            if isinstance(value, (str, bytes, kind)) or not isinstance(value, Iterable):
                raise ConfigurationError(f"{attr} must be a list of {kind.__name__}")
            names = []
            for item in value:
                if not isinstance(item, kind):
                    raise ConfigurationError(f"{attr}: {item!r} is not a {kind.__name__}")
                names.append(item.label if isinstance(item, HostedMcp) else item.name)
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigurationError(f"{attr}: {', '.join(map(repr, twice))} declared twice")


_SETTINGS: dict[str, Setting[Any]] = {
    name: value for name, value in vars(Agent).items() if isinstance(value, Setting)
}
"""Every session setting of ``Agent``, by attribute name, in wire order."""


# -- helpers -------------------------------------------------------------------------------


def _place(cfg: dict[str, Any], path: str, value: Any) -> None:
    """Set ``cfg["a"]["b"]["c"] = value`` for path ``"a.b.c"``, creating the levels."""
    *parents, key = path.split(".")
    for part in parents:
        cfg = cfg.setdefault(part, {})
    cfg[key] = value


def _method_tools(cls: type[Agent]) -> dict[str, Tool]:
    """The (unbound) ``@tool`` methods of ``cls`` and its bases, by name, base classes first.

    A subclass replaces a base's tool of the same name, or of the same attribute name (so
    overriding a tool method with a plain method removes the tool).
    """
    by_name: dict[str, Tool] = {}
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
            item = get_tool(value) if is_function else None
            if item is None:
                continue
            if item.name in seen_here:
                raise ToolDefinitionError(
                    f"{klass.__qualname__}.{attr}",
                    [
                        f"tool name {item.name!r} is already used by "
                        f"{klass.__qualname__}.{seen_here[item.name]}"
                    ],
                )
            seen_here[item.name] = attr
            by_name.pop(item.name, None)  # re-insert so the order follows the subclass
            by_name[item.name] = item
            name_of_attr[attr] = item.name
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


def _folders(value: Any, where: str, *, base: Path | None) -> tuple[Path, ...]:
    """Plugin folders as absolute paths, relative ones resolved against ``base`` (or cwd)."""
    if isinstance(value, (str, bytes, os.PathLike)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{where} must be a list of folders, not {value!r}")
    folders = []
    for item in value:
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigurationError(f"{where}: {item!r} is not a path")
        path = Path(item)
        if not path.is_absolute() and base is not None:
            path = base / path
        folders.append(path.resolve())
    return tuple(folders)


def _defining_folder(cls: type) -> Path | None:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def _source_file(item: Tool, folder: PluginPath) -> str:
    """The file that declares a plugin tool, for error messages (else its folder)."""
    code = getattr(getattr(item.handler, "__func__", item.handler), "__code__", None)
    return str(getattr(code, "co_filename", None) or os.fspath(folder))
