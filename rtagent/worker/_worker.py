"""The worker: pulls calls from the fleet's queue while it has free slots and runs them.

Capacity-aware pull: a worker fetches at most as many jobs as it has free slots, so it
never holds a call it cannot run (the others stay in the queue for other workers). On
:meth:`Worker.stop` (``SIGTERM`` for ``rtagent worker``) it stops pulling — jobs a fetch
in progress returns are handed back at once — and lets its calls finish for up to the
drain deadline; calls still running then are handed over (their messages are released,
and another worker re-attaches to them).

nats-py is asyncio-only, so a worker runs on asyncio (``anyio.run(worker.run)`` with the
default backend); the rest of its code is anyio.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from typing_extensions import Unpack

from .._agent import DEFAULT_MODEL
from .._endpoint import Endpoint, EndpointOptions
from .._errors import ConfigurationError
from .._redact import redact_url
from ._call import AgentChoice, CallRun, WorkerContext
from ._jobs import Job
from ._names import FleetNames
from ._store import FleetSettings, nats_error, open_fleet

if TYPE_CHECKING:
    from .._agent import Agent

__all__ = ["Worker"]

logger = logging.getLogger("rtagent.worker")


class Worker:
    """Runs the fleet's calls, as many at once as its capacity.

    Args:
        agent: the agent of every call, or a function of the :class:`Job` that returns
            one (it sees the job's ``metadata``, e.g. SIP headers).
        nats_url: the NATS server (``nats://host:4222``; several, comma-separated).
        capacity: calls this worker runs at once.
        drain_timeout: seconds :meth:`stop` lets running calls finish before handing
            them over to other workers.
        names: the fleet's names in NATS (its prefix).
        settings: the fleet's timings (used when this worker creates the stream).
        handoffs: agents a control request may hand a call to, by name.
        endpoint: where the Realtime service is (else from ``options``, as for
            ``connect()``: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``...).
        worker_id: this worker's name in the registry (default: host, pid and a suffix).
        connect_options: more options for each call's :func:`rtagent.connect`.
        pull_timeout: seconds one fetch waits for jobs (how soon ``stop`` is noticed).
        **options: endpoint options, as for ``connect()``.
    """

    def __init__(
        self,
        agent: Agent | AgentChoice,
        *,
        nats_url: str = "nats://127.0.0.1:4222",
        capacity: int = 10,
        drain_timeout: float = 30.0,
        names: FleetNames | None = None,
        settings: FleetSettings | None = None,
        handoffs: Mapping[str, Callable[[], Agent]] | None = None,
        endpoint: Endpoint | None = None,
        worker_id: str | None = None,
        connect_options: Mapping[str, Any] | None = None,
        pull_timeout: float = 1.0,
        **options: Unpack[EndpointOptions],
    ) -> None:
        from .._agent import Agent

        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._agent_for: AgentChoice = (lambda _job: agent) if isinstance(agent, Agent) else agent
        if endpoint is None:
            model = agent.model if isinstance(agent, Agent) and isinstance(agent.model, str) else DEFAULT_MODEL
            endpoint = Endpoint.resolve(default_model=model, **options)
        self._endpoint = endpoint
        self._url = nats_url
        self.capacity = capacity
        self.drain_timeout = drain_timeout
        self._names = names or FleetNames()
        self._settings = settings or FleetSettings()
        self._handoffs = dict(handoffs or {})
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self._connect_options = dict(connect_options or {})
        self._pull_timeout = pull_timeout
        self.running = 0
        """Jobs being run now (never more than ``capacity``)."""
        self.started = 0
        """Jobs started since the worker began."""
        self._stopping = anyio.Event()
        self._changed = anyio.Event()
        self._runs: dict[str, CallRun] = {}

    def __repr__(self) -> str:
        return f"<Worker {self.worker_id} running={self.running}/{self.capacity}>"

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called: the worker pulls nothing more and drains."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop pulling and drain: running calls finish (until ``drain_timeout``)."""
        if not self._stopping.is_set():
            logger.info("worker %s draining (%d running)", self.worker_id, self.running)
        self._stopping.set()
        self._wake()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Pull and run calls until :meth:`stop`, then drain. Needs asyncio (nats-py)."""
        import nats

        # Reconnect forever: NATS may start after the worker, or restart under it.
        nc = await nats.connect(
            self._url, name=f"rtagent-worker {self.worker_id}", max_reconnect_attempts=-1,
            error_cb=nats_error,
        )
        try:
            fleet = await open_fleet(nc.jetstream(), self._names, self._settings)
            sub = await fleet.js.pull_subscribe_bind(
                durable=self._names.consumer, stream=self._names.stream
            )
            ctx = WorkerContext(
                self.worker_id, nc, fleet, self._agent_for, self._endpoint,
                self._handoffs, self._connect_options,
            )
            logger.info("worker %s pulling from %s (capacity %d)", self.worker_id, redact_url(self._url), self.capacity)
            task_status.started()
            async with anyio.create_task_group() as tg:
                await self._pull(sub, ctx, tg)
                with anyio.move_on_after(self.drain_timeout):
                    while self.running:
                        await self._changed.wait()
                if self.running:
                    logger.warning("drain deadline: handing %d call(s) over", self.running)
                tg.cancel_scope.cancel()
            await sub.unsubscribe()
        finally:
            with anyio.CancelScope(shield=True):
                await nc.close()
        logger.info("worker %s stopped", self.worker_id)

    async def _pull(self, sub: Any, ctx: WorkerContext, tg: anyio.abc.TaskGroup) -> None:
        """Fetch jobs while there are free slots, until stopped."""
        while not self._stopping.is_set():
            free = self.capacity - self.running
            if free <= 0:
                await self._changed.wait()
                continue
            try:
                # One at a time: a batch fetch waits out its timeout for the rest of the
                # batch once one job has come, and that job (a ringing call) would wait.
                # stop() never cuts a fetch short: that could strand jobs until ack_wait.
                msgs = await sub.fetch(1, timeout=self._pull_timeout)
            except Exception as exc:
                if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
                    continue  # no job within pull_timeout (asyncio's TimeoutError before 3.11)
                logger.warning("fetching jobs failed: %r; retrying", exc)
                with anyio.move_on_after(1.0):
                    await self._stopping.wait()
                continue
            for msg in msgs:
                job_id = _job_id(msg)
                running = self._runs.get(job_id) if job_id is not None else None
                if running is not None:
                    # Delivered again while this worker still runs it (progress acks were
                    # late: NATS was away): the running call takes the new delivery.
                    running.redelivered(msg)
                elif self._stopping.is_set():
                    await msg.nak()  # hand it back: this worker is draining
                else:
                    self.running += 1
                    self.started += 1
                    run = CallRun(ctx, msg)
                    if job_id is not None:
                        self._runs[job_id] = run
                    tg.start_soon(self._job, run, job_id)

    async def _job(self, run: CallRun, job_id: str | None) -> None:
        try:
            await run.run()
        except Exception:
            logger.exception("a job failed unexpectedly")
        finally:
            if job_id is not None and self._runs.get(job_id) is run:
                del self._runs[job_id]
            self.running -= 1
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def _job_id(msg: Any) -> str | None:
    try:
        return Job.decode(msg.data).id
    except ConfigurationError:
        return None
