"""The application's side of a fleet: submit calls and sessions, control them, follow
their events, find who runs them."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import RTAgentError
from ._jobs import Job
from ._names import FleetNames, check_id
from ._store import FleetHandles, FleetSettings, nats_error, open_fleet, owner_of

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from ..calls import IncomingCall

__all__ = ["FleetClient", "FleetError", "submit"]

logger = logging.getLogger("rtagent.worker")


class FleetError(RTAgentError):
    """A control request failed: no worker runs the call, or the worker refused."""


class FleetClient:
    """Submits work to a fleet and talks to the workers that run it.

    Use it as ``async with FleetClient(url) as fleet:``; it connects on first use
    otherwise (close it with :meth:`aclose`). It also serves as the ``queue`` of
    :func:`rtagent.calls.phone_app`, which then only queues incoming calls for workers.

    Args:
        nats_url: the NATS server (several, comma-separated).
        names: the fleet's names in NATS (its prefix).
        settings: the fleet's timings (used when this client creates the stream).
    """

    def __init__(
        self,
        nats_url: str = "nats://127.0.0.1:4222",
        *,
        names: FleetNames | None = None,
        settings: FleetSettings | None = None,
    ) -> None:
        self._url = nats_url
        self.names = names or FleetNames()
        self._settings = settings or FleetSettings()
        self._nc: NATS | None = None
        self._fleet: FleetHandles | None = None
        self._lock = anyio.Lock()

    async def __aenter__(self) -> FleetClient:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        nc, self._nc, self._fleet = self._nc, None, None
        if nc is not None:
            with anyio.CancelScope(shield=True):
                await nc.close()

    async def _open(self) -> tuple[NATS, FleetHandles]:
        async with self._lock:
            if self._nc is None or self._fleet is None or self._nc.is_closed:
                import nats

                # A few quick attempts: a caller (a webhook) waits on this. A connection
                # that is lost for good later is opened again on the next use.
                nc = await nats.connect(
                    self._url, name="rtagent fleet client", connect_timeout=2,
                    max_reconnect_attempts=3, reconnect_time_wait=0.5, error_cb=nats_error,
                )
                try:
                    self._fleet = await open_fleet(nc.jetstream(), self.names, self._settings)
                except BaseException:
                    await nc.close()
                    raise
                self._nc = nc
            return self._nc, self._fleet

    # -- submitting --------------------------------------------------------------------

    async def submit(
        self, call_id: str, *, accepted: bool = False, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """Queue a SIP/WebRTC call for a worker; True if queued, False for a duplicate.

        ``accepted``: the call is already live (e.g. a browser call); otherwise it is
        ringing and the worker accepts it. The ``call_id`` is the message id, so the
        same call submitted again (a webhook delivered twice) is queued once.
        """
        return await self._put(Job(id=call_id, accepted=accepted, metadata=dict(metadata or {})))

    async def start_session(
        self,
        session_id: str,
        *,
        history: Iterable[Mapping[str, Any]] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue a WebSocket session (no SIP) for a worker, seeded with ``history``.

        Talk to it with :meth:`send_text`, follow it with :meth:`events`, end it with
        :meth:`hangup`. If its worker dies, another continues it from its journal.
        """
        job = Job(id=session_id, kind="session", history=[dict(i) for i in history],
                  metadata=dict(metadata or {}))
        return await self._put(job)

    async def submit_incoming(self, call: IncomingCall) -> None:
        """Queue an incoming call from a webhook (the ``queue`` of ``phone_app``)."""
        queued = await self.submit(call.call_id, metadata={"sip_headers": [list(h) for h in call.sip_headers]})
        logger.info("call %s %s", call.call_id, "queued" if queued else "was queued already")

    async def _put(self, job: Job) -> bool:
        _, fleet = await self._open()
        ack = await fleet.js.publish(
            self.names.jobs, job.encode(), headers={"Nats-Msg-Id": job.id}
        )
        return not ack.duplicate

    # -- control -----------------------------------------------------------------------

    async def control(
        self, call_id: str, op: str, *, timeout: float = 5.0, **fields: Any  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send a control request to the worker that runs ``call_id``; its reply.

        Raises:
            FleetError: no worker runs the call, it did not answer in time, or it
                refused (the reply's error says why).
        """
        import nats.errors

        nc, _ = await self._open()
        payload = json.dumps({"op": op, **fields}).encode()
        try:
            msg = await nc.request(self.names.control(call_id), payload, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise FleetError(f"no worker runs {call_id}") from None
        except nats.errors.TimeoutError:
            raise FleetError(f"the worker running {call_id} did not answer within {timeout}s") from None
        reply = json.loads(msg.data)
        if not reply.get("ok"):
            raise FleetError(f"{op} on {call_id} failed: {reply.get('error')}")
        return dict(reply)

    async def hangup(self, call_id: str) -> None:
        """End the call (Calls API hang-up), or end the WebSocket session."""
        await self.control(call_id, "hangup")

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer the call (SIP REFER), e.g. to ``"tel:+14155550123"``."""
        await self.control(call_id, "refer", target_uri=target_uri)

    async def say(self, call_id: str, text: str) -> None:
        """Have the agent say ``text`` to the caller now."""
        await self.control(call_id, "say", text=text)

    async def send_text(self, call_id: str, text: str) -> None:
        """Add a user message and ask for a response (a WebSocket session's input)."""
        await self.control(call_id, "send_text", text=text)

    async def handoff(self, call_id: str, agent: str) -> None:
        """Hand the call to one of the worker's ``handoffs`` agents, by name."""
        await self.control(call_id, "handoff", agent=agent)

    async def owner(self, call_id: str) -> str | None:
        """The id of the worker running ``call_id`` (from the registry), or None."""
        _, fleet = await self._open()
        return await owner_of(fleet.registry, check_id(call_id))

    @asynccontextmanager
    async def events(
        self, call_id: str | None = None
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Follow a call's events (every call's with None): ``async with
        fleet.events(id) as events: async for e in events: ...`` (subscribe before
        submitting to see ``call.started``). Each event names its ``call_id``."""
        nc, _ = await self._open()
        sub = await nc.subscribe(self.names.events(call_id))

        async def iterate() -> AsyncIterator[dict[str, Any]]:
            async for msg in sub.messages:
                try:
                    yield json.loads(msg.data)
                except ValueError:
                    logger.warning("skipped an unreadable event of %s", call_id)

        try:
            yield iterate()
        finally:
            with anyio.CancelScope(shield=True):
                await sub.unsubscribe()


async def submit(
    call_id: str,
    nats_url: str = "nats://127.0.0.1:4222",
    *,
    accepted: bool = False,
    names: FleetNames | None = None,
) -> bool:
    """Queue one call for the fleet (see :meth:`FleetClient.submit`)."""
    async with FleetClient(nats_url, names=names) as fleet:
        return await fleet.submit(call_id, accepted=accepted)
