"""Calls end to end against the local server: rtagent.calls and connect(call_id=...) on one
side, the emulated Calls API, sidebands, webhooks and the caller's side on the other.

asyncio and trio, except where uvicorn serves the phone app (asyncio only) and where the
aiortc peer carries media (aiortc is asyncio only).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import pytest
from asgi import serving

from rtagent import (
    Agent,
    HandshakeError,
    RealtimeSession,
    Reconnected,
    RetryPolicy,
    ToolFinished,
    acreate_client_secret,
    connect,
    tool,
)
from rtagent.calls import (
    CallError,
    IncomingCall,
    accept,
    hangup,
    phone_app,
    refer,
    reject,
    verify_webhook,
)
from rtagent.events import InputAudioBufferDtmfEventReceived, ResponseDone
from rtagent.local import Call, Faults, LocalRealtimeServer, ScriptedBrain, Turn, sine_pcm16
from rtagent.local._engine import Engine
from rtagent.local._http import HttpRequest, HttpResponse, serve
from rtagent.local._wire import Flavor

KEY = "sk-calls-local-test"
SECRET = "whsec_" + base64.b64encode(b"a local webhook secret of 32 b!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's webhook secret!!").decode()
FAST = RetryPolicy(max_attempts=5, delays=[0.01])

OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:Wz4n", "a=ice-pwd:0mT5cFpN9S0f7wCr3iPB5LJd",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08",
    "a=setup:actpass", "a=mid:0", "a=sendrecv", "a=msid:- 1b8c2f1e-8f4a-4f53-9a1e-4a1e33c1a0b1",
    "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3510681930 cname:Yx5o3rWf9nY1d4dC",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:Wz4n", "a=ice-pwd:0mT5cFpN9S0f7wCr3iPB5LJd", "a=ice-options:trickle",
    "a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08",
    "a=setup:actpass", "a=mid:1", "a=sctp-port:5000", "a=max-message-size:262144",
]) + "\r\n"


class Weather(Agent):
    instructions = "You report the weather."
    output_modalities = ["text"]
    voice = "cedar"

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[str] = []

    @tool
    def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: Name of the city.
        """
        self.runs.append(city)
        return f"21°C and sunny in {city}"


def api(server: LocalRealtimeServer) -> dict[str, Any]:
    """The endpoint options of the server's Calls API and sidebands."""
    return {"base_url": server.http_url, "api_key": KEY}


class Seen:
    """Every event and notice a session yields, collected by a task of its own."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.over = False
        """The session's event stream has ended (the session is closed)."""
        self._changed = anyio.Event()

    async def collect(self, session: RealtimeSession) -> None:
        try:
            async for event in session:
                self.events.append(event)
                self._wake()
        finally:
            self.over = True
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[list[Any]], bool]) -> None:
        while not predicate(self.events):
            await self._changed.wait()

    def answers(self) -> list[Any]:
        """The responses that answered with a message (not a tool round)."""
        return [e for e in self.events if isinstance(e, ResponseDone) and e.response.output
                and all(item.type == "message" for item in e.response.output)]


@asynccontextmanager
async def attached(
    server: LocalRealtimeServer, agent: Agent, call_id: str, **options: Any
) -> AsyncIterator[tuple[RealtimeSession, Seen]]:
    """A session attached to a call, with its events collected."""
    seen = Seen()
    options.setdefault("retry", FAST)
    async with connect(agent, call_id=call_id, **api(server), **options) as session, \
            anyio.create_task_group() as tg:
        tg.start_soon(seen.collect, session)
        yield session, seen
        tg.cancel_scope.cancel()


