"""The worker fleet, in one process: real NATS server, local Realtime server, WebSocket
sessions queued as jobs (asyncio only: nats-py is asyncio-only).

Killed and drained worker processes are in test_fleet.py (``-m fleet``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from fleet import FleetAgent, FleetBrain, eventually, following, nats_server

from rtagent import ConfigurationError
from rtagent.local import LocalRealtimeServer
from rtagent.worker import FleetClient, FleetError, FleetNames, FleetSettings, Job, Worker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Support(FleetAgent):
    instructions = "You are support."


@asynccontextmanager
async def fleet_env() -> AsyncIterator[tuple[str, LocalRealtimeServer]]:
    async with nats_server() as url, LocalRealtimeServer(brain=FleetBrain()) as realtime:
        yield url, realtime


def make_worker(url: str, realtime: LocalRealtimeServer, **options: Any) -> Worker:
    options.setdefault("capacity", 2)
    return Worker(
        FleetAgent(), nats_url=url, base_url=realtime.http_url, api_key="sk-test",
        pull_timeout=0.2, **options,
    )


async def stream_messages(fleet: FleetClient) -> tuple[int, int]:
    """(messages in the job stream, of which not yet delivered)."""
    _, handles = await fleet._open()
    stream = await handles.js.stream_info(fleet.names.stream)
    consumer = await handles.js.consumer_info(fleet.names.stream, fleet.names.consumer)
    return stream.state.messages, consumer.num_pending


async def _drained(fleet: FleetClient) -> bool:
    return await stream_messages(fleet) == (0, 0)


async def test_a_session_job_runs_answers_and_is_acknowledged_at_its_end() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime)
        await tg.start(worker.run)
        async with FleetClient(url) as fleet, following(fleet, "s1") as log:
            assert await fleet.start_session("s1")
            assert not await fleet.start_session("s1")  # the same id again: queued once
            started = await log.wait("call.started")
            assert started["worker"] == worker.worker_id and started["delivery"] == 1
            assert await fleet.owner("s1") == worker.worker_id
            await fleet.send_text("s1", "lookup a1")
            done = await log.wait_for(lambda e: e["type"] == "transcript"
                                      and e["text"].startswith("done"))
            assert done["text"] == "done: a1 is in stock"
            await log.wait("usage", count=2)
            kinds = [e["type"] for e in log.events]
            assert kinds.index("tool.started") < kinds.index("tool.finished") < kinds.index("transcript")
            status = await fleet.control("s1", "status")
            assert status["state"] == "open" and status["kind"] == "session"
            await fleet.hangup("s1")
            ended = await log.wait("call.ended")
            assert ended["call_id"] == "s1"
            await eventually(lambda: worker.running == 0)
            await eventually(lambda: _drained(fleet))
            assert await fleet.owner("s1") is None
        assert worker.started == 1
        worker.stop()


async def test_capacity_is_never_exceeded_and_the_rest_waits_in_the_queue() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime, capacity=2)
        await tg.start(worker.run)
        names = [f"cap{n}" for n in range(5)]
        async with FleetClient(url) as fleet, following(fleet) as log:
            for name in names:
                await fleet.start_session(name)
            await log.wait("call.started", count=2)
            await anyio.sleep(0.5)  # time for a third to start, were capacity not respected
            assert worker.running == 2 and len(log.all("call.started")) == 2
            assert await stream_messages(fleet) == (5, 3)
            for n in range(5):
                started = [e["call_id"] for e in log.all("call.started")]
                ended = [e["call_id"] for e in log.all("call.ended")]
                assert len(started) - len(ended) <= 2 and worker.running <= 2
                victim = next(c for c in started if c not in ended)
                await fleet.hangup(victim)
                await log.wait("call.ended", victim)
                if n < 3:
                    await log.wait("call.started", count=n + 3)
            assert sorted(e["call_id"] for e in log.all("call.started")) == names
            await eventually(lambda: _drained(fleet))
        worker.stop()


async def test_a_message_that_is_not_a_job_is_dropped_and_the_worker_goes_on() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime)
        await tg.start(worker.run)
        async with FleetClient(url) as fleet, following(fleet, "ok1") as log:
            _, handles = await fleet._open()
            await handles.js.publish(fleet.names.jobs, b"\xff not json")
            await handles.js.publish(fleet.names.jobs, b'{"v": 1, "id": "bad id!"}')
            await fleet.start_session("ok1")
            await log.wait("call.started")
            await fleet.hangup("ok1")
            await log.wait("call.ended")
            await eventually(lambda: _drained(fleet))  # the bad ones were terminated, not redelivered
        worker.stop()


async def test_a_job_that_cannot_be_claimed_is_offered_again_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The registry cannot be written (its bucket is gone): the job goes back to the queue
    and runs once the registry is there again."""
    settings = FleetSettings(claim_ttl=1.0)
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime, settings=settings)
        await tg.start(worker.run)
        async with FleetClient(url, settings=settings) as fleet, following(fleet, "c1") as log:
            _, handles = await fleet._open()
            await handles.js.delete_key_value(fleet.names.registry)
            await fleet.start_session("c1")
            await eventually(lambda: "could not claim session c1" in caplog.text)
            await handles.js.create_key_value(bucket=fleet.names.registry, ttl=1.0, history=1)
            started = await log.wait("call.started")
            assert started["delivery"] >= 2
            await fleet.hangup("c1")
            await log.wait("call.ended")
            await eventually(lambda: _drained(fleet))
        worker.stop()


