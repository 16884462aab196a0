"""A customer-support agent: plugin tools from ``plugins/`` plus a tool taking a pydantic model.

Run it:   python examples/support.py
Chat:     rtagent chat examples/support.py

The calculator, clock and unit plugins come from the repository's ``plugins/`` folder;
``open_ticket`` takes a whole ``Ticket`` model, so the model must send a valid object (the
schema says so, and a bad one is refused with a message the model can act on).

Without OPENAI_API_KEY the embedded local server answers. Its rule-based model cannot fill
a nested object, so ``Desk`` below (a few lines) stands in for the model on ticket requests:
the same trick lets you test any agent offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from rtagent import Agent, RealtimeSession, ToolFinished, connect, tool

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


class Ticket(BaseModel):
    """A support ticket."""

    subject: str = Field(description="One line saying what is wrong.")
    priority: Literal["low", "normal", "urgent"] = "normal"
    email: str = Field(description="Where to send updates.", pattern=r"^[^@\s]+@[^@\s]+$")


class Support(Agent):
    instructions = (
        "You are the help desk of Acme Rockets. Be brief and friendly. Use the calculator for "
        "arithmetic, the clock for times and the unit converter for units. Open a ticket when "
        "a customer reports a problem; ask for their email first."
    )
    plugins = [PLUGINS / "calculator.py", PLUGINS / "clock.py", PLUGINS / "units.py"]

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)  # type: ignore[arg-type]
        self.tickets: list[Ticket] = []

    @tool
    def open_ticket(self, ticket: Ticket) -> str:
        """Open a support ticket for a customer's problem.

        Args:
            ticket: The ticket to open.
        """
        self.tickets.append(ticket)
        return f"ticket #{len(self.tickets)} opened ({ticket.priority}); updates go to {ticket.email}"


QUESTIONS = [
    "Please calculate 17 * 23 + 4",
    "What is the current time in 'Asia/Tokyo'?",
    "My rocket will not launch, please open a ticket. I am wile@acme.example",
]


async def main() -> None:
    agent = Support(output_modalities=["text"])
    if os.environ.get("OPENAI_API_KEY"):
        async with connect(agent) as session:
            await converse(session)
        return
    from rtagent.local import Call, LocalRealtimeServer, RuleBrain, Turn
    from rtagent.local._brains import Conversation

    class Desk(RuleBrain):
        """The rule-based local model, plus: a ticket request opens a ticket."""

        def reply(self, convo: Conversation) -> Turn:
            text = convo.last_user_text
            if "ticket" in text and not convo.trailing_outputs:
                email = next((w for w in text.split() if "@" in w), "unknown@example.com")
                ticket = {"subject": text.split(",")[0], "priority": "urgent", "email": email}
                return Turn(calls=[Call("open_ticket", {"ticket": ticket})])
            return super().reply(convo)

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    async with LocalRealtimeServer(Desk()) as server, connect(agent, url=server.url) as session:
        await converse(session)
    print(f"tickets: {[t.model_dump() for t in agent.tickets]}")


async def converse(session: RealtimeSession) -> None:
    async with anyio.create_task_group() as tg:

        async def show_tools() -> None:
            async for event in session:
                if isinstance(event, ToolFinished):
                    print(f"  ⚙ {event.name}({event.arguments}) → {event.output}")

        tg.start_soon(show_tools)
        await anyio.lowlevel.checkpoint()
        for question in QUESTIONS:
            print(f"customer> {question}")
            print(f"desk> {await session.ask(question)}")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