def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    """A blocking HTTP request (run in a thread): status, headers, body."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# -- a call's session over the sideband ------------------------------------------------------


async def test_attach_and_a_tool_turn_over_the_sideband() -> None:
    """An accepted call's sideband gets no session.created; the caller's question runs the tool here."""
    agent = Weather()
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring()
            await accept(call.id, agent, **api(server))
            async with attached(server, agent, call.id) as (session, seen):
                call.say("What's the weather in Paris?")
                await seen.wait_for(lambda _: len(seen.answers()) == 1)
                assert await session.ask("What is the weather in Rome?") == "Here is what I found: get weather returned 21°C and sunny in Rome."
            record = call.sidebands[0]
    assert agent.runs == ["Paris", "Rome"]
    assert "session.created" not in record.sent_types()
    assert record.received_types()[0] == "session.update"
    outputs = [e["item"] for e in record.received if e["type"] == "conversation.item.create"
               and e["item"]["type"] == "function_call_output"]
    assert outputs[0]["output"] == "21°C and sunny in Paris"
    # The caller's speech entered the call's conversation once, as audio the model heard.
    assert call.engine is not None
    users = [i for i in call.engine.items if i.get("role") == "user"]
    assert users[0]["content"][0]["type"] == "input_audio"


async def test_the_callers_own_audio_goes_through_the_vad() -> None:
    """say(audio=...) feeds the caller's PCM to the VAD: one committed user item with that audio, and a reply."""
    speech = sine_pcm16(600)
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = server.calls.create({"type": "realtime", "output_modalities": ["text"]})
            async with attached(server, Weather(), call.id) as (_session, seen):
                await server.wait_for(lambda r: "session.updated" in r.sent_types())
                call.say(audio=speech)
                await seen.wait_for(lambda _: len(seen.answers()) == 1)
            assert call.engine is not None
            user = [i for i in call.engine.items if i.get("role") == "user"]
            kinds = [e["type"] for e in call.events]
    assert len(user) == 1 and user[0]["content"] == [{"type": "input_audio", "transcript": None}]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.committed")
    audio = call.engine._store.audio[user[0]["id"]]
    assert bytes(audio).startswith(speech)  # then the silence that ended the turn


async def test_accept_applies_the_full_session_config() -> None:
    """accept() sends the agent's whole session (instructions, voice, tools) and the call runs with it."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring(sip_headers={"From": "sip:+15550123@carrier.example"})
            assert call.session is None and call.state == "ringing"
            await accept(call.id, Weather(), **api(server))
            assert call.state == "active"
    assert call.session is not None
    assert call.session["instructions"] == "You report the weather."
    assert call.session["audio"]["output"]["voice"] == "cedar"
    assert [t["name"] for t in call.session["tools"]] == ["get_weather"]
    assert call.session["model"] == "gpt-realtime-2.1"
    assert call.requests == [("accept", 200)]


async def test_call_actions_on_the_wrong_call_are_refused() -> None:
    """Unknown calls are 404 call_id_not_found; actions in the wrong state, bad bodies and ephemeral keys are refused."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            with pytest.raises(CallError) as unknown:
                await accept("rtc_nobody", Weather(), **api(server))
            ringing = await server.calls.ring()
            with pytest.raises(CallError) as early_refer:
                await refer(ringing.id, "tel:+14155550123", **api(server))
            await accept(ringing.id, Weather(), **api(server))
            with pytest.raises(CallError) as twice:
                await accept(ringing.id, Weather(), **api(server))
            with pytest.raises(CallError) as late_reject:
                await reject(ringing.id, **api(server))
            with pytest.raises(CallError) as bad_uri:
                await refer(ringing.id, "mailto:someone@example.com", **api(server))
            webrtc = server.calls.create()
            with pytest.raises(CallError) as webrtc_refer:
                await refer(webrtc.id, "tel:+14155550123", **api(server))
            secret = await acreate_client_secret(Weather(), **api(server))
            with pytest.raises(CallError) as ephemeral:
                await hangup(webrtc.id, base_url=server.http_url, api_key=secret.value)
            fresh = await server.calls.ring()
            url = f"{server.http_url}/realtime/calls/{fresh.id}/accept"
            missing_type = await anyio.to_thread.run_sync(
                post, url, b'{"instructions": "x"}', {"Authorization": f"Bearer {KEY}"}
            )
            with pytest.raises(CallError) as bad_model:
                await accept(fresh.id, Agent(model="gpt-nonexistent"), **api(server))
            assert fresh.state == "ringing"
    assert (unknown.value.status_code, unknown.value.code) == (404, "call_id_not_found")
    assert unknown.value.message == "No session found for the provided call_id"
    assert [e.value.status_code for e in (early_refer, twice, late_reject, webrtc_refer)] == [400] * 4
    assert (bad_uri.value.status_code, bad_uri.value.param) == (400, "target_uri")
    assert ephemeral.value.status_code == 401
    assert missing_type[0] == 400
    assert json.loads(missing_type[2])["error"] | {"message": None} == {
        "message": None, "type": "invalid_request_error", "param": "type", "code": "missing_required_parameter"}
    assert (bad_model.value.status_code, bad_model.value.code) == (400, "invalid_model")
    assert ringing.requests == [("refer", 400), ("accept", 200), ("accept", 400), ("reject", 400), ("refer", 400)]


