"""`rtagent chat` and `rtagent token`: transcripts, voice files and one-line error paths."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from rtagent._chat import ChatOptions, run_chat
from rtagent._cli import main
from rtagent._loading import load_agent
from rtagent.local import LocalRealtimeServer, sine_pcm16

REPO = Path(__file__).resolve().parent.parent
PIRATE = str(REPO / "examples" / "pirate.py")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def server_with_key() -> Iterator[LocalRealtimeServer]:
    """A local server requiring the key "right", running in a background thread."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        LocalRealtimeServer(api_key="right")
    ) as server:
        yield server


_PROGRESS = ("rtagent: connecting to ", "rtagent: connection attempt ")


def _one_error_line(err: str) -> str:
    """The one error line, after any lines about connection attempts."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(_PROGRESS)]
    assert len(lines) == 1, err
    assert lines[0].startswith("rtagent: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_pirate_through_piped_stdin() -> None:
    """The README's first command, with piped input: a tool call and a pirate reply, exit 0."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "rtagent", "chat", "examples/pirate.py"],
        input="Ahoy!\nWhat's the weather in Tortuga?\nHow much for 3 bottles of rum?\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        env={**env, "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "you> What's the weather in Tortuga?" in out
    assert '⚙ get_weather(port="Tortuga") → fog at dawn' in out
    assert "⚙ rum_price(bottles=3) → 9 doubloons" in out
    assert "assistant> Ahoy, matey!" in out
    assert "Arr!" in out and "Yo ho ho!" in out
    # One line says the local server is used; nothing else on stderr.
    assert proc.stderr.count("\n") == 1
    assert "OPENAI_API_KEY is not set" in proc.stderr
    assert "embedded local server" in proc.stderr


@pytest.mark.usefixtures("no_key")
async def test_run_chat_in_process_shows_tool_errors_and_durations() -> None:
    """run_chat streams replies and shows a failing tool's error on its line, on either backend."""
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("What is the weather in Lima?\n\nHello\n")
    with anyio.fail_after(20):
        status = await run_chat(
            load_agent(PIRATE), ChatOptions(), stdin=stdin, stdout=out, stderr=err
        )
    assert status == 0
    lines = out.getvalue().splitlines()
    tool_line = next(line for line in lines if "get_weather" in line)
    # A StringIO has no encoding, so the ASCII symbols are used.
    assert tool_line.startswith('  * get_weather(port="Lima") x No news from Lima')
    assert tool_line.endswith(" ms)")
    assert lines[-1] == "assistant> Ahoy, matey! How can I help ye today?"
    assert "--local given" in err.getvalue()