async def test_control_requests_fail_clearly() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime, handoffs={"support": Support})
        await tg.start(worker.run)
        async with FleetClient(url) as fleet, following(fleet, "c1") as log:
            with pytest.raises(FleetError, match="no worker runs nobody"):
                await fleet.hangup("nobody")
            await fleet.start_session("c1")
            await log.wait("call.started")
            with pytest.raises(FleetError, match="unknown op 'dance'"):
                await fleet.control("c1", "dance")
            with pytest.raises(FleetError, match="no agent named 'billing'"):
                await fleet.handoff("c1", "billing")
            with pytest.raises(FleetError, match="only a call can be transferred"):
                await fleet.refer("c1", "tel:+15550100")
            with pytest.raises(FleetError, match="KeyError"):
                await fleet.control("c1", "send_text")  # no text
            await fleet.handoff("c1", "support")
            await fleet.say("c1", "one moment please")
            await log.wait("transcript")
            await fleet.hangup("c1")
            await log.wait("call.ended")
        worker.stop()


async def test_drain_stops_pulling_and_lets_running_calls_finish() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime, drain_timeout=30)
        stopped = anyio.Event()

        async def run() -> None:
            await worker.run()
            stopped.set()

        tg.start_soon(run)
        async with FleetClient(url) as fleet, following(fleet) as log:
            await fleet.start_session("d1")
            await log.wait("call.started", "d1")
            worker.stop()
            await fleet.start_session("d2")
            await anyio.sleep(0.6)
            assert not stopped.is_set()  # d1 still runs
            # d2 waits for another worker (a fetch in flight at stop() handed it back)
            assert (await stream_messages(fleet))[0] == 2
            await fleet.send_text("d1", "still there?")
            reply = await log.wait("transcript", "d1")
            assert reply["text"].startswith("you said: still there?")
            await fleet.hangup("d1")
            with anyio.fail_after(5):
                await stopped.wait()
            assert worker.started == 1 and log.all("call.started", "d2") == []
            # d2 was handed back at once, not held until ack_wait (10 s): another worker
            # starts it now.
            other = make_worker(url, realtime, worker_id="other")
            await tg.start(other.run)
            started = await log.wait("call.started", "d2", timeout=3)
            assert started["worker"] == "other"
            await fleet.hangup("d2")
            await log.wait("call.ended", "d2")
            other.stop()


async def test_a_drained_worker_hands_its_session_over_with_its_history() -> None:
    """Past the drain deadline the session is handed over: another worker continues it
    from the journal (the conversation so far is seeded into its new session)."""
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        first = make_worker(url, realtime, drain_timeout=0.2, worker_id="first")
        await tg.start(first.run)
        async with FleetClient(url) as fleet, following(fleet, "h1") as log:
            await fleet.start_session("h1", history=[{"role": "user", "content": "I am Ada"}])
            await log.wait("call.started")
            await fleet.send_text("h1", "hello")
            reply = await log.wait("transcript")
            assert reply["text"] == "you said: hello (2 user messages)"
            second = make_worker(url, realtime, worker_id="second")
            first.stop()
            await log.wait("call.handover")
            await tg.start(second.run)
            again = await log.wait("call.started", count=2)
            assert again["worker"] == "second" and again["delivery"] == 2
            await fleet.send_text("h1", "me again")
            reply = await log.wait("transcript", count=2)
            assert reply["text"] == "you said: me again (3 user messages)"
            await fleet.hangup("h1")
            await log.wait("call.ended")  # once: the first worker handed over, it did not end it
        second.stop()


