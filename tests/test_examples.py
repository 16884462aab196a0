"""Every example in examples/ runs to completion against the embedded local server (no key)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.py"))

# What each example's transcript must show (a tool call, a reply, a written file...).
EXPECT = {
    "pirate.py": ["⚙ get_weather", "⚙ rum_price", "Arr!"],
    "support.py": ["⚙ calculate", "395", "⚙ current_time", "⚙ open_ticket", "'priority': 'urgent'"],
    "voice.py": ["heard: (speech, 1.0 s)", "said:  Hello!", "wrote "],
    "sync_example.py": ["calculator> ", "42"],
    "browser_token.py": ["minted ek_", "club sandwich"],
    "travel.py": ["? refund", "not approved", "… looking at museums in Lisbon", "⚙ plan_trip → 3 days in Lisbon",
                  "An update: The background task plan_trip", "session total:", "user: Hi, I'm Ada"],
    "fleet.py": ["guest-42 runs on worker-", "⚙ weather", "Lima: 19°C", "session ended"],
    "mcp_tools.py": ["⚙ tide_times", "? approve sea_forecast on coastguard", "sea forecast returned Biscay"],
    "phone.py": ["answered", '⚙ opening_hours({"day":"Saturday"}) → 9:00 to 13:00', "caller pressed 2",
                 "caller pressed 1", "call ended: the call ended", "transferred to tel:+14155550123"],
}


def test_every_example_is_covered() -> None:
    """Each example file has expectations here, so a new example cannot go untested."""
    assert set(EXAMPLES) == set(EXPECT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run all examples at once (they are independent) and collect their results."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONIOENCODING"] = "utf-8"
    env["RTAGENT_NOTES_DB"] = str(tmp_path_factory.mktemp("notes") / "notes.sqlite3")
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(REPO / "examples" / name)],
            cwd=tmp_path_factory.mktemp("cwd"),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for name in EXAMPLES
    }
    results = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(runs: dict[str, subprocess.CompletedProcess[str]], name: str) -> None:
    """The example exits 0, says it uses the local server, and prints what it demonstrates."""
    result = runs[name]
    assert result.returncode == 0, result.stderr
    assert "OPENAI_API_KEY not set" in result.stderr
    for text in EXPECT[name]:
        assert text in result.stdout, result.stdout
