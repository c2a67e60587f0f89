"""Waiting for another caller, with a timeout measured on the policy's clock.

A clock may define ``wait(event, timeout) -> bool`` for blocking waits (``FakeClock``
does: it returns at once, its time moved on); without it, threads wait in real time.
Async waits race the future against ``clock.asleep(timeout)``, so on a ``FakeClock``
a timeout happens at once and deterministically.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .clock import Clock, MonotonicClock

__all__ = ["wait_event", "wait_first", "wait_future"]


def wait_event(clock: Clock, event: threading.Event, timeout: float) -> bool:
    """Block until ``event`` is set or ``timeout`` passes on ``clock``; True if set."""
    wait = getattr(clock, "wait", None)
    if wait is not None:
        return bool(wait(event, timeout))
    # Longer than a thread can be told to wait (about 292 years) means no limit.
    return event.wait(None if timeout >= threading.TIMEOUT_MAX else timeout)


async def wait_future(clock: Clock, future: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait until ``future`` is done or ``timeout`` (None: no limit) passes on ``clock``;
    True if done.

    Never cancels ``future``; a cancellation of the waiting task propagates.
    """
    if future.done():
        return True
    if timeout is None or type(clock) is MonotonicClock:
        await asyncio.wait((future,), timeout=timeout)
        return future.done()
    sleeper = asyncio.ensure_future(clock.asleep(timeout))
    try:
        await asyncio.wait((future, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    return future.done()


async def wait_first(
    clock: Clock, tasks: set[asyncio.Future[Any]], timeout: float | None
) -> set[asyncio.Future[Any]]:
    """Wait until one of ``tasks`` is done or ``timeout`` passes on ``clock``.

    Returns the tasks that are done (empty on a timeout). Never cancels ``tasks``.
    """
    done: set[asyncio.Future[Any]]
    if timeout is None or type(clock) is MonotonicClock:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return done
    sleeper = asyncio.ensure_future(clock.asleep(timeout))
    try:
        done, _ = await asyncio.wait({*tasks, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
    done.discard(sleeper)
    return done
