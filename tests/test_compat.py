"""Other Realtime clients against the local server (``rtagent serve``): each completes a text
turn and a tool turn, and the server refuses none of their events.

Run with the ``compat`` extra installed: ``pip install -e '.[dev,compat]' && pytest -m compat``.
These clients are built on asyncio, so the tests run on asyncio only. Pipecat installs
cleanly but is not here: its ``OpenAIRealtimeLLMService`` takes user turns as audio, and a
text message added after the first turn never reaches the server, so no headless text
tool turn can be driven through it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from rtagent.local import LocalRealtimeServer, RuleBrain

pytestmark = pytest.mark.compat

KEY = "sk-local"
MODEL = "gpt-realtime"
INSTRUCTIONS = "You are a helpful assistant. Use get_weather for weather questions."
HELLO = "Hello!"
QUESTION = "What's the weather in Paris?"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city."}},
        "required": ["city"],
    },
}


@pytest.fixture
def anyio_backend() -> str:
    """These clients call asyncio directly."""
    return "asyncio"


def weather(city: str) -> str:
    return f"21 degrees and sunny in {city}"


@asynccontextmanager
async def serve() -> AsyncIterator[LocalRealtimeServer]:
    """What ``rtagent serve --api-key sk-local`` runs: the rule-based brain, keys checked."""
    async with LocalRealtimeServer(RuleBrain(), api_key=KEY) as server:
        yield server


def message_texts(server: LocalRealtimeServer) -> list[str]:
    """The text (or transcript) of every message the local model sent, in order."""
    texts = []
    for record in server.connections:
        for event in record.sent:
            if event["type"] != "response.done":
                continue
            for item in event["response"]["output"]:
                if item["type"] == "message":
                    part = item["content"][0]
                    texts.append(str(part.get("text") or part.get("transcript") or ""))
    return texts


def check_turns(server: LocalRealtimeServer, runs: list[str]) -> None:
    """A greeting answered the text turn; the tool ran once and its result answered the question."""
    refused = [e for r in server.connections for e in r.sent if e["type"] == "error"]
    assert refused == []
    texts = message_texts(server)
    assert texts[0].startswith("Hello!"), texts
    assert runs == ["Paris"]
    outputs = [
        e["item"]
        for r in server.connections
        for e in r.received
        if e.get("type") == "conversation.item.create"
        and e.get("item", {}).get("type") == "function_call_output"
    ]
    assert len(outputs) == 1 and "sunny" in outputs[0]["output"]
    assert "sunny in Paris" in texts[-1], texts


# ---- the openai package's raw realtime client ------------------------------------------------


async def test_openai_raw_client() -> None:
    """AsyncOpenAI().realtime.connect(): a text turn, then a tool turn with one response.create."""
    openai = pytest.importorskip("openai")
    runs: list[str] = []
    async with serve() as server:
        client = openai.AsyncOpenAI(
            api_key=KEY, base_url=server.http_url, websocket_base_url=f"ws://127.0.0.1:{server.port}/v1"
        )
        with anyio.fail_after(20):
            async with client.realtime.connect(model=MODEL) as conn:
                await conn.session.update(
                    session={
                        "type": "realtime",
                        "instructions": INSTRUCTIONS,
                        "output_modalities": ["text"],
                        "audio": {"input": {"turn_detection": None}},
                        "tools": [WEATHER_TOOL],
                    }
                )
                for text in (HELLO, QUESTION):
                    await conn.conversation.item.create(
                        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
                    )
                    await conn.response.create()
                    async for event in conn:
                        if event.type != "response.done":
                            continue
                        calls = [o for o in event.response.output or [] if o.type == "function_call"]
                        if not calls:
                            break
                        for call in calls:
                            runs.append(json.loads(call.arguments)["city"])
                            await conn.conversation.item.create(
                                item={
                                    "type": "function_call_output",
                                    "call_id": call.call_id,
                                    "output": weather(**json.loads(call.arguments)),
                                }
                            )
                        await conn.response.create()
        await client.close()
        check_turns(server, runs)


# ---- openai-agents: RealtimeRunner ---------------------------------------------------------


async def test_openai_agents_realtime_runner() -> None:
    """openai-agents' RealtimeRunner session: a text turn, then a function_tool turn."""
    pytest.importorskip("agents.realtime")
    from agents import function_tool
    from agents.realtime import RealtimeAgent, RealtimeRunner

    runs: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city.
        """
        runs.append(city)
        return weather(city)

    agent = RealtimeAgent(name="assistant", instructions=INSTRUCTIONS, tools=[get_weather])
    settings: Any = {"model_name": MODEL, "output_modalities": ["text"], "turn_detection": None, "tracing": None}
    async with serve() as server:
        runner = RealtimeRunner(agent, config={"model_settings": settings})
        session = await runner.run(model_config={"url": f"{server.url}?model={MODEL}", "api_key": KEY})
        with anyio.fail_after(20):
            async with session:
                for text in (HELLO, QUESTION):
                    before = len(message_texts(server))
                    await session.send_message(text)
                    async for event in session:
                        assert event.type != "error", event
                        # The turn ends with a message, after the tool ran if it was asked for.
                        answered = len(message_texts(server)) > before and (text == HELLO or runs)
                        if event.type == "agent_end" and answered:
                            break
        check_turns(server, runs)


# ---- pydantic-ai: Agent.realtime(...).session() ----------------------------------------------


async def test_pydantic_ai_realtime_agent() -> None:
    """pydantic-ai's realtime session: send() then wait_for_reply(), for a text turn and a tool turn."""
    pytest.importorskip("pydantic_ai.realtime.openai")
    from pydantic_ai import Agent
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.realtime.openai import OpenAIRealtimeModel

    runs: list[str] = []
    agent = Agent(instructions=INSTRUCTIONS)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city.
        """
        runs.append(city)
        return weather(city)

    settings: Any = {"output_modality": "text", "turn_detection": False, "input_transcription_model": None}
    async with serve() as server:
        model = OpenAIRealtimeModel(MODEL, provider=OpenAIProvider(base_url=server.http_url, api_key=KEY))
        with anyio.fail_after(20):
            async with agent.realtime(model, model_settings=settings).session() as session:
                for text in (HELLO, QUESTION):
                    await session.send(text)
                    await session.wait_for_reply()
        check_turns(server, runs)


# ---- livekit-plugins-openai: RealtimeModel, headless, text ----------------------------------


async def test_livekit_realtime_model() -> None:
    """livekit-plugins-openai's RealtimeModel without a room: generate_reply() for text and a tool round."""
    pytest.importorskip("livekit.plugins.openai")
    from livekit.agents import llm
    from livekit.plugins.openai import realtime

    runs: list[str] = []

    @llm.function_tool
    async def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city.
        """
        runs.append(city)
        return weather(city)

    async def reply(session: Any) -> tuple[str, list[Any]]:
        generation = await session.generate_reply()
        text = ""
        async for message in generation.message_stream:
            async for chunk in message.text_stream:
                text += chunk
        calls = [call async for call in generation.function_stream]
        return text, calls

    async with serve() as server:
        model = realtime.RealtimeModel(
            model=MODEL, modalities=["text"], base_url=server.http_url, api_key=KEY, turn_detection=None
        )
        session = model.session()
        try:
            with anyio.fail_after(20):
                await session.update_instructions(INSTRUCTIONS)
                await session.update_tools([get_weather])
                chat = session.chat_ctx.copy()
                chat.add_message(role="user", content=HELLO)
                await session.update_chat_ctx(chat)
                text, _ = await reply(session)
                assert text.startswith("Hello!")
                chat = session.chat_ctx.copy()
                chat.add_message(role="user", content=QUESTION)
                await session.update_chat_ctx(chat)
                _, calls = await reply(session)
                chat = session.chat_ctx.copy()
                for call in calls:
                    output = await get_weather(**json.loads(call.arguments))
                    chat.items.append(
                        llm.FunctionCallOutput(call_id=call.call_id, name=call.name, output=output, is_error=False)
                    )
                await session.update_chat_ctx(chat)
                text, _ = await reply(session)
                assert "sunny" in text
        finally:
            await session.aclose()
            await model.aclose()
            await asyncio.sleep(0)
        check_turns(server, runs)

