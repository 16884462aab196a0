from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtagent.local import LocalRealtimeServer

pytest_plugins = ["pytester"]  # tests of rtagent.testing's pytest plugin


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def local_server() -> AsyncIterator[LocalRealtimeServer]:
    """A running local server with the rule-based brain, on 127.0.0.1."""
    async with LocalRealtimeServer() as server:
        yield server


_OPT_IN = ("browser", "wheel", "fleet")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser and wheel tests are slow: they run only when selected with -m."""
    selected = config.getoption("markexpr") or ""
    for item in items:
        for mark in _OPT_IN:
            if mark in item.keywords and mark not in selected:
                item.add_marker(pytest.mark.skip(reason=f"run with -m {mark}"))
