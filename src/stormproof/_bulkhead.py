"""Bulkhead: at most ``max_concurrent`` calls at a time, for threads and asyncio.

Callers beyond the limit wait in a bounded FIFO queue for at most ``max_wait``
seconds (and never past the current deadline), or are rejected with
``BulkheadFull``. A permit is handed directly from the caller that releases it to
the first waiter, so late arrivals cannot barge ahead of the queue. Whatever
exception or cancellation happens where, a permit is never leaked.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.deadline import current as current_deadline
from ._core.drive import Waiter
from ._core.errors import ConfigError, Rejected
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import check_int, check_number, now_function
from ._core.waiting import wait_event, wait_future
from ._policy import Policy

__all__ = ["Bulkhead", "BulkheadFull", "BulkheadRejected"]

R = TypeVar("R")


class BulkheadFull(Rejected):
    """The bulkhead's concurrency limit and queue are full (or the wait timed out)."""

    _reason = "bulkhead full"


@dataclass(frozen=True, slots=True)
class BulkheadRejected(Event):
    """A call was refused: no free permit, and no room or time to wait for one."""

    kind: ClassVar[str] = "bulkhead.rejected"
    active: int
    queued: int
    waited: bool


class _PermitWaiter(Waiter):
    """A caller queued for a permit; ``granted`` once a releasing caller hands it one."""

    __slots__ = ("granted",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        super().__init__(loop)
        self.granted = False


@dataclass(frozen=True)
class BulkheadOptions(Options):
    """Bulkhead's options (see ``Bulkhead``), validated when built; ``replace()``
    copies. The field defaults are the bulkhead's defaults."""

    max_concurrent: int
    max_queue: int = 0
    max_wait: float = 0.0
    name: str = "bulkhead"
    clock: Clock = MONOTONIC
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        check_int("max_concurrent", self.max_concurrent, low=1)
        check_int("max_queue", self.max_queue, low=0)
        self._set("max_wait", check_number("max_wait", self.max_wait, low=0.0))
        if self.max_queue and not self.max_wait:
            raise ConfigError("max_wait", "> 0 when max_queue is set", self.max_wait)


_D = BulkheadOptions(max_concurrent=1)
"""The bulkhead's defaults, where its constructor reads them."""


class Bulkhead(Policy, Configured[BulkheadOptions]):
    """Limit concurrent calls to ``max_concurrent``; queue up to ``max_queue`` more
    for at most ``max_wait`` seconds each. One object works for threads and tasks."""

    options_type = BulkheadOptions

    __slots__ = (
        "_active",
        "_clock",
        "_listeners",
        "_lock",
        "_max",
        "_max_queue",
        "_max_wait",
        "_name",
        "_now",
        "_options",
        "_waiters",
    )

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_queue: int = _D.max_queue,
        max_wait: float = _D.max_wait,
        name: str = _D.name,
        clock: Clock = _D.clock,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            BulkheadOptions(
                max_concurrent=max_concurrent,
                max_queue=max_queue,
                max_wait=max_wait,
                name=name,
                clock=clock,
                listeners=listeners,
            )
        )

    def _configure(self, options: BulkheadOptions) -> None:
        self._options = options
        self._max = options.max_concurrent
        self._max_queue = options.max_queue
        self._max_wait = options.max_wait
        self._name = options.name
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._listeners = events.check_listeners(options.listeners)
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[_PermitWaiter] = deque()

    @property
    def max_concurrent(self) -> int:
        return self._max

    @property
    def active(self) -> int:
        """Permits held now."""
        return self._active

    @property
    def queued(self) -> int:
        """Callers waiting for a permit now."""
        return len(self._waiters)

    def __repr__(self) -> str:
        return (
            f"Bulkhead(max_concurrent={self._max}, max_queue={self._max_queue}, "
            f"max_wait={self._max_wait:g}, name={self._name!r})"
        )

    # -- the permit core: no I/O, no waiting ----------------------------------------

    def try_acquire(self) -> bool:
        """Take a permit if one is free right now (and nobody is queued for it)."""
        lock = self._lock
        lock.acquire()  # explicit acquire/release: half the cost of ``with`` here
        try:
            if self._active < self._max and not self._waiters:
                self._active += 1
                return True
            return False
        finally:
            lock.release()

    def release(self) -> None:
        """Give a permit back: to the first waiter, or to the pool. Raises ``ValueError``
        when no permit is held (a release without its acquire), changing nothing."""
        lock = self._lock
        lock.acquire()
        try:
            if self._active <= 0:
                raise ValueError(f"bulkhead {self._name!r}: release() without a held permit")
            if not self._waiters:
                self._active -= 1
                return
        finally:
            lock.release()
        self._hand_over()

    def _hand_over(self) -> None:
        while True:
            with self._lock:
                if not self._waiters:
                    self._active -= 1
                    return
                waiter = self._waiters.popleft()
                waiter.granted = True  # the permit passes to it; active is unchanged
            if waiter.wake():
                return
            # Its event loop is gone: the permit moves on to the next waiter.

    def _enqueue(self, waiter: _PermitWaiter) -> float | None:
        """Queue ``waiter`` if there is room and time; returns how long it may wait."""
        if len(self._waiters) >= self._max_queue:
            return None
        timeout = self._max_wait
        active_deadline = current_deadline()
        if active_deadline is not None:
            timeout = min(timeout, active_deadline.remaining())
        if timeout <= 0.0:
            return None
        self._waiters.append(waiter)
        return timeout

    def _stop_waiting(self, waiter: _PermitWaiter) -> bool:
        """The waiter stops waiting. True if it was granted a permit meanwhile."""
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
            return False

    def _reject(self, waited: bool) -> BulkheadFull:
        if events.active(self._listeners):
            event = BulkheadRejected(self._name, self._now(), self._active, self.queued, waited)
            events.emit(event, self._listeners)
        return BulkheadFull(self._name, None)

    # -- drivers ---------------------------------------------------------------------

    def _queue_up(
        self, loop: asyncio.AbstractEventLoop | None
    ) -> tuple[_PermitWaiter, float] | None:
        """No permit was free at once: take one if it is free now (None), or queue a
        waiter (on ``loop``, for a task) and say how long it may wait; or refuse."""
        with self._lock:
            if self._active < self._max and not self._waiters:
                self._active += 1
                return None
            waiter = _PermitWaiter(loop)
            timeout = self._enqueue(waiter)
        if timeout is None:
            raise self._reject(waited=False)
        return waiter, timeout

    def _waited(self, waiter: _PermitWaiter, error: BaseException | None = None) -> None:
        """The wait for a permit ended (``error``: it was interrupted). Keeps a permit
        granted meanwhile, or gives it back if the caller is not going on, or refuses."""
        granted = self._stop_waiting(waiter)
        if error is not None:
            if granted:
                self.release()
        elif not granted:
            raise self._reject(waited=True)

    def _acquire(self) -> None:
        """Wait for a permit (the fast path, a free one, is ``try_acquire``)."""
        queued = self._queue_up(None)
        if queued is not None:
            try:
                wait_event(self._clock, queued[0].event, queued[1])
            except BaseException as error:
                self._waited(queued[0], error)
                raise
            self._waited(queued[0])

    async def _aacquire(self) -> None:
        queued = self._queue_up(asyncio.get_running_loop())
        if queued is not None:
            try:
                await wait_future(self._clock, queued[0].future, queued[1])  # type: ignore[arg-type]
            except BaseException as error:
                self._waited(queued[0], error)
                raise
            self._waited(queued[0])

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if not self.try_acquire():
            self._acquire()
        try:
            return fn(*args, **kwargs)
        finally:
            self.release()

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        if not self.try_acquire():
            await self._aacquire()
        try:
            return await fn(*args, **kwargs)
        finally:
            self.release()
