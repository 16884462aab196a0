"""The clients under test, behind one small adapter interface.

Every adapter opens a session with one tool, ``echo(text) -> "echo:" + text``, text output
and no VAD. The tool is a plain ``def`` (``tool="sync"``) or an ``async def`` (``tool="async"``),
and each client runs it the way it runs its users' tools: the floor and openai-raw call it
inline in their reader, rtagent runs a ``def`` tool in a worker thread (``tool="inline"``:
declared ``@tool(inline=True)``, on the event loop), openai-agents with
``asyncio.to_thread`` and pydantic-ai with ``anyio.to_thread``. The ``echo`` text ``"block"``
makes it block the calling thread for ``BLOCK_S`` seconds (the stall scenario: a ``def``
blocks, an ``async def`` awaits ``asyncio.sleep``). Adapters offer:

* ``session(url)``: an async context manager entered once ``session.updated`` has arrived;
* ``ask(s, text)``: one tool question, returning when the final text reply is done;
* ``audio_session(url, sink)``: an audio session whose decoded output audio goes to
  ``sink(bytes)``, with ``start_audio(s)``, ``send_audio(s, pcm16)`` and ``stop_audio(s)``.

"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

INSTRUCTIONS = "You are a benchmark agent. Call echo with the user's text."
ECHO_SCHEMA = {
    "type": "function",
    "name": "echo",
    "description": "Echo the text back.",
    "parameters": {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to echo."}},
        "required": ["text"],
    },
}
TEXT_SESSION = {
    "type": "realtime",
    "instructions": INSTRUCTIONS,
    "output_modalities": ["text"],
    "audio": {"input": {"turn_detection": None}},
    "tools": [ECHO_SCHEMA],
    "tool_choice": "auto",
}
AUDIO_SESSION = {
    "type": "realtime",
    "instructions": INSTRUCTIONS,
    "output_modalities": ["audio"],
    "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
        "output": {"format": {"type": "audio/pcm", "rate": 24000}},
    },
}

Sink = Callable[[bytes], None]
TOOL_KINDS = ("sync", "async")
BLOCK_S = 2.0
"""How long ``echo("block")`` blocks (the stall scenario)."""


def echo_sync(text: str) -> str:
    if text == "block":
        time.sleep(BLOCK_S)
    return "echo:" + text


async def echo_async(text: str) -> str:
    if text == "block":
        await asyncio.sleep(BLOCK_S)
    return "echo:" + text


async def run_echo(kind: str, arguments: str) -> str:
    """The hand-written clients' dispatch: the tool runs inline, awaited only when async."""
    args = json.loads(arguments)
    return echo_sync(**args) if kind == "sync" else await echo_async(**args)


def http_base(url: str) -> str:
    """``ws://host:port/p/a/t/h/realtime`` → ``http://host:port/p/a/t/h`` (for SDKs that append /realtime)."""
    base = url.split("?", 1)[0]
    if base.endswith("/realtime"):
        base = base[: -len("/realtime")]
    return "http" + base[2:]


# -- the floor: websockets + json, hand-written dispatch, no validation --------------------------


