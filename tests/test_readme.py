"""Every Python snippet in README.md runs and type-checks; the README opens with the install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otel_globals import reset_otel_globals

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str, bool, int]]:
    """(language, code, skipped, line number) of each fenced block, in order."""
    blocks = []
    for match in _FENCE.finditer(README):
        before = README[: match.start()].rstrip("\n").splitlines()
        skipped = bool(before) and before[-1].strip() == "<!-- skip-test -->"
        line = README.count("\n", 0, match.start()) + 1
        blocks.append((match.group(1), match.group(2), skipped, line))
    return blocks


PYTHON = [(code, line) for lang, code, skipped, line in _blocks() if lang == "python" and not skipped]
SKIPPED = [code for lang, code, skipped, _ in _blocks() if lang == "python" and skipped]


def test_first_block_is_the_two_command_quickstart() -> None:
    """The first fenced block: install-and-chat with no key, then the tests (CI runs the second)."""
    lang, code, _, _ = _blocks()[0]
    assert lang == "sh"
    assert code.splitlines() == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && rtagent chat examples/pirate.py",
        "pip install -e '.[dev]' && pytest",
    ]


def test_the_opening_works_from_an_installed_wheel() -> None:
    """Right after the quickstart the README says how to start from a wheel (chat --demo)."""
    opening = README.split("## Quickstart", 1)[0]
    assert "pip install rtagent" in opening and "rtagent chat --demo" in opening


def test_quickstart_is_short() -> None:
    """The quickstart snippet fits in 15 lines."""
    section = README.split("## Quickstart", 1)[1]
    code = _FENCE.search(section)
    assert code is not None and len(code.group(2).splitlines()) <= 15


def test_skipped_snippets_are_config_examples() -> None:
    """Snippets not run here are only configuration that needs a real key or endpoint."""
    assert SKIPPED
    for code in SKIPPED:
        compile(code, "<README>", "exec")
        assert "AsyncOpenAI(" in code or "azure_endpoint" in code


@pytest.fixture
def no_global_telemetry() -> Iterator[None]:
    """A snippet that sets OpenTelemetry's global providers does not leave them to later tests."""
    yield
    reset_otel_globals()


@pytest.mark.usefixtures("no_global_telemetry")
@pytest.mark.parametrize(("code", "line"), PYTHON, ids=[f"line-{line}" for _, line in PYTHON])
def test_snippet_runs(
    code: str, line: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snippet runs as pasted (offline: each starts its own local server) and prints something."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(REPO)  # snippets refer to plugins/ like a user in the repository would
    namespace: dict[str, Any] = {"__name__": f"readme_line_{line}"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
    assert capsys.readouterr().out.strip()


def test_snippets_type_check_strictly(tmp_path: Path) -> None:
    """Every Python snippet, skipped ones included, passes mypy --strict: events narrow, no casts."""
    pytest.importorskip("mypy")
    files = []
    for lang, code, _, line in _blocks():
        if lang == "python":
            path = tmp_path / f"readme_line_{line}.py"
            path.write_text(code, encoding="utf-8")
            files.append(str(path))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--cache-dir", str(tmp_path / ".cache"),
         "--no-error-summary", *files],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
