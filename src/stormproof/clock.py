"""The clock and randomness that policies take as ``clock=`` and ``random=``."""

from ._core.clock import MONOTONIC, Clock, MonotonicClock, RandomSource

__all__ = ["MONOTONIC", "Clock", "MonotonicClock", "RandomSource"]