async def test_reject_declines_a_ringing_call() -> None:
    """reject() answers a ringing call with a SIP status; the call is gone for sidebands and actions."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring()
            await reject(call.id, status_code=486, **api(server))
            with pytest.raises(HandshakeError) as attach:
                async with connect(Weather(), call_id=call.id, **api(server)):
                    pass
            with pytest.raises(CallError) as later:
                await accept(call.id, Weather(), **api(server))
    assert (call.state, call.rejected_with) == ("rejected", 486)
    assert attach.value.status_code == 404
    assert later.value.status_code == 404


async def test_refer_transfers_the_call_and_the_session_ends() -> None:
    """refer() hands the call to a person: the sideband closes normally and the session ends cleanly."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring()
            await accept(call.id, Weather(), **api(server))
            async with attached(server, Weather(), call.id) as (session, seen):
                await refer(call.id, "tel:+14155550123", **api(server))
                await seen.wait_for(lambda _: seen.over)
    assert (call.state, call.ended_by, call.referred_to) == ("ended", "refer", "tel:+14155550123")
    assert session.ended == "the call ended"
    assert session._driver.error is None


async def test_hangup_ends_the_call_and_a_second_hangup_is_404() -> None:
    """hangup() from the application closes the sideband normally; the call is then gone."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = server.calls.create()
            async with attached(server, Weather(), call.id) as (session, seen):
                await hangup(call.id, **api(server))
                await seen.wait_for(lambda _: seen.over)
            with pytest.raises(CallError) as again:
                await hangup(call.id, **api(server))
    assert (call.ended_by, session.ended) == ("hangup", "the call ended")
    assert (again.value.status_code, again.value.code) == (404, "call_id_not_found")
    assert call.requests == [("hangup", 200), ("hangup", 404)]


async def test_the_caller_hanging_up_ends_the_session_cleanly() -> None:
    """When the caller hangs up, the sideband closes with 1000 and the session ends without an error."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = server.calls.create()
            async with attached(server, Weather(), call.id) as (session, seen):
                call.hang_up()
                await seen.wait_for(lambda _: seen.over)
    assert (call.ended_by, session.ended, session._driver.error) == ("caller", "the call ended", None)
    assert len(server.connections) == 1  # not retried


@pytest.mark.parametrize("state", ["unknown", "ringing", "ended"])
async def test_a_sideband_to_a_call_without_a_session_is_refused_with_404(state: str) -> None:
    """Attaching to an unknown, ringing or ended call is refused at the handshake: 404 call_id_not_found."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call_id = "rtc_unknown"
            if state != "unknown":
                call = await server.calls.ring()
                call_id = call.id
                if state == "ended":
                    await accept(call_id, Weather(), **api(server))
                    call.hang_up()
            with pytest.raises(HandshakeError) as info:
                async with connect(Weather(), call_id=call_id, retry=FAST, **api(server)):
                    pass
    assert info.value.status_code == 404
    assert json.loads(info.value.body)["error"]["code"] == "call_id_not_found"
    assert server.connections == []  # refused before any session


# -- DTMF, hang-up mid-tool, reconnects -----------------------------------------------------


async def test_dtmf_reaches_the_application_as_events() -> None:
    """Keys the caller presses arrive as input_audio_buffer.dtmf_event_received, in order, with no event_id."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring()
            await accept(call.id, Weather(), **api(server))
            async with attached(server, Weather(), call.id) as (_session, seen):
                await call.wait_until(lambda c: bool(c.sidebands))
                await server.wait_for(lambda r: "session.updated" in r.sent_types())
                call.press("1#")
                await seen.wait_for(
                    lambda events: sum(isinstance(e, InputAudioBufferDtmfEventReceived) for e in events) == 2
                )
            webrtc = server.calls.create()
            with pytest.raises(RuntimeError):
                webrtc.press("1")  # DTMF comes from SIP calls only
            with pytest.raises(ValueError):
                call.press("x")
    keys = [e for e in seen.events if isinstance(e, InputAudioBufferDtmfEventReceived)]
    assert [k.event for k in keys] == ["1", "#"]
    assert all(isinstance(k.received_at, int) and k.received_at > 1_700_000_000 for k in keys)
    wire = [e for e in call.sidebands[0].sent if e["type"] == "input_audio_buffer.dtmf_event_received"]
    assert all("event_id" not in e for e in wire)


