"""Library log records reach users only through their own logging setup."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import rtagent

REPO = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )


def test_package_logger_has_a_null_handler() -> None:
    """logging.getLogger("rtagent") carries a NullHandler and still propagates to the root."""
    logger = logging.getLogger("rtagent")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert logger.propagate
    assert rtagent.__name__ == "rtagent"


def test_warnings_are_silent_without_logging_setup() -> None:
    """With no logging configured, a library warning prints nothing (no last-resort handler)."""
    done = _run(
        "import logging, rtagent\n"
        "logging.getLogger('rtagent.session').warning('library warning')\n"
        "print('ok')\n"
    )
    assert done.stdout.strip() == "ok"
    assert done.stderr == ""


def test_warnings_reach_a_configured_root_handler() -> None:
    """Once the application configures logging, library records reach its handlers."""
    done = _run(
        "import logging, rtagent\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s %(levelname)s %(message)s')\n"
        "logging.getLogger('rtagent.session').warning('library warning')\n"
    )
    assert "rtagent.session WARNING library warning" in done.stderr
