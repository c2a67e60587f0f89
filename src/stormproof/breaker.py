"""The circuit breaker's state and metrics types."""

from ._breaker import BreakerMetrics, BreakerState

__all__ = ["BreakerMetrics", "BreakerState"]
