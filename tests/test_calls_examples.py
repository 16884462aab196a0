"""The phone and web examples, in process, against the local server's simulated calls.

uvicorn serves the examples' ASGI apps, so these tests run on asyncio only.
(``tests/test_examples.py`` also runs ``examples/phone.py`` as a script; the browser test
drives ``examples/web/`` from headless Chromium.)
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread
import pytest
from asgi import serving

from rtagent import Endpoint
from rtagent.local import Call, LocalCall, LocalRealtimeServer, ScriptedBrain, Turn

pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves on asyncio only

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEY = "sk-examples-test"
OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendrecv",
    "a=rtpmap:111 opus/48000/2", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0", "a=mid:1", "a=sctp-port:5000",
]) + "\r\n"
SECRET = "whsec_" + base64.b64encode(b"the examples' webhook secret!!!!").decode()


def load(path: Path) -> ModuleType:
    """Import an example file as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def answers(call: LocalCall) -> int:
    """Responses of the call that said something (not tool rounds)."""
    return sum(e["type"] == "response.done" and any(i["type"] == "message" for i in e["response"]["output"])
               for e in call.events)


def outputs(call: LocalCall) -> list[str]:
    """The tool outputs the application posted on the call's sidebands."""
    return [e["item"]["output"] for record in call.sidebands for e in record.received
            if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]


async def test_the_phone_example_books_and_transfers_when_the_model_asks() -> None:
    """Webhook -> accept -> greeting -> a booking tool -> transfer_to_human -> REFER after the announcement is heard."""
    phone = load(EXAMPLES / "phone.py")
    brain = ScriptedBrain([
        Turn(text="Harbour Dental, hello! " + phone.MENU),
        Turn(calls=[Call("book_appointment", {"name": "Ada", "day": "Friday"})]),
        Turn(text="You are booked for Friday."),
        Turn(calls=[Call("transfer_to_human", {})]),
        Turn(text="Connecting you to the front desk now."),
    ])
    with anyio.fail_after(30):
        async with LocalRealtimeServer(brain, api_key=KEY) as server:
            endpoint = Endpoint.resolve(base_url=server.http_url, api_key=KEY)
            async with serving(phone.make_app(endpoint, SECRET)) as url:
                call = await server.calls.ring(f"{url}/webhook", SECRET,
                                               sip_headers={"From": "sip:+15550123@carrier.example"})
                await call.wait_until(lambda c: answers(c) == 1)
                call.say("I'd like a check-up on Friday, my name is Ada")
                await call.wait_until(lambda c: answers(c) == 2)
                call.say("Can I talk to somebody?")
                await call.wait_state("ended")
    assert call.requests == [("accept", 200), ("refer", 200)]
    assert (call.ended_by, call.referred_to) == ("refer", phone.HUMAN)
    assert outputs(call) == ["Booked Ada for a check-up on Friday.",
                             "Tell the caller you are connecting them to the front desk now."]
    assert call.session is not None and call.session["instructions"] == phone.FrontDesk.instructions
    # The transfer waited for the announcement to be played to the caller.
    played = [e["response_id"] for e in call.events if e["type"] == "output_audio_buffer.stopped"]
    last_answer = [e for e in call.events if e["type"] == "response.done"][-1]["response"]["id"]
    assert played[-1] == last_answer


async def test_the_phone_examples_keypad_menu() -> None:
    """Pressing 2 asks for the opening hours (a tool run here); pressing 1 transfers the call."""
    phone = load(EXAMPLES / "phone.py")
    with anyio.fail_after(30):
        async with LocalRealtimeServer(api_key=KEY) as server:
            endpoint = Endpoint.resolve(base_url=server.http_url, api_key=KEY)
            async with serving(phone.make_app(endpoint, SECRET)) as url:
                call = await server.calls.ring(f"{url}/webhook", SECRET)
                await call.wait_until(lambda c: answers(c) == 1)
                call.press("2")
                await call.wait_until(lambda c: answers(c) == 2)
                call.press("1")
                await call.wait_state("ended")
    assert outputs(call) == ["8:00 to 18:00"]
    assert (call.ended_by, call.referred_to) == ("refer", phone.HUMAN)
    keys = [e["event"] for e in call.events if e["type"] == "input_audio_buffer.dtmf_event_received"]
    assert keys == ["2", "1"]


def _post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"{}")  # type: ignore[no-any-return]


async def test_the_web_example_attaches_to_the_call_the_page_made() -> None:
    """The page's requests, made here: a client secret, the call (signalling only), the attach, a typed turn, hang-up."""
    web = load(EXAMPLES / "web" / "app.py")
    with anyio.fail_after(30):
        async with LocalRealtimeServer(api_key=KEY, webrtc=False) as server:
            endpoint = Endpoint.resolve(base_url=server.http_url, api_key=KEY)
            async with serving(web.create_app(endpoint=endpoint)) as url:
                minted = await anyio.to_thread.run_sync(_post_json, f"{url}/session", {})
                offer = urllib.request.Request(
                    minted["calls_url"], data=OFFER.encode(), method="POST",
                    headers={"Authorization": f"Bearer {minted['token']}", "Content-Type": "application/sdp"})
                created = await anyio.to_thread.run_sync(lambda: urllib.request.urlopen(offer, timeout=10))
                call_id = created.headers["Location"].rsplit("/", 1)[-1]
                first = await anyio.to_thread.run_sync(_post_json, f"{url}/calls", {"call_id": call_id})
                again = await anyio.to_thread.run_sync(_post_json, f"{url}/calls", {"call_id": call_id})
                call = server.calls.get(call_id)
                assert call is not None
                await call.wait_until(lambda c: bool(c.sidebands))
                await server.wait_for(lambda r: "session.updated" in r.sent_types())
                await anyio.to_thread.run_sync(_post_json, f"{url}/calls/{call_id}/say",
                                               {"text": "Book a table for 4 people"})
                await call.wait_until(lambda c: answers(c) == 1)
                await anyio.to_thread.run_sync(_post_json, f"{url}/calls/{call_id}/hangup", {})
                await call.wait_state("ended")
                status = await anyio.to_thread.run_sync(_get_json, f"{url}/calls/{call_id}")
                while status["state"] != "ended":
                    await anyio.sleep(0.05)
                    status = await anyio.to_thread.run_sync(_get_json, f"{url}/calls/{call_id}")
                bad = await anyio.to_thread.run_sync(_post_status, f"{url}/calls", {"call_id": "../etc"})
    assert minted["token"].startswith("ek_") and minted["calls_url"] == f"{server.http_url}/realtime/calls"
    assert created.status == 201 and first["state"] == "attaching" and again["call_id"] == call_id
    assert len(call.sidebands) == 1  # the second POST /calls attached nothing
    assert call.session is not None and call.session["instructions"] == web.Concierge.instructions
    assert status["ended"] == "the call ended" and call.ended_by == "hangup"
    assert [line["who"] for line in status["log"]] == ["caller", "tool", "agent"]
    assert status["log"][1]["text"] == 'book_table({"people":4}) → A table for 4 at 20:00 is booked.'
    assert bad == 400


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _post_status(url: str, payload: dict[str, Any]) -> int:
    try:
        _post_json(url, payload)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200
