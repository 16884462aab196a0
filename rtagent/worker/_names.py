"""Where a fleet keeps things in NATS: the job stream, its consumer, the subjects of a
call's control and events, and the key-value buckets of the registry and the journal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import ConfigurationError

__all__ = ["FleetNames", "check_id"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def check_id(value: object, what: str = "call_id") -> str:
    """A call or session id usable as a NATS subject token and key-value key.

    Raises:
        ConfigurationError: it is empty, too long, or has characters other than letters,
            digits, ``_`` and ``-`` (real call ids look like ``rtc_...``).
    """
    if not isinstance(value, str) or not _ID.match(value):
        raise ConfigurationError(
            f"{what} must be 1-200 letters, digits, '_' or '-', not {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class FleetNames:
    """The names one fleet uses; fleets with different prefixes share a NATS server
    without seeing each other's calls."""

    prefix: str = "rtagent"

    def __post_init__(self) -> None:
        check_id(self.prefix, "prefix")

    @property
    def stream(self) -> str:
        """The work-queue stream of submitted jobs."""
        return f"{self.prefix.upper()}_JOBS"

    @property
    def jobs(self) -> str:
        """The subject jobs are published to."""
        return f"{self.prefix}.jobs"

    @property
    def consumer(self) -> str:
        """The durable pull consumer every worker of the fleet shares."""
        return f"{self.prefix}-workers"

    @property
    def registry(self) -> str:
        """Bucket: call id -> the worker running it, with a TTL its owner keeps refreshing."""
        return f"{self.prefix}_registry"

    @property
    def journal(self) -> str:
        """Bucket: call id -> accepted?, tool calls in flight, history (sessions)."""
        return f"{self.prefix}_journal"

    def control(self, call_id: str) -> str:
        """Requests to the worker that owns a call (hang up, refer, say, hand off...)."""
        return f"{self.prefix}.control.{check_id(call_id)}"

    def events(self, call_id: str | None = None) -> str:
        """What happens in a call: transcripts, tools, usage, latency, start and end
        (every call's with None)."""
        return f"{self.prefix}.events.{'*' if call_id is None else check_id(call_id)}"
