"""A calculator tool: exact arithmetic, so the model does not have to guess.

Expressions are parsed with ``ast`` and evaluated by walking a whitelist of node types:
numbers, + - * / // % **, unary signs, parentheses, a few ``math`` functions and the
constants pi, e and tau. Nothing else (names, attributes, calls of anything else, strings)
is accepted, and sizes are capped so an expression cannot exhaust memory or time.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from rtagent import ToolError, tool

MAX_LENGTH = 500
"""Longest expression accepted, in characters."""
MAX_EXPONENT = 10_000
"""Largest absolute exponent accepted by ``**``."""
MAX_RESULT_BITS = 10_000
"""Largest integer (in bits, about 3000 digits) any step may produce."""
MAX_FACTORIAL = 500

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if isinstance(n, float):
        if not n.is_integer():
            raise ToolError("factorial() needs a whole number")
        n = int(n)
    if n < 0 or n > MAX_FACTORIAL:
        raise ToolError(f"factorial() accepts 0 to {MAX_FACTORIAL}")
    return math.factorial(n)


def _log(x: Number, base: Number = math.e) -> float:
    return math.log(x, base)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "factorial": _factorial,
    "min": min,
    "max": max,
}


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression safely.

    Raises:
        ToolError: The expression is not plain arithmetic, or cannot be computed.
    """
    # Voice transcripts often spell operators the way people write them.
    text = expression.strip().replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/")
    if not text:
        raise ToolError("The expression is empty.")
    if len(text) > MAX_LENGTH:
        raise ToolError(f"The expression is longer than {MAX_LENGTH} characters.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"Cannot parse {expression!r} as arithmetic.") from None
    try:
        result = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("Division by zero.") from None
    except OverflowError:
        raise ToolError("The result is too large.") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"Math error: {exc}.") from None
    except RecursionError:
        raise ToolError("The expression is nested too deeply.") from None
    if isinstance(result, float):
        if not math.isfinite(result):
            raise ToolError("The result is not a finite number.")
        # 12 significant digits: 0.1 + 0.2 gives 0.3, not 0.30000000000000004.
        result = float(f"{result:.12g}")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"Only numbers are allowed, not {node.value!r}.")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"Unknown name {node.id!r}; constants are {', '.join(_CONSTANTS)}.")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ToolError(
                f"Unknown function {node.func.id!r}; available: {', '.join(sorted(_FUNCTIONS))}."
            )
        args = [_eval(a) for a in node.args]
        return _checked(fn(*args))
    raise ToolError(f"{type(node).__name__} is not allowed; use numbers, operators and functions.")


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"Exponents are limited to ±{MAX_EXPONENT}.")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_RESULT_BITS
    ):
        raise ToolError("The result is too large.")


def _checked(value: Any) -> Number:
    if isinstance(value, complex):
        raise ToolError("The result is a complex number; only real results are supported.")
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ToolError("The result is too large.")
    if not isinstance(value, (int, float)):
        raise ToolError("The result is not a number.")
    return value


@tool
def calculate(expression: str) -> Number:
    """Evaluate an arithmetic expression exactly; use it instead of mental arithmetic.

    Args:
        expression: Arithmetic such as "(12.5 * 4) / 3", "2 ** 10", "sqrt(2)" or
            "17 % 5". Operators: + - * / // % **; functions: sqrt, cbrt, abs, round, floor,
            ceil, exp, log (natural, or log(x, base)), log10, log2, sin, cos, tan (radians),
            asin, acos, atan, degrees, radians, hypot, factorial, min, max; constants: pi,
            e, tau.
    """
    return evaluate(expression)
