"""The `rtagent tools` and `rtagent config` commands, and agent loading by reference."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rtagent._agent import Agent
from rtagent._cli import main
from rtagent._errors import ConfigurationError
from rtagent._loading import load_agent
from rtagent._plugins import load_plugins

try:
    from conformance import assert_client_event
except ImportError:  # pragma: no cover - depends on how pytest was started
    from tests.conformance import assert_client_event

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "plugins"

AGENT_FILE = '''
from rtagent._agent import Agent
from rtagent._tools import tool


class Helper(Agent):
    instructions = "Help."
    voice = "marin"
    plugins = ["my_plugins"]  # relative to this file's folder

    @tool
    def lookup(self, key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        return key
'''

PLUGIN = '''
from rtagent._tools import tool


@tool
def from_plugin() -> str:
    """A plugin tool."""
    return "plugin"
'''


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_agent puts an agent file's folder on sys.path; keep that out of other tests."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    """A folder with an agent file and the plugin folder it names relatively."""
    _write(tmp_path / "helper_agent.py", AGENT_FILE)
    _write(tmp_path / "my_plugins" / "extra.py", PLUGIN)
    return tmp_path


def _json_out(capsys: pytest.CaptureFixture[str]) -> object:
    out = capsys.readouterr().out
    return json.loads(out)


def test_tools_of_a_plugin_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """`rtagent tools plugins/` prints the folder's tool definitions as a JSON list."""
    assert main(["tools", str(PLUGINS)]) == 0
    assert _json_out(capsys) == load_plugins(PLUGINS).schemas()


def test_tools_of_an_agent_file(agent_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agent file's method tools come first, then its plugin folder (relative to the file)."""
    assert main(["tools", str(agent_dir / "helper_agent.py")]) == 0
    schemas = _json_out(capsys)
    assert isinstance(schemas, list)
    assert [s["name"] for s in schemas] == ["lookup", "from_plugin"]
    assert schemas[0]["parameters"]["properties"]["key"]["description"] == "The key."


def test_tools_of_a_named_class_in_a_file(
    agent_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """file.py:ClassName picks one agent when a file holds several."""
    _write(
        agent_dir / "two.py",
        """
        from rtagent._agent import Agent
        from rtagent._tools import tool

        class One(Agent):
            @tool
            def one(self) -> str:
                '''One.'''
                return "1"

        class Two(Agent):
            @tool
            def two(self) -> str:
                '''Two.'''
                return "2"
        """,
    )
    assert main(["tools", f"{agent_dir / 'two.py'}:Two", "--indent", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # --indent 0 prints one line
    assert [s["name"] for s in json.loads(out)] == ["two"]


def test_several_agents_without_a_name_is_an_error(
    agent_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a name, a file with two agents fails with one line listing them."""
    path = _write(
        agent_dir / "pair.py",
        """
        from rtagent._agent import Agent

        class Alpha(Agent):
            pass

        class Beta(Agent):
            pass
        """,
    )
    assert main(["tools", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtagent: error: ")
    assert "Alpha, Beta" in err
    assert err.count("\n") == 1


def test_module_colon_class(
    agent_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """module:Class imports the module from sys.path."""
    pkg = agent_dir / "rtagent_cli_test_pkg"
    _write(pkg / "__init__.py", "")
    _write(pkg / "agents.py", AGENT_FILE.replace('plugins = ["my_plugins"]', "plugins = []"))
    monkeypatch.syspath_prepend(str(agent_dir))
    try:
        assert main(["tools", "rtagent_cli_test_pkg.agents:Helper"]) == 0
        assert [s["name"] for s in _json_out(capsys)] == ["lookup"]  # type: ignore[union-attr]
        # The module alone works too when it holds one agent.
        assert isinstance(load_agent("rtagent_cli_test_pkg.agents"), Agent)
    finally:
        for name in [n for n in sys.modules if n.startswith("rtagent_cli_test_pkg")]:
            del sys.modules[name]


def test_agent_instance_in_a_file(agent_dir: Path) -> None:
    """A module-level Agent instance is found, by name or as the only agent."""
    path = _write(
        agent_dir / "inst.py",
        """
        from rtagent._agent import Agent

        bot = Agent(instructions="I am an instance.", voice="cedar")
        """,
    )
    assert load_agent(str(path)).session_config()["instructions"] == "I am an instance."
    assert load_agent(f"{path}:bot").session_config()["audio"]["output"]["voice"] == "cedar"


def test_intermediate_base_classes_are_skipped(agent_dir: Path) -> None:
    """A base class extended by another agent in the same file is not a candidate."""
    path = _write(
        agent_dir / "layers.py",
        """
        from rtagent._agent import Agent

        class Base(Agent):
            instructions = "base"

        class Leaf(Base):
            instructions = "leaf"
        """,
    )
    assert load_agent(str(path)).session_config()["instructions"] == "leaf"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing_file.py", "no such agent file"),
        (
            "rtagent_no_such_module_for_cli:Agent",
            "no module named 'rtagent_no_such_module_for_cli'",
        ),
        ("not a module!", "neither a .py file nor a module name"),
        ("rtagent._errors:ToolError", "not an Agent subclass or instance"),
        ("rtagent._errors:Nope", "no attribute 'Nope'"),
        ("rtagent._errors", "defines no Agent subclass"),
    ],
)
def test_load_agent_errors(spec: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad references raise ConfigurationError; the CLI prints them as one line and exits 2."""
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        load_agent(spec)
    assert main(["tools", spec]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_agent_file_with_import_error(agent_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agent file that fails to import names the file and the error."""
    path = _write(agent_dir / "broken_agent.py", "import rtagent_no_such_dependency\n")
    assert main(["tools", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken_agent.py" in err
    assert "rtagent_no_such_dependency" in err


def test_broken_plugin_folder_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken plugin prints `rtagent: error: <file>: <why>` and exits 2 (a file to fix)."""
    _write(tmp_path / "bad.py", "def f(:\n")
    assert main(["tools", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"rtagent: error: {tmp_path / 'bad.py'}: syntax error at line 1: invalid syntax\n"


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--debug (before or after the command) prints the traceback instead of one line."""
    _write(tmp_path / "bad.py", "def f(:\n")
    assert main(["--debug", "tools", str(tmp_path)]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["tools", str(tmp_path), "--debug"]) == 2
    assert "PluginLoadError" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No command prints help and returns 2; a missing argument exits 2 through argparse."""
    assert main([]) == 2
    assert "usage: rtagent" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["tools"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_config_prints_a_valid_session_update(
    agent_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rtagent config AGENT` prints the session.update event, valid per the openai types."""
    assert main(["config", str(agent_dir / "helper_agent.py")]) == 0
    event = _json_out(capsys)
    assert isinstance(event, dict)
    assert event["session"]["instructions"] == "Help."
    assert [t["name"] for t in event["session"]["tools"]] == ["lookup", "from_plugin"]
    assert_client_event(event)


def test_python_dash_m_rtagent_tools() -> None:
    """`python -m rtagent tools plugins/` works as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "rtagent", "tools", "plugins/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    names = [s["name"] for s in json.loads(proc.stdout)]
    assert {"calculate", "current_time", "add_note"} <= set(names)