class Floor:
    """Minimal hand-written client: websockets' asyncio client, ``json``, a dict dispatch."""

    name = "floor"

    def __init__(self, tool: str = "async") -> None:
        self.tool = tool

    class _S:
        def __init__(self, ws: Any) -> None:
            self.ws = ws
            self.waiter: asyncio.Future[str] | None = None
            self.sink: Sink | None = None
            self.updated = asyncio.get_running_loop().create_future()

    async def _reader(self, s: _S) -> None:
        loads = json.loads
        ws = s.ws
        async for message in ws:
            event = loads(message)
            kind = event["type"]
            if kind == "response.output_audio.delta":
                if s.sink is not None:
                    s.sink(base64.b64decode(event["delta"]))
            elif kind == "response.done":
                output = event["response"]["output"]
                calls = [o for o in output if o["type"] == "function_call"]
                if calls:
                    for call in calls:
                        result = await run_echo(self.tool, call["arguments"])
                        await ws.send(json.dumps({
                            "type": "conversation.item.create",
                            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": result},
                        }))
                    await ws.send('{"type":"response.create"}')
                elif s.waiter is not None and not s.waiter.done():
                    text = "".join(
                        c.get("text", "") for o in output if o["type"] == "message" for c in o["content"]
                    )
                    s.waiter.set_result(text)
            elif kind == "session.updated" and not s.updated.done():
                s.updated.set_result(None)

    @asynccontextmanager
    async def _open(self, url: str, config: dict[str, Any]) -> AsyncIterator[_S]:
        from websockets.asyncio.client import connect

        async with connect(url, compression=None, max_size=None,
                           additional_headers={"Authorization": "Bearer sk-bench"}) as ws:
            s = self._S(ws)
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            reader = asyncio.create_task(self._reader(s))
            await ws.send(json.dumps({"type": "session.update", "session": config}))
            await s.updated
            try:
                yield s
            finally:
                reader.cancel()

    def session(self, url: str) -> Any:
        return self._open(url, TEXT_SESSION)

    async def ask(self, s: _S, text: str) -> str:
        s.waiter = asyncio.get_running_loop().create_future()
        await s.ws.send(json.dumps({
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        }))
        await s.ws.send('{"type":"response.create"}')
        return await s.waiter

    @asynccontextmanager
    async def audio_session(self, url: str, sink: Sink) -> AsyncIterator[_S]:
        async with self._open(url, AUDIO_SESSION) as s:
            s.sink = sink
            yield s

    async def start_audio(self, s: _S) -> None:
        await s.ws.send('{"type":"response.create"}')

    async def send_audio(self, s: _S, pcm: bytes) -> None:
        await s.ws.send(
            '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm).decode() + '"}'
        )

    async def stop_audio(self, s: _S) -> None:
        await s.ws.send('{"type":"response.cancel"}')


# -- rtagent -------------------------------------------------------------------------------------


class RTAgent:
    """rtagent's public API: ``connect(agent)`` and ``session.ask()``."""

    name = "rtagent"

    def __init__(self, tool: str = "async") -> None:
        from rtagent import Agent
        from rtagent import tool as mark

        class Echo(Agent):
            instructions = INSTRUCTIONS
            output_modalities = ["text"]
            turn_detection = None

            if tool in ("sync", "inline"):

                def echo(self, text: str) -> str:
                    """Echo the text back.

                    Args:
                        text: The text to echo.
                    """
                    return echo_sync(text)

                # "inline": the def tool declared quick, so it runs on the event loop.
                echo = mark(inline=True)(echo) if tool == "inline" else mark(echo)

            else:

                @mark
                async def echo(self, text: str) -> str:
                    """Echo the text back.

                    Args:
                        text: The text to echo.
                    """
                    return await echo_async(text)

        class Speaker(Agent):
            instructions = INSTRUCTIONS
            output_modalities = ["audio"]
            turn_detection = None

        self._echo = Echo
        self._speaker = Speaker

    @asynccontextmanager
    async def session(self, url: str) -> AsyncIterator[Any]:
        from rtagent import connect

        async with connect(self._echo(), url=url, api_key="sk-bench", reconnect=False) as s:
            yield s

    async def ask(self, s: Any, text: str) -> str:
        return str(await s.ask(text))

    @asynccontextmanager
    async def audio_session(self, url: str, sink: Sink) -> AsyncIterator[Any]:
        from rtagent import connect

        async with connect(self._speaker(), url=url, api_key="sk-bench", reconnect=False,
                           audio_chunk_ms=20) as s:
            # The documented cheap path for playback: a sink called per decoded chunk.
            remove = s.audio.add_sink(sink)
            try:
                yield s
            finally:
                remove()

    async def start_audio(self, s: Any) -> None:
        await s.create_response()

    async def send_audio(self, s: Any, pcm: bytes) -> None:
        await s.audio.send(pcm)

    async def stop_audio(self, s: Any) -> None:
        await s.cancel()


# -- openai: the SDK's raw realtime connection, hand-written dispatch ---------------------------


