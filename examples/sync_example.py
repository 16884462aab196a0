"""rtagent from plain synchronous code: ``connect_sync`` runs the session in a background thread.

    python examples/sync_example.py

Handy in scripts, notebooks and synchronous web frameworks. Without OPENAI_API_KEY the
embedded local server (an async object) runs in its own blocking portal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import start_blocking_portal

from rtagent import Agent, connect_sync, tool


class Calculator(Agent):
    instructions = "You are a calculator. Use the add tool for sums and answer with the number."
    output_modalities = ["text"]

    @tool
    def add(self, a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b


@contextmanager
def endpoint() -> Iterator[dict[str, Any]]:
    """Options for connect_sync: the real API with a key, else a local server."""
    if os.environ.get("OPENAI_API_KEY"):
        yield {}
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        LocalRealtimeServer()
    ) as server:
        yield {"url": server.url}


def main() -> None:
    with endpoint() as options, connect_sync(Calculator(), **options) as session:
        for question in ["Please add 2 and 40", "Now add 0.5 and 0.25"]:
            print(f"you> {question}")
            print(f"calculator> {session.ask(question)}")


if __name__ == "__main__":
    main()
