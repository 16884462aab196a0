"""Reset OpenTelemetry's global providers, so a test that sets them leaves none behind."""

from __future__ import annotations


def reset_otel_globals() -> None:
    """Forget the global tracer and meter providers (no-op without OpenTelemetry)."""
    try:
        from opentelemetry import trace
        from opentelemetry.metrics import _internal as metrics_internal
        from opentelemetry.util._once import Once
    except ImportError:
        return
    # OpenTelemetry lets a process set its providers once; its own test utilities reset
    # these module globals the same way.
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()