class OpenAIRaw:
    """``AsyncOpenAI(...).realtime.connect()``: typed events, hand-written dispatch."""

    name = "openai-raw"

    def __init__(self, tool: str = "async") -> None:
        self.tool = tool

    class _S:
        def __init__(self, conn: Any) -> None:
            self.conn = conn
            self.waiter: asyncio.Future[str] | None = None
            self.sink: Sink | None = None
            self.updated = asyncio.get_running_loop().create_future()

    async def _reader(self, s: _S) -> None:
        conn = s.conn
        async for event in conn:
            kind = event.type
            if kind == "response.output_audio.delta":
                if s.sink is not None:
                    s.sink(base64.b64decode(event.delta))
            elif kind == "response.done":
                output = event.response.output or []
                calls = [o for o in output if o.type == "function_call"]
                if calls:
                    for call in calls:
                        result = await run_echo(self.tool, call.arguments)
                        await conn.conversation.item.create(
                            item={"type": "function_call_output", "call_id": call.call_id, "output": result}
                        )
                    await conn.response.create()
                elif s.waiter is not None and not s.waiter.done():
                    text = "".join(
                        (c.text or "") for o in output if o.type == "message" for c in (o.content or [])
                    )
                    s.waiter.set_result(text)
            elif kind == "session.updated" and not s.updated.done():
                s.updated.set_result(None)

    @asynccontextmanager
    async def _open(self, url: str, config: dict[str, Any]) -> AsyncIterator[_S]:
        from openai import AsyncOpenAI

        base = http_base(url)
        client = AsyncOpenAI(api_key="sk-bench", base_url=base, websocket_base_url="ws" + base[4:])
        async with client.realtime.connect(model="gpt-realtime") as conn:
            s = self._S(conn)
            created = await conn.recv()
            assert created.type == "session.created"
            reader = asyncio.create_task(self._reader(s))
            await conn.session.update(session=config)  # type: ignore[arg-type]
            await s.updated
            try:
                yield s
            finally:
                reader.cancel()
        await client.close()

    def session(self, url: str) -> Any:
        return self._open(url, TEXT_SESSION)

    async def ask(self, s: _S, text: str) -> str:
        s.waiter = asyncio.get_running_loop().create_future()
        await s.conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )
        await s.conn.response.create()
        return await s.waiter

    @asynccontextmanager
    async def audio_session(self, url: str, sink: Sink) -> AsyncIterator[_S]:
        async with self._open(url, AUDIO_SESSION) as s:
            s.sink = sink
            yield s

    async def start_audio(self, s: _S) -> None:
        await s.conn.response.create()

    async def send_audio(self, s: _S, pcm: bytes) -> None:
        await s.conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())

    async def stop_audio(self, s: _S) -> None:
        await s.conn.response.cancel()


# -- openai-agents: agents.realtime ---------------------------------------------------------------


class OpenAIAgents:
    """openai-agents' ``RealtimeRunner`` session with a ``function_tool``."""

    name = "openai-agents"

    class _S:
        def __init__(self, session: Any) -> None:
            self.session = session
            self.waiter: asyncio.Future[None] | None = None
            self.tool_done = False
            self.ends = 0
            self.sink: Sink | None = None
            self.updated = asyncio.get_running_loop().create_future()

    def __init__(self, tool: str = "async") -> None:
        from agents import function_tool
        from agents.realtime import RealtimeAgent

        if tool == "sync":

            @function_tool
            def echo(text: str) -> str:
                """Echo the text back.

                Args:
                    text: The text to echo.
                """
                return echo_sync(text)

        else:

            @function_tool
            async def echo(text: str) -> str:
                """Echo the text back.

                Args:
                    text: The text to echo.
                """
                return await echo_async(text)

        self._agent = RealtimeAgent(name="bench", instructions=INSTRUCTIONS, tools=[echo])
        self._speaker = RealtimeAgent(name="speaker", instructions=INSTRUCTIONS)

    async def _reader(self, s: _S) -> None:
        async for event in s.session:
            kind = event.type
            if kind == "audio":
                if s.sink is not None:
                    s.sink(event.audio.data)
            elif kind == "tool_end":
                s.tool_done = True
            elif kind == "agent_end":
                s.ends += 1
                if s.waiter is not None and s.tool_done and s.ends >= 2 and not s.waiter.done():
                    s.waiter.set_result(None)
            elif kind == "raw_model_event":
                data = event.data
                if (
                    data.type == "raw_server_event"
                    and data.data.get("type") == "session.updated"
                    and not s.updated.done()
                ):
                    s.updated.set_result(None)

    @asynccontextmanager
    async def _open(self, url: str, agent: Any, settings: dict[str, Any]) -> AsyncIterator[_S]:
        from agents.realtime import RealtimeRunner

        runner = RealtimeRunner(agent, config={"model_settings": settings})  # type: ignore[arg-type]
        session = await runner.run(model_config={"url": url, "api_key": "sk-bench"})
        async with session:
            s = self._S(session)
            reader = asyncio.create_task(self._reader(s))
            await s.updated
            try:
                yield s
            finally:
                reader.cancel()

    def session(self, url: str) -> Any:
        return self._open(url, self._agent, {
            "model_name": "gpt-realtime", "output_modalities": ["text"], "turn_detection": None,
            "tracing": None,
        })

    async def ask(self, s: _S, text: str) -> str:
        s.waiter = asyncio.get_running_loop().create_future()
        s.tool_done = False
        s.ends = 0
        await s.session.send_message(text)
        await s.waiter
        return ""

    @asynccontextmanager
    async def audio_session(self, url: str, sink: Sink) -> AsyncIterator[_S]:
        async with self._open(url, self._speaker, {
            "model_name": "gpt-realtime", "output_modalities": ["audio"], "turn_detection": None,
            "tracing": None,
        }) as s:
            s.sink = sink
            yield s

    async def start_audio(self, s: _S) -> None:
        from agents.realtime.model_inputs import RealtimeModelSendRawMessage

        await s.session.model.send_event(
            RealtimeModelSendRawMessage(message={"type": "response.create"})
        )

    async def send_audio(self, s: _S, pcm: bytes) -> None:
        await s.session.send_audio(pcm)

    async def stop_audio(self, s: _S) -> None:
        await s.session.interrupt()


