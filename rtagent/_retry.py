"""When and how often to try (re)connecting.

One pure classifier (:func:`is_retryable`) and one policy object that turns into a
tenacity retrying loop. Cancellation is never retried or swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import tenacity

from ._errors import (
    ConfigurationError,
    HandshakeError,
    ReconnectFailed,
    ServerError,
    TransportError,
)

__all__ = ["RetryPolicy", "is_retryable", "retry_call"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Server `error` codes that mean "try again later", not "you sent something wrong".
_RETRYABLE_SERVER_CODES = frozenset(
    {"rate_limit_exceeded", "server_error", "internal_error", "overloaded", "session_expired"}
)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failure to connect or stay connected is worth another attempt.

    Network errors, abrupt closes, keepalive timeouts, 5xx/408/429 handshakes and
    server-side ``error`` events are; bad keys (401/403), invalid requests and
    configuration mistakes are not.
    """
    if not isinstance(exc, Exception):
        return False
    if isinstance(exc, HandshakeError):
        return exc.status_code >= 500 or exc.status_code in (408, 429)
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ServerError):
        return exc.type == "server_error" or exc.code in _RETRYABLE_SERVER_CODES
    if isinstance(exc, ConfigurationError):
        return False
    return isinstance(exc, (OSError, TimeoutError))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and time.

    The limits apply to one episode: the first connect, or one reconnect.

    Attributes:
        max_attempts: attempts per episode (None: no limit).
        max_time: seconds per episode (None: no limit).
        initial_delay: the first backoff, in seconds.
        max_delay: the largest backoff, in seconds.
        multiplier: growth of the backoff per attempt.
        delays: explicit backoffs, one per retry (for tests); overrides the others.
    """

    max_attempts: int | None = 8
    max_time: float | None = 120.0
    initial_delay: float = 0.25
    max_delay: float = 10.0
    multiplier: float = 2.0
    delays: Sequence[float] | None = None

    def _wait(self) -> tenacity.wait.wait_base:
        if self.delays is not None:
            return _WaitExplicit(self.delays)
        return tenacity.wait_random_exponential(
            multiplier=self.initial_delay, max=self.max_delay, exp_base=self.multiplier
        )

    def _stop(self) -> tenacity.stop.stop_base:
        stop: tenacity.stop.stop_base = tenacity.stop_never
        if self.max_attempts is not None:
            stop = tenacity.stop_after_attempt(self.max_attempts)
        if self.max_time is not None:
            stop = stop | tenacity.stop_after_delay(self.max_time)
        return stop


class _WaitExplicit(tenacity.wait.wait_base):
    def __init__(self, delays: Sequence[float]) -> None:
        self.delays = list(delays)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if not self.delays:
            return 0.0
        return self.delays[min(retry_state.attempt_number - 1, len(self.delays) - 1)]


async def retry_call(
    policy: RetryPolicy,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> T:
    """Await ``fn(*args)`` until it succeeds, fails for good, or the policy gives up.

    ``sleep`` waits between attempts (default ``anyio.sleep``); a caller may pass one
    that wakes early, e.g. when its session is closed.

    Raises:
        ReconnectFailed: retryable failures exhausted the policy (``__cause__`` is the last).
        Exception: a non-retryable failure, unchanged.
    """

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning("attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, delay)
        if on_retry is not None and exc is not None:
            on_retry(state.attempt_number, exc, delay)

    retrying = tenacity.AsyncRetrying(
        stop=policy._stop(),
        wait=policy._wait(),
        retry=tenacity.retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        return await retrying(fn, *args)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        raise ReconnectFailed(exc.last_attempt.attempt_number, last) from last
