from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


_OPT_IN = ("browser", "wheel")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser and wheel tests are slow: they run only when selected with -m."""
    selected = config.getoption("markexpr") or ""
    for item in items:
        for mark in _OPT_IN:
            if mark in item.keywords and mark not in selected:
                item.add_marker(pytest.mark.skip(reason=f"run with -m {mark}"))
