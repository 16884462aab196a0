"""Function -> tool declaration: exact schemas, docstrings, and definition errors."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from rtagent._errors import ToolDefinitionError
from rtagent._invoke import ToolContext
from rtagent._schema import clean_json_schema, function_schema, is_valid_tool_name, parse_docstring
from rtagent._tools import Tool, get_tool, is_tool, tool

# --------------------------------------------------------------------------- types used below


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    """Shirt size."""

    S = 1
    M = 2


class Address(BaseModel):
    """A postal address."""

    street: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]
    title: str = "home"  # a *property* named title must survive title-stripping


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Movie(TypedDict):
    name: str
    year: int


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


def params(fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Shortcut: the ``parameters`` schema of ``fn``."""
    return function_schema(fn, context_type=ToolContext, **kwargs).parameters


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """Expected top-level parameters object."""
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


# --------------------------------------------------------------------------- basic types


def test_primitives() -> None:
    """str, int, float and bool map to their JSON types, all required."""

    def f(s: str, i: int, x: float, b: bool) -> None: ...

    assert params(f) == obj(
        {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
        },
        ["s", "i", "x", "b"],
    )


def test_no_parameters() -> None:
    """A function without parameters gets an empty closed object and no required list."""

    def f() -> None: ...

    assert params(f) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_literal_and_enum_become_enum() -> None:
    """Literal (one or many values) and Enum classes are written as ``enum``."""

    def f(mode: Literal["fast", "slow"], one: Literal["x"], color: Color, size: Size) -> None: ...

    assert params(f) == obj(
        {
            "mode": {"enum": ["fast", "slow"], "type": "string"},
            "one": {"enum": ["x"], "type": "string"},
            "color": {"enum": ["red", "blue"], "type": "string"},
            "size": {"description": "Shirt size.", "enum": [1, 2], "type": "integer"},
        },
        ["mode", "one", "color", "size"],
    )


