"""The one boundary where a tool call becomes ``function_call_output`` text.

``invoke_tool`` validates the model's arguments, runs the tool and serialises its result;
``unknown_tool`` answers a call to a name the agent does not have. Everything that can go
wrong on the way becomes a ``ToolResult`` the model can act on, never an exception:

=========================  ==============================================  ====================
what happened              output                                          ``ToolResult.error``
=========================  ==============================================  ====================
arguments are not JSON     ``error: arguments for T are not valid JSON…``  ``"invalid_json"``
arguments do not validate  one line, at most five errors listed            ``"invalid_arguments"``
the tool raised ToolError  its message, verbatim                           ``"tool_error"``
the tool raised anything   ``error: T failed unexpectedly (KeyError)``,    ``"exception"``
                           traceback logged
``tool.timeout`` passed    ``error: T timed out after 5s``                 ``"timeout"``
unserialisable result      ``error: T returned a result that cannot…``     ``"exception"``
no tool by that name       ``error: unknown tool 'T'; available tools…``   ``"unknown_tool"``
=========================  ==============================================  ====================

Cancellation from outside (an interruption, the session ending) always propagates.

This module sits below ``rtagent._tools`` and reads a ``Tool`` only through its public
fields, so it never imports ``_tools`` at run time.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.lowlevel
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from ._errors import ToolDefinitionError, ToolError
from ._threads import run_in_daemon_thread

if TYPE_CHECKING:
    from ._tools import Tool

__all__ = [
    "THREAD_LIMIT",
    "ErrorKind",
    "ToolContext",
    "ToolResult",
    "invoke_tool",
    "unknown_tool",
]

logger = logging.getLogger("rtagent.tools")

ErrorKind = Literal[
    "invalid_json",
    "invalid_arguments",
    "exception",
    "timeout",
    "tool_error",
    "unknown_tool",
    "cancelled",
    "not_approved",
]
"""Why a call failed; ``ToolResult.error`` holds one of these (None on success)."""

THREAD_LIMIT = 16
"""Worker threads that sync (``def``) tools share per event loop.