@pytest.mark.usefixtures("no_key")
def test_audio_in_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--audio-in sends a stereo 44.1 kHz WAV as one turn; --audio-out writes the spoken reply."""
    question, answer = tmp_path / "q.wav", tmp_path / "a.wav"
    mono = sine_pcm16(300, rate=44100)
    with wave.open(str(question), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"".join(mono[i : i + 2] * 2 for i in range(0, len(mono), 2)))
    assert main(["chat", PIRATE, "--audio-in", str(question), "--audio-out", str(answer)]) == 0
    out = capsys.readouterr().out
    assert "you> [0.3 s of audio]" in out
    assert "assistant> Ahoy, matey!" in out  # the audio transcript, streamed
    with wave.open(str(answer), "rb") as r:
        assert (r.getnchannels(), r.getframerate()) == (1, 24000)
        assert r.getnframes() > 0


@pytest.mark.usefixtures("no_key")
def test_plugins_option_works_for_an_agent_with_tool_methods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rtagent chat AGENT --plugins DIR` adds the folder's tools next to the agent's @tool methods."""
    (tmp_path / "harbour.py").write_text(
        "from rtagent import tool\n\n"
        "@tool\n"
        "def ship_count() -> str:\n"
        '    """How many ships are in the harbour."""\n'
        "    return '7 ships in the harbour'\n"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("What's the weather in Tortuga?\nship count, please\n"))
    assert main(["chat", PIRATE, "--plugins", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'get_weather(port="Tortuga")' in out  # the agent's own @tool method
    assert "ship_count()" in out and "7 ships in the harbour" in out  # the plugin's tool


@pytest.mark.usefixtures("no_key")
def test_token_with_no_key_is_a_local_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """`rtagent token` with no key mints with the embedded server and says it is local."""
    assert main(["token", PIRATE, "--expires-in", "60"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["value"].startswith("ek_")
    assert data["local"] is True
    assert [t["name"] for t in data["session"]["tools"]] == ["get_weather", "rum_price"]
    assert "local secret" in captured.err


@pytest.mark.usefixtures("no_key")
@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["chat", "no/such/agent.py"], "no such agent file: no/such/agent.py", 2),
        (["chat", "{noagent}"], "defines no Agent subclass", 2),
        (["chat", PIRATE, "--audio-in", "{badwav}"], "bad.wav: cannot read as WAV: not a WAV file", 2),
        (["chat", PIRATE, "--mic", "--audio-in", "x.wav"], "cannot be combined", 2),
        (["chat", PIRATE, "--azure-endpoint", "https://x.openai.azure.com"], "needs --azure-deployment", 2),
        (
            ["chat", PIRATE, "--url", "ws://127.0.0.1:9/v1/realtime", "--retries", "2"],
            "could not connect after 2 attempt(s)",
            1,
        ),
    ],
    ids=["bad-agent-path", "no-agent", "unreadable-wav", "conflicting-options", "azure-without-deployment", "unreachable"],
)
def test_error_paths_print_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str, status: int
) -> None:
    """Each failure prints one clear line on stderr and exits non-zero."""
    noagent = tmp_path / "noagent.py"
    noagent.write_text("x = 1\n")
    badwav = tmp_path / "bad.wav"
    badwav.write_bytes(b"definitely not RIFF data")
    argv = [a.format(noagent=noagent, badwav=badwav) for a in argv]
    assert main(argv) == status
    assert message in _one_error_line(capsys.readouterr().err)


def test_bad_key_is_rejected(
    server_with_key: LocalRealtimeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key the server refuses (an error event, then close 3000) ends with one line, not a retry loop."""
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    assert main(["chat", PIRATE, "--url", server_with_key.url]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "refused the session (invalid_api_key): Incorrect API key provided" in line
    assert len(server_with_key.connections) == 1  # upgraded, refused, never retried


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --debug a failing chat prints the traceback instead of one line."""
    assert main(["chat", str(tmp_path / "missing.py"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`rtagent chat --help` documents the connection and voice options."""
    with pytest.raises(SystemExit) as info:
        main(["chat", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--local", "--url", "--model", "--azure-endpoint", "--audio-in", "--audio-out", "--mic", "--plugins", "--retries"):
        assert option in out


@pytest.mark.usefixtures("no_key")
async def test_an_audio_delta_that_is_not_base64_costs_the_chat_one_chunk(tmp_path: Path) -> None:
    """The chat decodes spoken replies for --audio-out itself: a delta that is not valid
    base64 is skipped (logged), the reply and the file are complete otherwise."""
    from rtagent import Endpoint
    from rtagent.local import Faults

    bad = json.dumps({"type": "response.output_audio.delta", "event_id": "evt_bad",
                      "response_id": "resp_x", "item_id": "item_x", "output_index": 0,
                      "content_index": 0, "delta": "not base64 !!"})
    answer = tmp_path / "a.wav"
    out, err = io.StringIO(), io.StringIO()
    faults = Faults(inject_after=[("response.output_audio.delta", bad)])
    async with LocalRealtimeServer(faults=faults) as server:
        endpoint = Endpoint.resolve(url=server.url, api_key="sk-test")
        with anyio.fail_after(20):
            status = await run_chat(load_agent(PIRATE), ChatOptions(endpoint=endpoint, audio_out=answer),
                                    stdin=io.StringIO("Hello\n"), stdout=out, stderr=err)
    assert status == 0
    assert out.getvalue().splitlines()[-1] == "assistant> Ahoy, matey! How can I help ye today?"
    with wave.open(str(answer), "rb") as r:
        assert r.getnframes() > 0
