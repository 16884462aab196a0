"""One job on one worker: from its delivery to its acknowledgement.

Shape::

    Worker's task group
    └── CallRun.run                 claims the call, then settles the message (shielded)
        └── task group
            ├── keep-alive          progress acks and claim refreshes; ownership lost: stop
            ├── control             requests on the call's control subject
            └── the session         accept (ringing calls), attach or open, publish events

How a job ends decides what happens to its message: the call ended (hang-up) or the
session was ended: ``ack``; the call is gone or the job can never run: ``term``; the
service could not be reached: ``nak`` with a delay (another try, maybe elsewhere); the
worker is draining past its deadline or shutting down: ``nak`` at once, so another worker
re-attaches now; another worker owns the call: nothing (the message is theirs).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc

from .. import _events as ev
from .._endpoint import Endpoint
from .._errors import (
    ConfigurationError,
    HandshakeError,
    ReconnectFailed,
    RTAgentError,
    SessionRefused,
    TransportError,
    first_error,
)
from .._runtime import RealtimeSession, connect
from ..calls import CallError, accept, hangup, refer
from ._feed import describe
from ._jobs import Job
from ._store import CallRecord, Claim, FleetHandles, NatsJournal, OwnershipLost

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from .._agent import Agent

__all__ = ["AgentChoice", "CallRun", "Outcome", "WorkerContext", "portable"]

logger = logging.getLogger("rtagent.worker")

Outcome = Literal["done", "failed", "retry", "handover", "lost"]
AgentChoice = Callable[[Job], "Agent"]
_KEEP_PARTS = {"input_text": "input_text", "output_text": "output_text",
               "input_audio": "input_text", "output_audio": "output_text"}
_HISTORY_ITEMS = 200


@dataclass(slots=True)
class WorkerContext:
    """What every job of one worker shares."""

    worker_id: str
    nc: NATS
    fleet: FleetHandles
    agent_for: AgentChoice
    endpoint: Endpoint
    handoffs: Mapping[str, Callable[[], Agent]] = field(default_factory=dict)
    connect_options: dict[str, Any] = field(default_factory=dict)


class CallRun:
    """Runs one delivered job to its end and settles its message."""

    def __init__(self, ctx: WorkerContext, msg: Msg) -> None:
        self._ctx = ctx
        self._msg = msg
        self._received = time.monotonic()
        self._lost = False

    async def run(self) -> None:
        msg, ctx = self._msg, self._ctx
        try:
            job = Job.decode(msg.data)
        except ConfigurationError as exc:
            logger.error("dropped a message that is not a job (%s): %s", msg.subject, exc)
            await msg.term()
            return
        try:
            claim = await Claim.take(ctx.fleet.registry, job.id, ctx.worker_id)
        except Exception as exc:
            logger.warning("could not claim %s %s (%r); offered again", job.kind, job.id, exc)
            await msg.nak(delay=ctx.fleet.settings.claim_ttl / 2)
            return
        if isinstance(claim, str):
            delay = ctx.fleet.settings.claim_ttl / 2
            logger.info("%s %s is run by worker %s; offered again in %.3gs", job.kind, job.id, claim, delay)
            await msg.nak(delay=delay)
            return
        outcome: Outcome = "handover"  # unless the job ends: cancelled by a drain or shutdown
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_alive, claim, tg.cancel_scope)
                outcome = await self._serve(job)
                tg.cancel_scope.cancel()
            if self._lost and outcome == "handover":
                outcome = "lost"
        except Exception as exc:
            logger.error("%s %s failed unexpectedly; offered again", job.kind, job.id,
                         exc_info=first_error(exc))
            outcome = "retry"
        finally:
            with anyio.CancelScope(shield=True):
                await self._settle(job, claim, outcome)

    def redelivered(self, msg: Msg) -> None:
        """The job was delivered again while this run goes on: keep the newest delivery
        alive and settle that one (the message is the same)."""
        logger.warning("a job was delivered again (%s) to the worker running it; carrying on", msg.subject)
        self._msg = msg

    async def _keep_alive(self, claim: Claim, scope: anyio.CancelScope) -> None:
        """Progress acks (the job is not redelivered) and claim refreshes (the call stays
        ours) while the job runs; a lost claim ends the job here at once, and so does a
        claim that could not be refreshed for longer than it lives (this worker is cut off
        from NATS, and another may be running the call by now)."""
        settings = self._ctx.fleet.settings
        period = min(settings.ack_wait, settings.claim_ttl) / 3
        refreshed = time.monotonic()
        while True:
            await anyio.sleep(period)
            try:
                await claim.refresh()  # one cut short is mended by the next (see Claim.refresh)
                refreshed = time.monotonic()
            except OwnershipLost as exc:
                logger.error("%s; this worker stops running it", exc)
                self._lost = True
                scope.cancel()
                return
            except Exception as exc:
                logger.warning("could not refresh the claim on %s: %r", claim.call_id, exc)
                if time.monotonic() - refreshed > settings.claim_ttl:
                    logger.error("the claim on %s expired unrefreshed; this worker stops running it",
                                 claim.call_id)
                    self._lost = True
                    scope.cancel()
                    return
            try:
                await self._msg.in_progress()
            except Exception as exc:
                logger.warning("could not acknowledge progress on %s: %r", claim.call_id, exc)

    async def _serve(self, job: Job) -> Outcome:
        """Run the job; how it ended (errors come out of task groups: sorted by the first)."""
        try:
            return await self._open(job)
        except Exception as group:
            exc = first_error(group)
            if isinstance(exc, (SessionRefused, ConfigurationError, CallError)):
                logger.error("%s %s cannot run: %s", job.kind, job.id, exc)
                await self._publish(job, {"type": "call.failed", "error": str(exc)})
                return "failed"
            if isinstance(exc, HandshakeError) and job.kind == "call" and exc.status_code == 404:
                logger.info("call %s is gone (404 on attach)", job.id)
                await self._publish(job, {"type": "call.ended", "reason": "the call is gone"})
                return "failed"
            if isinstance(exc, (HandshakeError, ReconnectFailed, TransportError)):
                logger.warning("%s %s: %s; offered again", job.kind, job.id, exc)
                return "retry"
            if isinstance(exc, OwnershipLost):
                logger.error("%s; this worker stops running it", exc)
                self._lost = True
                return "lost"
            raise

    async def _open(self, job: Job) -> Outcome:
        ctx = self._ctx
        record = await self._take_record(job)
        agent = ctx.agent_for(job)
        options: dict[str, Any] = dict(ctx.connect_options)
        if job.kind == "call":
            if not (job.accepted or record.accepted) and not await self._accept(job, agent):
                return "failed"
            if not record.accepted:
                record.accepted = True
                await record.save()
            options["call_id"] = job.id
        else:
            options["history"] = record.history or job.history
        async with connect(
            agent, endpoint=ctx.endpoint, journal=NatsJournal(record), **options
        ) as session:
            return await self._attached(job, session, record)

    async def _take_record(self, job: Job) -> CallRecord:
        """The call's journal, written first: a previous owner still holding an older
        revision fails from now on, not this worker (a write of theirs in between: again)."""
        for _ in range(3):
            record = await CallRecord.load(self._ctx.fleet.journal, job.id)
            try:
                await record.save()
                return record
            except OwnershipLost:
                await anyio.sleep(0.1)
        raise OwnershipLost(f"the journal of {job.id} keeps being written by another worker")

    async def _accept(self, job: Job, agent: Agent) -> bool:
        """Answer a ringing call; False if it is gone. Any other refusal means it was
        accepted already (by a worker that died before recording it): attach anyway."""
        try:
            await accept(job.id, agent, endpoint=self._ctx.endpoint)
        except CallError as exc:
            if exc.status_code == 404:
                logger.info("call %s is gone before it was accepted", job.id)
                await self._publish(job, {"type": "call.ended", "reason": "the call is gone"})
                return False
            logger.warning("accepting call %s was refused (%s); attaching anyway", job.id, exc)
        return True

    async def _attached(self, job: Job, session: RealtimeSession, record: CallRecord) -> Outcome:
        attempt = self._msg.metadata.num_delivered
        async with anyio.create_task_group() as tg:
            # Listen for control requests before anyone hears that the call started.
            control = await self._ctx.nc.subscribe(self._ctx.fleet.names.control(job.id))
            tg.start_soon(self._control, job, session, control)
            await self._publish(job, {
                "type": "call.started", "kind": job.kind, "delivery": attempt,
                "attach_seconds": round(time.monotonic() - self._received, 4),
                "queued_seconds": round(max(0.0, time.time() - job.submitted_at), 4),
            })
            logger.info("%s %s running (delivery %d)", job.kind, job.id, attempt)
            async for event in session:
                wire = describe(event)
                if wire is not None:
                    await self._publish(job, wire)
                if job.kind == "session" and isinstance(event, ev.ResponseDone):
                    await self._save_history(record, session)
            tg.cancel_scope.cancel()
        reason = session.ended or "ended"
        await self._publish(job, {"type": "call.ended", "reason": reason})
        logger.info("%s %s ended: %s", job.kind, job.id, reason)
        return "done"

    async def _save_history(self, record: CallRecord, session: RealtimeSession) -> None:
        record.history = portable(session.history)
        try:
            await record.save()
        except OwnershipLost:
            raise  # ends the job: another worker has it
        except Exception as exc:
            logger.warning("could not save the history of %s: %r", record.key, exc)

    # -- control -----------------------------------------------------------------------

    async def _control(self, job: Job, session: RealtimeSession, sub: Subscription) -> None:
        try:
            async for msg in sub.messages:
                reply = await self._do(job, session, msg.data)
                if msg.reply:
                    await msg.respond(json.dumps(reply).encode())
        finally:
            with anyio.CancelScope(shield=True):
                await sub.unsubscribe()

    async def _do(self, job: Job, session: RealtimeSession, data: bytes) -> dict[str, Any]:
        """Carry out one control request; the reply says whether it worked, and why not."""
        try:
            request = json.loads(data)
            if not isinstance(request, dict):
                raise ValueError("a control request is a JSON object")
            op = request.get("op")
            result = await self._op(job, session, str(op), request)
        except (ValueError, KeyError, TypeError, RTAgentError) as exc:
            error = first_error(exc)
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}
        return {"ok": True, "worker": self._ctx.worker_id, **result}

    async def _op(
        self, job: Job, session: RealtimeSession, op: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        endpoint = self._ctx.endpoint
        if op == "status":
            return {"kind": job.kind, "state": session.state}
        if op == "hangup":
            if job.kind == "call":
                await hangup(job.id, endpoint=endpoint)
            else:
                await session.aclose()
        elif op == "refer":
            if job.kind != "call":
                raise ValueError("only a call can be transferred")
            await refer(job.id, str(request["target_uri"]), endpoint=endpoint)
        elif op == "say":
            text = str(request["text"])
            await session.create_response(instructions=f"Say this to the user, in these words: {text}")
        elif op == "send_text":
            await session.send_text(str(request["text"]))
        elif op == "handoff":
            name = str(request["agent"])
            make = self._ctx.handoffs.get(name)
            if make is None:
                raise ValueError(f"no agent named {name!r} to hand off to (known: {sorted(self._ctx.handoffs)})")
            await session.handoff(make())
        else:
            raise ValueError(f"unknown op {op!r} (status, hangup, refer, say, send_text, handoff)")
        return {}

    # -- the end -----------------------------------------------------------------------

    async def _publish(self, job: Job, event: dict[str, Any]) -> None:
        event = {"call_id": job.id, "worker": self._ctx.worker_id, "time": time.time(), **event}
        try:
            await self._ctx.nc.publish(self._ctx.fleet.names.events(job.id), json.dumps(event).encode())
        except Exception as exc:
            logger.debug("could not publish an event of %s: %r", job.id, exc)

    async def _settle(self, job: Job, claim: Claim, outcome: Outcome) -> None:
        """The message first (an ended call is never run again), the claim before the
        message goes back (the next worker finds it free), the journal last; each step
        on its own, so one failing does not skip the others."""
        msg = self._msg
        if outcome == "lost":
            return  # another worker owns the call and its message now
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]]
        if outcome in ("done", "failed"):
            steps = [
                ("ack" if outcome == "done" else "term", msg.ack if outcome == "done" else msg.term),
                ("release the claim", claim.release),
                ("delete the journal", lambda: self._forget(job)),
            ]
        elif outcome == "retry":
            steps = [
                ("release the claim", claim.release),
                ("nak", lambda: msg.nak(delay=self._ctx.fleet.settings.claim_ttl)),
            ]
        else:  # handed over: another worker re-attaches now
            steps = [("release the claim", claim.release), ("nak", msg.nak)]
        for what, step in steps:
            try:
                await step()
            except Exception as exc:
                logger.error("could not %s of %s %s (%s): %r", what, job.kind, job.id, outcome, exc)
        if outcome == "handover":
            await self._publish(job, {"type": "call.handover"})

    async def _forget(self, job: Job) -> None:
        record = await CallRecord.load(self._ctx.fleet.journal, job.id)
        await record.delete()


def portable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation as another session can be seeded with it: messages as text (audio
    by its transcript), calls and their outputs; the last 200 items."""
    out: list[dict[str, Any]] = []
    for item in items[-_HISTORY_ITEMS:]:
        kind = item.get("type")
        if kind == "message":
            parts = []
            for part in item.get("content") or []:
                text = part.get("text", part.get("transcript"))
                wire = _KEEP_PARTS.get(part.get("type", ""))
                if wire is not None and isinstance(text, str) and text:
                    parts.append({"type": wire, "text": text})
            if parts and item.get("role") in ("user", "assistant", "system"):
                out.append({"type": "message", "role": item["role"], "content": parts})
        elif kind == "function_call":
            out.append({k: item[k] for k in ("type", "call_id", "name", "arguments") if k in item})
        elif kind == "function_call_output":
            out.append({k: item[k] for k in ("type", "call_id", "output") if k in item})
    # An output whose call fell off the front would be refused: start after it.
    calls = {i["call_id"] for i in out if i["type"] == "function_call"}
    while out and out[0]["type"] == "function_call_output" and out[0]["call_id"] not in calls:
        out.pop(0)
    return out
