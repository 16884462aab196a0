"""Process plumbing for the benchmark: server processes, client worker processes, stats."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OPENAI_API_KEY", "sk-bench")
    env.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    env.setdefault("LOGFIRE_IGNORE_NO_CONFIG", "1")
    return env


class ServerPool:
    """N benchmark server processes sharing one port (``SO_REUSEPORT``; the kernel spreads connections)."""

    def __init__(self, processes: int = 1) -> None:
        self.n = processes
        self.procs: list[subprocess.Popen[str]] = []
        self.port = 0

    def __enter__(self) -> ServerPool:
        for i in range(self.n):
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.server", "--port", str(self.port), "--reuse-port"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
            )
            self.procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("port "):
                self.__exit__(None, None, None)
                raise RuntimeError(f"bench server {i} failed to start: {line!r}")
            self.port = int(line.split()[1])
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def dump(self, tag: str = "*") -> dict[str, list[list[int]]]:
        """Collect (and clear) samples for ``tag`` from every server process."""
        merged: dict[str, list[list[int]]] = {}
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"dump {tag}\n")
            proc.stdin.flush()
            data = json.loads(proc.stdout.readline())
            for key, rows in data["samples"].items():
                merged.setdefault(key, []).extend(rows)
        return merged

    def __exit__(self, *exc: Any) -> None:
        for proc in self.procs:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.stdin.close()
            except (OSError, ValueError):
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def run_worker(spec: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run one client scenario in a fresh process; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps(spec)],
        capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"{spec['client']} {spec['scenario']} failed (rc={proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def import_time(statement: str, repeat: int = 5) -> float:
    """Median wall time of ``statement`` in a fresh interpreter (seconds)."""
    code = (
        "import time; t = time.perf_counter(); " + statement +
        "; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=_env(), cwd=ROOT, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return median(times)


def median(values: list[float]) -> float:
    return percentile(values, 50)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]