def test_jobs_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="call_id must be"):
        Job(id="has.dot")
    with pytest.raises(ConfigurationError, match="not a valid rtagent job"):
        Job.decode(b'{"v": 2, "id": "x"}')
    with pytest.raises(ConfigurationError, match="not a valid rtagent job"):
        Job.decode(b"[]")
    assert Job.decode(Job(id="rtc_1", accepted=True).encode()).accepted
    with pytest.raises(ConfigurationError, match="prefix must be"):
        FleetNames("a.b")
    with pytest.raises(ValueError, match="capacity"):
        Worker(FleetAgent(), capacity=0, url="ws://127.0.0.1:1", api_key="sk-test")


async def test_the_phone_app_queues_each_call_once_and_answers_503_when_it_cannot() -> None:
    """Ingress: webhooks about one call (a redelivery, or two webhook ids) queue one job,
    with the SIP headers; a queue that cannot be reached answers 503, so the webhook is
    delivered again."""
    import urllib.error
    import urllib.request

    import anyio.to_thread
    from asgi import serving
    from test_calls import INCOMING, SECRET, signed

    from rtagent.calls import phone_app

    def post(base: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{base}/webhook", data=body,
                                         headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    async def deliver(queue: FleetClient, *deliveries: tuple[bytes, dict[str, str]]) -> list[Any]:
        async with serving(phone_app(queue=queue, webhook_secret=SECRET)) as base:
            return [await anyio.to_thread.run_sync(post, base, *d) for d in deliveries]

    async with nats_server() as url:
        with anyio.fail_after(30):
            answers = await deliver(
                FleetClient(url),
                signed(INCOMING, webhook_id="wh_1"), signed(INCOMING, webhook_id="wh_1"),
                signed(INCOMING, webhook_id="wh_2"),
            )
            assert [a[0] for a in answers] == [200, 200, 200]
            assert [a[1]["status"] for a in answers] == ["queued", "duplicate", "queued"]
            async with FleetClient(url) as fleet:
                _, handles = await fleet._open()
                assert (await stream_messages(fleet))[0] == 1
                msg = await handles.js.get_msg(fleet.names.stream, 1)
                job = Job.decode(msg.data or b"")
                assert job.id == "rtc_abc" and not job.accepted and job.kind == "call"
                assert job.metadata["sip_headers"][0] == ["From", "sip:+1555@x"]
            [(status, body)] = await deliver(
                FleetClient("nats://127.0.0.1:1"), signed(INCOMING, webhook_id="wh_3")
            )
    assert status == 503 and body == {"error": "could not queue the call"}


async def test_a_ringing_call_is_queued_by_its_webhook_accepted_once_and_run_until_hang_up() -> None:
    """The whole path of a phone call: the service's webhook reaches the phone app, which
    queues it (a redelivery queues nothing more); a worker accepts the call, attaches by
    call_id and runs the tools; the caller hangs up and the job is acknowledged."""
    from asgi import serving
    from test_calls import SECRET

    from rtagent.calls import phone_app

    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime)
        await tg.start(worker.run)
        async with serving(phone_app(queue=FleetClient(url), webhook_secret=SECRET)) as base, \
                FleetClient(url) as fleet, following(fleet) as log:
            call = await realtime.calls.ring(webhook_url=f"{base}/webhook", secret=SECRET)
            await call.deliver()  # the same webhook again
            started = await log.wait("call.started", call.id)
            assert started["kind"] == "call" and started["delivery"] == 1
            await call.wait_state("active")
            call.say("lookup a1")
            done = await log.wait_for(lambda e: e["type"] == "transcript"
                                      and e["text"].startswith("done"))
            assert done["text"] == "done: a1 is in stock" and done["call_id"] == call.id
            await fleet.say(call.id, "Anything else?")
            await log.wait_for(lambda e: e["type"] == "transcript" and e["text"] == "Anything else?")
            call.hang_up()
            ended = await log.wait("call.ended", call.id)
            assert ended["reason"] == "the call ended"
            await eventually(lambda: _drained(fleet))
            assert [action for action, _ in call.requests].count("accept") == 1
            assert len(log.all("call.started")) == 1
        worker.stop()


async def test_a_call_gone_before_it_is_accepted_is_dropped_not_retried() -> None:
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = make_worker(url, realtime)
        await tg.start(worker.run)
        async with FleetClient(url) as fleet, following(fleet) as log:
            await fleet.submit("rtc_" + "0" * 32)  # no such call
            ended = await log.wait("call.ended")
            assert ended["reason"] == "the call is gone"
            await eventually(lambda: _drained(fleet))
        worker.stop()


