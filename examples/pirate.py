"""The classic: an agent that answers only in pirate speech, with two tools.

Chat with it:   rtagent chat examples/pirate.py
Or run it:      python examples/pirate.py

Without OPENAI_API_KEY both use the embedded local server, whose rule-based "model" calls
a tool when your words match it ("What's the weather in Tortuga?", "How much for 3 bottles
of rum?") and talks like a pirate when the instructions mention pirates.
"""

from __future__ import annotations

import os
import sys

import anyio

from rtagent import Agent, RealtimeSession, ToolError, ToolFinished, connect, tool

PORTS = {"tortuga": "fog at dawn, then a fair westerly", "nassau": "hot and calm, no wind to sail"}


class Pirate(Agent):
    instructions = (
        "You are Captain Salt, a pirate. Answer only in pirate speech, in one or two sentences. "
        "Use your tools for the weather and the price of rum; never guess them."
    )

    @tool
    def get_weather(self, port: str) -> str:
        """Weather at a port, for deciding whether to sail.

        Args:
            port: Name of the port, for example "Tortuga".
        """
        try:
            return PORTS[port.lower()]
        except KeyError:
            raise ToolError(f"No news from {port}; known ports: Tortuga, Nassau.") from None

    @tool
    def rum_price(self, bottles: int) -> str:
        """Price of rum in doubloons for a number of bottles.

        Args:
            bottles: How many bottles, 1 to 100.
        """
        if not 1 <= bottles <= 100:
            raise ToolError("We sell 1 to 100 bottles.")
        return f"{bottles * 3} doubloons"


async def main() -> None:
    agent = Pirate(output_modalities=["text"])
    questions = ["Ahoy!", "What's the weather in Tortuga?", "How much for 3 bottles of rum?"]
    if os.environ.get("OPENAI_API_KEY"):
        async with connect(agent) as session:
            await converse(session, questions)
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    async with LocalRealtimeServer() as server, connect(agent, url=server.url) as session:
        await converse(session, questions)


async def converse(session: RealtimeSession, questions: list[str]) -> None:
    async with anyio.create_task_group() as tg:

        async def show_tools() -> None:
            async for event in session:
                if isinstance(event, ToolFinished):
                    print(f"  ⚙ {event.name}({event.arguments}) → {event.output}")

        tg.start_soon(show_tools)
        await anyio.lowlevel.checkpoint()  # let show_tools subscribe first
        for question in questions:
            print(f"you> {question}")
            print(f"captain> {await session.ask(question)}")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