A burst of slow sync calls then cannot exhaust anyio's default thread pool, which other
code relies on.
"""
_thread_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "rtagent_tool_thread_limiter"
)
_MAX_REPORTED_ERRORS = 5


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
    reporter: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def progress(self, text: str) -> None:
        """Tell the user how the call is going ("checking the calendar..."), so a slow
        tool leaves no dead air. Works from ``async def`` and plain ``def`` tools alike,
        returns at once; without a live session it only logs."""
        logger.info("tool %s (call %s): %s", self.tool_name, self.call_id, text)
        if self.reporter is not None:
            self.reporter(text)


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


async def invoke_tool(tool: Tool, arguments: str, context: ToolContext) -> ToolResult:
    """Run one call of ``tool`` and turn whatever happens into a ``ToolResult``.

    ``arguments`` (the JSON text of ``response.function_call_arguments.done``; empty means
    ``{}``) is validated against the tool's argument model, ``context`` is passed to the
    parameter annotated ``ToolContext`` if there is one, and the result is serialised:

    * a ``str`` is sent as it is;
    * anything else goes through ``pydantic_core.to_json`` with ``inf_nan_mode="null"``, so
      models, dataclasses and containers become JSON and ``nan``/``inf`` become ``null``
      (the model always gets valid JSON);
    * text that holds lone surrogates (``"\\ud800"``, typically from decoding bytes with
      ``surrogateescape`` or slicing UTF-16 data) cannot be encoded as UTF-8, and so cannot
      be sent. It is repaired rather than refused: a surrogate pair becomes its character,
      each lone surrogate becomes U+FFFD (``"�"``), and a warning is logged. The model still
      gets the rest of the output, and the session never fails over one bad character.

    ``async def`` tools run on the event loop; plain ``def`` tools run in a daemon worker
    thread (at most ``THREAD_LIMIT`` per event loop), abandoned (left to finish alone, never
    holding the process open at exit) when the call times out or is cancelled, unless they
    were declared ``inline`` (quick and non-blocking), which run on the event loop.

    Args:
        tool: The tool to run; a method tool must be bound (``Tool.bind``).
        arguments: The arguments as the model sent them, a JSON object in text.
        context: Information about this call, for the tool and for log messages.

    Returns:
        The output for the ``function_call_output`` item; see the module docstring for
        every failure.

    Raises:
        ToolDefinitionError: ``tool`` is a method tool that was never bound to an instance.
    """
    signature = tool.signature
    try:
        args = signature.validate_json(arguments or "{}", strict=True if tool.strict else None)
    except ValidationError as exc:
        return _invalid(tool.name, exc, context)
    values: dict[str, Any] = args.__dict__  # field names are the parameter names
    ctx_name = signature.context_param
    if signature.positional_only:
        kwargs = dict(values)
        if ctx_name is not None:
            kwargs[ctx_name] = context
        call_args = tuple(kwargs.pop(n) for n in signature.positional_only)
    else:
        kwargs = {**values, ctx_name: context} if ctx_name is not None else values
        call_args = ()
    try:
        if tool.inline:
            # Declared quick and non-blocking (@tool(inline=True)): called right here.
            value = tool.handler(*call_args, **kwargs)
        else:
            if signature.is_async:
                call = tool.handler(*call_args, **kwargs)
            else:
                call = _in_thread(functools.partial(tool.handler, *call_args, **kwargs))
            if tool.timeout is None:
                value = await call
            else:
                with anyio.move_on_after(tool.timeout) as scope:
                    value = await call
                if scope.cancelled_caught:
                    logger.warning(
                        "tool %s (call %s) timed out after %ss",
                        tool.name, context.call_id, tool.timeout,
                    )
                    return _failure(
                        f"error: {tool.name} timed out after {tool.timeout:g}s", "timeout"
                    )
    except ToolError as exc:
        logger.info("tool %s (call %s) reported: %s", tool.name, context.call_id, exc.message)
        return _failure(_text(str(exc.message), tool.name, context), "tool_error")
    except Exception as exc:
        if not tool.is_bound:  # checked only here: keeps the hot path free of it
            raise ToolDefinitionError(
                tool.name, [f"{tool.name} is a method: bind it first (tool.bind(instance))"]
            ) from exc
        logger.exception("tool %s (call %s) raised", tool.name, context.call_id)
        return _failure(
            f"error: {tool.name} failed unexpectedly ({type(exc).__name__})", "exception"
        )
    except BaseException as exc:
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            raise  # the runner tells an interruption from a tool cancelling itself
        # SystemExit, KeyboardInterrupt or another BaseException raised by the tool: a tool
        # failure like any other, the same on asyncio and trio, never the session's end.
        logger.error("tool %s (call %s) raised %r", tool.name, context.call_id, exc, exc_info=exc)
        return _failure(
            f"error: {tool.name} failed unexpectedly ({type(exc).__name__})", "exception"
        )
    if isinstance(value, str):
        if not value.isascii():
            value = _text(value, tool.name, context)
        return ToolResult(output=value, ok=True)
    return _serialise(value, tool.name, context)


def unknown_tool(name: str, available: Iterable[str], context: ToolContext) -> ToolResult:
    """The output for a call to a tool the agent does not have (a model mistake).

    Args:
        name: The name the model called.
        available: The names of the tools the model may call.
        context: The call, for the log message.
    """
    listed = ", ".join(available) or "none"
    logger.warning("unknown tool %r called (call %s)", name, context.call_id)
    output = f"error: unknown tool {name!r}; available tools: {listed}"
    return _failure(_text(output, name, context), "unknown_tool")


# -- helpers --------------------------------------------------------------------------------


def _limiter() -> anyio.CapacityLimiter:
    try:
        return _thread_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(THREAD_LIMIT)
        _thread_limiter.set(limiter)
        return limiter


async def _in_thread(call: Callable[[], Any]) -> Any:
    # A timeout or interruption returns at once; the daemon thread finishes alone.
    await anyio.lowlevel.checkpoint_if_cancelled()
    limiter = _limiter()
    try:
        # A free slot is taken without the extra event-loop pass of ``async with limiter``
        # (one pass is a trip to the back of a long queue under load); a full one waits.
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()
    try:
        return await run_in_daemon_thread(call)
    finally:
        limiter.release()


def _failure(output: str, kind: ErrorKind) -> ToolResult:
    return ToolResult(output=output, ok=False, error=kind)


def _invalid(name: str, exc: ValidationError, context: ToolContext) -> ToolResult:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        detail = errors[0]["msg"].removeprefix("Invalid JSON: ")
        output = f"error: arguments for {name} are not valid JSON: {detail}"
        kind: ErrorKind = "invalid_json"
    else:
        parts = [_format_error(e) for e in errors[:_MAX_REPORTED_ERRORS]]
        if len(errors) > _MAX_REPORTED_ERRORS:
            parts.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more")
        output = f"error: invalid arguments for {name}: " + "; ".join(parts)
        kind = "invalid_arguments"
    output = _text(" ".join(output.split()), name, context)  # one line, whatever the messages
    logger.warning("tool %s (call %s): %s", name, context.call_id, output)
    return _failure(output, kind)


def _format_error(error: Any) -> str:
    msg: str = error["msg"]
    msg = msg[:1].lower() + msg[1:]
    loc = ".".join(str(part) for part in error["loc"])
    return f"{loc}: {msg}" if loc else msg


def _serialise(value: Any, name: str, context: ToolContext) -> ToolResult:
    try:
        return ToolResult(output=to_json(value, inf_nan_mode="null").decode(), ok=True)
    except PydanticSerializationError:
        pass
    # Either a type JSON cannot express, or text with lone surrogates somewhere inside:
    # rebuild it as plain Python values, repairing the text, and try once more.
    repairs: list[str] = []
    try:
        output = to_json(_plain(value, repairs), inf_nan_mode="null").decode()
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        # ValueError covers UnicodeError; RecursionError a structure that contains itself.
        logger.exception(
            "tool %s (call %s) returned an unserialisable %s",
            name,
            context.call_id,
            type(value).__name__,
        )
        return _failure(
            f"error: {name} returned a result that cannot be sent ({type(value).__name__})",
            "exception",
        )
    if repairs:
        _warn_repaired(name, context)
    return ToolResult(output=output, ok=True)


def _text(text: str, name: str, context: ToolContext) -> str:
    """``text``, with lone surrogates repaired (see ``invoke_tool``); cheap when ASCII."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        _warn_repaired(name, context)
        return _repair(text)
    return text