async def test_a_hang_up_mid_tool_follows_each_tools_on_interrupt_policy() -> None:
    """The caller hangs up while tools run: "cancel" ones are cancelled, "finish" ones complete; nothing hangs."""
    happened: list[str] = []
    release = anyio.Event()

    class Desk(Agent):
        output_modalities = ["text"]

        @tool(on_interrupt="finish")
        async def book(self, name: str) -> str:
            """Book a table."""
            await release.wait()
            happened.append(f"booked {name}")
            return "booked"

        @tool(on_interrupt="cancel")
        async def search(self, query: str) -> str:
            """Search the menu."""
            await anyio.sleep_forever()
            return "never"

    brain = ScriptedBrain([Turn(calls=[Call("book", {"name": "Ada"}), Call("search", {"query": "soup"})])])
    with anyio.fail_after(10):
        async with LocalRealtimeServer(brain, api_key=KEY) as server:
            call = server.calls.create()
            async with attached(server, Desk(), call.id) as (session, seen):
                call.say("Book a table and find the soup")
                await seen.wait_for(lambda events: sum(e.type == "rtagent.tool.started" for e in events) == 2)
                call.hang_up()
                await seen.wait_for(lambda events: any(
                    isinstance(e, ToolFinished) and e.name == "search" for e in events))
                assert happened == []  # the "finish" tool is still running, the session waits for it
                release.set()
                await seen.wait_for(lambda _: seen.over)
    finished = {e.name: e for e in seen.events if isinstance(e, ToolFinished)}
    assert happened == ["booked Ada"]
    assert finished["book"].ok and finished["book"].output == "booked"
    assert not finished["search"].ok and finished["search"].error == "cancelled"
    assert session.ended == "the call ended"


async def test_a_dropped_sideband_re_attaches_and_nothing_is_replayed() -> None:
    """The sideband drops mid-call; it re-attaches to the same call with only session.update, and the call goes on."""
    agent = Weather()
    faults = [Faults(drop_after_sent="response.done", drop_nth=2)]  # after the first answer
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY, faults=faults) as server:
            call = await server.calls.ring()
            await accept(call.id, agent, **api(server))
            async with attached(server, agent, call.id) as (_session, seen):
                call.say("What's the weather in Paris?")
                await seen.wait_for(lambda events: any(isinstance(e, Reconnected) for e in events))
                call.say("What's the weather in Oslo?")
                await seen.wait_for(lambda _: len(seen.answers()) == 2)
    first, second = call.sidebands
    assert first.path == second.path and len(server.connections) == 2
    assert second.received_types()[0] == "session.update"
    # The second sideband carries only the new turn's output: nothing of the first is sent again.
    outputs = [e["item"]["output"] for e in second.received if e["type"] == "conversation.item.create"]
    assert outputs == ["21°C and sunny in Oslo"]
    reconnected = next(e for e in seen.events if isinstance(e, Reconnected))
    assert reconnected.items_restored == 0
    assert agent.runs == ["Paris", "Oslo"]
    assert call.engine is not None
    assert [i["type"] for i in call.engine.items].count("function_call_output") == 2


async def test_a_call_that_ended_while_the_sideband_was_down_ends_the_session() -> None:
    """The call ends while the sideband is down: re-attaching is refused with 404 and the session ends cleanly."""
    retry = RetryPolicy(max_attempts=5, delays=[0.3])
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY, faults=[Faults(drop_after_sent="session.updated")]) as server:
            call = server.calls.create()
            async with attached(server, Weather(), call.id, retry=retry) as (session, seen):
                await server.wait_for(lambda r: r.closed.is_set())
                call.hang_up()
                await seen.wait_for(lambda _: seen.over)
    assert session.ended == "the call is gone (re-attaching was refused with 404)"
    assert session._driver.error is None
    assert len(server.connections) == 1  # the second attempt was refused at the handshake


async def test_a_call_expires_with_its_session() -> None:
    """At the session's maximum duration the call ends: session_expired, then a normal close."""
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY, session_max_seconds=2) as server:
            call = server.calls.create()
            async with attached(server, Weather(), call.id) as (session, seen):
                await call.wait_state("ended")
                await seen.wait_for(lambda _: seen.over)
    assert call.ended_by == "expired"
    errors = [e for e in call.events if e["type"] == "error"]
    assert errors[-1]["error"]["code"] == "session_expired"
    assert session.ended is not None


