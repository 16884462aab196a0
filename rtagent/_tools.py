"""Declaring tools (``@tool``), the ``Tool`` record, and ``ToolRegistry``.

``@tool`` only marks a function: it attaches the function's ``Tool`` (``fn.__rtagent_tool__``,
unbound for methods) and its Realtime definition (``fn.schema``) and returns the same
function. Collections are explicit: build a ``ToolRegistry`` (or let ``Agent`` and plugins
do it) from marked or plain functions.

Running a tool is ``rtagent._invoke``'s job (``invoke_tool``); ``ToolRegistry.invoke`` is a
shortcut to it by name.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar, get_args, overload

from typing_extensions import Unpack

from ._errors import ToolDefinitionError
from ._invoke import ErrorKind, ToolContext, ToolResult, invoke_tool, unknown_tool
from ._schema import TOOL_NAME_PATTERN, FunctionSchema, function_schema, is_valid_tool_name

__all__ = [
    "ErrorKind",
    "OnInterrupt",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "get_tool",
    "is_tool",
    "tool",
]

OnInterrupt = Literal["cancel", "finish", "reply"]
"""What happens to a running call when the user barges in or the response is cancelled.

``"cancel"``: cancel it and post an output saying so, without requesting a reply.
``"finish"`` (default, safe for side effects): let it finish and post its output, no reply.
``"reply"``: let it finish, post its output and request a response about it.
"""
_ON_INTERRUPT: tuple[str, ...] = get_args(OnInterrupt)

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__rtagent_tool__"


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Tool:
    """One tool: what the model sees, what runs, and how.

    ``@tool`` attaches one to a function; ``Tool.from_function`` builds one from any
    function. For a method the attached tool is unbound (``is_bound`` is False) and
    ``bind(instance)`` gives the copy that runs on that instance.
    ``dataclasses.replace(tool, name=...)`` gives a renamed or re-described copy that runs
    the same handler.

    Attributes:
        name: Tool name the model calls.
        description: Tool description.
        parameters: JSON schema of the arguments (as sent in ``session.update``).
        handler: The callable that runs (a bound method once a method tool is bound).
        timeout: Seconds before a call is abandoned with a "timed out" output, or None.
        on_interrupt: What to do with a running call on interruption (``OnInterrupt``).
        strict: Validate arguments without coercion (pydantic strict mode).
        needs_approval: True, or a predicate over the call's arguments (a dict), when a
            person must approve a call before it runs.
        background: Long-running work: the model gets an interim output at once and
            keeps talking; the result joins the conversation when it is ready.
        idempotent: Running it twice does no harm (a worker that took over a call may
            run it again).
        inline: A plain ``def`` tool that is quick and never blocks (no I/O, no sleep, no
            lock, a few microseconds of work) runs on the event loop instead of in a worker
            thread. It then delays every session in the process while it runs, and a
            ``timeout`` cannot interrupt it, so neither can be combined with it.
        signature: How to call ``handler``: argument model, context and bound parameter,
            positional-only parameters, sync or async. Built once, by ``@tool``.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[..., Any] = field(repr=False)
    timeout: float | None = None
    on_interrupt: OnInterrupt = "finish"
    strict: bool = False
    needs_approval: bool | Callable[[dict[str, Any]], bool] = field(default=False, repr=False)
    background: bool = False
    idempotent: bool = False
    inline: bool = False
    signature: FunctionSchema = field(repr=False)

    def __post_init__(self) -> None:
        problems = _option_problems(
            timeout=self.timeout, on_interrupt=self.on_interrupt,
            needs_approval=self.needs_approval, background=self.background,
            idempotent=self.idempotent, inline=self.inline,
        )
        if self.inline is True and self.signature.is_async:
            problems.append("inline is for plain def tools (an async def tool runs on the event loop)")
        if not is_valid_tool_name(self.name):
            problems.insert(0, f"tool name {self.name!r} must match {TOOL_NAME_PATTERN}")
        if problems:
            raise ToolDefinitionError(repr(self.name), problems)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, instance: object | None = None) -> Tool:
        """Build a tool from a ``@tool`` function (its tool reused) or a plain one (bare ``@tool``).

        Args:
            fn: A function, a ``@tool`` method (with ``instance``) or a bound method.
            instance: Object to bind a method to; ignored for non-methods.

        Raises:
            ToolDefinitionError: If ``fn`` cannot be a tool, or a method has no instance.
        """
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        bound_to = getattr(fn, "__self__", None)
        if bound_to is not None and hasattr(fn, "__func__"):
            instance, fn = bound_to, fn.__func__
        item = get_tool(fn)
        if item is None:
            item = _declare(fn, localns=None)
        if item.signature.bound_param is None:
            return item
        if instance is None:
            raise ToolDefinitionError(
                getattr(fn, "__qualname__", repr(fn)),
                [f"{item.name} is a method: pass instance= (or a bound method)"],
            )
        return item.bind(instance)

    @property
    def is_bound(self) -> bool:
        """Whether the tool can run: not a method, or a method bound to its instance."""
        return self.signature.bound_param is None or hasattr(self.handler, "__self__")

    def bind(self, instance: object) -> Tool:
        """A copy of this method tool that runs on ``instance``; other tools return themselves.

        A ``classmethod`` tool binds to the class (``instance``'s class, or ``instance``
        itself when it is a class). Binding a bound tool rebinds it.
        """
        bound_param = self.signature.bound_param
        if bound_param is None:
            return self
        if bound_param == "cls" and not isinstance(instance, type):
            instance = type(instance)
        function = getattr(self.handler, "__func__", self.handler)
        return dataclasses.replace(self, handler=types.MethodType(function, instance))

    @property
    def schema(self) -> dict[str, Any]:
        """The Realtime tool definition (flat, as sent in ``session.update``)."""
        return _definition(self.name, self.description, self.parameters)


