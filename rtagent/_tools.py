"""Declaring tools (``@tool``), the ready-to-run ``Tool`` record, and ``ToolRegistry``.

``@tool`` only marks a function: it attaches a ``ToolSpec`` and the Realtime tool
definition (``fn.schema``) and returns the same function. Collections are explicit:
build a ``ToolRegistry`` (or let ``Agent``/plugins do it) from marked or plain functions.

``Tool.invoke`` is the one boundary where tool failures become data: malformed JSON,
invalid arguments, exceptions and timeouts each turn into a one-line ``ToolResult`` the
model can act on (the ``function_call_output`` text). Cancellation always propagates.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, overload

import anyio
import anyio.lowlevel
import anyio.to_thread
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from ._errors import ToolDefinitionError, ToolError
from ._schema import TOOL_NAME_PATTERN, FunctionSchema, function_schema, is_valid_tool_name

__all__ = [
    "OnInterrupt",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "get_tool_spec",
    "is_tool",
    "tool",
]

logger = logging.getLogger(__name__)

OnInterrupt = Literal["cancel", "finish", "reply"]
"""What happens to a running call when the user barges in or the response is cancelled.

``"cancel"``: cancel it and post an output saying so, without requesting a reply.
``"finish"`` (default, safe for side effects): let it finish and post its output, no reply.
``"reply"``: let it finish, post its output and request a response about it.
"""
_ON_INTERRUPT: tuple[str, ...] = get_args(OnInterrupt)

ErrorKind = Literal[
    "invalid_json",
    "invalid_arguments",
    "exception",
    "timeout",
    "tool_error",
    "unknown_tool",
    "cancelled",
]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__rtagent_tool__"
# Sync tools share this many worker threads per event loop, so a burst of slow calls
# cannot exhaust anyio's default thread pool that other code relies on.
THREAD_LIMIT = 16
_thread_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "rtagent_tool_thread_limiter"
)
_MAX_REPORTED_ERRORS = 5


def _limiter() -> anyio.CapacityLimiter:
    try:
        return _thread_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(THREAD_LIMIT)
        _thread_limiter.set(limiter)
        return limiter


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Per-call information, injected into a parameter annotated ``ToolContext``.

    Attributes:
        call_id: The ``call_id`` of the ``function_call`` item being answered.
        tool_name: Name the model called.
        session: The running session, when the runtime provides one.
        agent: The agent instance, when the runtime provides one.
    """

    call_id: str
    tool_name: str
    session: Any = None
    agent: Any = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """Outcome of one call: ``output`` is the ``function_call_output`` text.

    Attributes:
        output: Text for the ``function_call_output`` item.
        ok: False when the call failed in any way.
        error: None on success, else the failure kind (see ``ErrorKind``).
    """

    output: str
    ok: bool
    error: ErrorKind | None = None

    @classmethod
    def cancelled(cls, tool_name: str) -> ToolResult:
        """The output to post for a call cancelled by an interruption (on_interrupt="cancel")."""
        return cls(
            output=f"error: {tool_name} was cancelled because the user interrupted",
            ok=False,
            error="cancelled",
        )


