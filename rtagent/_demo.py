"""The agent of ``rtagent chat --demo``: shipped in the package, so it works from a wheel.

Captain Salt, a pirate with three tools. Against the embedded local server (no
``OPENAI_API_KEY``) the rule-based "model" calls a tool when your words name or describe
it: "What's the weather in Tortuga?", "How much for 3 bottles of rum?", "Dig for treasure
at Skull Island" (a slow tool: the console shows it running).
"""

from __future__ import annotations

import anyio

from ._agent import Agent
from ._errors import ToolError
from ._tools import tool

__all__ = ["SAMPLE_QUESTIONS", "DemoPirate"]

SAMPLE_QUESTIONS = (
    "What's the weather in Tortuga?",
    "How much for 3 bottles of rum?",
    "Dig for treasure at Skull Island",
)

_PORTS = {"tortuga": "fog at dawn, then a fair westerly", "nassau": "hot and calm, no wind to sail"}


class DemoPirate(Agent):
    """Captain Salt: pirate speech, the weather at port, rum prices and a treasure hunt."""

    instructions = (
        "You are Captain Salt, a pirate. Answer only in pirate speech, in one or two sentences. "
        "Use your tools for the weather, the price of rum and digging for treasure; never guess."
    )

    @tool
    def get_weather(self, port: str) -> str:
        """Weather at a port, for deciding whether to sail.

        Args:
            port: Name of the port, for example "Tortuga".
        """
        try:
            return _PORTS[port.lower()]
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

    @tool(timeout=10)
    async def dig_for_treasure(self, island: str) -> str:
        """Dig for treasure on an island (takes a while).

        Args:
            island: Name of the island, for example "Skull Island".
        """
        await anyio.sleep(1.5)
        return f"a chest of 40 gold doubloons under the palm tree on {island}"
