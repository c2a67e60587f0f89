"""Timeout: bound how long a call may take, and tell everything inside how long is left.

For async calls the awaited work is cancelled when time is up and ``DeadlineExceeded``
is raised. Python cannot stop a running thread, so for sync calls the timeout is
cooperative: it sets the deadline (``stormproof.remaining()``) that stormproof's
policies and well-behaved clients honour; code that ignores it runs to completion,
its result is returned, and a ``timeout.overran`` event reports the overrun.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._core import events
from ._core.clock import MONOTONIC, Clock, MonotonicClock
from ._core.deadline import current as current_deadline
from ._core.deadline import deadline
from ._core.errors import DeadlineExceeded
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import check_number, now_function
from ._core.waiting import wait_first
from ._policy import Policy

__all__ = ["Timeout", "TimeoutExpired", "TimeoutOverran"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """An async call ran out of time and was cancelled."""

    kind: ClassVar[str] = "timeout.expired"
    seconds: float


@dataclass(frozen=True, slots=True)
class TimeoutOverran(Event):
    """A sync call finished after its timeout (Python cannot stop a thread)."""

    kind: ClassVar[str] = "timeout.overran"
    seconds: float
    elapsed: float


@dataclass(frozen=True)
class TimeoutOptions(Options):
    """Timeout's options (see ``Timeout``), validated when built; ``replace()`` copies."""

    seconds: float
    name: str = "timeout"
    clock: Clock = MONOTONIC
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        self._set("seconds", check_number("seconds", self.seconds, low=0.0, low_open=True))


_D = TimeoutOptions(seconds=1.0)
"""Timeout's defaults, where its constructor reads them."""


class Timeout(Policy, Configured[TimeoutOptions]):
    """Give a call at most ``seconds``; the deadline propagates to everything inside."""

    options_type = TimeoutOptions

    __slots__ = ("_clock", "_listeners", "_monotonic", "_name", "_now", "_options", "_seconds")

    def __init__(
        self,
        seconds: float,
        *,
        name: str = _D.name,
        clock: Clock = _D.clock,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            TimeoutOptions(seconds=seconds, name=name, clock=clock, listeners=listeners)
        )

    def _configure(self, options: TimeoutOptions) -> None:
        self._options = options
        self._seconds = options.seconds
        self._name = options.name
        self._clock = options.clock
        self._monotonic = type(self._clock) is MonotonicClock
        self._now = now_function(self._clock)
        self._listeners = events.check_listeners(options.listeners)

    @property
    def seconds(self) -> float:
        return self._seconds

    def __repr__(self) -> str:
        return f"Timeout({self._seconds:g}, name={self._name!r})"

    def _budget(self) -> float:
        """Seconds this call may take: ours, or less if an outer deadline is nearer."""
        seconds = self._seconds
        outer = current_deadline()
        if outer is not None:
            left = outer.remaining()
            if left <= 0.0:
                raise DeadlineExceeded(f"{self._name}: the deadline has passed")
            seconds = min(seconds, left)
        return seconds

    def _expired(self, seconds: float) -> DeadlineExceeded:
        if events.active(self._listeners):
            events.emit(TimeoutExpired(self._name, self._now(), seconds), self._listeners)
        return DeadlineExceeded(f"{self._name}: timed out after {seconds:g}s")

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        seconds = self._budget()
        started = self._now()
        with deadline(seconds, clock=self._clock):
            result = fn(*args, **kwargs)
        elapsed = self._now() - started
        if elapsed > seconds and events.active(self._listeners):
            event = TimeoutOverran(self._name, started + elapsed, seconds, elapsed)
            events.emit(event, self._listeners)
        return result

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        seconds = self._budget()
        with deadline(seconds, clock=self._clock):
            if self._monotonic:
                return await self._cancel_after(seconds, fn(*args, **kwargs))
            return await self._race(seconds, fn(*args, **kwargs))

    async def _cancel_after(self, seconds: float, work: Awaitable[R]) -> R:
        """On the real clock: a loop timer cancels this task when time is up."""
        task = asyncio.current_task()
        assert task is not None
        expired = False
        # Cancellations already requested of this task (3.11+): one more than these
        # after our own is taken back means the caller cancelled too, and that wins.
        cancelling = 0
        if sys.version_info >= (3, 11):
            cancelling = task.cancelling()

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        loop = asyncio.get_running_loop()
        handle = loop.call_at(loop.time() + seconds, expire)
        try:
            result = await work
        except asyncio.CancelledError:
            if not expired or _uncancel(task) > cancelling:
                raise  # the caller's cancellation, never turned into a timeout
            raise self._expired(seconds) from None
        finally:
            handle.cancel()
        if expired:  # the work swallowed our cancellation and finished anyway
            _uncancel(task)
        return result

    async def _race(self, seconds: float, work: Awaitable[R]) -> R:
        """On any other clock (FakeClock, the simulator): race the work against
        ``clock.asleep(seconds)``."""
        task: asyncio.Future[R] = asyncio.ensure_future(work)
        try:
            done = await wait_first(self._clock, {task}, seconds)
        except BaseException:
            task.cancel()
            raise
        if task in done:
            try:
                return task.result()
            finally:
                del task, done  # no cycle: a failed call's traceback holds this frame
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            pass
        raise self._expired(seconds)


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Take one cancellation request back; returns those still pending (3.11+; on
    3.10, which does not count them, always 0)."""
    if sys.version_info >= (3, 11):
        return task.uncancel()
    return 0