async def test_an_unexpected_error_offers_the_job_again_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anything a job did not expect (here: choosing its agent fails once) is a retry with
    a delay, not a hand-over, and the worker keeps running."""
    failures = [RuntimeError("the agent registry is down")]

    def agent_for(job: Job) -> FleetAgent:
        if failures:
            raise failures.pop()
        return FleetAgent()

    settings = FleetSettings(claim_ttl=1.0)
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        worker = Worker(
            agent_for, nats_url=url, base_url=realtime.http_url, api_key="sk-test",
            pull_timeout=0.2, settings=settings, capacity=2,
        )
        await tg.start(worker.run)
        async with FleetClient(url, settings=settings) as fleet, following(fleet, "u1") as log:
            await fleet.start_session("u1")
            started = await log.wait("call.started")
            assert started["delivery"] == 2
            assert "session u1 failed unexpectedly; offered again" in caplog.text
            assert not log.all("call.handover")
            await fleet.hangup("u1")
            await log.wait("call.ended")
            await eventually(lambda: _drained(fleet))
        worker.stop()


async def test_a_claim_that_expired_is_taken_again_unless_another_worker_has_it() -> None:
    from rtagent.worker._store import Claim, OwnershipLost

    async with nats_server() as url, FleetClient(url, settings=FleetSettings(claim_ttl=1.0)) as fleet:
        _, handles = await fleet._open()
        registry = handles.registry
        mine = await Claim.take(registry, "x1", "w1")
        assert isinstance(mine, Claim)
        await anyio.sleep(1.6)  # expired: NATS was away, say
        await mine.refresh()  # taken again
        await registry.update("x1", mine._value, last=mine._revision)  # a refresh cut short
        await mine.refresh()  # after it landed: still ours
        assert await Claim.take(registry, "x1", "w2") == "w1"
        theirs = await Claim.take(registry, "x2", "w1")
        assert isinstance(theirs, Claim)
        await anyio.sleep(1.6)
        assert isinstance(await Claim.take(registry, "x2", "w2"), Claim)
        with pytest.raises(OwnershipLost, match="owned by worker w2"):
            await theirs.refresh()


async def test_the_nats_credentials_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    from rtagent._redact import redact_url

    assert redact_url("nats://u:pa55word@h:4222/x") == "nats://<redacted>@h:4222/x"
    assert redact_url("tls://t0kenvalue@h") == "tls://<redacted>@h"
    assert redact_url("nats://h:4222") == "nats://h:4222"
    caplog.set_level("DEBUG")
    async with fleet_env() as (url, realtime), anyio.create_task_group() as tg:
        secret_url = url.replace("nats://", "nats://fleetuser:hunter2secret@")
        worker = Worker(FleetAgent(), nats_url=secret_url, base_url=realtime.http_url,
                        api_key="sk-test", pull_timeout=0.2)
        await tg.start(worker.run)
        worker.stop()
    assert "pulling from nats://<redacted>@127.0.0.1" in caplog.text
    assert "hunter2secret" not in caplog.text


async def test_a_worker_cut_off_from_nats_stops_running_its_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """NATS stops answering (here: the server is paused): the claim cannot be refreshed, so
    once it has lived out its TTL the worker stops running the call, since another worker
    may be running it by now. When NATS is back, the job is delivered again and runs."""
    import signal

    processes: list[anyio.abc.Process] = []
    settings = FleetSettings(claim_ttl=1.0, ack_wait=3.0)
    async with nats_server(processes) as url, LocalRealtimeServer(brain=FleetBrain()) as realtime, \
            anyio.create_task_group() as tg:
        worker = make_worker(url, realtime, settings=settings)
        await tg.start(worker.run)
        async with FleetClient(url, settings=settings) as fleet, following(fleet, "n1") as log:
            await fleet.start_session("n1")
            await log.wait("call.started")
            processes[0].send_signal(signal.SIGSTOP)
            try:
                await eventually(lambda: worker.running == 0, timeout=30)
                assert "expired unrefreshed; this worker stops running it" in caplog.text
            finally:
                processes[0].send_signal(signal.SIGCONT)
            again = await log.wait("call.started", count=2, timeout=30)
            assert again["delivery"] >= 2
            await fleet.hangup("n1")
            await log.wait("call.ended")
        worker.stop()
