"""Ephemeral client secrets minted end to end against the local server (rtagent._secrets)."""

from __future__ import annotations

from functools import partial

import anyio
import anyio.to_thread
import pytest

from rtagent import Agent, tool
from rtagent._errors import ConfigurationError, SessionRefused, TransportError
from rtagent._runtime import connect
from rtagent._secrets import (
    ClientSecret,
    ClientSecretError,
    acreate_client_secret,
    create_client_secret,
)
from rtagent.local import LocalRealtimeServer

KEY = "sk-right-key"


class Greeter(Agent):
    instructions = "You greet people."
    output_modalities = ["text"]
    voice = "cedar"

    @tool
    def greet(self, name: str) -> str:
        """Greet someone by name.

        Args:
            name: Who to greet.
        """
        return f"hello {name}"


async def test_minted_secret_opens_a_session() -> None:
    """A secret minted with the real key is accepted on connect and carries the agent's config."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            secret = await acreate_client_secret(
                Greeter(), api_key=KEY, base_url=server.http_url, expires_after_seconds=60
            )
            assert isinstance(secret, ClientSecret)
            assert secret.value.startswith("ek_")
            assert secret.session["instructions"] == "You greet people."
            assert [t["name"] for t in secret.session["tools"]] == ["greet"]
            assert secret.value not in repr(secret)
            async with connect(Greeter(), url=server.url, api_key=secret.value) as session:
                assert "greet returned hello" in await session.ask("Please greet 'Ada'")
            assert server.connections[0].headers["authorization"] == f"Bearer {secret.value}"


async def test_unknown_secret_is_rejected_on_connect() -> None:
    """A secret the server did not mint is refused like a bad key: an error event, then close 3000."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            with pytest.raises(SessionRefused) as info:
                async with connect(Greeter(), url=server.url, api_key="ek_not_minted_here"):
                    pass
            assert (info.value.close_code, info.value.code) == (3000, "invalid_api_key")


async def test_wrong_key_cannot_mint() -> None:
    """Minting with a wrong key raises ClientSecretError with the HTTP status and error code."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            with pytest.raises(ClientSecretError) as info:
                await acreate_client_secret(Greeter(), api_key="sk-wrong", base_url=server.http_url)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong" not in str(info.value)  # the server masks it, and so do we


async def test_a_secret_cannot_mint_another() -> None:
    """Ephemeral secrets open sessions but cannot mint more secrets."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            secret = await acreate_client_secret(Greeter(), api_key=KEY, base_url=server.http_url)
            with pytest.raises(ClientSecretError, match="HTTP 401"):
                await acreate_client_secret(Greeter(), api_key=secret.value, base_url=server.http_url)


async def test_sync_variant_from_a_worker_thread() -> None:
    """create_client_secret (blocking) mints the same way, with the model overridden."""
    with anyio.fail_after(10):
        async with LocalRealtimeServer(api_key=KEY) as server:
            mint = partial(
                create_client_secret, Greeter(), api_key=KEY, base_url=server.http_url, model="gpt-realtime-mini"
            )
            secret = await anyio.to_thread.run_sync(mint)
    assert secret.session["model"] == "gpt-realtime-mini"
    assert secret.session["audio"]["output"]["voice"] == "cedar"


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key for OpenAI's endpoint, or a lifetime out of range, fail before any request."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="no API key"):
        create_client_secret(Greeter())
    with pytest.raises(ConfigurationError, match="10 to 7200"):
        create_client_secret(Greeter(), api_key="sk-x", expires_after_seconds=5)


def test_unreachable_server_is_a_transport_error() -> None:
    """A closed port raises TransportError naming the URL."""
    with pytest.raises(TransportError, match=r"127\.0\.0\.1:9"):
        create_client_secret(Greeter(), api_key="sk-x", base_url="http://127.0.0.1:9/v1")