@dataclass(frozen=True, slots=True, eq=False)
class ToolSpec:
    """What ``@tool`` attaches to a function (``fn.__rtagent_tool__``).

    Attributes:
        name: Tool name sent to the model.
        description: Tool description.
        parameters: JSON schema of the arguments.
        args_model: Pydantic model validating the arguments.
        context_param: Parameter receiving the ``ToolContext``, if any.
        timeout: Seconds before a call is abandoned, or None for no limit.
        on_interrupt: What to do with a running call on interruption.
        is_method: Whether the function needs an instance (``self``/``cls`` skipped).
        is_async: Whether the function is a coroutine function.
        fn: The decorated function itself (unbound for methods).
        strict: Whether arguments are validated strictly (see ``rtagent._schema``).
        function_schema: The full declaration, including how to call the function.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    args_model: type[BaseModel]
    context_param: str | None
    timeout: float | None
    on_interrupt: OnInterrupt
    is_method: bool
    is_async: bool
    fn: Callable[..., Any]
    strict: bool = False
    function_schema: FunctionSchema | None = field(default=None, repr=False)

    @property
    def schema(self) -> dict[str, Any]:
        """The Realtime tool definition (flat, as sent in ``session.update``)."""
        return _definition(self.name, self.description, self.parameters)


def _definition(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    # session.update tools[]: GA tools are flat, not the Chat Completions {"function": ...}.
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


def _make_spec(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    timeout: float | None,
    on_interrupt: str,
    strict: bool,
    localns: dict[str, Any] | None,
) -> ToolSpec:
    problems: list[str] = []
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        problems.append(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    if on_interrupt not in _ON_INTERRUPT:
        problems.append(
            f"on_interrupt must be one of {', '.join(_ON_INTERRUPT)}, not {on_interrupt!r}"
        )
    if isinstance(fn, (staticmethod, classmethod)):
        kind = type(fn).__name__
        raise ToolDefinitionError(
            repr(fn), [f"put @{kind} above @tool (@tool must see the plain function)"]
        )
    fs = function_schema(
        fn,
        name=name,
        description=description,
        strict=strict,
        context_type=ToolContext,
        localns=localns,
        extra_problems=problems,
    )
    return ToolSpec(
        name=fs.name,
        description=fs.description,
        parameters=fs.parameters,
        args_model=fs.args_model,
        context_param=fs.context_param,
        timeout=float(timeout) if timeout is not None else None,
        on_interrupt=on_interrupt,  # type: ignore[arg-type]  # checked above
        is_method=fs.is_method,
        is_async=fs.is_async,
        fn=fn,
        strict=strict,
        function_schema=fs,
    )


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    on_interrupt: OnInterrupt = "finish",
    strict: bool = False,
) -> Callable[[F], F]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    on_interrupt: OnInterrupt = "finish",
    strict: bool = False,
) -> Any:
    """Mark a function (or method) as a tool; registers nothing and returns it unchanged.

    Works bare (``@tool``) or with options (``@tool(name=..., timeout=...)``). The function
    gains ``__rtagent_tool__`` (a ``ToolSpec``) and ``schema`` (the Realtime definition).

    Args:
        fn: The function, when used bare.
        name: Tool name; defaults to the function name.
        description: Tool description; defaults to the docstring.
        timeout: Seconds after which a call is abandoned with a "timed out" output.
        on_interrupt: ``"cancel"``, ``"finish"`` or ``"reply"`` (see ``OnInterrupt``).
        strict: Validate without coercion and emit a strict schema (see ``rtagent._schema``).

    Raises:
        ToolDefinitionError: Listing every problem with the function and options.
    """
    # The decorating scope, so string annotations naming local classes still resolve.
    localns = dict(sys._getframe(1).f_locals)

    def mark(f: F) -> F:
        spec = _make_spec(
            f,
            name=name,
            description=description,
            timeout=timeout,
            on_interrupt=on_interrupt,
            strict=strict,
            localns=localns,
        )
        setattr(f, _MARK, spec)
        setattr(f, "schema", spec.schema)  # noqa: B010  # a function has no typed attribute
        return f

    if fn is not None:
        return mark(fn)
    return mark


def _unwrap(obj: object) -> object:
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    return getattr(obj, "__func__", obj)  # bound method -> function


def get_tool_spec(obj: object) -> ToolSpec | None:
    """Return the ``ToolSpec`` of a ``@tool`` function, method or static/class method."""
    spec = getattr(_unwrap(obj), _MARK, None)
    return spec if isinstance(spec, ToolSpec) else None


def is_tool(obj: object) -> bool:
    """Tell whether ``obj`` was marked with ``@tool``."""
    return get_tool_spec(obj) is not None


@dataclass(frozen=True, eq=False)
class Tool:
    """An immutable, ready-to-run tool: methods are already bound to their instance.

    Build one with ``Tool.from_function``. ``dataclasses.replace(tool, name=...)`` gives a
    renamed or re-described copy that runs the same handler.

    Attributes:
        name: Tool name the model calls.
        description: Tool description.
        parameters: JSON schema of the arguments.
        timeout: Seconds before a call is abandoned, or None.
        on_interrupt: What to do with a running call on interruption.
        spec: The declaration this tool was built from.
        handler: The callable actually invoked (bound for methods).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None
    on_interrupt: OnInterrupt
    spec: ToolSpec = field(repr=False)
    handler: Callable[..., Any] = field(repr=False)
    # The call plan, precomputed so invoke() is one validation plus the call.
    _validate: Callable[..., BaseModel] = field(init=False, repr=False)
    _strict: bool | None = field(init=False, repr=False)
    _context_param: str | None = field(init=False, repr=False)
    _positional: tuple[str, ...] = field(init=False, repr=False)
    _is_async: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not is_valid_tool_name(self.name):
            raise ToolDefinitionError(
                repr(self.name), [f"tool name {self.name!r} must match {TOOL_NAME_PATTERN}"]
            )
        fs = self.spec.function_schema
        assert fs is not None  # always set by _make_spec
        object.__setattr__(self, "_validate", fs.args_model.model_validate_json)
        object.__setattr__(self, "_strict", True if fs.strict else None)
        object.__setattr__(self, "_context_param", fs.context_param)
        object.__setattr__(self, "_positional", fs.positional_only)
        object.__setattr__(self, "_is_async", fs.is_async)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, instance: object | None = None) -> Tool:
        """Build a tool from a ``@tool`` function (spec reused) or a plain one (bare ``@tool``).

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
        spec = get_tool_spec(fn)
        if spec is None:
            spec = _make_spec(
                fn,
                name=None,
                description=None,
                timeout=None,
                on_interrupt="finish",
                strict=False,
                localns=None,
            )
        fs = spec.function_schema
        assert fs is not None
        handler: Callable[..., Any] = spec.fn
        if fs.bound_param is not None:
            if instance is None:
                raise ToolDefinitionError(
                    spec.fn.__qualname__,
                    [f"{spec.name} is a method: pass instance= (or a bound method)"],
                )
            if fs.bound_param == "cls" and not isinstance(instance, type):
                instance = type(instance)
            handler = spec.fn.__get__(instance, type(instance))
        return cls(
            name=spec.name,
            description=spec.description,
            parameters=spec.parameters,
            timeout=spec.timeout,
            on_interrupt=spec.on_interrupt,
            spec=spec,
            handler=handler,
        )

    @property
    def schema(self) -> dict[str, Any]:
        """The Realtime tool definition (flat, as sent in ``session.update``)."""
        return _definition(self.name, self.description, self.parameters)

    async def invoke(self, arguments: str, context: ToolContext) -> ToolResult:
        """Validate ``arguments`` (a JSON string), run the handler, serialise its result.

        Never raises for the model's or the tool's mistakes; cancellation propagates.
        """
        try:
            args = self._validate(arguments or "{}", strict=self._strict)
        except ValidationError as exc:
            return self._invalid(exc, context)
        values: dict[str, Any] = args.__dict__
        ctx_name = self._context_param
        positional = self._positional
        if positional:
            kwargs = dict(values)
            if ctx_name is not None:
                kwargs[ctx_name] = context
            call_args = tuple(kwargs.pop(n) for n in positional)
        else:
            kwargs = {**values, ctx_name: context} if ctx_name is not None else values
            call_args = ()
        try:
            if self.timeout is None:
                value = await self._run(call_args, kwargs)
            else:
                with anyio.move_on_after(self.timeout) as scope:
                    value = await self._run(call_args, kwargs)
                if scope.cancelled_caught:
                    logger.warning(
                        "tool %s (call %s) timed out after %ss",
                        self.name,
                        context.call_id,
                        self.timeout,
                    )
                    return ToolResult(
                        output=f"error: {self.name} timed out after {self.timeout:g}s",
                        ok=False,
                        error="timeout",
                    )
        except ToolError as exc:
            logger.info("tool %s (call %s) reported: %s", self.name, context.call_id, exc.message)
            return ToolResult(output=exc.message, ok=False, error="tool_error")
        except Exception as exc:
            logger.exception("tool %s (call %s) raised", self.name, context.call_id)
            return ToolResult(
                output=f"error: {self.name} failed unexpectedly ({type(exc).__name__})",
                ok=False,
                error="exception",
            )
        if isinstance(value, str):
            return ToolResult(output=value, ok=True)
        try:
            return ToolResult(output=to_json(value).decode(), ok=True)
        except PydanticSerializationError:
            logger.exception(
                "tool %s (call %s) returned an unserialisable %s",
                self.name,
                context.call_id,
                type(value).__name__,
            )
            return ToolResult(
                output=f"error: {self.name} returned a result that cannot be sent "
                f"({type(value).__name__})",
                ok=False,
                error="exception",
            )

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._is_async:
            return await self.handler(*args, **kwargs)
        # abandon_on_cancel: a timeout or interruption returns at once; the thread finishes alone.
        return await anyio.to_thread.run_sync(
            functools.partial(self.handler, *args, **kwargs),
            abandon_on_cancel=True,
            limiter=_limiter(),
        )

    def _invalid(self, exc: ValidationError, context: ToolContext) -> ToolResult:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
            output = f"error: arguments for {self.name} are not valid JSON: {detail}"
            kind: ErrorKind = "invalid_json"
        else:
            parts = [_format_error(e) for e in errors[:_MAX_REPORTED_ERRORS]]
            if len(errors) > _MAX_REPORTED_ERRORS:
                parts.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more")
            output = f"error: invalid arguments for {self.name}: " + "; ".join(parts)
            kind = "invalid_arguments"
        output = " ".join(output.split())  # one line, whatever the messages contain
        logger.warning("tool %s (call %s): %s", self.name, context.call_id, output)
        return ToolResult(output=output, ok=False, error=kind)


def _format_error(error: Any) -> str:
    msg: str = error["msg"]
    msg = msg[:1].lower() + msg[1:]
    loc = ".".join(str(part) for part in error["loc"])
    return f"{loc}: {msg}" if loc else msg


class ToolRegistry:
    """An explicit, ordered collection of tools, looked up by name."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, tool: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a function/bound method, made into one); return the ``Tool``.

        Raises:
            ToolDefinitionError: If the name is taken and ``replace`` is False.
        """
        item = tool if isinstance(tool, Tool) else Tool.from_function(tool)
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

    def merge(self, other: ToolRegistry, *, replace: bool = False) -> ToolRegistry:
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
        """Run the tool the model called; an unknown name becomes an error output."""
        item = self._tools.get(name)
        if item is None:
            available = ", ".join(self._tools) or "none"
            output = f"error: unknown tool {name!r}; available tools: {available}"
            logger.warning("unknown tool %r called (call %s)", name, context.call_id)
            return ToolResult(output=output, ok=False, error="unknown_tool")
        return await item.invoke(arguments, context)
