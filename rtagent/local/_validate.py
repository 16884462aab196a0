"""Strict validation of client JSON with OpenAI-style error bodies.

The real server answers a bad field with an ``error`` event whose ``code`` is
``unknown_parameter``, ``missing_required_parameter``, ``invalid_type`` or
``invalid_value`` and whose ``param`` names the field as a path such as
``session.tools[0].name``. A tiny declarative spec language reproduces that
exactly (pydantic's error locations include union tags, which would leak into
``param``).

The real server reads ``null`` in an optional field that cannot be ``null`` as "not
set" (livekit-plugins-openai sends ``"instructions": null`` in every
``response.create``); :func:`without_unset_nulls` drops such fields before checking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANY",
    "BOOL",
    "INT",
    "NUMBER",
    "STR",
    "AnyOf",
    "Dict",
    "Int",
    "Invalid",
    "List",
    "Lit",
    "Nullable",
    "Number",
    "Obj",
    "Spec",
    "Str",
    "Tagged",
    "check",
    "join_path",
    "without_unset_nulls",
]


class Invalid(Exception):
    """A value failed its spec; carries the OpenAI error fields."""

    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def join_path(path: Sequence[str | int]) -> str:
    """Render ``("session", "tools", 0, "name")`` as ``session.tools[0].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _type_error(path: Sequence[str | int], expected: str, value: Any) -> Invalid:
    p = join_path(path)
    return Invalid(
        "invalid_type",
        f"Invalid type for '{p}': expected {expected}, but got {_kind(value)} instead.",
        p or None,
    )


class Spec:
    """Base class: ``check(value, path)`` raises Invalid or returns None."""

    expected = "a value"

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        raise NotImplementedError


class _Any(Spec):
    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        return None


class _Str(Spec):
    expected = "a string"

    def __init__(self, max_length: int | None = None) -> None:
        self.max_length = max_length

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, str):
            raise _type_error(path, self.expected, value)
        if self.max_length is not None and len(value) > self.max_length:
            p = join_path(path)
            raise Invalid(
                "string_above_max_length",
                f"Invalid '{p}': string too long. Expected a string with maximum length "
                f"{self.max_length}, but got a string with length {len(value)} instead.",
                p,
            )


class _Bool(Spec):
    expected = "a boolean"

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, bool):
            raise _type_error(path, self.expected, value)


@dataclass
class Number(Spec):
    """A JSON number (ints accepted), optionally bounded."""

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "an integer" if self.integer else "a number"

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        ok = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise _type_error(path, self.expected, value)
        p = join_path(path)
        noun = "integer" if self.integer else "decimal"
        if self.minimum is not None and value < self.minimum:
            raise Invalid(
                f"{noun}_below_min_value",
                f"Invalid '{p}': {noun} below minimum value. Expected a value >= "
                f"{self.minimum:g}, but got {value} instead.",
                p,
            )
        if self.maximum is not None and value > self.maximum:
            raise Invalid(
                f"{noun}_above_max_value",
                f"Invalid '{p}': {noun} above maximum value. Expected a value <= "
                f"{self.maximum:g}, but got {value} instead.",
                p,
            )


def Int(minimum: int | None = None, maximum: int | None = None) -> Number:
    """An integer spec."""
    return Number(minimum, maximum, integer=True)


class Lit(Spec):
    """One of a fixed set of strings."""

    def __init__(self, *values: str) -> None:
        self.values = values
        self.expected = "a string"

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
        if value not in self.values:
            p = join_path(path)
            supported = ", ".join(f"'{v}'" for v in self.values)
            raise Invalid(
                "invalid_value",
                f"Invalid value: '{value}'. Supported values are: {supported}.",
                p,
            )


class Nullable(Spec):
    """``null`` or the inner spec."""

    def __init__(self, inner: Spec) -> None:
        self.inner = inner
        self.expected = inner.expected

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if value is not None:
            self.inner.check(value, path)


