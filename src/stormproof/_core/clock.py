"""Time and randomness, injected into every policy so that tests and the simulator
can run the real policies on a virtual clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["MONOTONIC", "Clock", "MonotonicClock", "RandomSource"]

RandomSource = Callable[[], float]
"""A zero-argument callable returning a float in [0, 1), such as ``random.random``."""


@runtime_checkable
class Clock(Protocol):
    """Where policies read the time and how they wait.

    ``now()`` returns seconds on a monotonic scale (its origin is arbitrary);
    ``sleep`` blocks the calling thread; ``asleep`` suspends the calling task.
    """

    def now(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...

    async def asleep(self, seconds: float, /) -> None: ...


_LONGEST_SLEEP = 86_400.0


class MonotonicClock:
    """The default clock: ``time.monotonic``, ``time.sleep`` and ``asyncio.sleep``."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, /) -> None:
        # time.sleep refuses lengths past what the platform can count (about 292
        # years, less on some): a plausible "forever" sleeps a day at a time.
        while seconds > _LONGEST_SLEEP:
            time.sleep(_LONGEST_SLEEP)
            seconds -= _LONGEST_SLEEP
        time.sleep(seconds)

    async def asleep(self, seconds: float, /) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "MonotonicClock()"


MONOTONIC = MonotonicClock()
"""The shared default clock instance."""
