"""`rtagent chat` as a console: terminals, Ctrl-C, exit codes, environment defaults, logs, --demo."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from rtagent import Agent, tool
from rtagent._chat import ChatOptions, run_chat
from rtagent._cli import main
from rtagent._notices import ToolFinished, ToolStarted
from rtagent._terminal import Transcript, printable
from rtagent.local import LocalRealtimeServer

REPO = Path(__file__).resolve().parent.parent
PIRATE = str(REPO / "examples" / "pirate.py")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for name in ("RTAGENT_URL", "RTAGENT_MODEL", "RTAGENT_LOG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LocalRealtimeServer]:
    """A local server in a background thread."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(LocalRealtimeServer()) as srv:
        yield srv


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RTAGENT_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONIOENCODING"] = "utf-8"
    return {**env, **extra}


# -- what is printed -------------------------------------------------------------------------


def test_control_characters_never_reach_the_terminal() -> None:
    """Escape sequences and other controls in replies, tool lines and notes are stripped."""
    out, err = io.StringIO(), io.StringIO()
    t = Transcript(out, err)
    t.delta("red \x1b[31mtext\x1b[0m\x07 and\ttabs\r\n")
    t.tool(ToolFinished("c1", "evil\x1b]0;title\x07", '{"k\\u001b": "\\u001b[2J"}', '"\\u001b[1mbold\\u202e"', True, None, 0.01))
    t.note("server said \x1b[5mblink\x9b")
    printed = out.getvalue() + err.getvalue()
    assert not any(ch in printed for ch in "\x1b\x07\r\x9b\u202e")
    assert "assistant> red [31mtext[0m and\ttabs" in out.getvalue()
    assert printable("a\x00b\x7fc\td\ne") == "abc\td\ne"


def test_late_output_restores_the_plain_prompt() -> None:
    """Output that arrives while a plain prompt waits goes below it, and the prompt is shown again."""
    out = io.StringIO()
    t = Transcript(out, out)
    t.prompt()
    t.note("reconnected")
    t.tool(ToolFinished("c1", "late", '{"x": 1}', "done", True, None, 0.005))
    assert out.getvalue() == "you> \nrtagent: reconnected\nyou> \n  * late(x=1) -> done  (5 ms)\nyou> "


def test_the_live_line_is_replaced_by_the_result() -> None:
    """On a terminal a running tool has a live line, erased when its result line is printed."""
    out = io.StringIO()
    t = Transcript(out, io.StringIO(), live=True)
    t.tool_started(ToolStarted("c1", "dig", '{"island": "Skull"}'))
    assert out.getvalue().startswith('\r\x1b[2K  * dig(island="Skull") ... ')
    t.tool(ToolFinished("c1", "dig", '{"island": "Skull"}', "gold", True, None, 1.5))
    assert out.getvalue().endswith('\r\x1b[2K  * dig(island="Skull") -> gold  (1.5 s)\n')
    assert not t.tools_running


class Divider(Agent):
    output_modalities = ["text"]

    @tool
    def divide(self, a: int, b: int) -> float:
        """Divide a by b."""
        return a / b


@pytest.mark.usefixtures("no_key")
async def test_a_tool_exception_shows_its_last_frame() -> None:
    """A tool's unexpected exception is shown under its line: type, message and the failing line."""
    out, err = io.StringIO(), io.StringIO()
    with anyio.fail_after(20):
        status = await run_chat(Divider(), ChatOptions(), stdin=io.StringIO("divide 1 by 0\n"), stdout=out, stderr=err)
    assert status == 0
    lines = out.getvalue().splitlines()
    at = next(i for i, line in enumerate(lines) if "divide(a=1, b=0) x error: divide failed unexpectedly" in line)
    assert lines[at + 1].strip() == "| ZeroDivisionError: division by zero"
    assert lines[at + 2].strip().startswith("at tests/test_console.py:")
    assert lines[at + 2].endswith("in divide: return a / b")
    assert "Traceback" not in out.getvalue() + err.getvalue()


@pytest.mark.usefixtures("no_key")
def test_each_connection_attempt_gets_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable server: a line saying where, one per failed attempt, then the error (status 1)."""
    assert main(["chat", PIRATE, "--url", "ws://127.0.0.1:9/v1/realtime", "--retries", "3"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "rtagent: connecting to ws://127.0.0.1:9/v1/realtime (model gpt-realtime-2.1)"
    assert [line.split(":")[1] for line in lines[1:3]] == [" connection attempt 1 failed", " connection attempt 2 failed"]
    assert "retrying in" in lines[1]
    assert lines[3].startswith("rtagent: error: could not connect after 3 attempt(s)")
    assert len(lines) == 4


# -- options and environment -----------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`rtagent --version` prints the package version and exits 0."""
    import rtagent

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rtagent {rtagent.__version__}"