def test_optional_and_unions() -> None:
    """Optional[X] and X | Y become anyOf; a None default is recorded."""

    def f(a: Optional[int], b: Union[int, str], c: str | None = None) -> None: ...  # noqa: UP045

    assert params(f) == obj(
        {
            "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "c": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        ["a", "b"],
    )


def test_lists_and_dicts() -> None:
    """list[X] has items; dict[str, X] keeps additionalProperties as the value schema."""

    def f(tags: list[str], scores: dict[str, float], free: dict[str, Any], raw: dict) -> None: ...  # type: ignore[type-arg]

    assert params(f) == obj(
        {
            "tags": {"items": {"type": "string"}, "type": "array"},
            "scores": {"additionalProperties": {"type": "number"}, "type": "object"},
            "free": {"additionalProperties": True, "type": "object"},
            "raw": {"additionalProperties": True, "type": "object"},
        },
        ["tags", "scores", "free", "raw"],
    )


def test_defaults_are_recorded_and_not_required() -> None:
    """Parameters with defaults are optional and carry their JSON default."""

    def f(
        city: str, days: int = 3, unit: Color = Color.RED, tags: list[str] | None = None
    ) -> None: ...

    assert params(f) == obj(
        {
            "city": {"type": "string"},
            "days": {"default": 3, "type": "integer"},
            "unit": {"default": "red", "enum": ["red", "blue"], "type": "string"},
            "tags": {
                "anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                "default": None,
            },
        },
        ["city"],
    )


def test_annotated_field_constraints_and_description() -> None:
    """Annotated[X, Field(...)] and ``= Field(...)`` defaults carry constraints and text."""

    def f(
        n: Annotated[int, Field(ge=1, le=10, description="How many.")],
        name: Annotated[str, Field(min_length=2, max_length=5)] = "abc",
        ratio: float = Field(0.5, gt=0, description="A ratio."),
        items: list[int] = Field(default_factory=list, max_length=3),  # noqa: B008
    ) -> None: ...

    assert params(f) == obj(
        {
            "n": {"description": "How many.", "maximum": 10, "minimum": 1, "type": "integer"},
            "name": {"default": "abc", "maxLength": 5, "minLength": 2, "type": "string"},
            "ratio": {
                "default": 0.5,
                "description": "A ratio.",
                "exclusiveMinimum": 0,
                "type": "number",
            },
            "items": {"items": {"type": "integer"}, "maxItems": 3, "type": "array"},
        },
        ["n"],
    )


# --------------------------------------------------------------------------- nested objects

ADDRESS = {
    "description": "A postal address.",
    "properties": {
        "street": {"type": "string"},
        "zip": {"pattern": r"^\d{5}$", "type": "string"},
        "title": {"default": "home", "type": "string"},
    },
    "required": ["street", "zip"],
    "type": "object",
    "additionalProperties": False,
}


def test_pydantic_model_is_inlined_without_titles() -> None:
    """A model argument is inlined (no $ref/$defs), closed, and stripped of titles."""

    def f(home: Address, work: Address | None = None) -> None: ...

    assert params(f) == obj(
        {"home": ADDRESS, "work": {"anyOf": [ADDRESS, {"type": "null"}], "default": None}},
        ["home"],
    )


def test_property_description_overrides_model_docstring() -> None:
    """A parameter's description replaces the model's own description in place."""

    def f(home: Address) -> None:
        """Ship it.

        Args:
            home: Where to ship.
        """

    assert params(f)["properties"]["home"] == {**ADDRESS, "description": "Where to ship."}


def test_dataclass_and_typeddict_arguments() -> None:
    """Dataclasses and TypedDicts become closed nested objects."""

    def f(at: Point, movie: Movie) -> None: ...

    assert params(f) == obj(
        {
            "at": {
                "properties": {"x": {"type": "number"}, "y": {"default": 0.0, "type": "number"}},
                "required": ["x"],
                "type": "object",
                "additionalProperties": False,
            },
            "movie": {
                "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
                "required": ["name", "year"],
                "type": "object",
                "additionalProperties": False,
            },
        },
        ["at", "movie"],
    )


def test_list_of_models() -> None:
    """Models inside containers are inlined too."""

    def f(stops: list[Point]) -> None: ...

    assert params(f)["properties"]["stops"] == {
        "items": {
            "properties": {"x": {"type": "number"}, "y": {"default": 0.0, "type": "number"}},
            "required": ["x"],
            "type": "object",
            "additionalProperties": False,
        },
        "type": "array",
    }


def test_recursive_model_keeps_defs() -> None:
    """A recursive model is inlined once and refers to itself through top-level $defs."""

    def f(tree: Node) -> None: ...

    node_body = {
        "properties": {
            "value": {"type": "integer"},
            "children": {"default": [], "items": {"$ref": "#/$defs/Node"}, "type": "array"},
        },
        "required": ["value"],
        "type": "object",
        "additionalProperties": False,
    }
    assert params(f) == {**obj({"tree": node_body}, ["tree"]), "$defs": {"Node": node_body}}


def test_discriminated_union_drops_openapi_discriminator() -> None:
    """Discriminated unions become a plain oneOf of inlined objects."""

    def f(pet: Annotated[Union[Cat, Dog], Field(discriminator="kind")]) -> None: ...

    assert params(f)["properties"]["pet"] == {
        "oneOf": [
            {
                "properties": {
                    "kind": {"enum": ["cat"], "type": "string"},
                    "lives": {"type": "integer"},
                },
                "required": ["kind", "lives"],
                "type": "object",
                "additionalProperties": False,
            },
            {
                "properties": {
                    "kind": {"enum": ["dog"], "type": "string"},
                    "good": {"type": "boolean"},
                },
                "required": ["kind", "good"],
                "type": "object",
                "additionalProperties": False,
            },
        ]
    }


def test_clean_json_schema_leaves_data_alone() -> None:
    """Only schema keywords are walked: 'title' inside a default value is kept."""
    raw = {
        "title": "X",
        "type": "object",
        "properties": {"meta": {"title": "Meta", "type": "object", "default": {"title": "t"}}},
    }
    assert clean_json_schema(raw) == obj({"meta": {"type": "object", "default": {"title": "t"}}})


# --------------------------------------------------------------------------- docstrings


def test_google_docstring() -> None:
    """Google style: summary + long text for the tool, Args for the properties."""

    def get_weather(city: str, days: int = 1) -> str:
        """Get the weather forecast.

        Uses the national service,
        cached for an hour.

        Args:
            city: The city name,
                for example Paris.
            days: Number of days.

        Returns:
            A forecast.
        """
        return ""

    fs = function_schema(get_weather)
    assert fs.description == (
        "Get the weather forecast.\n\nUses the national service,\ncached for an hour."
    )
    assert fs.parameters["properties"] == {
        "city": {"description": "The city name, for example Paris.", "type": "string"},
        "days": {"default": 1, "description": "Number of days.", "type": "integer"},
    }


def test_numpy_docstring() -> None:
    """NumPy style parameters are read."""

    def f(city: str, days: int) -> None:
        """Forecast.

        Parameters
        ----------
        city : str
            The city.
        days : int
            How many days.
        """

    fs = function_schema(f)
    assert fs.description == "Forecast."
    assert fs.parameters["properties"] == {
        "city": {"description": "The city.", "type": "string"},
        "days": {"description": "How many days.", "type": "integer"},
    }


def test_rest_docstring() -> None:
    """reST (Sphinx) style parameters are read."""

    def f(city: str, days: int) -> None:
        """Forecast.

        More text.

        :param city: The city.
        :param int days: How many days.
        :returns: Nothing.
        """

    fs = function_schema(f)
    assert fs.description == "Forecast.\n\nMore text."
    assert fs.parameters["properties"] == {
        "city": {"description": "The city.", "type": "string"},
        "days": {"description": "How many days.", "type": "integer"},
    }


def test_explicit_descriptions_win_over_docstring() -> None:
    """description= beats the docstring summary; Field(description=) beats Args text."""

    def f(
        city: Annotated[str, Field(description="Field text.")], n: int = Field(1, description="N.")
    ) -> None:
        """Doc summary.

        Args:
            city: Doc text.
            n: Doc n.
        """

    fs = function_schema(f, description="Explicit.")
    assert fs.description == "Explicit."
    assert fs.parameters["properties"] == {
        "city": {"description": "Field text.", "type": "string"},
        "n": {"default": 1, "description": "N.", "type": "integer"},
    }


def test_no_docstring_gives_empty_description() -> None:
    """Without a docstring the description is the empty string."""

    def f() -> None: ...

    assert function_schema(f).description == ""
    assert parse_docstring(None) == ("", {})


# --------------------------------------------------------------------------- @tool + schema


def test_tool_schema_is_the_flat_realtime_definition() -> None:
    """fn.schema is the flat GA tool definition, and the function is returned unchanged."""

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    decorated = tool(get_weather)
    assert decorated is get_weather
    assert get_weather("Paris") == "sunny in Paris"
    assert get_weather.schema == {  # type: ignore[attr-defined]
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }


def test_tool_schema_passes_the_ga_session_update_types() -> None:
    """A session.update carrying our definitions validates against the openai GA types."""
    try:
        from conformance import assert_client_event
    except ImportError:  # pragma: no cover - depends on how pytest was started
        from tests.conformance import assert_client_event

    @tool
    def ship(to: Address, at: Point, tags: list[str] | None = None) -> None:
        """Ship a parcel."""

    event = {"type": "session.update", "session": {"type": "realtime", "tools": [ship.schema]}}  # type: ignore[attr-defined]
    assert_client_event(event)


def test_tool_with_options() -> None:
    """@tool attaches a Tool whose options set name, description, timeout, on_interrupt, strict."""

    @tool(name="lookup-v2", description="Look it up.", timeout=2, on_interrupt="reply")
    async def lookup(q: str) -> str:
        """Ignored summary."""
        return q

    item = get_tool(lookup)
    assert isinstance(item, Tool)
    assert (item.name, item.description, item.timeout, item.on_interrupt) == (
        "lookup-v2",
        "Look it up.",
        2.0,
        "reply",
    )
    assert item.signature.is_async and not item.signature.is_method and not item.strict
    assert item.handler is lookup and item.is_bound
    assert lookup.schema["name"] == "lookup-v2"  # type: ignore[attr-defined]
    assert is_tool(lookup) and not is_tool(test_tool_with_options)


def test_context_parameter_is_not_in_schema() -> None:
    """A ToolContext parameter (plain or Optional) is recorded and hidden from the model."""

    def f(city: str, ctx: ToolContext) -> None: ...

    def g(ctx: ToolContext | None = None) -> None: ...

    fs = function_schema(f, context_type=ToolContext)
    assert fs.context_param == "ctx"
    assert fs.parameters == obj({"city": {"type": "string"}}, ["city"])
    assert function_schema(g, context_type=ToolContext).parameters == obj({})


class Shop:
    """Methods as tools."""

    @tool
    def price(self, item: str, ctx: ToolContext) -> str:
        """Price of an item."""
        return item

    @classmethod
    @tool
    def currency(cls) -> str:
        """The shop currency."""
        return "EUR"

    @staticmethod
    @tool
    def hours(day: str) -> str:
        """Opening hours."""
        return day


def test_methods_skip_self_and_cls() -> None:
    """self/cls never reach the schema, the attached tools stay unbound; static methods are plain."""
    price = get_tool(Shop.price)
    currency = get_tool(Shop.__dict__["currency"])
    hours = get_tool(Shop.hours)
    assert price is not None and currency is not None and hours is not None
    assert price.signature.is_method and currency.signature.is_method
    assert not hours.signature.is_method
    assert not price.is_bound and not currency.is_bound and hours.is_bound
    assert price.parameters == obj({"item": {"type": "string"}}, ["item"])
    assert currency.parameters == obj({})
    assert hours.parameters == obj({"day": {"type": "string"}}, ["day"])
    assert Shop().price("tea", ToolContext("c", "price")) == "tea"
    assert Shop.currency() == "EUR"


def test_parameter_named_like_basemodel_attribute() -> None:
    """Parameters such as ``json`` or ``schema`` are allowed."""

    def f(json: str, schema: int) -> None: ...

    fs = function_schema(f)
    assert list(fs.parameters["properties"]) == ["json", "schema"]
    assert fs.args_model.model_validate_json('{"json":"a","schema":1}').__dict__ == {
        "json": "a",
        "schema": 1,
    }


# --------------------------------------------------------------------------- strict mode


def test_strict_schema_and_validation() -> None:
    """strict: all required, defaults nullable (null = default), no coercion."""

    def f(city: str, days: int = 3, note: str | None = None) -> None: ...

    fs = function_schema(f, strict=True)
    assert fs.parameters == obj(
        {
            "city": {"type": "string"},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        ["city", "days", "note"],
    )
    model = fs.args_model
    ok = model.model_validate_json('{"city":"P","days":null,"note":null}', strict=True)
    assert ok.__dict__ == {"city": "P", "days": 3, "note": None}
    with pytest.raises(ValidationError):
        model.model_validate_json('{"city":"P","days":"4"}', strict=True)
    lax = function_schema(f).args_model.model_validate_json('{"city":"P","days":"4"}')
    assert lax.__dict__["days"] == 4


# --------------------------------------------------------------------------- definition errors


def test_every_problem_is_reported_at_once() -> None:
    """Unsupported parameters all appear in one ToolDefinitionError naming the function."""

    def bad(  # type: ignore[no-untyped-def]
        a,
        b: Any,
        c: object,
        d: Callable[[int], int],
        e: list[Callable[[], None]],
        _f: int,
        *args: int,
        **kwargs: str,
    ) -> None: ...

    with pytest.raises(ToolDefinitionError) as info:
        function_schema(bad)
    err = info.value
    assert err.function.endswith("test_every_problem_is_reported_at_once.<locals>.bad")
    assert err.problems == [
        "parameter a: missing type annotation",
        "parameter b: type Any gives the model no schema; use a concrete type",
        "parameter c: type object gives the model no schema; use a concrete type",
        "parameter d: callables cannot be tool arguments",
        "parameter e: callables cannot be tool arguments",
        "parameter _f: names starting with '_' cannot be tool arguments",
        "parameter *args: variadic parameters cannot be tool arguments",
        "parameter **kwargs: variadic parameters cannot be tool arguments",
    ]
    assert "parameter d" in str(err) and "bad" in str(err)


def test_bad_options_and_name_are_reported_with_parameter_problems() -> None:
    """Invalid name, timeout and on_interrupt are listed together with parameter problems."""
    with pytest.raises(ToolDefinitionError) as info:

        @tool(name="has space", timeout=0, on_interrupt="stop")  # type: ignore[arg-type]
        def f(x) -> None: ...  # type: ignore[no-untyped-def]

    assert info.value.problems == [
        "timeout must be a positive number of seconds or None, not 0",
        "on_interrupt must be one of cancel, finish, reply, not 'stop'",
        "tool name 'has space' must match ^[a-zA-Z0-9_-]{1,64}$",
        "parameter x: missing type annotation",
    ]


def test_unresolvable_hint_is_reported() -> None:
    """A string annotation naming nothing importable is a definition error for that parameter."""

    def f(a: int, b: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ToolDefinitionError) as info:
        function_schema(f)
    (problem,) = info.value.problems
    assert problem.startswith("parameter b: cannot resolve type hint 'NotDefinedAnywhere'")


def test_local_types_resolve_through_the_decorating_scope() -> None:
    """@tool resolves string annotations naming classes local to the decorating function."""

    class Local(BaseModel):
        v: int

    @tool
    def f(item: Local) -> None: ...

    assert f.schema["parameters"]["properties"]["item"]["properties"] == {"v": {"type": "integer"}}  # type: ignore[attr-defined]


def test_type_pydantic_cannot_describe() -> None:
    """A hint pydantic cannot build a schema for is reported against its parameter."""

    class Opaque:
        pass

    @dataclasses.dataclass
    class Holder:
        thing: Opaque

    def f(ok: int, h: Holder) -> None: ...

    with pytest.raises(ToolDefinitionError) as info:
        function_schema(f, localns={"Holder": Holder, "Opaque": Opaque})
    (problem,) = info.value.problems
    assert problem.startswith("parameter h: unsupported type")


def test_staticmethod_object_and_generators_are_rejected() -> None:
    """@tool above @staticmethod, and generator functions, are definition errors."""
    with pytest.raises(ToolDefinitionError, match="put @staticmethod above @tool"):
        tool(staticmethod(lambda: None))  # type: ignore[type-var]

    def gen() -> Any:
        yield 1

    with pytest.raises(ToolDefinitionError, match="generator"):
        function_schema(gen)


def test_tool_name_rule() -> None:
    """Names are 1-64 letters, digits, underscores or dashes."""
    assert is_valid_tool_name("get_weather-2")
    assert is_valid_tool_name("a" * 64)
    assert not is_valid_tool_name("a" * 65)
    assert not is_valid_tool_name("")
    assert not is_valid_tool_name("dotted.name")
