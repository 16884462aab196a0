"""A phone agent: answer SIP calls with an agent whose tools run here, a keypad menu, and a
transfer to a person.

    pip install 'rtagent[phone]'
    python examples/phone.py                      # offline: one simulated call, then exit
    OPENAI_API_KEY=sk-... OPENAI_WEBHOOK_SECRET=whsec_... python examples/phone.py --port 8000

With a key, point your OpenAI project's ``realtime.call.incoming`` webhook at
``https://<your host>/webhook`` and your SIP trunk at OpenAI. For each call:

1. The webhook arrives; ``phone_app`` checks its signature and starts nothing twice for
   a redelivered one.
2. :func:`answer` accepts the call with the agent's whole session config
   (``rtagent.calls.accept``), attaches to it by ``call_id`` and greets the caller.
3. Tools run in this process. Keys pressed on the phone arrive as
   ``input_audio_buffer.dtmf_event_received``: 1 transfers to a person (SIP REFER, after
   the announcement has been heard), 2 asks for the opening hours.

Without a key, the local server plays the phone company: it rings this app with a signed
webhook, the caller speaks and presses keys, and the call ends transferred.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from rtagent import Agent, Endpoint, ToolFinished, connect, tool
from rtagent.calls import IncomingCall, accept, phone_app, refer
from rtagent.events import (
    ConversationItemInputAudioTranscriptionCompleted,
    InputAudioBufferDtmfEventReceived,
    OutputAudioBufferStarted,
    OutputAudioBufferStopped,
    ResponseOutputAudioTranscriptDone,
)

HUMAN = "tel:+14155550123"
MENU = "Press 1 to talk to a person, or 2 to hear our opening hours."
HOURS = {"saturday": "9:00 to 13:00", "sunday": "closed"}


class FrontDesk(Agent):
    instructions = (
        "You answer the phone for Harbour Dental. Be brief and friendly. "
        f"Offer the menu: {MENU} Book check-ups with book_appointment. "
        "When the caller wants a person, call transfer_to_human."
    )
    voice = "marin"
    transcription = "gpt-4o-mini-transcribe"  # so we can log what the caller said

    def __init__(self) -> None:
        super().__init__()
        self.transfer_requested = False

    @tool
    def opening_hours(self, day: str = "today") -> str:
        """Opening hours of the practice.

        Args:
            day: A day of the week, or "today".
        """
        return HOURS.get(day.lower(), "8:00 to 18:00")

    @tool(on_interrupt="finish")  # a booking that started completes, even if the caller hangs up
    def book_appointment(self, name: str, day: str) -> str:
        """Book a check-up.

        Args:
            name: The patient's name.
            day: The day of the appointment.
        """
        return f"Booked {name} for a check-up on {day}."

    @tool
    def transfer_to_human(self) -> str:
        """Transfer the caller to a person at the front desk."""
        self.transfer_requested = True  # the call's loop refers once this is said
        return "Tell the caller you are connecting them to the front desk now."


async def answer(call: IncomingCall, endpoint: Endpoint) -> None:
    """Accept one call, greet the caller, run the tools and the keypad menu until it ends."""
    agent = FrontDesk()
    await accept(call.call_id, agent, endpoint=endpoint)
    async with connect(agent, call_id=call.call_id, endpoint=endpoint) as session:
        print(f"call from {call.header('From')}: answered", flush=True)
        await session.create_response(instructions=f"Greet the caller. Then say: {MENU}")
        playing: str | None = None
        after: str | None = None  # refer once a response after this one has been heard
        async for event in session:
            match event:
                case InputAudioBufferDtmfEventReceived(event=key):
                    print(f"caller pressed {key}", flush=True)
                    if key == "1":
                        agent.transfer_requested = True
                        await session.create_response(instructions="Say you are connecting them now.")
                    elif key == "2":
                        await session.send_text("(keypad 2) What are your opening hours today?")
                case ConversationItemInputAudioTranscriptionCompleted(transcript=said):
                    print(f"caller: {said}", flush=True)
                case ResponseOutputAudioTranscriptDone(transcript=said):
                    print(f"agent:  {said}", flush=True)
                case ToolFinished(name=name, arguments=arguments, output=output):
                    print(f"  ⚙ {name}({arguments}) → {output}", flush=True)
                case OutputAudioBufferStarted(response_id=response_id):
                    playing = response_id
                case OutputAudioBufferStopped(response_id=response_id):
                    playing = None
                    if agent.transfer_requested and response_id != after:
                        # The announcement has been heard: hand the call over (SIP REFER).
                        agent.transfer_requested = False
                        await refer(call.call_id, HUMAN, endpoint=endpoint)
            if agent.transfer_requested and after is None:
                after = playing or ""  # what was already playing when the transfer was asked
    print(f"call ended: {session.ended}", flush=True)


def make_app(
    endpoint: Endpoint,
    webhook_secret: str | None = None,
    on_call: Callable[[IncomingCall], Awaitable[None]] | None = None,
) -> Any:
    """The ASGI app: POST /webhook answers each incoming call with :func:`answer`.

    Args:
        endpoint: where the Calls API and the sidebands are.
        webhook_secret: the signing secret (default ``OPENAI_WEBHOOK_SECRET``).
        on_call: handle each call yourself instead (default: :func:`answer`).
    """
    return phone_app(
        FrontDesk(),
        webhook_secret=webhook_secret,
        on_call=on_call or (lambda call: answer(call, endpoint)),
    )


@asynccontextmanager
async def serving(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True


async def simulated_call() -> None:
    """Offline: the local server rings the app, the caller talks and presses keys."""
    from rtagent.local import LocalCall, LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()

    def answers(call: LocalCall) -> int:  # responses that said something (not tool rounds)
        return sum(
            e["type"] == "response.done"
            and any(item["type"] == "message" for item in e["response"]["output"])
            for e in call.events
        )

    handled = anyio.Event()

    async def handle(incoming: IncomingCall) -> None:
        try:
            await answer(incoming, endpoint)
        finally:
            handled.set()

    with anyio.fail_after(60):
        async with LocalRealtimeServer(api_key="sk-local") as server:
            endpoint = Endpoint.resolve(base_url=server.http_url, api_key="sk-local")
            async with serving(make_app(endpoint, secret, handle)) as url:
                call = await server.calls.ring(
                    f"{url}/webhook", secret, sip_headers={"From": "sip:+15550123@carrier.example"}
                )
                await call.wait_until(lambda c: answers(c) == 1)  # the greeting
                call.say("What are your opening hours for Saturday?")
                await call.wait_until(lambda c: answers(c) == 2)
                call.press("2")
                await call.wait_until(lambda c: answers(c) == 3)
                call.press("1")
                await handled.wait()  # the app saw the call end
    print(f"transferred to {call.referred_to}")


async def serve_forever(port: int) -> None:
    """With a key: answer real calls until interrupted."""
    endpoint = Endpoint.resolve(api_key=os.environ["OPENAI_API_KEY"])
    async with serving(make_app(endpoint), port) as url:
        print(f"webhook: {url}/webhook (put it behind HTTPS for OpenAI)", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    if os.environ.get("OPENAI_API_KEY"):
        anyio.run(serve_forever, options.port)
    else:
        anyio.run(simulated_call)
