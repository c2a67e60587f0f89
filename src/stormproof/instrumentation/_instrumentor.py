"""stormproof for ``opentelemetry-instrument`` (extra ``[otel]``, with the
opentelemetry-instrumentation package): registered under the
``opentelemetry_instrumentor`` entry point, so that running a service under
OpenTelemetry's automatic instrumentation exports stormproof's metrics with no code.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from stormproof.instrumentation._otel import enable_otel

__all__ = ["StormproofInstrumentor"]


class StormproofInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``StormproofInstrumentor().instrument(meter_provider=None)`` is
    ``enable_otel(meter_provider)``; ``uninstrument()`` stops it."""

    _stop: Callable[[], None] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        self._stop = enable_otel(kwargs.get("meter_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()
