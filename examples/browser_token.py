"""Mint an ephemeral client secret for a browser, then connect with it as the browser would.

    python examples/browser_token.py

Your server keeps the API key and hands the browser only a short-lived secret bound to the
agent's session config (instructions, tools, voice). In a web app the minting happens in
a request handler (``create_client_secret`` is the blocking twin for sync frameworks)::

    secret = await acreate_client_secret(agent, expires_after_seconds=600)
    return {"token": secret.value, "expires_at": secret.expires_at}

and the page opens ``wss://api.openai.com/v1/realtime?model=...`` (or WebRTC) with it.
Without OPENAI_API_KEY a local server that requires a key shows the whole flow offline:
it accepts the secrets it minted, and refuses other keys.
"""

from __future__ import annotations

import json
import os
import sys

import anyio

from rtagent import Agent, acreate_client_secret, connect, tool


class Concierge(Agent):
    instructions = "You are a hotel concierge. Keep answers short."
    output_modalities = ["text"]

    @tool
    def room_service_menu(self) -> list[str]:
        """The room service menu."""
        return ["club sandwich", "tomato soup", "cheesecake"]


async def main() -> None:
    agent = Concierge()
    if os.environ.get("OPENAI_API_KEY"):
        secret = await acreate_client_secret(agent, expires_after_seconds=600)
        print(json.dumps({"token": secret.value, "expires_at": secret.expires_at}))
        return
    from rtagent.local import LocalRealtimeServer

    print("(OPENAI_API_KEY not set: using the embedded local server)", file=sys.stderr)
    async with LocalRealtimeServer(api_key="sk-server-side-key") as server:
        # 1. Server side: mint with the real key.
        secret = await acreate_client_secret(
            agent, api_key="sk-server-side-key", base_url=server.http_url, expires_after_seconds=60
        )
        print(f"minted {secret.value[:8]}… valid until {secret.expires_at}")
        # 2. Browser side: connect with nothing but the secret.
        async with connect(Concierge(), url=server.url, api_key=secret.value) as session:
            print("browser> What is on the room service menu?")
            print(f"concierge> {await session.ask('What is on the room service menu?')}")


if __name__ == "__main__":
    anyio.run(main)