@pytest.mark.usefixtures("no_key")
def test_environment_defaults(
    server: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """RTAGENT_URL and RTAGENT_MODEL are the defaults of --url and --model; the options win."""
    monkeypatch.setenv("RTAGENT_URL", server.url)
    monkeypatch.setenv("RTAGENT_MODEL", "gpt-realtime-mini")
    monkeypatch.setattr(sys, "stdin", io.StringIO("How much for 2 bottles of rum?\n"))
    assert main(["chat", PIRATE]) == 0
    assert "rum_price(bottles=2) → 6 doubloons" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\n"))
    assert main(["chat", PIRATE, "--model", "gpt-realtime-2"]) == 0
    assert [c.query["model"] for c in server.connections] == ["gpt-realtime-mini", "gpt-realtime-2"]


@pytest.mark.usefixtures("no_key")
@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["chat", "--demo"], {"RTAGENT_LOG": "loud"}, "RTAGENT_LOG must be one of debug, info"),
        (["chat"], {}, "chat needs an AGENT"),
        (["chat", PIRATE, "--demo"], {}, "give AGENT or --demo, not both"),
    ],
    ids=["bad-log-level", "no-agent", "agent-and-demo"],
)
def test_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], message: str
) -> None:
    """Configuration mistakes exit with status 2 and one line."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("no_key")
def test_demo_and_undecodable_stdin() -> None:
    """`chat --demo` needs no agent file; piped bytes that are not UTF-8 become U+FFFD, not a crash."""
    proc = subprocess.run(
        [sys.executable, "-m", "rtagent", "chat", "--demo"],
        input=b"How much for 3 bottles of rum?\n\xff\xfe Ahoy\n",
        capture_output=True,
        cwd="/",
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "⚙ rum_price(bottles=3) → 9 doubloons" in out
    assert "you> \ufffd\ufffd Ahoy" in out


def test_serve_logs_at_info_and_never_the_key() -> None:
    """`rtagent serve` logs at INFO by default (DEBUG with --debug) and masks its API key."""
    key = "sk-very-secret-key"
    for debug, wanted in (([], " INFO "), (["--debug"], " DEBUG ")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtagent", "serve", "--port", "0", "--api-key", key, *debug],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            url = proc.stdout.readline().strip() if proc.stdout else ""
            assert url.startswith("ws://127.0.0.1:")
            chat = subprocess.run(
                [sys.executable, "-m", "rtagent", "chat", "--demo", "--url", url],
                input="Hello\n",
                capture_output=True,
                text=True,
                env=_env(OPENAI_API_KEY=key),
                timeout=60,
            )
            assert chat.returncode == 0, chat.stderr
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert wanted in err
        assert key not in err


# -- a real terminal -------------------------------------------------------------------------


def _own_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (so Ctrl-C is SIGINT)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Terminal:
    """A child process on a pseudo-terminal, read in the background."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd="/", preexec_fn=_own_terminal
        )
        os.close(slave)
        self.screen = ""

    def expect(self, text: str, timeout: float = 20, *, count: int = 1) -> None:
        """Wait until ``text`` has appeared ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.screen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never appeared in:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:  # the child closed the terminal
                    time.sleep(0.05)
            elif self.proc.poll() is not None:
                assert self.screen.count(text) >= count, f"exited {self.proc.returncode}:\n{self.screen}"

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            os.close(self.master)


@pytest.mark.usefixtures("no_key")
def test_console_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal: prompt, a live line while a tool runs, Ctrl-C cancels it, Ctrl-C at the prompt exits 130."""
    pytest.importorskip("prompt_toolkit")
    env = _env(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", XDG_STATE_HOME=str(tmp_path), COLUMNS="120", LINES="40")
    term = _Terminal([sys.executable, "-m", "rtagent", "chat", "--demo"], env)
    try:
        term.expect("you>")
        term.type("What's the weather in Tortuga?\r")
        term.expect("fog at dawn")
        term.expect("Yo ho ho!")
        term.type("Dig for treasure at Skull Island\r")
        term.expect('dig_for_treasure(island="Skull Island") …')  # the live line, while it runs
        term.type("\x03")  # Ctrl-C: cancel the reply
        term.expect("cancelled (Ctrl-C again to quit)")
        term.expect("you>", count=term.screen.count("you>") + 1)  # the prompt comes back
        term.type("\x03")  # Ctrl-C at an empty prompt: quit
        status = term.close()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert status == 130, term.screen
    assert (tmp_path / "rtagent" / "chat_history").read_text().count("Tortuga") == 1


@pytest.mark.wheel
def test_demo_from_an_installed_wheel(tmp_path: Path) -> None:
    """A wheel built from the project ships the demo and the inspector page: `rtagent chat --demo` works without the repository."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("rtagent-*.whl"))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    assert (target / "rtagent" / "_inspect" / "static" / "inspector.js").is_file()
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)  # ahead of any editable install of the repository
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, rtagent._cli as c; print(c.__file__, file=sys.stderr); sys.exit(c.main())", "chat", "--demo"],
        input="How much for 3 bottles of rum?\n", capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(str(target))
    assert "rum_price(bottles=3) → 9 doubloons" in proc.stdout
