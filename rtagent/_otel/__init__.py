"""OpenTelemetry for sessions: GenAI spans and metrics through the global providers.

``connect()`` asks :func:`session_telemetry` for a :class:`SessionTelemetry` and, when
it gets one, runs :meth:`SessionTelemetry.consume` in its task group on a subscription
of its own to the session's events. Nothing is needed from the application beyond
setting up OpenTelemetry (``trace.set_tracer_provider``, ``metrics.set_meter_provider``,
or ``opentelemetry-instrument``) before connecting.

There is no telemetry, and no cost, when:

* the ``opentelemetry`` API is not importable (the ``otel`` extra installs it);
* neither a tracer provider nor a meter provider has been set (the API's defaults
  would drop everything);
* ``OTEL_SDK_DISABLED=true``, or ``rtagent`` is listed in
  ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.

Message text, tool arguments and tool results are recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is ``true``.

The telemetry never slows or breaks the session: it reads a bounded subscription (if it
fell behind it would lose events, never block the reader), and every error in it is
logged (``rtagent.otel``) and swallowed.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

    from .. import _events as ev
    from .._notices import Notice
    from .tracker import Instruments, Tracker

__all__ = ["SessionTelemetry", "is_content_captured", "session_telemetry"]

logger = logging.getLogger("rtagent.otel")

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_VALUES = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_SCOPE = "rtagent"

_cache: tuple[object, Instruments] | None = None
"""The instruments of the last meter provider used (created once per provider)."""


def is_content_captured() -> bool:
    """Whether message text, tool arguments and results go into spans."""
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in _CAPTURE_VALUES


def session_telemetry(agent_name: str, model: str, url: str) -> SessionTelemetry | None:
    """The telemetry of a new session, or None when OpenTelemetry is absent or not set up.

    Never raises: a broken OpenTelemetry installation means no telemetry, logged once.

    Args:
        agent_name: the agent's name, for ``gen_ai.agent.name``.
        model: the session's model.
        url: the Realtime WebSocket URL (for the provider and ``server.*``).
    """
    try:
        return _telemetry(agent_name, model, url)
    except Exception:
        logger.warning("OpenTelemetry instrumentation could not start", exc_info=True)
        return None


def _telemetry(agent_name: str, model: str, url: str) -> SessionTelemetry | None:
    if _disabled():
        return None
    try:
        from opentelemetry import context, metrics, trace
    except ImportError:
        return None
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    if not (_is_set(tracer_provider) or _is_set(meter_provider)):
        return None

    from .tracker import SessionInfo, Tracker

    version = _version()

    split = urlsplit(url)
    host = split.hostname or ""
    info = SessionInfo(
        agent_name=agent_name,
        model=model,
        provider="azure.ai.openai" if host.endswith(".openai.azure.com") else "openai",
        server_address=host or None,
        server_port=split.port or {"wss": 443, "ws": 80}.get(split.scheme),
        capture_content=is_content_captured(),
    )
    tracer = tracer_provider.get_tracer(_SCOPE, version)
    tracker = Tracker(tracer, _instruments(meter_provider, version), info, context.get_current())
    return SessionTelemetry(tracker)


def _version() -> str | None:
    """rtagent's version, for the instrumentation scope (from the installed metadata)."""
    try:
        return importlib.metadata.version("rtagent")
    except importlib.metadata.PackageNotFoundError:
        return None


def _disabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return True
    names = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return "rtagent" in {name.strip() for name in names.split(",")}


def _is_set(provider: object) -> bool:
    """Whether a global provider was set (not the API's proxy or no-op default)."""
    # The API's metrics proxy class is private, so it is recognised by name.
    return type(provider).__name__ not in {
        "ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider",
    }


def _instruments(meter_provider: Any, version: str | None) -> Instruments:
    """The histograms for this meter provider, created once (the SDK warns on duplicates)."""
    global _cache
    if _cache is not None and _cache[0] is meter_provider:
        return _cache[1]
    from . import semconv as sc
    from .tracker import Instruments

    meter = meter_provider.get_meter(_SCOPE, version)
    instruments = Instruments(
        token_usage=meter.create_histogram(
            sc.TOKEN_USAGE, "{token}", "Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS,
        ),
        duration=meter.create_histogram(
            sc.OPERATION_DURATION, "s", "GenAI operation duration.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        ),
        time_to_output=meter.create_histogram(
            sc.TOOL_TIME_TO_OUTPUT, "s",
            "From a tool call's arguments being complete to its output being sent.",
            explicit_bucket_boundaries_advisory=sc.LATENCY_BUCKETS,
        ),
        time_to_next_delta=meter.create_histogram(
            sc.TOOL_TIME_TO_NEXT_DELTA, "s",
            "From a tool call's arguments being complete to the first delta of the reply.",
            explicit_bucket_boundaries_advisory=sc.LATENCY_BUCKETS,
        ),
    )
    _cache = (meter_provider, instruments)
    return instruments


class SessionTelemetry:
    """Feeds one session's events to its :class:`~.tracker.Tracker`.

    Args:
        tracker: turns events into spans and measurements.
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._failed = False

    async def consume(self, receive: MemoryObjectReceiveStream[ev.ServerEvent | Notice]) -> None:
        """Handle every event until the session ends; then end the spans still open.

        Runs in ``connect()``'s task group. Events already delivered when it is cancelled
        (the session's last ones, as it closes) are still handled.
        """
        try:
            async for event in receive:
                self._handle(event)
        except Exception:  # never let telemetry end the session
            logger.warning("OpenTelemetry instrumentation stopped", exc_info=True)
        finally:
            while True:
                try:
                    event = receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                self._handle(event)
            try:
                self.tracker.close()
            except Exception:
                logger.warning("OpenTelemetry spans could not be ended", exc_info=True)
            receive.close()

    def _handle(self, event: ev.ServerEvent | Notice) -> None:
        try:
            self.tracker.handle(event)
        except Exception:
            # Logged with its traceback once per session; later failures only at debug.
            level = logging.DEBUG if self._failed else logging.WARNING
            logger.log(level, "OpenTelemetry could not record a %s event", event.type, exc_info=True)
            self._failed = True