def test_output_audio_buffer_clear_stops_a_calls_audio() -> None:
    """On a call, output_audio_buffer.clear stops the audio: output_audio_buffer.cleared, no stopped later."""

    class Media:
        def __init__(self) -> None:
            self.played = 0
            self.cleared = 0

        def play(self, pcm: bytes) -> None:
            self.played += len(pcm)

        def clear(self) -> None:
            self.cleared += 1

    media = Media()
    engine = Engine(ScriptedBrain([Turn(text="Hello there, how are you today?")]),
                    flavor=Flavor(sideband=True), media=media)
    events = engine.handle({"type": "response.create"})
    while (event := engine.next_event()) is not None and event["type"] != "output_audio_buffer.started":
        events.append(event)
    started = event
    assert started is not None and media.played > 0
    cleared = engine.handle({"type": "output_audio_buffer.clear"})
    rest = []
    while (event := engine.next_event()) is not None:
        rest.append(event)
    assert [e["type"] for e in cleared] == ["output_audio_buffer.cleared"]
    assert cleared[0]["response_id"] == started["response_id"] and media.cleared == 1
    assert "output_audio_buffer.stopped" not in [e["type"] for e in rest]


# -- webhooks --------------------------------------------------------------------------------


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, list[Any]]]:
    """An HTTP endpoint that verifies each webhook with rtagent.calls (200, or 400 when refused)."""
    outcomes: list[Any] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        try:
            outcomes.append(verify_webhook(request.body, dict(request.headers), SECRET))
        except Exception as exc:
            outcomes.append(exc)
            return HttpResponse(400, b'{"error": "refused"}')
        return HttpResponse(200, b"{}")

    async def no_websocket(_ws: Any) -> None:
        return None

    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve(no_websocket, http_handler=handle, task_status=task_status))
        yield f"http://127.0.0.1:{port}/webhook", outcomes
        tg.cancel_scope.cancel()


async def test_the_incoming_call_webhook_is_signed_the_standard_way(caplog: pytest.LogCaptureFixture) -> None:
    """ring() sends a realtime.call.incoming that verify_webhook accepts; a wrong secret or a stale time is refused."""
    caplog.set_level(logging.DEBUG, logger="rtagent")
    headers = [("From", "sip:+15550123@carrier.example"), ("X-Account", "7"), ("X-Account", "8")]
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server, webhook_receiver() as (url, outcomes):
            call = await server.calls.ring(url, SECRET, sip_headers=headers)
            await call.deliver(secret=OTHER_SECRET)
            await call.deliver(timestamp=int(time.time()) - 600)
            await call.deliver()  # a redelivery: same webhook-id
    assert call.deliveries == [200, 400, 400, 200]
    first, bad, stale, again = outcomes
    assert isinstance(first, IncomingCall) and isinstance(again, IncomingCall)
    assert (first.call_id, first.sip_headers, first.id) == (call.id, tuple(headers), call.webhook_id)
    assert again.id == first.id
    assert "signature" in str(bad).lower() and "old" in str(stale).lower()
    assert call.webhook is not None and call.webhook["type"] == "realtime.call.incoming"
    assert call.webhook["id"].startswith("evt_") and call.id.startswith("rtc_")
    secret_bytes = SECRET.removeprefix("whsec_")
    assert secret_bytes not in caplog.text and KEY not in caplog.text


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves the phone app on asyncio only
async def test_the_phone_app_answers_a_ringing_call_once(anyio_backend: str) -> None:
    """Webhook -> verify -> accept -> attach -> tools; redeliveries start nothing twice; bad or stale webhooks get 400."""
    agent = Weather()
    with anyio.fail_after(20):
        async with LocalRealtimeServer(api_key=KEY) as server:
            app = phone_app(agent, webhook_secret=SECRET, connect_options={"retry": FAST}, **api(server))
            async with serving(app) as base:
                call = await server.calls.ring(f"{base}/webhook", SECRET)
                await call.wait_until(lambda c: bool(c.sidebands))
                await server.wait_for(lambda r: "session.updated" in r.sent_types())
                duplicate = await call.deliver()
                forged = await call.deliver(secret=OTHER_SECRET)
                stale = await call.deliver(timestamp=int(time.time()) - 3600)
                call.say("What's the weather in Lisbon?")
                await call.wait_until(lambda c: any(
                    e["type"] == "response.done" and e["response"]["output"]
                    and e["response"]["output"][0]["type"] == "message" for e in c.events))
                call.hang_up()
                await call.sidebands[0].closed.wait()
    assert call.deliveries == [200, duplicate, forged, stale] == [200, 200, 400, 400]
    assert call.requests == [("accept", 200)]  # once, whatever the deliveries
    assert len(call.sidebands) == 1
    assert agent.runs == ["Lisbon"]