class AnyOf(Spec):
    """The first alternative whose JSON kind matches decides (like OpenAI's oneOf errors)."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        self.expected = " or ".join(o.expected for o in options)

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        errors: list[Invalid] = []
        for option in self.options:
            try:
                option.check(value, path)
                return
            except Invalid as exc:
                errors.append(exc)
        here = join_path(path) or None
        for err in errors:
            # An alternative of the right JSON kind failed deeper or on its value: report that.
            if err.code != "invalid_type" or err.param != here:
                raise err
        raise _type_error(path, self.expected, value)


class List(Spec):
    """A JSON array of ``item``."""

    expected = "an array"

    def __init__(self, item: Spec, *, min_items: int = 0, max_items: int | None = None) -> None:
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, list):
            raise _type_error(path, self.expected, value)
        p = join_path(path)
        if len(value) < self.min_items:
            raise Invalid(
                "array_below_min_length",
                f"Invalid '{p}': empty array. Expected an array with minimum length "
                f"{self.min_items}, but got an array with length {len(value)} instead.",
                p,
            )
        if self.max_items is not None and len(value) > self.max_items:
            raise Invalid(
                "array_above_max_length",
                f"Invalid '{p}': array too long. Expected an array with maximum length "
                f"{self.max_items}, but got an array with length {len(value)} instead.",
                p,
            )
        for i, item in enumerate(value):
            self.item.check(item, (*path, i))


class Dict(Spec):
    """A JSON object with arbitrary keys and ``values`` values."""

    expected = "an object"

    def __init__(self, values: Spec | None = None, *, max_items: int | None = None) -> None:
        self.values = values or ANY
        self.max_items = max_items

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, dict):
            raise _type_error(path, self.expected, value)
        if self.max_items is not None and len(value) > self.max_items:
            p = join_path(path)
            raise Invalid(
                "object_above_max_properties",
                f"Invalid '{p}': object too large. Expected an object with at most "
                f"{self.max_items} properties, but got {len(value)} instead.",
                p,
            )
        for k, v in value.items():
            self.values.check(v, (*path, str(k)))


@dataclass
class Obj(Spec):
    """A JSON object with known fields; unknown fields are ``unknown_parameter``."""

    fields: Mapping[str, Spec]
    required: Sequence[str] = ()
    extra: Callable[[dict[str, Any], tuple[str | int, ...]], None] | None = None
    expected: str = field(default="an object")

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, dict):
            raise _type_error(path, self.expected, value)
        for key in value:
            if key not in self.fields:
                p = join_path((*path, key))
                raise Invalid("unknown_parameter", f"Unknown parameter: '{p}'.", p)
        for key in self.required:
            if key not in value:
                p = join_path((*path, key))
                raise Invalid(
                    "missing_required_parameter", f"Missing required parameter: '{p}'.", p
                )
        for key, v in value.items():
            self.fields[key].check(v, (*path, key))
        if self.extra is not None:
            self.extra(value, path)


class Tagged(Spec):
    """An object discriminated by its ``type`` (or another) field."""

    expected = "an object"

    def __init__(
        self, variants: Mapping[str, Spec], *, tag: str = "type", required: bool = True
    ) -> None:
        self.variants = variants
        self.tag = tag
        self.required = required

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, dict):
            raise _type_error(path, self.expected, value)
        if self.tag not in value:
            p = join_path((*path, self.tag))
            raise Invalid("missing_required_parameter", f"Missing required parameter: '{p}'.", p)
        Lit(*self.variants).check(value[self.tag], (*path, self.tag))
        self.variants[value[self.tag]].check(value, path)


ANY: Spec = _Any()
STR: Spec = _Str()
BOOL: Spec = _Bool()
INT: Spec = Int()
NUMBER: Spec = Number()


def Str(max_length: int | None = None) -> Spec:
    """A string spec, optionally length-bounded."""
    return _Str(max_length)


def check(spec: Spec, value: Any, path: tuple[str | int, ...] = ()) -> None:
    """Validate ``value`` against ``spec``; raises Invalid naming the offending field."""
    spec.check(value, path)


def without_unset_nulls(spec: Spec, value: Any) -> Any:
    """``value`` without the optional fields that are ``null`` where ``spec`` allows no null.

    A ``null`` where the spec is :class:`Nullable` means something (``"turn_detection":
    null`` turns VAD off) and stays; a ``null`` in a required field stays too, so that it
    is reported as the wrong type. Nested objects, tagged unions and arrays are cleaned
    the same way; ``value`` itself is never changed.
    """
    if isinstance(spec, Nullable):
        return None if value is None else without_unset_nulls(spec.inner, value)
    if isinstance(spec, Tagged) and isinstance(value, dict):
        tag = value.get(spec.tag)
        variant = spec.variants.get(tag) if isinstance(tag, str) else None
        return without_unset_nulls(variant, value) if variant is not None else value
    if isinstance(spec, List) and isinstance(value, list):
        return [without_unset_nulls(spec.item, item) for item in value]
    if isinstance(spec, Obj) and isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            field_spec = spec.fields.get(key)
            if field_spec is None:
                cleaned[key] = item  # reported as unknown_parameter by check()
            elif item is None and key not in spec.required and not isinstance(field_spec, Nullable):
                continue
            else:
                cleaned[key] = without_unset_nulls(field_spec, item)
        return cleaned
    return value
