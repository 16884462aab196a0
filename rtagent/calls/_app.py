"""The phone app: an ASGI application (Starlette) that answers incoming SIP calls with an agent.

``POST /webhook`` receives OpenAI's ``realtime.call.incoming`` webhooks. Each verified call
is accepted with the agent a factory chooses (it sees the SIP headers; returning None
rejects the call), then attached to by ``call_id`` and run for the life of the call, in
the app's own task group (started by its lifespan). Duplicate deliveries of one webhook
(the same ``webhook-id``) are answered with success and start nothing twice. Starlette
and uvicorn are asyncio-only here in practice (uvicorn), which is fine: the app's own
code uses anyio.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typing_extensions import Unpack

from .._agent import DEFAULT_MODEL
from .._endpoint import Endpoint, EndpointOptions
from .._errors import ConfigurationError
from .._runtime import connect
from ._rest import accept, reject
from ._webhooks import IncomingCall, WebhookError, verify_webhook

if TYPE_CHECKING:
    from .._agent import Agent

__all__ = ["AgentFactory", "CallQueue", "phone_app"]

logger = logging.getLogger("rtagent.calls")

AgentFactory = Callable[[IncomingCall], "Agent | Awaitable[Agent | None] | None"]
"""Chooses the agent for a call from its SIP headers; None rejects the call."""
CallHandler = Callable[[IncomingCall], Awaitable[None]]


class CallQueue(Protocol):
    """Where the app queues calls for workers elsewhere (e.g. :class:`rtagent.worker.FleetClient`)."""

    async def submit_incoming(self, call: IncomingCall) -> None:
        """Queue the call durably; raising makes the webhook be delivered again."""
        ...

    async def aclose(self) -> None:
        """Release the queue's connections (when the app shuts down)."""
        ...

_SEEN = 4096  # webhook ids remembered to answer redeliveries


def phone_app(
    agent: Agent | AgentFactory | None = None,
    *,
    webhook_secret: str | None = None,
    path: str = "/webhook",
    on_call: CallHandler | None = None,
    queue: CallQueue | None = None,
    endpoint: Endpoint | None = None,
    connect_options: Mapping[str, Any] | None = None,
    **options: Unpack[EndpointOptions],
) -> Starlette:
    """An ASGI app that answers each incoming call with an agent and runs it until hang-up.

    Args:
        agent: the agent for every call, or a factory that sees the :class:`IncomingCall`
            (its SIP headers) and returns the agent, or None to reject the call.
        webhook_secret: the signing secret (default ``OPENAI_WEBHOOK_SECRET``).
        path: where the webhooks arrive.
        on_call: handle a verified call yourself instead, in the app's task group after
            the webhook is answered; ``agent`` is then not used.
        queue: queue each verified call for a worker fleet instead (``agent`` is not
            used): the webhook is answered once the call is queued, and with 503 if it
            could not be, so that it is delivered again.
        endpoint: where the Calls API and the sideband are (else from ``options``).
        connect_options: more options for :func:`rtagent.connect` (retry, prices...).
        **options: endpoint options, as for ``connect()`` (``api_key``, ``base_url``...).

    Raises:
        ConfigurationError: no webhook secret, or no agent, ``on_call`` or ``queue``.
    """
    secret = webhook_secret or os.environ.get("OPENAI_WEBHOOK_SECRET")
    if not secret:
        raise ConfigurationError("no webhook secret: pass webhook_secret=... or set OPENAI_WEBHOOK_SECRET")
    if agent is None and on_call is None and queue is None:
        raise ConfigurationError("phone_app needs an agent, on_call or queue")
    calls = _Calls(agent, endpoint, options, dict(connect_options or {}))
    handler = on_call or calls.answer
    seen: OrderedDict[str, None] = OrderedDict()
    group: list[anyio.abc.TaskGroup] = []

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            event = verify_webhook(body, dict(request.headers), secret)
        except WebhookError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if event.id in seen:
            return JSONResponse({"status": "duplicate"})  # a redelivery: started already
        seen[event.id] = None
        while len(seen) > _SEEN:
            seen.popitem(last=False)
        if not isinstance(event, IncomingCall):
            return JSONResponse({"status": "ignored", "type": event.type})
        if queue is not None:
            try:
                await queue.submit_incoming(event)
            except Exception as exc:
                seen.pop(event.id, None)  # not handled: its redelivery must be
                logger.error("could not queue call %s: %r", event.call_id, exc)
                return JSONResponse({"error": "could not queue the call"}, status_code=503)
            return JSONResponse({"status": "queued", "call_id": event.call_id})
        group[0].start_soon(_guarded, handler, event, name=f"rtagent call {event.call_id}")
        return JSONResponse({"status": "accepted", "call_id": event.call_id})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "calls": calls.running})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            group.append(tg)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()  # shutting down: calls in progress end with the app
                if queue is not None:
                    with anyio.CancelScope(shield=True):
                        await queue.aclose()

    return Starlette(
        routes=[Route(path, webhook, methods=["POST"]), Route("/healthz", health)],
        lifespan=lifespan,
    )


async def _guarded(handler: CallHandler, call: IncomingCall) -> None:
    try:
        await handler(call)
    except Exception:
        logger.exception("call %s failed", call.call_id)


class _Calls:
    """Accept, attach, run until hang-up: the default way to handle a call."""

    def __init__(
        self,
        agent: Agent | AgentFactory | None,
        endpoint: Endpoint | None,
        options: EndpointOptions,
        connect_options: dict[str, Any],
    ) -> None:
        self._agent = agent
        self._endpoint = endpoint
        self._options = options
        self._connect = connect_options
        self.running = 0

    async def answer(self, call: IncomingCall) -> None:
        agent = await self._choose(call)
        endpoint = self._endpoint or Endpoint.resolve(
            default_model=DEFAULT_MODEL if agent is None or not isinstance(agent.model, str)
            else agent.model,
            **self._options,
        )
        if agent is None:
            logger.info("call %s rejected by the agent factory", call.call_id)
            await reject(call.call_id, endpoint=endpoint)
            return
        await accept(call.call_id, agent, endpoint=endpoint)
        self.running += 1
        try:
            async with connect(agent, call_id=call.call_id, endpoint=endpoint, **self._connect) as session:
                logger.info("call %s answered", call.call_id)
                async for _event in session:
                    pass  # the session ends when the call does
            logger.info("call %s ended: %s", call.call_id, session.ended or "closed")
        finally:
            self.running -= 1

    async def _choose(self, call: IncomingCall) -> Agent | None:
        from .._agent import Agent

        if self._agent is None or isinstance(self._agent, Agent):
            return self._agent
        chosen = self._agent(call)
        if inspect.isawaitable(chosen):
            chosen = await chosen
        return chosen
