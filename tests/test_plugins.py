"""Plugin folders, entry point plugins and hot reload."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from rtagent._errors import PluginLoadError
from rtagent._plugins import PluginFolder, load_entry_point_plugins, load_plugins
from rtagent._tools import ToolContext, ToolRegistry


def _tool_source(name: str, result: str = "ok", doc: str = "A test tool.") -> str:
    return textwrap.dedent(
        f'''
        from rtagent._tools import tool

        @tool
        def {name}() -> str:
            """{doc}"""
            return {result!r}
        '''
    )


def _write(path: Path, text: str, mtime: int | None = None) -> Path:
    path.write_text(textwrap.dedent(text))
    if mtime is not None:
        # Explicit mtimes: a rescan must notice the edit without the test sleeping.
        os.utime(path, ns=(mtime * 1_000_000_000, mtime * 1_000_000_000))
    return path


async def _call(registry: ToolRegistry, name: str, args: str = "{}") -> str:
    result = await registry.invoke(name, args, ToolContext(call_id="c1", tool_name=name))
    assert result.ok, result.output
    return result.output


# -- load_plugins ------------------------------------------------------------------------------


async def test_loads_top_level_tools_in_file_then_definition_order(tmp_path: Path) -> None:
    """Tools from every .py file, sorted by file name, in definition order within a file."""
    _write(
        tmp_path / "b_tools.py",
        """
        from rtagent._tools import tool

        @tool
        def zeta(x: int) -> int:
            '''Double x.'''
            return 2 * x

        @tool(name="alpha")
        def alpha_impl() -> str:
            '''Say alpha.'''
            return "alpha"

        def not_a_tool() -> None:
            pass
        """,
    )
    _write(tmp_path / "a_tools.py", _tool_source("first"))
    registry = load_plugins(tmp_path)
    assert registry.names() == ["first", "zeta", "alpha"]
    assert await _call(registry, "zeta", '{"x": 21}') == "42"


def test_skips_underscore_files_and_imported_tools(tmp_path: Path) -> None:
    """_private.py is not a plugin, and a tool imported from elsewhere is not re-exported."""
    _write(tmp_path / "_private.py", _tool_source("hidden"))
    _write(
        tmp_path / "reexport.py",
        """
        from rtagent._tools import tool
        from ._private import hidden  # noqa: F401

        @tool
        def own() -> str:
            '''Own tool.'''
            return "own"
        """,
    )
    assert load_plugins(tmp_path).names() == ["own"]


async def test_plugin_imports_a_sibling_helper_relatively(tmp_path: Path) -> None:
    """A plugin imports a helper next to it with a relative import; sys.path is untouched."""
    _write(tmp_path / "_helpers.py", "def shout(s: str) -> str:\n    return s.upper() + '!'\n")
    _write(
        tmp_path / "loud.py",
        """
        from rtagent._tools import tool
        from ._helpers import shout

        @tool
        def loud(text: str) -> str:
            '''Shout a text.'''
            return shout(text)
        """,
    )
    before = list(sys.path)
    registry = load_plugins(tmp_path)
    assert sys.path == before
    assert await _call(registry, "loud", '{"text": "hi"}') == "HI!"


def test_dotfiles_are_ignored(tmp_path: Path) -> None:
    """macOS ``._x.py`` files and other dotfiles are not plugins and do not break the folder."""
    _write(tmp_path / "weather.py", _tool_source("weather"))
    # What macOS writes next to weather.py on a FAT or network drive: binary AppleDouble data.
    (tmp_path / "._weather.py").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    _write(tmp_path / ".hidden.py", _tool_source("hidden"))
    _write(tmp_path / "._helper_.py", "raise RuntimeError('never imported')\n")
    folder = PluginFolder(tmp_path)
    assert folder.load().names() == ["weather"]
    assert not folder.rescan().changed_any


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the plugin folder, holding a tool file and a tool folder."""
    other = tmp_path / "outside"
    (other / "pkg").mkdir(parents=True)
    _write(other / "stray.py", _tool_source("stray"))
    _write(other / "pkg" / "deep.py", _tool_source("deep"))
    return other


