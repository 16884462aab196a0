"""rtagent.calls on its own: webhook verification, the Calls REST client, the phone app."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import pytest
from standardwebhooks.webhooks import Webhook

from rtagent import Agent, ConfigurationError, tool
from rtagent.calls import (
    CallError,
    IncomingCall,
    WebhookError,
    WebhookEvent,
    accept,
    accept_sync,
    hangup,
    phone_app,
    refer,
    reject,
    verify_webhook,
)
from rtagent.local._http import HttpRequest, HttpResponse, serve

SECRET = "whsec_" + base64.b64encode(b"a test secret of enough bytes").decode()


def signed(payload: dict[str, Any], *, webhook_id: str = "wh_1", at: float | None = None) -> tuple[bytes, dict[str, str]]:
    """A webhook body and headers signed the Standard Webhooks way."""
    body = json.dumps(payload)
    stamp = int(at if at is not None else time.time())
    signature = Webhook(SECRET).sign(webhook_id, _dt(stamp), body)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
    return body.encode(), headers


def _dt(stamp: int) -> Any:
    import datetime

    return datetime.datetime.fromtimestamp(stamp, tz=datetime.timezone.utc)


INCOMING = {
    "id": "evt_1", "object": "event", "created_at": 1_700_000_000, "type": "realtime.call.incoming",
    "data": {"call_id": "rtc_abc", "sip_headers": [{"name": "From", "value": "sip:+1555@x"},
                                                   {"name": "To", "value": "sip:+1666@y"}]},
}


# -- webhooks --------------------------------------------------------------------------------


def test_a_good_webhook_becomes_an_incoming_call() -> None:
    """A correctly signed realtime.call.incoming gives the call id and its SIP headers."""
    body, headers = signed(INCOMING)
    call = verify_webhook(body, headers, SECRET)
    assert isinstance(call, IncomingCall)
    assert (call.id, call.call_id, call.header("from")) == ("wh_1", "rtc_abc", "sip:+1555@x")


def test_other_verified_events_are_returned_untyped() -> None:
    """A verified event of another type comes back as a WebhookEvent."""
    body, headers = signed({**INCOMING, "type": "response.completed", "data": {"id": "r"}})
    event = verify_webhook(body, headers, SECRET)
    assert isinstance(event, WebhookEvent) and event.type == "response.completed"


@pytest.mark.parametrize("tamper", ["body", "signature", "stale", "future", "missing", "secret"])
def test_bad_webhooks_are_refused(tamper: str) -> None:
    """A changed body, a bad signature, an old or future timestamp, missing headers: refused."""
    at = time.time() - 3600 if tamper == "stale" else time.time() + 3600 if tamper == "future" else None
    body, headers = signed(INCOMING, at=at)
    secret = SECRET
    if tamper == "body":
        body = body.replace(b"rtc_abc", b"rtc_evil")
    elif tamper == "signature":
        headers["webhook-signature"] = "v1,Zm9vYmFy"
    elif tamper == "missing":
        del headers["webhook-signature"]
    elif tamper == "secret":
        secret = "whsec_" + base64.b64encode(b"another secret entirely!!").decode()
    with pytest.raises(WebhookError):
        verify_webhook(body, headers, secret)


def test_an_empty_secret_is_a_configuration_error() -> None:
    """verify_webhook needs a secret."""
    body, headers = signed(INCOMING)
    with pytest.raises(ConfigurationError):
        verify_webhook(body, headers, "")


# -- the REST client -------------------------------------------------------------------------


class Weather(Agent):
    instructions = "You report the weather."
    voice = "marin"

    @tool
    def get_weather(self, city: str) -> str:
        """Current weather."""
        return "sunny"


@asynccontextmanager
async def calls_api(status: int = 200) -> AsyncIterator[tuple[str, list[HttpRequest]]]:
    """A stand-in Calls API that records requests and answers with ``status``."""
    seen: list[HttpRequest] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        if status >= 400:
            body = {"error": {"message": "Call not found", "type": "invalid_request_error",
                              "code": "call_not_found", "param": None}}
            return HttpResponse(status, json.dumps(body).encode())
        return HttpResponse(200, b"")

    async def no_websocket(_ws: Any) -> None:
        return None

    async with anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve(no_websocket, http_handler=handle, task_status=task_status))
        yield f"http://127.0.0.1:{port}/v1", seen
        tg.cancel_scope.cancel()


async def test_accept_reject_refer_hangup_post_the_calls_api() -> None:
    """Each call action posts to /v1/realtime/calls/{id}/<action> with the key and its body."""
    async with calls_api() as (base, seen):
        options: dict[str, Any] = {"base_url": base, "api_key": "sk-calls"}
        await accept("rtc_1", Weather(), **options)
        await reject("rtc_2", status_code=486, **options)
        await refer("rtc_3", "tel:+14155550123", **options)
        await hangup("rtc_4", **options)
        await anyio.to_thread.run_sync(lambda: accept_sync("rtc_5", Weather(), **options))
    assert [(r.method, r.path) for r in seen] == [
        ("POST", "/v1/realtime/calls/rtc_1/accept"), ("POST", "/v1/realtime/calls/rtc_2/reject"),
        ("POST", "/v1/realtime/calls/rtc_3/refer"), ("POST", "/v1/realtime/calls/rtc_4/hangup"),
        ("POST", "/v1/realtime/calls/rtc_5/accept"),
    ]
    assert all(r.headers["authorization"] == "Bearer sk-calls" for r in seen)
    session = json.loads(seen[0].body)
    assert session["type"] == "realtime" and session["instructions"] == "You report the weather."
    assert session["tools"][0]["name"] == "get_weather" and session["model"] == "gpt-realtime-2.1"
    assert json.loads(seen[1].body) == {"status_code": 486}
    assert json.loads(seen[2].body) == {"target_uri": "tel:+14155550123"}


async def test_a_refused_call_action_is_a_call_error() -> None:
    """A 404 from the Calls API is a CallError with the status and the server's code."""
    async with calls_api(status=404) as (base, _seen):
        with pytest.raises(CallError) as info:
            await hangup("rtc_gone", base_url=base, api_key="k")
    assert info.value.status_code == 404 and info.value.code == "call_not_found"


# -- the phone app ---------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn serves on asyncio only
async def test_the_phone_app_starts_each_call_once(anyio_backend: str) -> None:
    """Verified calls are handled, redeliveries of one webhook start nothing twice, bad ones get 400."""
    import uvicorn

    handled: list[str] = []
    both = anyio.Event()

    async def on_call(call: IncomingCall) -> None:
        handled.append(call.call_id)
        if len(handled) == 2:
            both.set()

    app = phone_app(Agent(), webhook_secret=SECRET, on_call=on_call)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body,
                                         headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.02)
            first = signed(INCOMING, webhook_id="wh_a")
            again = signed(INCOMING, webhook_id="wh_a")
            other = signed({**INCOMING, "data": {**INCOMING["data"], "call_id": "rtc_def"}}, webhook_id="wh_b")
            bad = (first[0], {**first[1], "webhook-signature": "v1,Zm9vYmFy"})
            answers = [await anyio.to_thread.run_sync(post, *args) for args in (first, again, other, bad)]
            await both.wait()
            server.should_exit = True
    assert [a[0] for a in answers] == [200, 200, 200, 400]
    assert answers[1][1]["status"] == "duplicate"
    assert handled == ["rtc_abc", "rtc_def"]


def test_the_phone_app_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a webhook secret the app refuses to start."""
    monkeypatch.delenv("OPENAI_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigurationError):
        phone_app(Agent())
