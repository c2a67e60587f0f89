"""The clock and randomness that policies take as ``clock=`` and ``random=``, and the
``Deadline`` that ``stormproof.deadline()`` puts in effect."""

from ._core.clock import MONOTONIC, Clock, MonotonicClock, RandomSource
from ._core.deadline import Deadline

__all__ = ["MONOTONIC", "Clock", "Deadline", "MonotonicClock", "RandomSource"]
