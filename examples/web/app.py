"""A browser voice agent whose tools run on your server: the page calls over WebRTC, the
app attaches to the call and runs the tools.

    pip install 'rtagent[phone,webrtc]'
    python examples/web/app.py                    # offline: the local server, real audio
    OPENAI_API_KEY=sk-... python examples/web/app.py

then open http://127.0.0.1:8000 and press "Start call". What happens:

1. The page asks this app for an ephemeral client secret (``POST /session``): it is
   minted with the agent's session config (instructions, voice, tools) by
   ``rtagent.acreate_client_secret``, and the API key never leaves the server.
2. The page creates the call itself: ``POST /v1/realtime/calls`` with its SDP offer and
   ``Authorization: Bearer <secret>``; the answer completes its peer connection, and the
   call id comes back in the ``Location`` header.
3. The page tells the app the call id (``POST /calls``). The app attaches with
   ``connect(agent, call_id=...)`` (a sideband WebSocket) and runs the tools for the life
   of the call; audio flows between the browser and the service, never through here.
4. The page shows what the app sees (``GET /calls/{call_id}``): what was said, each tool
   call with its result, and how the call ended. A typed message goes to the call as a
   user message (``POST /calls/{call_id}/say``, ``session.send_text`` on the sideband),
   and "Hang up" ends the call with ``rtagent.calls.hangup``.

A real deployment would tie each call id to the signed-in user who asked for the secret
before attaching to it; this example trusts the page.

Without a key, a local server runs in-process (``rtagent.local``); with the ``webrtc``
extra it answers the browser with a real WebRTC peer, so the microphone and the speaker
work. It has no speech recognition: type what you would say, and its rule-based "model"
calls the tools your words name. Without the extra the call is signalled only (no audio).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from rtagent import (
    Agent,
    Endpoint,
    RealtimeSession,
    ToolFinished,
    acreate_client_secret,
    connect,
    tool,
)
from rtagent.calls import CallError, hangup
from rtagent.events import (
    ConversationItemInputAudioTranscriptionCompleted,
    ResponseOutputAudioTranscriptDone,
    ResponseOutputTextDone,
)

HERE = Path(__file__).resolve().parent
CALL_ID = re.compile(r"^rtc_[A-Za-z0-9_]{1,128}$")


class Concierge(Agent):
    instructions = "You are the concierge of the Harbour Hotel. Keep answers short."
    voice = "marin"
    transcription = "gpt-4o-mini-transcribe"  # the page shows what the caller said

    @tool
    def get_weather(self, city: str) -> str:
        """Current weather for a city.

        Args:
            city: Name of the city.
        """
        return f"21°C and sunny in {city}"

    @tool(on_interrupt="finish")
    def book_table(self, people: int, time: str = "20:00") -> str:
        """Book a table at the hotel restaurant.

        Args:
            people: How many guests.
            time: When, e.g. "19:30".
        """
        return f"A table for {people} at {time} is booked."


@dataclass
class CallLog:
    """What the app knows about one call: its state and what happened, for the page."""

    state: str = "attaching"
    ended: str | None = None
    lines: list[dict[str, str]] = field(default_factory=list)
    session: RealtimeSession | None = None

    def add(self, who: str, text: str) -> None:
        self.lines.append({"who": who, "text": text})


def create_app(
    agent: Callable[[], Agent] = Concierge,
    *,
    endpoint: Endpoint,
    connect_options: dict[str, Any] | None = None,
) -> Starlette:
    """The web app: the page, client secrets, and one attached session per call.

    Args:
        agent: makes the agent of each call (and of each client secret).
        endpoint: where the service is (the Calls API, the sidebands, client secrets).
        connect_options: more options for ``connect()`` (a retry policy...).
    """
    calls: dict[str, CallLog] = {}
    group: list[anyio.abc.TaskGroup] = []

    async def page(_: Request) -> Response:
        return FileResponse(HERE / "index.html")

    async def script(_: Request) -> Response:
        return FileResponse(HERE / "call.js", media_type="text/javascript")

    async def session(_: Request) -> JSONResponse:
        secret = await acreate_client_secret(agent(), endpoint=endpoint, expires_after_seconds=600)
        calls_url = endpoint.rest_url("/realtime/calls")
        return JSONResponse({"token": secret.value, "expires_at": secret.expires_at, "calls_url": calls_url})

    async def attach(request: Request) -> JSONResponse:
        call_id = str((await request.json()).get("call_id", ""))
        if not CALL_ID.match(call_id):
            return JSONResponse({"error": "not a call id"}, status_code=400)
        if call_id in calls:
            return JSONResponse({"call_id": call_id, "state": calls[call_id].state})  # nothing twice
        log = calls[call_id] = CallLog()
        group[0].start_soon(run_call, call_id, log, name=f"call {call_id}")
        return JSONResponse({"call_id": call_id, "state": log.state})

    async def run_call(call_id: str, log: CallLog) -> None:
        try:
            async with connect(agent(), call_id=call_id, endpoint=endpoint, **(connect_options or {})) as live:
                log.session, log.state = live, "live"
                async for event in live:
                    match event:
                        case ConversationItemInputAudioTranscriptionCompleted(transcript=said):
                            log.add("caller", said)
                        case ResponseOutputAudioTranscriptDone(transcript=said) | ResponseOutputTextDone(text=said):
                            log.add("agent", said)
                        case ToolFinished(name=name, arguments=arguments, output=output):
                            log.add("tool", f"{name}({arguments}) → {output}")
            log.ended = live.ended or "closed"
        except Exception as exc:  # shown on the page rather than lost in a task
            log.ended = f"failed: {exc}"
        log.session, log.state = None, "ended"

    async def status(request: Request) -> JSONResponse:
        log = calls.get(request.path_params["call_id"])
        if log is None:
            return JSONResponse({"error": "unknown call"}, status_code=404)
        return JSONResponse({"state": log.state, "ended": log.ended, "log": log.lines})

    async def say(request: Request) -> JSONResponse:
        log = calls.get(request.path_params["call_id"])
        text = str((await request.json()).get("text", "")).strip()
        if log is None or log.session is None or not text:
            return JSONResponse({"error": "no live call, or nothing to say"}, status_code=409)
        log.add("caller", text)
        await log.session.send_text(text)  # a user message in the call's conversation
        return JSONResponse({"state": log.state})

    async def hang_up(request: Request) -> JSONResponse:
        call_id = request.path_params["call_id"]
        if call_id not in calls:
            return JSONResponse({"error": "unknown call"}, status_code=404)
        try:
            await hangup(call_id, endpoint=endpoint)
        except CallError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        return JSONResponse({"state": "hanging up"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            group.append(tg)
            yield
            tg.cancel_scope.cancel()  # the app stops: its calls' sessions end with it

    return Starlette(
        routes=[
            Route("/", page),
            Route("/call.js", script),
            Route("/session", session, methods=["POST"]),
            Route("/calls", attach, methods=["POST"]),
            Route("/calls/{call_id}", status),
            Route("/calls/{call_id}/say", say, methods=["POST"]),
            Route("/calls/{call_id}/hangup", hang_up, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def main(port: int) -> None:
    import uvicorn

    if os.environ.get("OPENAI_API_KEY"):
        app = create_app(endpoint=Endpoint.resolve())
        await uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port)).serve()
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    async with LocalRealtimeServer(api_key="sk-local") as server:
        app = create_app(endpoint=Endpoint.resolve(base_url=server.http_url, api_key="sk-local"))
        print(f"open http://127.0.0.1:{port}", flush=True)
        await uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port)).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A browser voice agent whose tools run here.")
    parser.add_argument("--port", type=int, default=8000)
    anyio.run(main, parser.parse_args().port)
