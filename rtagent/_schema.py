"""Turn a Python function into a tool declaration: name, description, JSON schema, argument model.

Pure and I/O-free: everything here runs once, when a tool is declared, so that calling a
tool later costs one ``model_validate_json`` plus the call itself.

How the pieces are derived:

* Parameters come from the signature and type hints. A ``pydantic`` model is built with
  ``create_model`` (one field per parameter, ``extra="forbid"``) and its public
  ``model_json_schema()`` is post-processed into a self-contained schema: ``$ref``\\ s are
  inlined, ``title`` and ``discriminator`` keys dropped, ``const`` written as a one-item
  ``enum``, and every object with ``properties`` gets ``additionalProperties: false``
  unless it says otherwise (``dict[str, X]`` keeps ``additionalProperties: <schema of X>``).
* Recursive models cannot be inlined. Their definitions stay under a top-level ``$defs``
  and are referenced with ``{"$ref": "#/$defs/Name"}``, which is valid JSON Schema; every
  non-recursive model is still inlined.
* Descriptions come from the docstring (Google, NumPy, reST or Epydoc, detected by
  docstring-parser): summary plus long description for the tool, each parameter's text
  for its property. An explicit ``description=`` or ``Field(description=...)`` wins.
* A parameter annotated with the context type (``ToolContext``) is injected at call time
  and left out of the schema. For a method (defined in a class body, first parameter
  ``self`` or ``cls``) that first parameter is left out too.

Rejected at declaration time, all problems listed at once in one ``ToolDefinitionError``:
``*args``/``**kwargs``, a missing annotation (the model needs a type to fill in), a bare
``Any`` or ``object`` (no schema to show the model; ``Any`` *inside* a container such as
``dict[str, Any]`` is allowed), callables anywhere in a hint, names starting with ``_``,
hints that cannot be resolved, and types pydantic cannot describe.

``strict=True`` means: arguments are validated in pydantic strict mode (no coercion such
as ``"3"`` -> ``3``), and the schema follows OpenAI's strict-schema rules: every property
is listed in ``required``, ``default`` keys are dropped, and a parameter with a default
becomes nullable, where ``null`` means "use the default".
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.fields import FieldInfo

from ._errors import ToolDefinitionError

__all__ = [
    "TOOL_NAME_PATTERN",
    "FunctionSchema",
    "clean_json_schema",
    "function_schema",
    "is_valid_tool_name",
    "parse_docstring",
]

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
_NAME_RE = re.compile(TOOL_NAME_PATTERN)

_BOUND_PARAMS = ("self", "cls")
# JSON Schema keywords whose value is a schema, a list of schemas, or a name -> schema map.
_SCHEMA_KEYS = frozenset(
    {"items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else"}
)
_SCHEMA_LIST_KEYS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_DROPPED_KEYS = frozenset({"title", "discriminator"})
_DEFS_PREFIX = "#/$defs/"


@dataclass(frozen=True, slots=True)
class FunctionSchema:
    """Everything needed to describe a function to the model and to call it.

    Attributes:
        name: Tool name sent to the model.
        description: Tool description (may be empty).
        parameters: JSON schema of the arguments object.
        args_model: Pydantic model validating the arguments; its fields are named after the
            function's parameters, so ``instance.__dict__`` is the keyword arguments.
        context_param: Name of the parameter receiving the call context, if any.
        bound_param: ``"self"``/``"cls"`` when the function is a method, else None.
        is_async: Whether calling the function returns a coroutine.
        strict: Whether arguments are validated in pydantic strict mode.
        positional_only: Positional-only parameters (context included), in order.
        validate_json: ``args_model.model_validate_json``, looked up once (a class method
            lookup on a pydantic model costs more than a small call's validation).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    args_model: type[BaseModel]
    context_param: str | None
    bound_param: str | None
    is_async: bool
    strict: bool
    positional_only: tuple[str, ...] = ()
    validate_json: Callable[..., BaseModel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "validate_json", self.args_model.model_validate_json)

    @property
    def is_method(self) -> bool:
        """Whether the function must be bound to an instance (or class) before calling."""
        return self.bound_param is not None


def is_valid_tool_name(name: object) -> bool:
    """Tell whether ``name`` is accepted by the Realtime API as a function name."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into a description and per-parameter texts.

    Returns:
        ``(description, {param: text})``. The description is the summary and the long
        description separated by a blank line; parameter texts are folded onto one line.
    """
    if not doc or not doc.strip():
        return "", {}
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        return inspect.cleandoc(doc), {}
    parts = [p.strip() for p in (parsed.short_description, parsed.long_description) if p]
    params = {p.arg_name: " ".join(p.description.split()) for p in parsed.params if p.description}
    return "\n\n".join(p for p in parts if p), params


def function_schema(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    context_type: type | None = None,
    localns: Mapping[str, Any] | None = None,
    extra_problems: typing.Sequence[str] = (),
) -> FunctionSchema:
    """Build the tool declaration of ``fn``.

    Args:
        fn: A plain function (methods are recognised from the class body, unbound).
        name: Tool name; defaults to ``fn.__name__``.
        description: Tool description; defaults to the docstring.
        strict: See the module docstring.
        context_type: Annotation marking the injected context parameter.
        localns: Extra names for resolving string annotations (the decorating scope).
        extra_problems: Problems the caller found (bad options), reported with ours.

    Raises:
        ToolDefinitionError: Listing every problem found in the function.
    """
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    label = f"{getattr(fn, '__module__', None) or '?'}.{qualname}"
    problems: list[str] = list(extra_problems)

    if not callable(fn) or isinstance(fn, type):
        raise ToolDefinitionError(label, ["a tool must be a function"])
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise ToolDefinitionError(label, ["generator functions cannot be tools"])
    tool_name = name if name is not None else getattr(fn, "__name__", "")
    if not is_valid_tool_name(tool_name):
        problems.append(f"tool name {tool_name!r} must match {TOOL_NAME_PATTERN}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(label, [f"cannot read the signature: {exc}"]) from exc

    params = list(signature.parameters.values())
    bound_param: str | None = None
    if params and params[0].name in _BOUND_PARAMS and _defined_in_class(qualname):
        bound_param = params[0].name
        params = params[1:]

    doc_description, doc_params = parse_docstring(inspect.getdoc(fn))
    hints, unresolved = _resolve_hints(fn, params, localns)

    fields: dict[str, Any] = {}
    nullable_defaults: list[str] = []
    context_param: str | None = None
    positional_only: list[str] = []
    for param in params:
        pname = param.name
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            problems.append(
                f"parameter {star}{pname}: variadic parameters cannot be tool arguments"
            )
            continue
        if param.kind is param.POSITIONAL_ONLY:
            positional_only.append(pname)
        hint = hints.get(pname, inspect.Parameter.empty)
        if pname in unresolved:
            if context_type is not None and _is_context_hint(param.annotation, context_type):
                hint = context_type  # imported under TYPE_CHECKING only: still the context
            else:
                problems.append(f"parameter {pname}: {unresolved[pname]}")
                continue
        if hint is inspect.Parameter.empty:
            problems.append(f"parameter {pname}: missing type annotation")
            continue
        if context_type is not None and _is_context_hint(hint, context_type):
            if context_param is not None:
                problems.append(
                    f"parameter {pname}: only one parameter may take the "
                    f"{context_type.__name__} (already {context_param})"
                )
            context_param = pname
            continue
        if pname.startswith("_"):
            problems.append(f"parameter {pname}: names starting with '_' cannot be tool arguments")
            continue
        problem = _check_hint(hint)
        if problem:
            problems.append(f"parameter {pname}: {problem}")
            continue
        default: Any = ... if param.default is inspect.Parameter.empty else param.default
        field_info = FieldInfo.from_annotated_attribute(hint, default)
        doc_text = doc_params.get(pname)
        if field_info.description is None and doc_text:
            hint = Annotated[hint, Field(description=doc_text)]
        if strict and not field_info.is_required() and not _accepts_none(hint):
            nullable_defaults.append(pname)
        fields[pname] = (hint, default)

    if problems:
        raise ToolDefinitionError(label, problems)

    args_model = _build_model(label, tool_name, fn, fields, nullable_defaults, strict)
    try:
        raw = args_model.model_json_schema()
    except Exception as exc:  # pydantic raises several types for undescribable hints
        raise ToolDefinitionError(label, _diagnose(fields, exc)) from exc
    parameters = clean_json_schema(raw, strict=strict, nullable=nullable_defaults)

    if description is None:
        description = doc_description
    return FunctionSchema(
        name=tool_name,
        description=description,
        parameters=parameters,
        args_model=args_model,
        context_param=context_param,
        bound_param=bound_param,
        is_async=inspect.iscoroutinefunction(fn),
        strict=strict,
        positional_only=tuple(positional_only),
    )


def clean_json_schema(
    schema: Mapping[str, Any], *, strict: bool = False, nullable: typing.Iterable[str] = ()
) -> dict[str, Any]:
    """Post-process a pydantic JSON schema into a self-contained tool ``parameters`` object.

    Args:
        schema: Output of ``model_json_schema()``.
        strict: Apply OpenAI's strict-schema rules (see the module docstring).
        nullable: Top-level properties to make nullable (strict mode's "null = default").
    """
    defs: dict[str, Any] = dict(schema.get("$defs") or {})
    recursive: set[str] = set()
    root = {k: v for k, v in schema.items() if k not in ("$defs", "description")}
    cleaned = _clean(root, defs, frozenset(), recursive)
    out_defs: dict[str, Any] = {}
    pending = set(recursive)
    while pending:
        def_name = pending.pop()
        out_defs[def_name] = _clean(defs[def_name], defs, frozenset({def_name}), recursive)
        pending |= recursive - out_defs.keys()

    props: dict[str, Any] = cleaned.get("properties", {})
    for key in nullable:
        prop = props[key]
        inner = {k: v for k, v in prop.items() if k not in ("description", "default")}
        wrapped: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]}
        if "description" in prop:
            wrapped["description"] = prop["description"]
        props[key] = wrapped
    result: dict[str, Any] = {"type": "object", "properties": props}
    required = list(props) if strict else list(cleaned.get("required", []))
    if required:
        result["required"] = required
    result["additionalProperties"] = cleaned.get("additionalProperties", False)
    for key, value in cleaned.items():
        result.setdefault(key, value)
    if out_defs:
        result["$defs"] = dict(sorted(out_defs.items()))
    if strict:
        result = _strictify(result)
    return result