def _symlink(link: Path, target: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=target.is_dir())
    except OSError:  # pragma: no cover - e.g. Windows without the symlink privilege
        pytest.skip("cannot create symlinks here")


def test_symlinks_leading_out_of_the_folder_are_skipped(
    tmp_path: Path, outside: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A symlinked file or subfolder whose real path is outside the folder is skipped, warned once."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    _write(plugins / "own.py", _tool_source("own"))
    _symlink(plugins / "stray.py", outside / "stray.py")
    _symlink(plugins / "_helper.py", outside / "stray.py")
    _symlink(plugins / "pkg", outside / "pkg")
    _symlink(plugins / "pkg.py", outside / "pkg")  # a folder named like a plugin file
    folder = PluginFolder(plugins)
    with caplog.at_level(logging.WARNING, logger="rtagent.plugins"):
        assert folder.load().names() == ["own"]
        assert not folder.rescan().changed_any
    assert {r.name for r in caplog.records} == {"rtagent.plugins"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # stray.py and _helper.py, once each despite the rescan
    assert all("outside the plugin folder" in w for w in warnings)
    assert any(str(plugins / "stray.py") in w for w in warnings)


def test_symlinks_inside_the_folder_are_followed(tmp_path: Path) -> None:
    """A symlink to a file in the same folder loads like any plugin file."""
    _write(tmp_path / "_impl.py", _tool_source("linked"))
    _symlink(tmp_path / "linked.py", tmp_path / "_impl.py")
    assert load_plugins(tmp_path).names() == ["linked"]


def test_same_file_names_in_two_folders_do_not_collide(tmp_path: Path) -> None:
    """Each folder has its own module namespace, so tools.py in two folders both load."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _write(tmp_path / "one" / "tools.py", _tool_source("from_one"))
    _write(tmp_path / "two" / "tools.py", _tool_source("from_two"))
    assert load_plugins(tmp_path / "one").names() == ["from_one"]
    assert load_plugins(tmp_path / "two").names() == ["from_two"]


def test_single_file_can_be_loaded(tmp_path: Path) -> None:
    """load_plugins also accepts one .py file."""
    path = _write(tmp_path / "solo.py", _tool_source("solo"))
    assert load_plugins(path).names() == ["solo"]


def test_missing_folder_raises(tmp_path: Path) -> None:
    """A folder that does not exist is a PluginLoadError naming it, even with on_error="log"."""
    with pytest.raises(PluginLoadError, match="no such plugin folder") as info:
        load_plugins(tmp_path / "nope", on_error="log")
    assert info.value.path == str(tmp_path / "nope")


@pytest.fixture
def broken_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with one good plugin and three broken ones."""
    _write(tmp_path / "a_good.py", _tool_source("good"))
    _write(tmp_path / "b_syntax.py", "def oops(:\n    pass\n")
    _write(tmp_path / "c_import.py", "import rtagent_no_such_module_xyz\n")
    _write(
        tmp_path / "d_signature.py",
        """
        from rtagent._tools import tool

        @tool
        def bad(x) -> str:
            '''No type hint for x.'''
            return "x"
        """,
    )
    yield tmp_path


@pytest.mark.parametrize(
    ("stem", "message", "cause"),
    [
        ("b_syntax", "syntax error at line 1", SyntaxError),
        ("c_import", "import failed: No module named 'rtagent_no_such_module_xyz'", ImportError),
        ("d_signature", "broken tool", Exception),
    ],
)
def test_broken_plugin_raises_naming_the_file(
    broken_folder: Path, stem: str, message: str, cause: type[Exception]
) -> None:
    """Each kind of broken plugin raises PluginLoadError naming the file and chaining the cause."""
    for other in broken_folder.glob("[bcd]_*.py"):
        if other.stem != stem:
            other.unlink()
    with pytest.raises(PluginLoadError) as info:
        load_plugins(broken_folder)
    err = info.value
    assert err.path == str(broken_folder / f"{stem}.py")
    assert message in str(err)
    assert isinstance(err.__cause__, cause)


def test_bad_signature_error_names_the_function_and_parameter(broken_folder: Path) -> None:
    """The ToolDefinitionError detail (function and parameter) survives into the message."""
    for other in broken_folder.glob("[bc]_*.py"):
        other.unlink()
    with pytest.raises(PluginLoadError, match=r"bad") as info:
        load_plugins(broken_folder)
    assert "x" in str(info.value)


def test_on_error_log_skips_broken_files_and_loads_the_rest(
    broken_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With on_error="log", every broken file is logged with its path and the rest load."""
    with caplog.at_level(logging.ERROR, logger="rtagent.plugins"):
        registry = load_plugins(broken_folder, on_error="log")
    assert registry.names() == ["good"]
    logged = caplog.text
    for stem in ("b_syntax", "c_import", "d_signature"):
        assert str(broken_folder / f"{stem}.py") in logged


def test_failed_module_is_not_left_in_sys_modules(tmp_path: Path) -> None:
    """A plugin that fails to import leaves no half-initialised module behind."""
    _write(tmp_path / "fails.py", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginLoadError, match="RuntimeError: boom"):
        load_plugins(tmp_path)
    assert not [name for name in sys.modules if name.endswith(".fails")]


def test_duplicate_tool_names_across_files_name_both_files(tmp_path: Path) -> None:
    """Two files declaring the same tool name raise, naming both files."""
    first = _write(tmp_path / "a.py", _tool_source("same"))
    second = _write(tmp_path / "b.py", _tool_source("same"))
    with pytest.raises(PluginLoadError) as info:
        load_plugins(tmp_path)
    assert info.value.path == str(second)
    assert str(first) in str(info.value)


def test_duplicate_tool_names_with_on_error_log_keep_the_first(tmp_path: Path) -> None:
    """With on_error="log", the later file declaring a taken name is skipped."""
    _write(tmp_path / "a.py", _tool_source("same", "first"))
    _write(tmp_path / "b.py", _tool_source("same", "second") + _tool_source("other"))
    assert load_plugins(tmp_path, on_error="log").names() == ["same"]


def test_duplicate_names_within_one_file_raise(tmp_path: Path) -> None:
    """Two functions of one file declaring one tool name is an error for that file."""
    _write(
        tmp_path / "twice.py",
        """
        from rtagent._tools import tool

        @tool(name="dup")
        def one() -> str:
            '''One.'''
            return "1"

        @tool(name="dup")
        def two() -> str:
            '''Two.'''
            return "2"
        """,
    )
    with pytest.raises(PluginLoadError, match="declared twice"):
        load_plugins(tmp_path)


# -- entry points ------------------------------------------------------------------------------


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real (if tiny) installed distribution on sys.path, declaring rtagent.plugins entry points."""
    site = tmp_path / "site"
    pkg = site / "rtagent_fake_ep_pkg"
    pkg.mkdir(parents=True)
    _write(
        pkg / "__init__.py",
        """
        from rtagent._tools import tool

        @tool
        def from_module() -> str:
            '''Declared at module level.'''
            return "module"

        @tool
        def single() -> str:
            '''Named by its own entry point.'''
            return "single"
        """,
    )
    _write(
        pkg / "extra.py",
        """
        from rtagent._tools import ToolRegistry, tool

        @tool
        def listed_a() -> str:
            '''In a list.'''
            return "a"

        @tool
        def listed_b() -> str:
            '''In a list too.'''
            return "b"

        @tool
        def in_registry() -> str:
            '''In a registry.'''
            return "registry"

        LIST = [listed_a, listed_b]
        REGISTRY = ToolRegistry([in_registry])
        NOT_TOOLS = 42
        """,
    )
    dist = site / "rtagent_fake_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rtagent-fake-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[rtagent.plugins]\n"
        "a_module = rtagent_fake_ep_pkg\n"
        "b_list = rtagent_fake_ep_pkg.extra:LIST\n"
        "c_registry = rtagent_fake_ep_pkg.extra:REGISTRY\n"
        "[rtagent.test_single]\n"
        "one = rtagent_fake_ep_pkg:single\n"
        "[rtagent.test_broken]\n"
        "missing = rtagent_fake_ep_missing_module\n"
        "numbers = rtagent_fake_ep_pkg.extra:NOT_TOOLS\n"
        "good = rtagent_fake_ep_pkg:single\n"
        "[rtagent.test_dup]\n"
        "first = rtagent_fake_ep_pkg:single\n"
        "second = rtagent_fake_ep_pkg:single\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [n for n in sys.modules if n.startswith("rtagent_fake_ep_pkg")]:
        del sys.modules[name]


async def test_entry_points_accept_modules_lists_and_registries(fake_distribution: Path) -> None:
    """A module entry point gives its top-level tools; a list and a registry give theirs."""
    registry = load_entry_point_plugins()
    assert registry.names() == ["from_module", "single", "listed_a", "listed_b", "in_registry"]
    assert await _call(registry, "in_registry") == "registry"


def test_entry_point_to_a_single_function(fake_distribution: Path) -> None:
    """An entry point naming one @tool function loads just that tool."""
    registry = load_entry_point_plugins("rtagent.test_single")
    assert registry.names() == ["single"]


def test_entry_point_duplicates_name_both_entry_points(fake_distribution: Path) -> None:
    """Two entry points declaring the same tool raise, naming both."""
    with pytest.raises(PluginLoadError) as info:
        load_entry_point_plugins("rtagent.test_dup")
    assert "entry point second" in info.value.path
    assert "entry point first" in str(info.value)


def test_broken_entry_points_raise_or_log(
    fake_distribution: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing module or a non-tool raises; with on_error="log", the good ones still load."""
    with pytest.raises(PluginLoadError, match="entry point missing") as info:
        load_entry_point_plugins("rtagent.test_broken")
    assert isinstance(info.value.__cause__, ImportError)
    with caplog.at_level(logging.ERROR, logger="rtagent.plugins"):
        registry = load_entry_point_plugins("rtagent.test_broken", on_error="log")
    assert registry.names() == ["single"]
    assert "entry point numbers" in caplog.text
    assert "entry point missing" in caplog.text


def test_no_entry_points_is_an_empty_registry() -> None:
    """An unused group loads nothing."""
    assert len(load_entry_point_plugins("rtagent.no_such_group_for_tests")) == 0


# -- hot reload --------------------------------------------------------------------------------


async def test_rescan_reports_added_changed_and_removed_tools(tmp_path: Path) -> None:
    """Adding, editing and deleting files shows up in the report and the new registry."""
    folder = PluginFolder(tmp_path)
    _write(tmp_path / "a.py", _tool_source("alpha", "v1"), mtime=1_000)
    _write(tmp_path / "b.py", _tool_source("beta"), mtime=1_000)
    assert folder.load().names() == ["alpha", "beta"]

    report = folder.rescan()
    assert not report.changed_any
    assert report.registry.names() == ["alpha", "beta"]

    _write(tmp_path / "a.py", _tool_source("alpha", "v2"), mtime=2_000)
    _write(tmp_path / "c.py", _tool_source("gamma"), mtime=2_000)
    (tmp_path / "b.py").unlink()
    report = folder.rescan()
    assert report.changed_any
    assert report.added == ("gamma",)
    assert report.changed == ("alpha",)
    assert report.removed == ("beta",)
    assert report.failed == {}
    assert report.registry.names() == ["alpha", "gamma"]
    assert folder.registry is report.registry
    assert await _call(report.registry, "alpha") == "v2"


async def test_broken_edit_keeps_the_last_good_version(tmp_path: Path) -> None:
    """A broken edit is reported in `failed` and the file's previous tools stay in service."""
    path = _write(tmp_path / "a.py", _tool_source("alpha", "good"), mtime=1_000)
    folder = PluginFolder(tmp_path)
    folder.load()

    _write(path, "def broken(:\n", mtime=2_000)
    report = folder.rescan()
    assert report.failed.keys() == {str(path)}
    assert "syntax error" in report.failed[str(path)]
    assert report.changed_any
    assert report.registry.names() == ["alpha"]
    assert await _call(report.registry, "alpha") == "good"

    # Not retried until it changes again.
    assert not folder.rescan().changed_any

    _write(path, _tool_source("alpha", "fixed"), mtime=3_000)
    report = folder.rescan()
    assert report.failed == {}
    assert report.changed == ("alpha",)
    assert await _call(report.registry, "alpha") == "fixed"


def test_rescan_rejects_a_tool_name_taken_by_another_file(tmp_path: Path) -> None:
    """An edit that declares another file's tool name fails; both files keep their tools."""
    _write(tmp_path / "a.py", _tool_source("alpha"), mtime=1_000)
    b = _write(tmp_path / "b.py", _tool_source("beta"), mtime=1_000)
    folder = PluginFolder(tmp_path)
    folder.load()
    _write(b, _tool_source("alpha"), mtime=2_000)
    report = folder.rescan()
    assert str(tmp_path / "a.py") in report.failed[str(b)]
    assert report.registry.names() == ["alpha", "beta"]


def test_tool_moving_between_files_in_one_rescan(tmp_path: Path) -> None:
    """A tool moved from a later file to an earlier one within one rescan is not a clash."""
    a = _write(tmp_path / "a.py", _tool_source("alpha"), mtime=1_000)
    b = _write(tmp_path / "b.py", _tool_source("beta") + _tool_source("moving"), mtime=1_000)
    folder = PluginFolder(tmp_path)
    folder.load()
    _write(a, _tool_source("alpha") + _tool_source("moving"), mtime=2_000)
    _write(b, _tool_source("beta"), mtime=2_000)
    report = folder.rescan()
    assert report.failed == {}
    assert report.registry.names() == ["alpha", "moving", "beta"]
    assert report.changed == ("alpha", "moving", "beta")


async def test_helper_change_reloads_plugins(tmp_path: Path) -> None:
    """Editing a _helper.py reloads every plugin, so they see the new helper code."""
    helper = _write(tmp_path / "_helper.py", "WORD = 'old'\n", mtime=1_000)
    _write(
        tmp_path / "uses.py",
        """
        from rtagent._tools import tool
        from . import _helper

        @tool
        def word() -> str:
            '''Return the helper's word.'''
            return _helper.WORD
        """,
        mtime=1_000,
    )
    folder = PluginFolder(tmp_path)
    assert await _call(folder.load(), "word") == "old"
    _write(helper, "WORD = 'new'\n", mtime=2_000)
    report = folder.rescan()
    assert report.changed == ("word",)
    assert await _call(report.registry, "word") == "new"


def test_rescan_without_load_loads_everything(tmp_path: Path) -> None:
    """The first rescan of a fresh PluginFolder reports every tool as added."""
    _write(tmp_path / "a.py", _tool_source("alpha"))
    report = PluginFolder(tmp_path).rescan()
    assert report.added == ("alpha",)


async def test_watch_yields_only_reports_with_changes(tmp_path: Path) -> None:
    """watch() polls quietly while nothing changes and yields the report of an edit."""
    path = _write(tmp_path / "a.py", _tool_source("alpha", "v1"), mtime=1_000)
    folder = PluginFolder(tmp_path)
    folder.load()

    async def edit_later() -> None:
        await anyio.sleep(0.05)  # let a few empty polls pass first
        _write(path, _tool_source("alpha", "v2"), mtime=2_000)

    reports = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(edit_later)
            async for report in folder.watch(interval=0.01):
                reports.append(report)
                break
    assert len(reports) == 1
    assert reports[0].changed == ("alpha",)
    assert await _call(reports[0].registry, "alpha") == "v2"
