"""Find an agent from a command-line reference: ``file.py``, ``file.py:Name`` or ``module:Name``.

Used by the CLI; public so other launchers can share the same rules.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

from ._agent import Agent
from ._errors import ConfigurationError, RTAgentError

__all__ = ["load_agent"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def load_agent(spec: str) -> Agent:
    """Load the agent that ``spec`` names.

    ``spec`` is one of:

    - ``path/to/file.py``: the file must hold one agent (see below);
    - ``path/to/file.py:Name`` or ``package.module:Name``: ``Name`` is an ``Agent``
      subclass (created with no arguments) or an ``Agent`` instance;
    - ``package.module``: the module must hold one agent.

    Without a name, a module holds "one agent" when it has exactly one top-level ``Agent``
    instance, or else exactly one ``Agent`` subclass defined in it that no other class there
    extends. A file's folder is put first on ``sys.path`` (as ``python file.py`` would), so
    the file can import its neighbours.

    Raises:
        ConfigurationError: The file or module is missing or fails to import, the name is
            not an agent, or there is no agent or several without a name.
    """
    target, name = _split(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(Path(target))
    else:
        module = _import_module(target)
    if name is not None:
        return _from_name(module, name, spec)
    return _only_agent(module, spec)


def _split(spec: str) -> tuple[str, str | None]:
    head, sep, tail = spec.rpartition(":")
    # "C:\\agents\\a.py" has a colon that is not a separator: only split before a name.
    if sep and head and _NAME.match(tail) and not tail.endswith(".py"):
        return head, tail
    return spec, None


def _import_file(path: Path) -> types.ModuleType:
    if not path.is_file():
        raise ConfigurationError(f"no such agent file: {path}")
    resolved = path.resolve()
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:8]
    stem = re.sub(r"\W", "_", resolved.stem)
    module_name = f"rtagent_agent_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except RTAgentError:
        sys.modules.pop(module_name, None)
        raise  # already names the culprit (e.g. a ToolDefinitionError at decoration time)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ConfigurationError(f"{path}: {_describe(exc)}") from exc
    return module


def _import_module(name: str) -> types.ModuleType:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"{name!r} is neither a .py file nor a module name (use file.py, file.py:Name "
            "or package.module:Name)"
        )
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise ConfigurationError(f"no module named {exc.name!r}") from exc
        raise ConfigurationError(f"module {name!r}: {_describe(exc)}") from exc
    except RTAgentError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"module {name!r}: {_describe(exc)}") from exc


def _from_name(module: types.ModuleType, name: str, spec: str) -> Agent:
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"{spec}: no attribute {part!r}") from None
    if isinstance(obj, Agent):
        return obj
    if isinstance(obj, type) and issubclass(obj, Agent):
        return _instantiate(obj, spec)
    raise ConfigurationError(f"{spec} is a {type(obj).__name__}, not an Agent subclass or instance")


def _only_agent(module: types.ModuleType, spec: str) -> Agent:
    instances = {k: v for k, v in vars(module).items() if isinstance(v, Agent)}
    if len(instances) == 1:
        return next(iter(instances.values()))
    if len(instances) > 1:
        raise _several(spec, instances)
    classes = {
        k: v
        for k, v in vars(module).items()
        if isinstance(v, type)
        and issubclass(v, Agent)
        and v is not Agent
        and v.__module__ == module.__name__
    }
    # Skip intermediate bases: a class that another agent class here extends.
    leaves = {
        k: v
        for k, v in classes.items()
        if not any(o is not v and issubclass(o, v) for o in classes.values())
    }
    if not leaves:
        raise ConfigurationError(f"{spec} defines no Agent subclass")
    if len(leaves) > 1:
        raise _several(spec, leaves)
    return _instantiate(next(iter(leaves.values())), spec)


def _several(spec: str, found: dict[str, Any]) -> ConfigurationError:
    names = ", ".join(sorted(found))
    return ConfigurationError(f"{spec} holds several agents ({names}); name one as {spec}:NAME")


def _instantiate(cls: type[Agent], spec: str) -> Agent:
    try:
        return cls()
    except RTAgentError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"cannot create {cls.__qualname__}() from {spec}: {_describe(exc)}"
        ) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"