# --------------------------------------------------------------------------- helpers


def _defined_in_class(qualname: str) -> bool:
    parts = qualname.split(".")
    return len(parts) >= 2 and parts[-2] != "<locals>"


def _resolve_hints(
    fn: Callable[..., Any],
    params: list[inspect.Parameter],
    localns: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve parameter hints: ``(hints, {param: why it cannot be resolved})``."""
    local = dict(localns) if localns else None
    try:
        return typing.get_type_hints(fn, localns=local, include_extras=True), {}
    except Exception:  # NameError, TypeError, SyntaxError...: diagnose per parameter below
        pass
    globalns = getattr(fn, "__globals__", {})
    hints: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    for param in params:
        ann = param.annotation
        if ann is inspect.Parameter.empty:
            continue
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns, local)  # the same evaluation get_type_hints does
            except Exception as exc:
                unresolved[param.name] = (
                    f"cannot resolve type hint {param.annotation!r} "
                    f"({type(exc).__name__}: {exc}); define it at module level"
                )
                continue
        hints[param.name] = ann
    return hints, unresolved


def _strip_annotated(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _union_args(hint: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(hint)
    return None


def _is_context_hint(hint: Any, context_type: type) -> bool:
    hint = _strip_annotated(hint)
    if isinstance(hint, str):  # e.g. imported under TYPE_CHECKING only
        return hint == context_type.__name__ or hint.endswith("." + context_type.__name__)
    if hint is context_type:
        return True
    members = _union_args(hint)
    if members is None:
        return False
    rest = [m for m in members if m is not type(None)]
    return len(rest) == 1 and rest[0] is context_type


def _accepts_none(hint: Any) -> bool:
    hint = _strip_annotated(hint)
    if hint is None or hint is type(None) or hint is Any:
        return True
    members = _union_args(hint)
    return members is not None and any(_accepts_none(m) for m in members)


def _check_hint(hint: Any) -> str | None:
    """Return why ``hint`` cannot be a tool argument, or None."""
    base = _strip_annotated(hint)
    if base is Any or base is object:
        name = "Any" if base is Any else "object"
        return f"type {name} gives the model no schema; use a concrete type"
    if _contains_callable(hint):
        return "callables cannot be tool arguments"
    return None


def _contains_callable(hint: Any) -> bool:
    if hint is collections.abc.Callable or hint is typing.Callable:
        return True
    if typing.get_origin(hint) is collections.abc.Callable:
        return True
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Annotated:
        args = args[:1]
    return any(_contains_callable(a) for a in args if not isinstance(a, (str, int, bytes)))


def _build_model(
    label: str,
    tool_name: str,
    fn: Callable[..., Any],
    fields: dict[str, Any],
    nullable_defaults: list[str],
    strict: bool,
) -> type[BaseModel]:
    base: type[BaseModel] = _ArgsBase
    if nullable_defaults:
        base = _null_to_default_base(frozenset(nullable_defaults))
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]+", tool_name)) or "Tool"
    try:
        with warnings.catch_warnings():
            # A parameter named like a BaseModel method ("json", "copy", "schema") works:
            # field values live in the instance __dict__ and we read them from there.
            warnings.filterwarnings("ignore", message=r".*shadows an attribute in parent")
            return create_model(
                f"{model_name}Args",
                __base__=base,
                __module__=getattr(fn, "__module__", None) or __name__,
                **fields,
            )
    except Exception as exc:  # pydantic raises several types for undescribable hints
        raise ToolDefinitionError(label, _diagnose(fields, exc)) from exc


class _ArgsBase(BaseModel):
    """Base of generated argument models: unknown arguments are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), defer_build=False)


