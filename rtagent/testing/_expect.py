"""Assertions on a turn, with failure messages that say what happened instead.

``result.expect`` is an :class:`Expect`. Each method returns what it found (the matching
call, the answer) so a test can go on asserting on it, or raises
:class:`ExpectationFailed`, an ``AssertionError`` whose message states the expectation,
the nearest miss, and the whole turn::

    expected a call to get_weather(port='Tortuga'), but none matched:
      get_weather(port='Paris'): port: expected 'Tortuga', got 'Paris'

    what happened in the turn:
      user:      'weather in Tortuga?'
      tool call: get_weather(port='Paris') -> 'sunny in Paris' (ok)
      answer:    'Here is what I found: get weather returned sunny in Paris.'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from ._result import ToolCallRecord, TurnResult, format_arguments

__all__ = ["Expect", "ExpectationFailed"]

_MISSING: Any = object()


class ExpectationFailed(AssertionError):
    """An expectation on a turn did not hold; the message lists what happened instead."""


class Expect:
    """Assertions on one :class:`TurnResult` (use ``result.expect``).

    Args:
        result: the turn to check.
    """

    def __init__(self, result: TurnResult) -> None:
        self._result = result

    def tool_call(
        self, name: str, arguments: Mapping[str, Any] | None = None, /, **expected: Any
    ) -> ToolCallRecord:
        """Assert the turn called ``name`` with at least these arguments; return that call.

        Arguments not named are not checked. Values compare with ``==``, so
        ``unittest.mock.ANY`` matches anything. Pass a mapping when an argument's name
        clashes with a Python keyword or with ``name``.

        Args:
            name: the tool's name.
            arguments: expected arguments, as a mapping.
            **expected: expected arguments, as keywords.

        Raises:
            ExpectationFailed: no call of the turn matches.
        """
        __tracebackhide__ = True
        wanted = {**(arguments or {}), **expected}
        calls = self._result.tool_calls
        for call in calls:
            if call.name == name and not _mismatches(call, wanted):
                return call
        want = f"{name}({', '.join(f'{k}={v!r}' for k, v in wanted.items())})" if wanted else name
        near = [
            f"  {name}({format_arguments(call)}): {'; '.join(_mismatches(call, wanted))}"
            for call in calls
            if call.name == name
        ]
        if near:
            self._fail(f"expected a call to {want}, but none matched:\n" + "\n".join(near))
        if calls:
            names = ", ".join(sorted({call.name for call in calls}))
            self._fail(f"expected a call to {want}, but {name} was not called (called: {names})")
        self._fail(f"expected a call to {want}, but the turn made no tool calls")

    def tool_calls(self, *names: str) -> tuple[ToolCallRecord, ...]:
        """Assert the turn called exactly these tools, in this order; return the calls.

        ``expect.tool_calls()`` with no names asserts that no tool was called.

        Raises:
            ExpectationFailed: the names or their order differ.
        """
        __tracebackhide__ = True
        calls = self._result.tool_calls
        actual = tuple(call.name for call in calls)
        if actual != names:
            want = ", ".join(names) if names else "no tool calls"
            got = ", ".join(actual) if actual else "none"
            self._fail(f"expected tool calls: {want}; got: {got}")
        return calls

    def no_tool_calls(self) -> None:
        """Assert the turn called no tool.

        Raises:
            ExpectationFailed: a tool was called.
        """
        __tracebackhide__ = True
        self.tool_calls()

    def output(
        self,
        contains: str | None = None,
        *,
        equals: str | None = None,
        matches: str | re.Pattern[str] | None = None,
        ignore_case: bool = False,
    ) -> str:
        """Assert on the answer's text; return it. With no condition, it must not be empty.

        Args:
            contains: a substring the answer must contain.
            equals: the exact answer.
            matches: a regular expression that must match somewhere (``re.search``).
            ignore_case: compare ``contains``, ``equals`` and a string ``matches``
                without regard to case.

        Raises:
            ExpectationFailed: a condition does not hold.
        """
        __tracebackhide__ = True
        text = self._result.text

        def fold(s: str) -> str:
            return s.casefold() if ignore_case else s

        problems = []
        if contains is not None and fold(contains) not in fold(text):
            problems.append(f"to contain {contains!r}")
        if equals is not None and fold(equals) != fold(text):
            problems.append(f"to equal {equals!r}")
        if matches is not None:
            pattern = matches
            if isinstance(pattern, str):
                pattern = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
            if pattern.search(text) is None:
                problems.append(f"to match /{pattern.pattern}/")
        if contains is None and equals is None and matches is None and not text:
            problems.append("to have some text")
        if problems:
            self._fail(f"expected the answer {' and '.join(problems)}, but it was {text!r}")
        return text

    def _fail(self, message: str) -> NoReturn:
        __tracebackhide__ = True
        raise ExpectationFailed(f"{message}\n\nwhat happened in the turn:\n{self._result.describe()}")


def _mismatches(call: ToolCallRecord, wanted: Mapping[str, Any]) -> list[str]:
    """How the call's arguments differ from ``wanted`` (empty when they match)."""
    out = []
    for key, value in wanted.items():
        actual = call.arguments.get(key, _MISSING)
        if actual is _MISSING:
            out.append(f"{key}: missing, expected {value!r}")
        elif actual != value:
            out.append(f"{key}: expected {value!r}, got {actual!r}")
    return out