def _definition(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    # session.update tools[]: GA tools are flat, not the Chat Completions {"function": ...}.
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


class ToolOptions(TypedDict, total=False):
    """The options of ``@tool(...)``; each is documented on :class:`Tool`."""

    name: str | None
    """Tool name; defaults to the function name."""
    description: str | None
    """Tool description; defaults to the docstring."""
    timeout: float | None
    on_interrupt: OnInterrupt
    strict: bool
    needs_approval: bool | Callable[[dict[str, Any]], bool]
    background: bool
    idempotent: bool
    inline: bool


_RUN_OPTIONS = (
    "timeout", "on_interrupt", "strict", "needs_approval", "background", "idempotent", "inline",
)


def _option_problems(**options: Any) -> list[str]:
    problems: list[str] = []
    timeout = options.get("timeout")
    if timeout is not None and not (
        isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
    ):
        problems.append(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    on_interrupt = options.get("on_interrupt", "finish")
    if on_interrupt not in _ON_INTERRUPT:
        problems.append(
            f"on_interrupt must be one of {', '.join(_ON_INTERRUPT)}, not {on_interrupt!r}"
        )
    approval = options.get("needs_approval", False)
    if not isinstance(approval, bool) and not callable(approval):
        problems.append(f"needs_approval must be a bool or a predicate, not {approval!r}")
    for flag in ("strict", "background", "idempotent", "inline"):
        if not isinstance(options.get(flag, False), bool):
            problems.append(f"{flag} must be True or False, not {options[flag]!r}")
    if options.get("inline") is True:
        # An inline tool runs to its end on the event loop: nothing can interrupt it.
        if timeout is not None:
            problems.append("timeout cannot interrupt an inline tool (it runs on the event loop)")
        if options.get("background") is True:
            problems.append("a background tool is long-running work: it cannot be inline")
    unknown = set(options) - set(ToolOptions.__annotations__)
    if unknown:
        problems.append(f"unknown option(s): {', '.join(sorted(unknown))}")
    return problems


def _declare(
    fn: Callable[..., Any], *, localns: dict[str, Any] | None, **options: Any
) -> Tool:
    """The (unbound, for a method) ``Tool`` of ``fn``; every problem reported at once."""
    if isinstance(fn, (staticmethod, classmethod)):
        kind = type(fn).__name__
        raise ToolDefinitionError(
            repr(fn), [f"put @{kind} above @tool (@tool must see the plain function)"]
        )
    signature = function_schema(
        fn,
        name=options.get("name"),
        description=options.get("description"),
        strict=bool(options.get("strict", False)),
        context_type=ToolContext,
        localns=localns,
        extra_problems=_option_problems(**options),
    )
    run = {key: options[key] for key in _RUN_OPTIONS if key in options}
    if run.get("timeout") is not None:
        run["timeout"] = float(run["timeout"])
    return Tool(
        name=signature.name,
        description=signature.description,
        parameters=signature.parameters,
        handler=fn,
        signature=signature,
        **run,
    )


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(**options: Unpack[ToolOptions]) -> Callable[[F], F]: ...
def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Mark a function (or method) as a tool; registers nothing and returns it unchanged.

    Works bare (``@tool``) or with options (``@tool(name=..., timeout=...)``). The function
    gains ``__rtagent_tool__`` (its ``Tool``, unbound for a method; see ``get_tool``) and
    ``schema`` (the Realtime definition).

    Args:
        fn: The function, when used bare.
        **options: ``name``, ``description``, ``timeout`` (seconds, then a "timed out"
            output), ``on_interrupt`` (``"cancel"``, ``"finish"`` or ``"reply"``),
            ``strict`` (no coercion, strict schema), ``needs_approval`` (True or a
            predicate over the arguments), ``background`` (long-running work),
            ``idempotent`` (safe to run twice), ``inline`` (a quick plain ``def`` tool that
            runs on the event loop, not in a worker thread); see :class:`Tool`.

    Raises:
        ToolDefinitionError: Listing every problem with the function and options.
    """
    # The decorating scope, so string annotations naming local classes still resolve.
    localns = dict(sys._getframe(1).f_locals)

    def mark(f: F) -> F:
        item = _declare(f, localns=localns, **options)
        setattr(f, _MARK, item)
        setattr(f, "schema", item.schema)  # noqa: B010  # a function has no typed attribute
        return f

    if fn is not None:
        return mark(fn)
    return mark


def _unwrap(obj: object) -> object:
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    return getattr(obj, "__func__", obj)  # bound method -> function


def get_tool(obj: object) -> Tool | None:
    """Return the ``Tool`` that ``@tool`` attached to a function, method or static/class method.

    For a method this is the unbound tool; ``Tool.from_function(obj, instance=...)`` or
    ``get_tool(obj).bind(instance)`` gives one that can run.
    """
    item = getattr(_unwrap(obj), _MARK, None)
    return item if isinstance(item, Tool) else None


def is_tool(obj: object) -> bool:
    """Tell whether ``obj`` was marked with ``@tool``."""
    return get_tool(obj) is not None


class ToolRegistry:
    """An explicit, ordered collection of runnable tools, looked up by name."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, tool: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a function/bound method, made into one); return the ``Tool``.

        Raises:
            ToolDefinitionError: If the name is taken and ``replace`` is False, or the tool
                is a method tool that is not bound to an instance.
        """
        item = tool if isinstance(tool, Tool) else Tool.from_function(tool)
        if not item.is_bound:
            raise ToolDefinitionError(
                item.name, [f"{item.name} is a method: bind it first (tool.bind(instance))"]
            )
        if item.name in self._tools and not replace:
            raise ToolDefinitionError(
                item.name, [f"a tool named {item.name!r} is already registered"]
            )
        self._tools[item.name] = item
        return item

    def remove(self, name: str) -> None:
        """Remove a tool; ``KeyError`` if there is none by that name."""
        del self._tools[name]

    def get(self, name: str) -> Tool | None:
        """Return the tool called ``name``, or None."""
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"

    def names(self) -> list[str]:
        """Tool names in insertion order."""
        return list(self._tools)

    def merge(self, other: Iterable[Tool], *, replace: bool = False) -> ToolRegistry:
        """Return a new registry with this one's tools, then ``other``'s.

        Raises:
            ToolDefinitionError: On a name present in both, unless ``replace`` (other wins).
        """
        merged = self.copy()
        for item in other:
            merged.add(item, replace=replace)
        return merged

    def copy(self) -> ToolRegistry:
        """A new registry holding the same (immutable) tools."""
        new = ToolRegistry()
        new._tools = dict(self._tools)
        return new

    def schemas(self) -> list[dict[str, Any]]:
        """Tool definitions for ``session.update``'s ``tools``, in insertion order."""
        return [item.schema for item in self._tools.values()]

    async def invoke(self, name: str, arguments: str, context: ToolContext) -> ToolResult:
        """Run the tool the model called (``invoke_tool``); an unknown name is ``unknown_tool``."""
        item = self._tools.get(name)
        if item is None:
            return unknown_tool(name, self._tools, context)
        return await invoke_tool(item, arguments, context)
