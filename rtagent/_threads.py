"""Worker threads for plain ``def`` tools: daemon threads that never hold the process open.

anyio's own worker threads are not daemons, so a sync tool that overran its timeout (and
was abandoned, as a timeout must not wait for it) kept the interpreter alive at exit until
the tool returned. These workers are daemon threads: an abandoned call finishes alone,
or dies with the process. Idle workers are reused and retire after a while; results go
back to the caller's event loop through its anyio token, so this works on asyncio and
trio alike. A tool that calls back into the event loop from its thread passes a token
(``anyio.from_thread.run_sync(fn, token=...)``, the token taken with
``anyio.lowlevel.current_token()`` on the loop), since this is not an anyio worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["run_in_daemon_thread"]

logger = logging.getLogger("rtagent.tools")

_IDLE_SECONDS = 10.0

_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_lock = threading.Lock()
_idle = 0


async def run_in_daemon_thread(call: Callable[[], Any]) -> Any:
    """Run ``call()`` in a daemon worker thread and return (or raise) what it does.

    Cancellation (a timeout, an interruption) returns at once and abandons the call: the
    thread finishes alone and its result is dropped.
    """
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    outcome: list[Any] = []

    def job() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:
            outcome.append((False, exc))
        # The caller's event loop may be gone (the call was abandoned at exit): ignore that.
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(done.set, token=token)

    _submit(job)
    await done.wait()
    ok, value = outcome[0]
    if ok:
        return value
    raise value


def _submit(job: Callable[[], None]) -> None:
    global _idle
    with _lock:
        if _idle:
            _idle -= 1
            start = False
        else:
            start = True
    _jobs.put(job)
    if start:
        threading.Thread(target=_work, name="rtagent tool worker", daemon=True).start()


def _work() -> None:
    global _idle
    while True:
        try:
            job = _jobs.get(timeout=_IDLE_SECONDS)
        except queue.Empty:
            with _lock:
                if _jobs.empty() and _idle > 0:
                    _idle -= 1
                    return
            continue
        try:
            job()
        except Exception:  # job() catches everything itself; belt and braces
            logger.exception("tool worker failed")
        with _lock:
            _idle += 1
