"""The retry classifier and the retrying loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import tenacity

from rtagent._errors import (
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    KeepaliveTimeout,
    ReconnectFailed,
    ServerError,
    TransportError,
)
from rtagent._retry import RetryPolicy, gave_up, is_retryable

T = TypeVar("T")


async def retry_call(policy: RetryPolicy, fn: Callable[[], Awaitable[T]]) -> T:
    """The runtime's loop shape: one ``with attempt`` per try, ReconnectFailed at the end."""
    try:
        async for attempt in policy.attempts():
            with attempt:
                return await fn()
    except tenacity.RetryError as exc:
        raise gave_up(exc) from None
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionClosed(None), True),
        (ConnectionClosed(1011, "internal"), True),
        (ConnectionClosed(1008, "policy"), True),
        (ConnectionClosed(3000, "invalid_request_error.invalid_api_key"), False),
        (ConnectionClosed(4000, "invalid_request_error.invalid_model"), False),
        (KeepaliveTimeout("no pong"), True),
        (TransportError("refused"), True),
        (HandshakeError(500), True),
        (HandshakeError(503), True),
        (HandshakeError(429), True),
        (HandshakeError(401), False),
        (HandshakeError(403), False),
        (HandshakeError(400), False),
        (ServerError("x", type="server_error"), True),
        (ServerError("x", type="invalid_request_error", code="rate_limit_exceeded"), True),
        (ServerError("x", type="invalid_request_error", code="invalid_value"), False),
        (ConfigurationError("no key"), False),
        (OSError("reset"), True),
        (ValueError("bug"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_is_retryable(exc: BaseException, expected: bool) -> None:
    """Network and server-side failures retry; the caller's mistakes do not."""
    assert is_retryable(exc) is expected


async def test_retry_call_succeeds_after_failures() -> None:
    """Retryable failures are retried with the injected delays until success."""
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionClosed(None)
        return "ok"

    assert await retry_call(RetryPolicy(delays=[0, 0]), flaky) == "ok"
    assert len(attempts) == 3


async def test_retry_call_gives_up_with_one_clear_error() -> None:
    """When the attempts run out, ReconnectFailed carries the count and the last error."""

    async def down() -> None:
        raise HandshakeError(503, b"overloaded")

    with pytest.raises(ReconnectFailed) as info:
        await retry_call(RetryPolicy(max_attempts=3, delays=[0]), down)
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, HandshakeError)
    assert "503" in str(info.value)


async def test_non_retryable_error_is_raised_at_once() -> None:
    """A 401 is not retried and comes out unchanged."""
    attempts = []

    async def unauthorized() -> None:
        attempts.append(1)
        raise HandshakeError(401, b'{"error":{"code":"invalid_api_key"}}')

    with pytest.raises(HandshakeError):
        await retry_call(RetryPolicy(delays=[0]), unauthorized)
    assert len(attempts) == 1
