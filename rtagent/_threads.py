"""Worker threads for plain ``def`` tools: daemon threads that never hold the process open.

anyio's own worker threads are not daemons, so a sync tool that overran its timeout (and
was abandoned, as a timeout must not wait for it) kept the interpreter alive at exit until
the tool returned. These workers are daemon threads: an abandoned call finishes alone,
or dies with the process. Idle workers are reused and retire after a while; results go
back to the caller's event loop through its anyio token, so this works on asyncio and
trio alike. A tool that calls back into the event loop from its thread passes a token
(``anyio.from_thread.run_sync(fn, token=...)``, the token taken with
``anyio.lowlevel.current_token()`` on the loop), since this is not an anyio worker thread.

The hand-off. A worker thread needs the GIL to run a Python tool, and a busy event loop
holds it: the loop drops it only for a system call and takes it straight back, and a
waiting thread forces a switch only after the switch interval (5 ms), restarted each
time the loop drops and retakes it. Measured under 500 sessions, a worker waited 0.7 ms
(median) to 14 ms (p99) to start, and as long again to hand its result back through the
loop. So the loop does not compete: after queuing a call it blocks on a lock for at most
``HAND_OFF`` seconds, which releases the GIL to the worker at once, and a quick tool's
result is read right there (no loop wake-up, no thread waiting on the loop). A tool still
running after ``HAND_OFF`` goes on alone and wakes the caller's task when it is done, so
a tool that blocks (sleeps, waits on I/O) costs the other sessions at most ``HAND_OFF`` of
the loop's time. (One that computes in Python shares the GIL with the loop as any thread
does, in turns of the switch interval.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["HAND_OFF", "run_in_daemon_thread"]

logger = logging.getLogger("rtagent.tools")

_IDLE_SECONDS = 10.0
HAND_OFF = 0.001
"""Seconds the event loop waits for a sync tool before it carries on without it."""

_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_lock = threading.Lock()
_idle = 0


class _Job:
    """One call for a worker thread, and the way its outcome comes back."""

    __slots__ = ("call", "finished", "outcome", "wake")

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.outcome: tuple[bool, Any] | None = None
        self.finished = threading.Lock()
        self.finished.acquire()  # released by the worker once ``outcome`` is set
        self.wake: Callable[[], None] | None = None
        """Set (under ``_lock``) when the caller stopped waiting for the hand-off."""

    def run(self) -> None:
        """In the worker thread: run the call, then release or wake the caller."""
        try:
            outcome: tuple[bool, Any] = (True, self.call())
        except BaseException as exc:
            outcome = (False, exc)
        with _lock:
            self.outcome = outcome
            wake = self.wake
        self.finished.release()
        if wake is not None:
            # The caller's event loop may be gone (the call was abandoned at exit): ignore that.
            with contextlib.suppress(Exception):
                wake()

    def result(self) -> Any:
        assert self.outcome is not None
        ok, value = self.outcome
        if ok:
            return value
        raise value


async def run_in_daemon_thread(call: Callable[[], Any], *, hand_off: float = HAND_OFF) -> Any:
    """Run ``call()`` in a daemon worker thread and return (or raise) what it does.

    The event loop blocks for at most ``hand_off`` seconds waiting for the result (see the
    module docstring), then waits for it asynchronously. Cancellation (a timeout, an
    interruption) returns at once and abandons the call: the thread finishes alone and its
    result is dropped.
    """
    job = _Job(call)
    _submit(job.run)
    if job.finished.acquire(timeout=hand_off):
        return job.result()
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    with _lock:
        if job.outcome is None:  # still running: the worker wakes this task when done
            job.wake = functools.partial(anyio.from_thread.run_sync, done.set, token=token)
        else:
            done.set()
    await done.wait()
    return job.result()


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