def _null_to_default_base(names: frozenset[str]) -> type[BaseModel]:
    class _NullToDefault(_ArgsBase):
        @model_validator(mode="before")
        @classmethod
        def _drop_nulls(cls, data: Any) -> Any:
            # strict mode: the schema marks these nullable; null means "use the default".
            if isinstance(data, dict) and any(data.get(n, 0) is None for n in names):
                return {k: v for k, v in data.items() if not (k in names and v is None)}
            return data

    return _NullToDefault


def _diagnose(fields: dict[str, Any], exc: Exception) -> list[str]:
    """Find which parameters pydantic cannot handle, one problem line each."""
    from pydantic import TypeAdapter

    problems = []
    for pname, (hint, _default) in fields.items():
        try:
            TypeAdapter(hint).json_schema()
        except Exception as field_exc:
            message = str(field_exc).splitlines()[0] if str(field_exc) else type(field_exc).__name__
            problems.append(f"parameter {pname}: unsupported type {hint!r}: {message}")
    if not problems:
        problems.append(f"cannot build the argument model: {type(exc).__name__}: {exc}")
    return problems


def _clean(node: Any, defs: dict[str, Any], stack: frozenset[str], recursive: set[str]) -> Any:
    """Inline refs, drop noise keys, close objects. Recurses only into schema keywords."""
    if isinstance(node, list):
        return [_clean(item, defs, stack, recursive) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    all_of = node.get("allOf")
    if ref is None and isinstance(all_of, list) and len(all_of) == 1:
        # Older pydantic wraps a described $ref as {"allOf": [{"$ref": ...}], "description": ...}.
        node = {**{k: v for k, v in node.items() if k != "allOf"}, **all_of[0]}
        ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        def_name = ref[len(_DEFS_PREFIX) :]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        extra = _clean(siblings, defs, stack, recursive)
        if def_name not in defs:  # not pydantic's output shape; leave it untouched
            return {"$ref": ref, **extra}
        if def_name in stack:
            recursive.add(def_name)
            return {"$ref": ref, **extra}
        target = _clean(defs[def_name], defs, stack | {def_name}, recursive)
        return {**target, **extra}

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {k: _clean(v, defs, stack, recursive) for k, v in value.items()}
        elif key in _SCHEMA_KEYS or key in _SCHEMA_LIST_KEYS:
            out[key] = _clean(value, defs, stack, recursive)
        elif key == "const":
            # Literal["x"]: one spelling for every literal. Older pydantic writes both.
            if "enum" not in node:
                out["enum"] = [value]
        else:
            out[key] = value  # data (default, enum, examples) is copied, never walked
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _strictify(node: Any) -> Any:
    """Every property required, no defaults: OpenAI's strict-schema rules."""
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {k: _strictify(v) for k, v in value.items()}
        elif key in _SCHEMA_KEYS or key in _SCHEMA_LIST_KEYS:
            out[key] = _strictify(value)
        else:
            out[key] = value
    props = out.get("properties")
    if isinstance(props, dict) and props:
        out["required"] = list(props)
        # keep a readable key order: required right after properties
        out = {k: out[k] for k in _ordered_keys(out)}
    return out


def _ordered_keys(schema: dict[str, Any]) -> list[str]:
    keys = list(schema)
    keys.remove("required")
    keys.insert(keys.index("properties") + 1, "required")
    return keys
