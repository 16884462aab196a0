"""A travel desk: a refund that needs a person's approval, a trip plan built in the
background with progress reports, a seeded history, and what each turn cost.

Run it:   python examples/travel.py

Without OPENAI_API_KEY it uses the embedded local server, whose rule-based "model" calls the
tool your words name ("refund 250 euros", "plan a trip to Lisbon").
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio

from rtagent import (
    Agent,
    ApprovalRequested,
    Prices,
    RealtimeSession,
    ToolContext,
    ToolFinished,
    ToolProgress,
    UsageReported,
    connect,
    tool,
)
from rtagent.events import ResponseDone

# Per million tokens (illustrative figures; use your model's).
PRICES = Prices(input_text=4.0, cached_text=0.4, input_audio=32.0, output_text=16.0, output_audio=64.0)
HISTORY = [
    {"role": "user", "content": "Hi, I'm Ada, booking ref TRV-881."},
    {"role": "assistant", "content": "Hello Ada, I have your booking TRV-881."},
]


class TravelDesk(Agent):
    instructions = (
        "You are a travel desk. Refunds over 100 euros need a manager's approval; if one is "
        "refused, say why. Plan trips with plan_trip. Answer in one sentence."
    )

    @tool(needs_approval=lambda args: args.get("amount", 0) > 100)
    def refund(self, amount: int) -> str:
        """Refund the customer a number of euros.

        Args:
            amount: Euros to refund.
        """
        return f"refunded {amount} euros"

    @tool(background=True, on_interrupt="cancel")
    async def plan_trip(self, city: str, ctx: ToolContext) -> str:
        """Plan a three-day trip to a city (takes a few seconds).

        Args:
            city: Where to go.
        """
        ctx.progress(f"looking at museums in {city}")
        await anyio.sleep(0.5)
        ctx.progress("booking the river cruise")
        await anyio.sleep(0.5)
        return f"3 days in {city}: museums, the food market, a river cruise"


async def main() -> None:
    agent = TravelDesk(output_modalities=["text"])
    options: dict[str, Any] = {"history": HISTORY, "prices": PRICES}
    if os.environ.get("OPENAI_API_KEY"):
        async with connect(agent, **options) as session:
            await converse(session)
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    async with LocalRealtimeServer() as server, connect(agent, url=server.url, **options) as session:
        await converse(session)


async def converse(session: RealtimeSession) -> None:
    plan_told = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            planned = False
            async for event in session:
                match event:
                    case ApprovalRequested(call_id=call_id, name=name, arguments=arguments):
                        print(f"  ? {name}{arguments} needs a manager: refused")
                        session.reject(call_id, "the manager is out until Monday")
                    case ToolProgress(text=text):
                        print(f"  … {text}")
                    case ToolFinished(name=name, output=output):
                        print(f"  ⚙ {name} → {output}")
                        planned = planned or name == "plan_trip"
                    case UsageReported(usage=usage, cost=cost):
                        print(f"  $ {usage.total_tokens} tokens, ${cost or 0:.6f}")
                    case ResponseDone() if planned:
                        plan_told.set()  # the model has told the user about the plan

        tg.start_soon(watch)
        await anyio.lowlevel.checkpoint()  # let watch subscribe first
        for question in ["Please refund 250 euros", "Plan a trip to Lisbon"]:
            print(f"you> {question}")
            print(f"desk> {await session.ask(question)}")
        with anyio.fail_after(30):
            await plan_told.wait()  # the plan arrives when it is ready
        print("transcript:")
        print(session.transcript(format="text"))
        print(f"session total: {session.usage.total.total_tokens} tokens, ${session.usage.cost or 0:.6f}")
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