def _repair(text: str) -> str:
    # UTF-16 round trip: valid surrogate pairs join into their character, and only the
    # truly lone ones are replaced (one U+FFFD each).
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _plain(node: Any, repairs: list[str]) -> Any:
    """``node`` as JSON-ready Python values, each broken string repaired (and noted in ``repairs``).

    Containers and dataclasses are walked here, because pydantic refuses a dict key with a
    lone surrogate; anything else is converted by pydantic first, then walked.
    """
    if isinstance(node, str):
        if node.isascii():
            return node
        try:
            node.encode()
        except UnicodeEncodeError:
            repairs.append(node)
            return _repair(node)
        return node
    if isinstance(node, dict):
        return {
            _plain(k, repairs) if isinstance(k, str) else k: _plain(v, repairs)
            for k, v in node.items()
        }
    if isinstance(node, (list, tuple, set, frozenset)):
        return [_plain(item, repairs) for item in node]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return {f.name: _plain(getattr(node, f.name), repairs) for f in dataclasses.fields(node)}
    if node is None or isinstance(node, (bool, int, float)):
        return node
    return _plain(to_jsonable_python(node, inf_nan_mode="null"), repairs)


def _warn_repaired(name: str, context: ToolContext) -> None:
    logger.warning(
        "tool %s (call %s): output had lone surrogates (invalid Unicode); "
        "replaced them with U+FFFD",
        name,
        context.call_id,
    )