# -- pydantic-ai: Agent.realtime(...).session() ---------------------------------------------------


class PydanticAI:
    """pydantic-ai's realtime session (``Agent.realtime(model).session()``), ``send`` + ``wait_for_reply``."""

    name = "pydantic-ai"

    def __init__(self, tool: str = "async") -> None:
        from pydantic_ai import Agent

        agent = Agent(instructions=INSTRUCTIONS)

        if tool == "sync":

            @agent.tool_plain
            def echo(text: str) -> str:
                """Echo the text back.

                Args:
                    text: The text to echo.
                """
                return echo_sync(text)

        else:

            @agent.tool_plain
            async def echo(text: str) -> str:
                """Echo the text back.

                Args:
                    text: The text to echo.
                """
                return await echo_async(text)

        self._agent = agent

    def _model(self, url: str) -> Any:
        from pydantic_ai.providers.openai import OpenAIProvider
        from pydantic_ai.realtime.openai import OpenAIRealtimeModel

        return OpenAIRealtimeModel(
            "gpt-realtime", provider=OpenAIProvider(base_url=http_base(url), api_key="sk-bench")
        )

    @asynccontextmanager
    async def session(self, url: str) -> AsyncIterator[Any]:
        settings: Any = {"output_modality": "text", "turn_detection": False,
                         "input_transcription_model": None}
        async with self._agent.realtime(self._model(url), model_settings=settings).session() as s:
            yield s

    async def ask(self, s: Any, text: str) -> str:
        await s.send(text)
        await s.wait_for_reply()
        return ""


ADAPTERS: dict[str, Callable[[], Any]] = {
    "floor": Floor,
    "rtagent": RTAgent,
    "openai-raw": OpenAIRaw,
    "openai-agents": OpenAIAgents,
    "pydantic-ai": PydanticAI,
}
"""Every client, in table order. Audio is offered by all but pydantic-ai."""

IMPORTS: dict[str, str] = {
    "floor": "import json, websockets.asyncio.client",
    "rtagent": "import rtagent, rtagent._runtime",
    "openai-raw": "import openai, openai.resources.realtime",
    "openai-agents": "import agents.realtime",
    "pydantic-ai": "import pydantic_ai, pydantic_ai.realtime.openai",
}
"""What each client must import before it can connect (the start-up measurement)."""

PACKAGES: dict[str, str] = {
    "floor": "websockets",
    "rtagent": "rtagent",
    "openai-raw": "openai",
    "openai-agents": "agents",
    "pydantic-ai": "pydantic_ai",
}
