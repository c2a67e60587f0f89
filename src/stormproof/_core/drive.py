"""Carrying out a policy's decisions: the one place where sync and async code differ.

A policy's decisions past its fast path are a *core*: a generator that yields
instructions and is sent their outcomes, and returns how the call ends. It never
sleeps, waits or calls anything itself, so one core serves every driver:

- ``CALL``: make an attempt (call the protected function with the call's arguments);
  ``Call(fn)``: call ``fn`` with them instead (a region's function, say; in a task,
  what it returns is awaited if it is awaitable).
  The core is sent the result, or a ``Failure`` holding the ``Exception`` it raised; a
  ``BaseException`` that is not an ``Exception`` (cancellation) is thrown into the
  core, which gives back what it holds and lets it propagate.
- a number: wait that many seconds on the policy's clock.
- a ``Wait``: wait for another caller (``Waiter``), at most ``timeout`` seconds; the
  core is sent whether it was woken in time.
- ``Io(sync, asynchronous, args)``: call ``sync(*args)`` in a thread, await
  ``asynchronous(*args)`` in a task (a store's ``get``/``aget``); the core is sent what
  it returned.
- ``Background(core, started)``: carry ``core`` out on its own, as this driver does (a
  thread of its own, or a task), free of the caller's deadline and Retry (see
  ``context.detached``), and go on at once; ``started`` is told of the task.

The core returns the call's result, or a ``Failure``, whose error is then raised.
``drive`` carries a core out in a thread, ``adrive`` in a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from .clock import Clock
from .context import detached
from .waiting import wait_event, wait_future

__all__ = [
    "CALL",
    "Background",
    "Call",
    "Core",
    "Failure",
    "Io",
    "Wait",
    "Waiter",
    "adrive",
    "drive",
    "ended",
]


class _Call:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CALL"


CALL: Any = _Call()
"""The instruction to make an attempt."""


class Call:
    """The instruction to call ``fn`` with the call's arguments."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn


class Failure:
    """An attempt's exception, as a value (sent to a core, or returned by one)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


Core = Generator[Any, Any, Any]


class Waiter:
    """Something a caller waits for until another one ``wake()``s it: a thread blocks
    on an event, a task awaits a future of its own event loop (woken from any thread)."""

    __slots__ = ("event", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.event = threading.Event()
        self.loop = loop
        self.future: asyncio.Future[None] | None = None if loop is None else loop.create_future()

    def wake(self) -> bool:
        """Wake the waiting caller; False if it can no longer be woken (its loop closed)."""
        self.event.set()
        future = self.future
        if self.loop is None or future is None:
            return True
        if _running_loop() is self.loop:  # woken from its own loop: no need to signal it
            _resolve(future)
            return True
        try:
            self.loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            return False
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Wait:
    """The instruction to wait for ``waiter`` at most ``timeout`` seconds (None: no limit)."""

    __slots__ = ("timeout", "waiter")

    def __init__(self, waiter: Waiter, timeout: float | None) -> None:
        self.waiter = waiter
        self.timeout = timeout


class Io:
    """The instruction to do I/O that has a sync and an async form."""

    __slots__ = ("args", "asynchronous", "sync")

    def __init__(
        self,
        sync: Callable[..., Any],
        asynchronous: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        self.sync = sync
        self.asynchronous = asynchronous
        self.args = args


class Background:
    """The instruction to carry ``core`` out on its own (see the module's docstring)."""

    __slots__ = ("core", "started")

    def __init__(self, core: Core, started: Callable[[asyncio.Future[Any]], None]) -> None:
        self.core = core
        self.started = started


def drive(
    core: Core,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    clock: Clock,
) -> Any:
    """Carry out ``core`` in this thread: attempts call ``fn``, waits block."""
    outcome: Any = None
    try:
        instruction = next(core)
        while True:
            try:
                if instruction is CALL or type(instruction) is Call:
                    try:
                        outcome = (fn if instruction is CALL else instruction.fn)(*args, **kwargs)
                    except Exception as error:
                        outcome = Failure(error)
                elif type(instruction) is Wait:
                    waiter = instruction.waiter
                    if instruction.timeout is None:
                        outcome = waiter.event.wait()
                    else:
                        outcome = wait_event(clock, waiter.event, instruction.timeout)
                elif type(instruction) is Io:
                    outcome = instruction.sync(*instruction.args)
                elif type(instruction) is Background:
                    _in_a_thread(instruction.core, fn, args, kwargs, clock)
                    outcome = None
                else:
                    clock.sleep(instruction)
                    outcome = None
            except BaseException as error:  # an interruption: the core lets go, then re-raises
                instruction = core.throw(error)
                continue
            instruction = core.send(outcome)
    except StopIteration as stop:
        result = stop.value
    outcome = None  # a failed attempt's error holds this frame: let go of it
    if type(result) is Failure:
        failure = result
        result = None  # nothing of the failed call stays in this frame...
        return ended(failure)  # ...but its Failure, which ended() takes apart
    return result


async def adrive(
    core: Core,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    clock: Clock,
) -> Any:
    """Carry out ``core`` in this task: attempts await ``fn``, waits suspend it."""
    outcome: Any = None
    try:
        instruction = next(core)
        while True:
            try:
                if instruction is CALL:
                    try:
                        outcome = await fn(*args, **kwargs)
                    except Exception as error:
                        outcome = Failure(error)
                elif type(instruction) is Call:
                    try:
                        outcome = instruction.fn(*args, **kwargs)
                        if inspect.isawaitable(outcome):
                            outcome = await outcome
                    except Exception as error:
                        outcome = Failure(error)
                elif type(instruction) is Wait:
                    future = instruction.waiter.future
                    assert future is not None, "a task waits on a Waiter made for its loop"
                    outcome = await wait_future(clock, future, instruction.timeout)
                elif type(instruction) is Io:
                    outcome = await instruction.asynchronous(*instruction.args)
                elif type(instruction) is Background:
                    work = adrive(instruction.core, fn, args, kwargs, clock)
                    outcome = detached().run(asyncio.ensure_future, work)
                    instruction.started(outcome)
                else:
                    await clock.asleep(instruction)
                    outcome = None
            except BaseException as error:  # a cancellation: the core lets go, then re-raises
                instruction = core.throw(error)
                continue
            instruction = core.send(outcome)
    except StopIteration as stop:
        result = stop.value
    outcome = None  # a failed attempt's error holds this frame: let go of it
    if type(result) is Failure:
        failure = result
        result = None  # nothing of the failed call stays in this frame...
        return ended(failure)  # ...but its Failure, which ended() takes apart
    return result


def _in_a_thread(
    core: Core,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    clock: Clock,
) -> None:
    """Carry ``core`` out in a daemon thread of its own, in a detached context. Its
    failure is not news: nobody waits for it but through the core's own means."""

    def work() -> None:
        with contextlib.suppress(Exception):
            drive(core, fn, args, kwargs, clock)

    thread = threading.Thread(target=detached().run, args=(work,), name="stormproof-background")
    thread.daemon = True
    thread.start()


def ended(result: Any) -> Any:
    """How a call ends: ``result``, or, for a ``Failure``, its error raised (outside any
    ``except`` block, so the caller's exception gets no context it did not have, and
    from a frame that lets go of it, so no cycle keeps the failed call alive)."""
    if type(result) is not Failure:
        return result
    error = result.error
    # The Failure lets go of it too: whoever still holds the Failure holds no cycle.
    result.error = None  # type: ignore[assignment]
    del result
    try:
        raise error
    finally:
        del error