# -- WebRTC calls over HTTP ------------------------------------------------------------------


async def test_a_browser_offer_creates_a_call_with_an_ephemeral_key() -> None:
    """POST /v1/realtime/calls with application/sdp and a client secret: 201, an SDP answer, Location; the app attaches."""
    agent = Weather()
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY, webrtc=False) as server:
            secret = await acreate_client_secret(agent, **api(server))
            status, headers, body = await anyio.to_thread.run_sync(
                post, f"{server.http_url}/realtime/calls", OFFER.encode(),
                {"Authorization": f"Bearer {secret.value}", "Content-Type": "application/sdp",
                 "Origin": "http://127.0.0.1:9"},
            )
            call_id = headers["Location"].rsplit("/", 1)[-1]
            call = server.calls.get(call_id)
            assert call is not None
            async with attached(server, agent, call_id) as (_session, seen):
                call.say("What's the weather in Nairobi?")
                await seen.wait_for(lambda _: len(seen.answers()) == 1)
            preflight = await anyio.to_thread.run_sync(
                lambda: post(f"{server.http_url}/realtime/calls", b"", {
                    "Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type"}, "OPTIONS"))
            bad = await anyio.to_thread.run_sync(
                post, f"{server.http_url}/realtime/calls", b"hello",
                {"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"})
    answer = body.decode()
    assert status == 201 and headers["Content-Type"] == "application/sdp"
    assert headers["Location"] == f"/v1/realtime/calls/{call_id}" and call_id.startswith("rtc_")
    assert headers["Access-Control-Expose-Headers"] == "Location"
    assert answer.startswith("v=0\r\n") and "a=group:BUNDLE 0 1" in answer
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111" in answer and "a=rtpmap:111 opus/48000/2" in answer
    assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in answer and "a=setup:active" in answer
    assert (call.kind, call.session and call.session["instructions"]) == ("webrtc", "You report the weather.")
    assert agent.runs == ["Nairobi"]
    assert preflight[0] == 204 and "authorization" in preflight[1]["Access-Control-Allow-Headers"].lower()
    assert bad[0] == 400 and json.loads(bad[2])["error"]["param"] == "sdp"


async def test_the_openai_package_creates_a_call_with_a_multipart_offer() -> None:
    """openai's realtime.calls.create (multipart sdp + session) gets 201 and Location; the session part applies."""
    from openai import OpenAI

    # The server picks its answer itself: a real peer's with aiortc on asyncio, else signalling only.
    with anyio.fail_after(15):
        async with LocalRealtimeServer(api_key=KEY) as server:
            client = OpenAI(api_key=KEY, base_url=server.http_url)
            session = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
            raw = await anyio.to_thread.run_sync(
                lambda: client.realtime.calls.with_raw_response.create(sdp=OFFER, session=session))  # type: ignore[arg-type]
            call = server.calls.get(raw.headers["location"].rsplit("/", 1)[-1])
    assert raw.status_code == 201 and raw.content.startswith(b"v=0")
    assert call is not None and call.session is not None
    assert (call.session["model"], call.session["instructions"]) == ("gpt-realtime", "Be brief.")


async def test_call_actions_without_the_api_key_are_refused_with_401() -> None:
    """Without a key, or with a wrong one, the Calls API answers 401 and nothing happens to the call."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            call = await server.calls.ring()
            url = f"{server.http_url}/realtime/calls/{call.id}/hangup"
            nobody = await anyio.to_thread.run_sync(post, url, b"", {})
            wrong = await anyio.to_thread.run_sync(post, url, b"", {"Authorization": "Bearer sk-wrong-key-123"})
            assert call.state == "ringing" and call.requests == []
    assert (nobody[0], wrong[0]) == (401, 401)
    assert json.loads(wrong[2])["error"]["code"] == "invalid_api_key"
    assert call.ended_by == "server"  # the server stopped: its calls ended with it
