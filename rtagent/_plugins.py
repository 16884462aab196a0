"""Load tools from plugin folders and installed packages, and reload them while running.

A plugin folder holds ``.py`` files; every ``@tool`` function defined at the top level of
each file becomes a tool. Files are loaded in sorted order; names starting with ``_`` are not
plugins, so they can hold shared helpers.

Only what the user named is loaded: dotfiles (such as the ``._name.py`` files macOS leaves
on shared drives) are ignored, a symlinked file whose real path is outside the folder is
skipped with a warning, and subfolders are never scanned. (A plugin's own imports are its
code's business: Python's import system resolves them.)

Each folder becomes a private package, ``rtagent_plugins.p<hash of the folder path>``, and
each file a module in it. Nothing is added to ``sys.path``, so a plugin imports a sibling
helper with a *relative* import (``from ._helpers import parse``); ``import _helpers`` does
not work. Two folders never collide, even when their files share names.

Two files declaring the same tool name is an error naming both files: a plugin never shadows
another silently. Installed packages can offer tools through the ``rtagent.plugins`` entry
point group (see ``load_entry_point_plugins``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio

from ._errors import PluginLoadError, ToolDefinitionError
from ._tools import Tool, ToolRegistry, get_tool

__all__ = [
    "OnError",
    "PluginFolder",
    "ReloadReport",
    "load_entry_point_plugins",
    "load_plugins",
]

logger = logging.getLogger("rtagent.plugins")

OnError = Literal["raise", "log"]
_ROOT_PACKAGE = "rtagent_plugins"


def load_plugins(path: str | os.PathLike[str], *, on_error: OnError = "raise") -> ToolRegistry:
    """Load the tools of every plugin file in a folder (or of one ``.py`` file).

    Args:
        path: The plugin folder, or a single plugin file.
        on_error: ``"raise"`` stops at the first broken file; ``"log"`` logs it and loads
            the others.

    Returns:
        A new registry with the tools in file order, then definition order.

    Raises:
        PluginLoadError: The folder does not exist (always raised); a file cannot be
            imported, declares a broken tool, or declares a tool name an earlier file
            already declared (with ``on_error="log"``, that file is logged and skipped).
    """
    return PluginFolder(path, on_error=on_error).load()


def load_entry_point_plugins(
    group: str = "rtagent.plugins", *, on_error: OnError = "raise"
) -> ToolRegistry:
    """Load the tools that installed distributions offer through an entry point group.

    An entry point may name a module (its top-level ``@tool`` functions), a ``@tool``
    function, a ``Tool``, a list of those, or a ``ToolRegistry``. For example, in a
    plugin package's ``pyproject.toml``::

        [project.entry-points."rtagent.plugins"]
        weather = "weather_tools"            # a module
        forecast = "weather_tools:forecast"  # one function

    Args:
        group: The entry point group to read.
        on_error: As for ``load_plugins``.

    Raises:
        PluginLoadError: An entry point cannot be loaded or holds no tools, or two entry
            points declare the same tool name. ``path`` is ``"entry point NAME = VALUE"``.
    """
    registry = ToolRegistry()
    owner: dict[str, str] = {}
    eps = sorted(importlib.metadata.entry_points(group=group), key=lambda e: (e.name, e.value))
    for ep in eps:
        where = f"entry point {ep.name} = {ep.value}"
        try:
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginLoadError(where, _describe(exc)) from exc
            tools = _tools_of_object(obj, where)
            _check_duplicates(tools, where, owner)
        except PluginLoadError as exc:
            if on_error == "raise":
                raise
            logger.error("skipping plugin %s", exc, exc_info=exc.__cause__ is not None)
            continue
        for t in tools:
            registry.add(t)
            owner[t.name] = where
    return registry


@dataclass(frozen=True)
class ReloadReport:
    """What one ``PluginFolder.rescan()`` found.

    Attributes:
        registry: The folder's tools after the rescan (a new registry each time).
        added: Names of tools that did not exist before.
        changed: Names of tools whose file was reloaded (their code or schema may differ).
        removed: Names of tools that are gone (their file was deleted, or no longer defines them).
        failed: Files that failed to load now, with the error; their last good tools are kept.
    """

    registry: ToolRegistry
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def changed_any(self) -> bool:
        """True when tools were added, changed or removed, or a file failed to load."""
        return bool(self.added or self.changed or self.removed or self.failed)


@dataclass
class _LoadedFile:
    signature: tuple[int, int]  # (mtime_ns, size) when last tried, loaded or not
    tools: list[Tool]  # last good tools


class ToolsHolder(Protocol):
    """What :meth:`PluginFolder.follow` needs of a live session (a ``RealtimeSession``)."""

    @property
    def tools(self) -> ToolRegistry: ...

    async def update_tools(self, tools: ToolRegistry) -> None: ...


class PluginFolder:
    """A plugin folder that can be reloaded while an agent runs.

    ``rescan()`` polls the files' modification times (no extra dependency): it re-imports
    changed files, drops deleted ones and reports what changed. A file whose new version is
    broken keeps its last good tools, and is retried once it changes again. A change to a
    helper file (``_*.py``) reloads every plugin of the folder, since any may import it.

    Args:
        path: The plugin folder, or a single ``.py`` file.
        on_error: What ``load()`` does with a broken file (``rescan()`` always reports it).
    """

    def __init__(self, path: str | os.PathLike[str], *, on_error: OnError = "raise") -> None:
        self.path = Path(path).resolve()
        self.on_error: OnError = on_error
        self._files: dict[Path, _LoadedFile] = {}
        self._helpers: dict[Path, tuple[int, int]] = {}
        self._registry = ToolRegistry()
        self._outside: set[Path] = set()  # symlinks out of the folder, warned about once
        root = self.path if self.path.is_dir() else self.path.parent
        digest = hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:12]
        self._package = f"{_ROOT_PACKAGE}.p{digest}"
        self._root = root

    @property
    def registry(self) -> ToolRegistry:
        """The tools as of the last ``load()`` or ``rescan()``."""
        return self._registry

    def load(self) -> ToolRegistry:
        """Load every plugin file from scratch.

        Raises:
            PluginLoadError: The folder is missing; or (with ``on_error="raise"``) a file is
                broken; or two files declare the same tool name.
        """
        self._files.clear()
        self._helpers = self._scan_helpers()
        self._purge_helpers()
        owner: dict[str, str] = {}
        for file, signature in self._scan_plugins().items():
            try:
                tools = self._import(file)
                _check_duplicates(tools, str(file), owner)
            except PluginLoadError as exc:
                if self.on_error == "raise":
                    raise
                logger.error("skipping plugin %s", exc, exc_info=exc.__cause__ is not None)
                self._files[file] = _LoadedFile(signature, [])
                continue
            for t in tools:
                owner[t.name] = str(file)
            self._files[file] = _LoadedFile(signature, tools)
        self._registry = self._build()
        return self._registry

    def rescan(self) -> ReloadReport:
        """Reload the files that changed since the last look and report the difference.

        Never raises for a broken plugin file: it lands in ``ReloadReport.failed``.

        Raises:
            PluginLoadError: The folder itself is gone.
        """
        before = {t.name: t for t in self._registry}
        current = self._scan_plugins()
        helpers = self._scan_helpers()
        reload_all = helpers != self._helpers
        if reload_all:
            self._helpers = helpers
            self._purge_helpers()
        for gone in [f for f in self._files if f not in current]:
            del self._files[gone]
            sys.modules.pop(self._module_name(gone), None)
        changed_files = [
            f
            for f, sig in current.items()
            if reload_all or f not in self._files or self._files[f].signature != sig
        ]
        # Unchanged files own their tool names; a changed file may not take them over.
        owner = {
            t.name: str(f)
            for f, s in self._files.items()
            if f not in changed_files
            for t in s.tools
        }
        reloaded: set[str] = set()
        failed: dict[str, str] = {}
        for file in changed_files:
            state = self._files.get(file)
            last_good = state.tools if state is not None else []
            try:
                tools = self._import(file)
                _check_duplicates(tools, str(file), owner)
            except PluginLoadError as exc:
                failed[str(file)] = str(exc)
                logger.warning("keeping the last good version of %s", exc)
                tools = last_good
                try:
                    _check_duplicates(tools, str(file), owner)
                except PluginLoadError:
                    tools = []  # even the old version now clashes with another file
            else:
                reloaded.update(t.name for t in tools)
            self._files[file] = _LoadedFile(current[file], tools)
            for t in tools:
                owner[t.name] = str(file)
        self._registry = self._build()
        after = self._registry.names()
        return ReloadReport(
            registry=self._registry,
            added=tuple(n for n in after if n not in before),
            changed=tuple(n for n in after if n in before and n in reloaded),
            removed=tuple(n for n in before if n not in after),
            failed=failed,
        )

    async def watch(self, interval: float = 1.0) -> AsyncIterator[ReloadReport]:
        """Rescan every ``interval`` seconds, yielding only reports with changes.

        The first scan happens after one interval; call ``load()`` first to have a baseline.
        Rescans run in the event loop thread: they only stat files, unless something changed.
        """
        while True:
            await anyio.sleep(interval)
            report = self.rescan()
            if report.changed_any:
                yield report

    async def follow(self, session: ToolsHolder, *, interval: float = 1.0) -> None:
        """Keep a live session's tools in step with this folder; runs until cancelled.

        Each change found by :meth:`watch` (files added, edited or removed) is applied live
        with ``session.update_tools(...)`` (a ``session.update``), next to the session's own
        tools. A broken edit keeps the last good tools of that file, as the report says.
        """
        if not self.registry.names():
            self.load()
        own = [t for t in session.tools if t.name not in self.registry]
        async for report in self.watch(interval):
            for path, message in report.failed.items():
                logger.warning("plugin %s failed to reload: %s", path, message)
            await session.update_tools(ToolRegistry(own).merge(report.registry, replace=True))

    # -- internals -------------------------------------------------------------------------

    def _scan_plugins(self) -> dict[Path, tuple[int, int]]:
        if self.path.is_file():
            if self.path.suffix != ".py":
                raise PluginLoadError(str(self.path), "a plugin file must end in .py")
            return {self.path: _signature(self.path)}
        if not self.path.is_dir():
            raise PluginLoadError(str(self.path), "no such plugin folder")
        return self._scan("*.py", lambda name: not name.startswith("_"))

    def _scan_helpers(self) -> dict[Path, tuple[int, int]]:
        return self._scan("_*.py", lambda name: True)

    def _scan(self, pattern: str, wanted: Callable[[str], bool]) -> dict[Path, tuple[int, int]]:
        """The folder's files matching ``pattern``, with their signatures.

        Only what the user named is loaded: dotfiles (editor and macOS ``._x.py`` droppings)
        and anything that is not a regular file are ignored, and a symlink whose target is
        outside the folder is skipped with a warning (once per path).
        """
        found: dict[Path, tuple[int, int]] = {}
        for file in sorted(self._root.glob(pattern)):
            if file.name.startswith(".") or not wanted(file.name):
                continue
            try:
                real = file.resolve(strict=True)
                if not real.is_file():
                    continue
                if not real.is_relative_to(self._root):
                    if file not in self._outside:
                        self._outside.add(file)
                        logger.warning(
                            "skipping %s: it links to %s, outside the plugin folder", file, real
                        )
                    continue
                found[file] = _signature(file)
            except (FileNotFoundError, RuntimeError):  # deleted meanwhile, or a symlink loop
                continue
        return found

    def _purge_helpers(self) -> None:
        """Forget imported helper modules so plugins importing them get the current code."""
        prefix = self._package + "._"
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            del sys.modules[name]
        package = sys.modules.get(self._package)
        if package is not None:
            # `from . import _helper` reads the package attribute before sys.modules.
            for attr in [a for a in vars(package) if a.startswith("_") and not a.startswith("__")]:
                delattr(package, attr)

    def _module_name(self, file: Path) -> str:
        return f"{self._package}.{file.stem}"

    def _import(self, file: Path) -> list[Tool]:
        """Execute ``file`` as a fresh module and return its top-level tools."""
        _ensure_package(self._package, self._root)
        name = self._module_name(file)
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise PluginLoadError(str(file), "cannot be imported as a module")
        module = importlib.util.module_from_spec(spec)
        previous = sys.modules.get(name)
        sys.modules[name] = module  # so dataclasses/pydantic can resolve the module's names
        try:
            # Compile the source ourselves instead of exec_module(): .pyc files only record
            # mtimes to the second, so a quick edit could otherwise run stale bytecode.
            source = file.read_bytes()
            code = compile(source, str(file), "exec", dont_inherit=True)
            exec(code, module.__dict__)
            tools = _module_tools(module, str(file))
        except BaseException as exc:
            if previous is not None:
                sys.modules[name] = previous
            else:
                sys.modules.pop(name, None)
            if isinstance(exc, PluginLoadError):
                raise
            if not isinstance(exc, Exception):
                raise
            raise PluginLoadError(str(file), _describe(exc)) from exc
        return tools

    def _build(self) -> ToolRegistry:
        registry = ToolRegistry()
        for file in sorted(self._files):
            for t in self._files[file].tools:
                registry.add(t)
        return registry


def _signature(file: Path) -> tuple[int, int]:
    st = file.stat()
    return (st.st_mtime_ns, st.st_size)


def _ensure_package(name: str, folder: Path) -> None:
    """Register the synthetic packages a plugin module lives in, for relative imports."""
    if _ROOT_PACKAGE not in sys.modules:
        root = types.ModuleType(
            _ROOT_PACKAGE, "Namespace of the modules of rtagent plugin folders."
        )
        root.__path__ = []
        root.__spec__ = importlib.machinery.ModuleSpec(_ROOT_PACKAGE, None, is_package=True)
        sys.modules[_ROOT_PACKAGE] = root
    if name not in sys.modules:
        pkg = types.ModuleType(name, f"Plugin folder {folder}")
        pkg.__path__ = [str(folder)]
        pkg.__package__ = name
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        pkg.__spec__ = spec
        sys.modules[name] = pkg


def _module_tools(module: types.ModuleType, where: str) -> list[Tool]:
    """The ``@tool`` functions defined (not merely imported) at the top level of ``module``."""
    tools: list[Tool] = []
    seen: dict[str, str] = {}
    for attr, value in list(vars(module).items()):
        declared = get_tool(value) if callable(value) else None
        if declared is None or getattr(value, "__module__", None) != module.__name__:
            continue
        if declared.name in seen:
            raise PluginLoadError(
                where,
                f"tool name {declared.name!r} is declared twice ({seen[declared.name]} and {attr})",
            )
        seen[declared.name] = attr
        try:
            tools.append(Tool.from_function(value))
        except ToolDefinitionError as exc:
            raise PluginLoadError(where, _describe(exc)) from exc
    return tools


def _tools_of_object(obj: Any, where: str) -> list[Tool]:
    """Tools from what an entry point resolved to: module, tool function, Tool, list, registry."""
    if isinstance(obj, types.ModuleType):
        tools = _module_tools(obj, where)
    elif isinstance(obj, ToolRegistry):
        tools = list(obj)
    elif isinstance(obj, Tool):
        tools = [obj]
    elif isinstance(obj, (list, tuple)):
        tools = [_one_tool(item, where) for item in obj]
    else:
        tools = [_one_tool(obj, where)]
    if not tools:
        raise PluginLoadError(where, "declares no tools")
    return tools


def _one_tool(obj: Any, where: str) -> Tool:
    if isinstance(obj, Tool):
        return obj
    if callable(obj) and get_tool(obj) is not None:
        fn: Callable[..., Any] = obj
        try:
            return Tool.from_function(fn)
        except ToolDefinitionError as exc:
            raise PluginLoadError(where, _describe(exc)) from exc
    raise PluginLoadError(
        where, f"{obj!r} is not a module, @tool function, Tool, list of tools or ToolRegistry"
    )


def _check_duplicates(tools: Iterable[Tool], where: str, owner: dict[str, str]) -> None:
    for t in tools:
        if t.name in owner:
            raise PluginLoadError(where, f"tool {t.name!r} is already declared by {owner[t.name]}")


def _describe(exc: BaseException) -> str:
    """One line saying why a plugin failed, for the PluginLoadError message."""
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    if isinstance(exc, ToolDefinitionError):
        return f"broken tool {exc.function}: " + "; ".join(exc.problems)
    if isinstance(exc, ImportError):
        return f"import failed: {exc}"
    return f"{type(exc).__name__}: {exc}"
