"""When and how often to try (re)connecting.

One pure classifier (:func:`is_retryable`) and one policy object. The runtime's
connection loop is a short ``async for attempt in policy.attempts(): with attempt:``
around one ``async with`` per connection (tenacity supplies the jittered backoff and the
limits). Cancellation is never retried or swallowed.

A connection only ends a retry episode once it has proved itself: it reached
``session.updated`` and then stayed up for ``stable_after`` seconds or completed a
response. A server that accepts the handshake and closes at once (an outage behind a
proxy, a policy close) is paced by the backoff and counted against the limits, so
``ReconnectFailed`` comes when the policy says.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
import tenacity

from ._errors import (
    ConfigurationError,
    ConnectionClosed,
    HandshakeError,
    ReconnectFailed,
    ServerError,
    SessionRefused,
    TransportError,
)

__all__ = ["FATAL_CLOSE_CODES", "RetryPolicy", "is_retryable"]

logger = logging.getLogger("rtagent.retry")

# Server `error` codes that mean "try again later", not "you sent something wrong".
_RETRYABLE_SERVER_CODES = frozenset(
    {"rate_limit_exceeded", "server_error", "internal_error", "overloaded", "session_expired"}
)

FATAL_CLOSE_CODES = frozenset({3000, 3003, 4000})
"""Close codes the Realtime service uses for a refused request after the upgrade:
3000 authentication (a bad or missing key), 3003 forbidden, 4000 an invalid request
(unknown model, the retired beta dialect). Retrying cannot help."""


def is_retryable(exc: BaseException) -> bool:
    """Whether a failure to connect or stay connected is worth another attempt.

    Network errors, abrupt closes, keepalive timeouts, 5xx/408/429 handshakes and
    server-side ``error`` events are; bad keys (401/403, close 3000), invalid requests
    (close 4000) and configuration mistakes are not.
    """
    if not isinstance(exc, Exception):
        return False
    if isinstance(exc, HandshakeError):
        return exc.status_code >= 500 or exc.status_code in (408, 429)
    if isinstance(exc, ConnectionClosed):
        return exc.code not in FATAL_CLOSE_CODES
    if isinstance(exc, SessionRefused):
        return False
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

    The limits apply to one episode: the first connect, or one reconnect, until a
    connection is stable again.

    Attributes:
        max_attempts: attempts per episode (None: no limit).
        max_time: seconds per episode (None: no limit).
        initial_delay: the first backoff, in seconds.
        max_delay: the largest backoff, in seconds.
        multiplier: growth of the backoff per attempt.
        delays: explicit backoffs, one per retry (for tests); overrides the others.
        stable_after: seconds a connection must stay up (after ``session.updated``)
            to end the episode, unless it completed a response sooner.
    """

    max_attempts: int | None = 8
    max_time: float | None = 120.0
    initial_delay: float = 0.25
    max_delay: float = 10.0
    multiplier: float = 2.0
    delays: Sequence[float] | None = None
    stable_after: float = 10.0

    def attempts(
        self, *, sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    ) -> tenacity.AsyncRetrying:
        """One episode's attempts: ``async for attempt in policy.attempts(): with attempt:``.

        Raises (from the loop):
            ReconnectFailed: retryable failures exhausted the policy; see :func:`gave_up`.
            Exception: a failure that is not retryable, unchanged.
        """

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            logger.warning("attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, delay)

        return tenacity.AsyncRetrying(
            stop=self._stop(),
            wait=self._wait(),
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=False,
        )

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


def gave_up(exc: tenacity.RetryError) -> ReconnectFailed:
    """The error to report when an episode's attempts ran out."""
    last = exc.last_attempt.exception()
    error = ReconnectFailed(exc.last_attempt.attempt_number, last)
    error.__cause__ = last
    return error


class _WaitExplicit(tenacity.wait.wait_base):
    def __init__(self, delays: Sequence[float]) -> None:
        self.delays = list(delays)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if not self.delays:
            return 0.0
        return self.delays[min(retry_state.attempt_number - 1, len(self.delays) - 1)]
