"""FakeClock: a clock whose sleeps return at once and move its time forward."""

from __future__ import annotations

import asyncio
import threading

from ._core.validate import check_number

__all__ = ["FakeClock"]


class FakeClock:
    """A ``Clock`` for tests: ``sleep`` and ``asleep`` advance the time instantly.

    Timed waits (a full ``Bulkhead`` queue, say) time out at once too, unless what
    they wait for has already happened.

    ``sleeps`` records every requested sleep, in order. ``asleep`` also yields once
    to the event loop, so other tasks run as they would around a real sleep.
    Thread-safe.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = check_number("start", start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float, /) -> None:
        seconds = check_number("seconds", seconds, low=0.0)
        with self._lock:
            self._now += seconds
            self.sleeps.append(seconds)

    async def asleep(self, seconds: float, /) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """A blocking wait on this clock: returns at once, True if ``event`` is set;
        otherwise time moves on by ``timeout`` (the wait timed out)."""
        if event.is_set():
            return True
        self.advance(timeout)
        return event.is_set()

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        seconds = check_number("seconds", seconds, low=0.0)
        with self._lock:
            self._now += seconds

    @property
    def slept(self) -> float:
        """Total seconds slept."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, sleeps={len(self.sleeps)})"
