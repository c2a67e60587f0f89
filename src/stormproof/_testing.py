"""FakeClock: a clock whose sleeps return at once and move its time forward."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading

from ._core.validate import check_number

__all__ = ["FakeClock"]

_Timer = tuple[float, int, "asyncio.Future[None]"]

# How many turns of the event loop a wake-up waits for the other tasks to settle,
# when the loop cannot say that nothing else is ready (a loop without ``_ready``), or
# some task keeps yielding forever.
_SETTLE_TURNS = 100


class FakeClock:
    """A ``Clock`` for tests: sleeps take no real time, and time moves on by them.

    ``sleep(s)`` advances the time by ``s`` at once. ``await asleep(s)`` is virtual
    time, as on a real clock but without the wait: the task wakes at ``now() + s``,
    and time jumps there once every other task of its event loop is waiting too. So
    tasks sleeping side by side wake in order of their wake-up times, the time is the
    latest wake-up rather than the sum of the sleeps, and a race between work that
    answers at once and a timeout does not move time at all, as it does not in sync
    code.

    Timed waits (a full ``Bulkhead`` queue, say) time out at once too, unless what
    they wait for has already happened. ``sleeps`` records every requested sleep, in
    order. Thread-safe; several event loops (one per thread) may share one clock.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = check_number("start", start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        self._timers: dict[asyncio.AbstractEventLoop, list[_Timer]] = {}
        self._order = itertools.count()
        self._runners: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float, /) -> None:
        seconds = check_number("seconds", seconds, low=0.0)
        with self._lock:
            self._now += seconds
            self.sleeps.append(seconds)

    async def asleep(self, seconds: float, /) -> None:
        seconds = check_number("seconds", seconds, low=0.0)
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self.sleeps.append(seconds)
            timers = self._timers.get(loop)
            first = timers is None
            if timers is None:
                timers = self._timers[loop] = []
            heapq.heappush(timers, (self._now + seconds, next(self._order), wake))
        if first:
            runner = loop.create_task(self._run_timers(loop))
            self._runners.add(runner)  # held until done: a task nobody holds may vanish
            runner.add_done_callback(self._runners.discard)
        await wake

    async def _run_timers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the sleepers of ``loop`` in order, each once the loop has nothing else
        to run, moving time to its wake-up time. Ends when no sleeper is left."""
        try:
            while True:
                await _settle(loop)
                with self._lock:
                    timers = self._timers[loop]
                    while timers and timers[0][2].done():  # its sleeper was cancelled
                        heapq.heappop(timers)
                    if not timers:
                        del self._timers[loop]
                        return
                    self._now = max(self._now, timers[0][0])
                    due = []
                    while timers and timers[0][0] <= self._now:
                        due.append(heapq.heappop(timers)[2])
                for wake in due:
                    if not wake.done():
                        wake.set_result(None)
        except BaseException:
            with self._lock:
                for _, _, wake in self._timers.pop(loop, ()):
                    wake.cancel()
            raise

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


async def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """Return once no other callback of ``loop`` is ready to run (or after a bounded
    number of turns, if some task never stops yielding)."""
    ready = getattr(loop, "_ready", None)
    for _ in range(_SETTLE_TURNS):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return
